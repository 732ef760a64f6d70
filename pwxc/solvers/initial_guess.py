"""Start orbitals for the first diagonalisation of an SCF.

The default start is the exact solution of the Kohn–Sham Hamiltonian restricted to the n_sub plane
waves of lowest kinetic energy at each k-point: a dense (n_sub × n_sub) eigenproblem

    H_GG' = ½|k+G|² δ_GG' + V̂_eff(G − G') + Σ_ij p_i(k+G) D_ij p_j(k+G')*,

whose lowest eigenvectors, embedded in the full sphere, are the start vectors of LOBPCG. For the
low-lying states of a solid these few plane waves carry most of the weight, so the first iterative
diagonalisation needs about half the iterations it needs from random vectors (Al fcc 8×8×8: 4
instead of 8 LOBPCG iterations at the first step's tolerance). V̂_eff(G − G') is read from the FFT of
V_eff on the density grid with the same wrap-around as the Hamiltonian's FFT application, so the
small matrix is exactly a block of the operator LOBPCG works with.
"""
from __future__ import annotations

import torch

#: plane waves of the start subspace per requested band (at least _MIN_SUBSPACE)
SUBSPACE_PER_BAND = 6
_MIN_SUBSPACE = 40
#: matrix entries built at once (k-points are processed in chunks below this)
_CHUNK_ENTRIES = 2**22


def random_orbitals(basis, n_bands: int, seed: int) -> torch.Tensor:
    """(n_k, n_bands, npw_max) random coefficients damped by (1 + ½|k+G|²)⁻², zero on padding."""
    gen = torch.Generator().manual_seed(seed)
    shape = (basis.n_kpoints, n_bands, basis.mask.shape[1])
    re = torch.randn(shape, generator=gen, dtype=torch.float64)
    im = torch.randn(shape, generator=gen, dtype=torch.float64)
    psi = torch.complex(re, im).to(device=basis.device)
    kinetic = basis.kinetic(basis.model.crystal.lattice.detach())
    return psi * basis.mask[:, None, :] / (1 + kinetic[:, None, :]) ** 2


def subspace_orbitals(ham, n_bands: int, n_sub: int | None = None) -> torch.Tensor | None:
    """(n_k, n_bands, npw_max) lowest eigenvectors of ``ham`` (a pwxc.hamiltonian.Hamiltonian) within
    the n_sub lowest-kinetic-energy plane waves of each k-point, or None when some k-point has fewer
    than 2·n_bands plane waves (the subspace would not be a useful start)."""
    basis = ham.basis
    npw_min = int(basis.n_planewaves.min())
    if n_sub is None:
        n_sub = max(_MIN_SUBSPACE, SUBSPACE_PER_BAND * n_bands)
    n_sub = min(n_sub, npw_min)
    if n_sub < 2 * n_bands:
        return None
    kinetic = ham.kinetic
    cdtype = torch.complex128 if kinetic.dtype == torch.float64 else torch.complex64
    _, sel = torch.topk(kinetic.masked_fill(~basis.mask, float("inf")), n_sub, dim=1, largest=False)
    v_hat = (torch.fft.fftn(ham.v_eff.to(cdtype)) / basis.fft.size).reshape(-1)
    psi = torch.zeros(basis.n_kpoints, n_bands, basis.mask.shape[1], dtype=cdtype, device=basis.device)
    step = max(1, _CHUNK_ENTRIES // (n_sub * n_sub))
    for start in range(0, basis.n_kpoints, step):
        ks = slice(start, start + step)
        s = sel[ks]
        miller = torch.gather(basis.miller[ks], 1, s[..., None].expand(-1, -1, 3))
        h = v_hat[basis.fft.flat_index(miller[:, :, None, :] - miller[:, None, :, :])]
        h = h + torch.diag_embed(torch.gather(kinetic[ks], 1, s).to(cdtype))
        if ham.proj is not None:
            p = torch.gather(ham.proj[ks], 2, s[:, None, :].expand(-1, ham.proj.shape[1], -1))
            h = h + torch.einsum("kai,ab,kbj->kij", p, ham.coupling, p.conj())
        _, vec = torch.linalg.eigh(0.5 * (h + h.conj().transpose(-1, -2)))
        psi[ks].scatter_(2, s[:, None, :].expand(-1, n_bands, -1),
                         vec[..., :n_bands].transpose(-1, -2).contiguous())
    return psi
