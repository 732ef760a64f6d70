"""Kohn–Sham Hamiltonian applied to plane-wave coefficients, batched over k-points and bands.

H c = ½|k+G|² c + FFT[V_eff(r) · iFFT(c)] + P D (P^H c),   V_eff = V_loc + V_H + V_xc (Hartree).

The local term is the hot spot of every SCF. It runs on a flat list of (k, band) rows, a few FFT boxes
at a time, in two work buffers owned by the operator (no fresh box allocations per application), and
it can skip rows (``rows=``) whose input is known to be zero, e.g. locked bands in LOBPCG.
"""
from __future__ import annotations

import ctypes
import os
import sys

import torch

#: boxes per batched FFT: a few boxes stay in cache; large batches were ~2× slower per transform
_BOX_BATCH_ELEMENTS = 2**17


class Hamiltonian:
    """Frozen operator at one effective potential; used inside the SCF (no autograd graph).

    Args:
        basis: PlaneWaveBasis.
        v_eff: (n1, n2, n3) real effective local potential, Hartree.
        proj, coupling: nonlocal projectors (nk, n_proj, npw) and D (n_proj, n_proj), or None.
    """

    def __init__(self, basis, v_eff, proj, coupling):
        self.basis = basis
        self.kinetic = basis.kinetic(basis.model.crystal.lattice.detach())
        self.v_eff = v_eff
        self.proj = proj
        self.coupling = None if coupling is None else coupling.to(torch.complex128 if basis.dtype == torch.float64
                                                                 else torch.complex64)
        self._index, self._buffers = _box_index(basis), None
        _tune_allocator()

    def apply(self, psi: torch.Tensor, kidx: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """H psi for coefficient blocks psi (len(kidx), nb, npw_max) at k-points kidx.

        rows: optional bool (len(kidx), nb); rows marked False must be zero in psi and are skipped
        (their output is zero)."""
        nk, nb, npw = psi.shape
        out = self.kinetic[kidx, None, :] * psi
        if self.proj is not None:
            p = self.proj[kidx]
            beta = torch.einsum("kap,knp->kna", p.conj(), psi)
            out = out + torch.einsum("kap,kna->knp", p, beta @ self.coupling.T)
        out = out.contiguous()
        flat_in, flat_out = psi.reshape(nk * nb, npw), out.view(nk * nb, npw)
        row_k = kidx.repeat_interleave(nb)
        sel = None if rows is None else rows.reshape(-1).nonzero().squeeze(1)
        self._add_local(flat_in, flat_out, row_k, sel)
        return out

    def _add_local(self, flat_in, flat_out, row_k, sel):
        """flat_out[r] += P_sphere FFT[V iFFT(flat_in[r])] for the rows sel (all when None)."""
        basis, shape, n = self.basis, self.basis.fft.shape, self.basis.fft.size
        n_rows = flat_in.shape[0] if sel is None else len(sel)
        if n_rows == 0:
            return
        if self._index is None:   # no free box point: plain scatter/gather through the basis
            rows = torch.arange(n_rows, device=flat_in.device) if sel is None else sel
            box = basis.to_box(flat_in[rows][:, None], row_k[rows])
            box = torch.fft.fftn(torch.fft.ifftn(box, dim=(-3, -2, -1)) * self.v_eff, dim=(-3, -2, -1))
            flat_out.index_add_(0, rows, basis.from_box(box, row_k[rows])[:, 0])
            return
        batch = max(1, min(n_rows, _BOX_BATCH_ELEMENTS // n))
        if self._buffers is None or self._buffers[0].shape[0] < batch or self._buffers[0].dtype != flat_in.dtype:
            self._buffers = tuple(torch.empty(batch, n, dtype=flat_in.dtype, device=flat_in.device)
                                  for _ in range(2))
        buf_a, buf_b = self._buffers
        index, mask = self._index, basis.mask
        for start in range(0, n_rows, batch):
            stop = min(start + batch, n_rows)
            b = stop - start
            r = slice(start, stop) if sel is None else sel[start:stop]
            kk = row_k[r]
            idx = index[kk]
            a, c = buf_a[:b], buf_b[:b]
            a.zero_()
            a.scatter_(1, idx, flat_in[r])
            torch.fft.ifftn(a.view(b, *shape), dim=(-3, -2, -1), out=c.view(b, *shape))
            c.view(b, *shape).mul_(self.v_eff)
            torch.fft.fftn(c.view(b, *shape), dim=(-3, -2, -1), out=a.view(b, *shape))
            local = torch.gather(a, 1, idx).mul_(mask[kk])
            if sel is None:
                flat_out[r] += local
            else:
                flat_out.index_add_(0, r, local)


def _box_index(basis):
    """(nk, npw_max) flat FFT-box index of each plane wave; padding entries (whose coefficients are zero)
    point at one box point outside every orbital sphere, so a scatter writes zeros there harmlessly
    and the gather result is masked. Cached on the basis."""
    if "_hamiltonian_box_index" in vars(basis):
        return basis._hamiltonian_box_index
    n = basis.fft.size
    used = torch.zeros(n + 1, dtype=torch.bool, device=basis.mask.device)
    used[basis.fft_index.reshape(-1)] = True
    free = (~used[:n]).nonzero()
    if len(free) == 0:   # every grid point in some sphere (FFT grid far below the density cutoff)
        index = None
    else:
        index = torch.where(basis.mask, basis.gather_index, free[0, 0])
    basis._hamiltonian_box_index = index
    return index


_ALLOCATOR_TUNED = False


def _tune_allocator():
    """Keep freed memory in the heap instead of returning it to the OS (glibc only; once per process).

    torch allocates a fresh tensor for nearly every intermediate; with glibc's defaults each one of more
    than a few hundred kB is a new mmap whose pages fault in on first touch, which doubled the cost of
    the LOBPCG block algebra around H applications. Raising the mmap and trim thresholds lets such
    blocks be reused (the process keeps its peak heap). PWXC_NO_MALLOPT=1 leaves the allocator alone."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or not sys.platform.startswith("linux") or os.environ.get("PWXC_NO_MALLOPT"):
        return
    _ALLOCATOR_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 31)
        libc.mallopt(m_top_pad, 1 << 26)
    except (OSError, AttributeError):
        pass
