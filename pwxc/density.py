"""Electron density from orbitals, and the initial guess.

ρ(r) = Σ_k w_k Σ_n f_nk |ψ_nk(r)|²,  ψ_nk(r_j) = Ω^{-1/2} N · ifftn(c_nk)_j   (electrons/Bohr³),
so that (Ω/N) Σ_j ρ(r_j) = N_el. Shape (n_spin, n1, n2, n3) with n_spin = 1 (unpolarised).
"""
from __future__ import annotations

import torch

#: FFT boxes are processed in chunks of at most this many complex entries (~4 MB): small batches
#: stay in cache and run several times faster per transform than one huge batched FFT
MAX_BOX_ELEMENTS = 2**18


def k_chunks(n_k: int, n_bands: int, grid_size: int):
    """Slices of k-points so that one chunk of FFT boxes holds at most MAX_BOX_ELEMENTS entries."""
    step = max(1, MAX_BOX_ELEMENTS // max(1, n_bands * grid_size))
    return [slice(i, min(i + step, n_k)) for i in range(0, n_k, step)]


def compute_density(basis, psi, occupations, lattice=None) -> torch.Tensor:
    """Density (n_spin, n1, n2, n3) in Bohr^-3 from coefficients psi (nk, nb, npw) and occupations
    (nk, nb) — or, spin-polarised, psi (2, nk, nb, npw) and occupations (2, nk, nb) giving the
    (up, down) densities — symmetrised when the basis uses irreducible k-points."""
    if psi.dim() == 4:
        return torch.cat([compute_density(basis, psi[s], occupations[s], lattice) for s in range(psi.shape[0])])
    lattice = basis.model.crystal.lattice if lattice is None else lattice
    volume = torch.linalg.det(lattice)
    n = basis.fft.size
    rho = torch.zeros(basis.fft.shape, dtype=basis.dtype, device=basis.device)
    for chunk in k_chunks(basis.n_kpoints, psi.shape[1], n):
        kidx = torch.arange(basis.n_kpoints, device=basis.device)[chunk]
        psi_r = torch.fft.ifftn(basis.to_box(psi[chunk], kidx), dim=(-3, -2, -1)) * n
        weights = basis.kweights[chunk, None] * occupations[chunk]
        rho = rho + torch.einsum("kn,knxyz->xyz", weights, psi_r.real**2 + psi_r.imag**2)
    rho = (rho / volume)[None]
    if basis.symmetrizer is not None:
        # irreducible k-points only: average over the space group (pwxc.basis.symmetry)
        rho = basis.symmetrizer(rho)
    return rho


def initial_density(basis) -> torch.Tensor:
    """Superposition of Gaussian valence charges, Z_I e^{-G² w_I²/4} per atom (w_I ~ size of the
    pseudo-atom), normalised to N_el; returns (1, n1, n2, n3) Bohr^-3. Spin-polarised models get
    (up, down) = (ρ ± m)/2 with m the same Gaussians weighted by the starting moments μ_I (μ_B),
    limited to |m| ≤ ρ."""
    rho = _atomic_superposition(basis, None)
    if basis.model.n_spin == 1:
        return rho
    m = _atomic_superposition(basis, basis.model.magnetic_moments)[0]
    m = torch.maximum(torch.minimum(m, rho[0]), -rho[0])
    return torch.stack([(rho[0] + m) / 2, (rho[0] - m) / 2])


def _atomic_superposition(basis, weights) -> torch.Tensor:
    """Σ_I q_I ρ_I(r) with ρ_I the pseudo-atom valence densities (each pseudopotential's
    ``atomic_density_form_factor``, normalised to one electron); q_I = Z_I (weights None, normalised to
    N_el, clamped ≥ 0) or the given per-atom weights (normalised to Σ_I weights_I)."""
    crystal = basis.model.crystal
    g2 = (basis.gvectors(crystal.lattice.detach()) ** 2).sum(-1)
    q = torch.sqrt(g2)
    miller = basis.fft.miller.to(basis.dtype)
    rho_g = torch.zeros(basis.fft.shape, dtype=torch.complex128 if basis.dtype == torch.float64
                        else torch.complex64, device=basis.device)
    for element, pp in basis.model.pseudopotentials.items():
        idx = [i for i, s in enumerate(crystal.species) if s == element]
        phase = -2 * torch.pi * torch.einsum("xyzc,ac->axyz", miller, crystal.positions.detach()[idx])
        shape = pp.atomic_density_form_factor(q) / float(pp.z_ion)
        charge = (torch.full((len(idx),), float(pp.z_ion), dtype=basis.dtype, device=basis.device)
                  if weights is None else weights[idx].to(basis.dtype))
        structure = torch.polar(torch.ones_like(phase), phase)
        rho_g = rho_g + shape * torch.einsum("a,axyz->xyz", charge.to(structure.dtype), structure)
    volume = float(torch.linalg.det(crystal.lattice.detach()))
    rho = basis.fft.to_real(rho_g).real / volume
    if weights is not None:
        return rho[None]
    rho = rho.clamp_min(0)
    rho = rho * basis.model.n_electrons / (float(rho.sum()) * volume / basis.fft.size)
    return rho[None]


def magnetic_moment(rho: torch.Tensor, volume: float, absolute: bool = False) -> float:
    """∫ (n_up − n_down) dr (or ∫ |n_up − n_down| dr) of a density (2, n1, n2, n3) in a cell of
    ``volume`` Bohr³: Bohr magnetons per cell; 0 for a spin-unpolarised density (1, n1, n2, n3)."""
    if rho.shape[0] == 1:
        return 0.0
    m = rho[0] - rho[1]
    return float(m.abs().sum() if absolute else m.sum()) * volume / m.numel()
