"""Kohn–Sham Hamiltonian applied to plane-wave coefficients, batched over k-points and bands.

H c = ½|k+G|² c + FFT[V_eff(r) · iFFT(c)] + P D (P^H c),   V_eff = V_loc + V_H + V_xc (Hartree).
"""
from __future__ import annotations

import torch

from .density import k_chunks


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

    def apply(self, psi: torch.Tensor, kidx: torch.Tensor) -> torch.Tensor:
        """H psi for coefficient blocks psi (len(kidx), nb, npw_max) at k-points kidx."""
        basis = self.basis
        out = self.kinetic[kidx, None, :] * psi
        local = torch.empty_like(psi)
        for chunk in k_chunks(len(kidx), psi.shape[1], basis.fft.size):
            box = basis.to_box(psi[chunk], kidx[chunk])
            box = torch.fft.fftn(torch.fft.ifftn(box, dim=(-3, -2, -1)) * self.v_eff, dim=(-3, -2, -1))
            local[chunk] = basis.from_box(box, kidx[chunk])
        out = out + local
        if self.proj is not None:
            p = self.proj[kidx]
            beta = torch.einsum("kap,knp->kna", p.conj(), psi)
            out = out + torch.einsum("kap,kna->knp", p, beta @ self.coupling.T)
        return out
