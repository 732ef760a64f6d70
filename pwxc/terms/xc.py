"""Exchange–correlation energy and potential on the FFT grid.

E_xc = (Ω/N) Σ_j e_xc(ρ_j, σ_j),  σ = |∇ρ|², ∇ρ(r) = Σ_G iG ρ(G) e^{iG·r} (FFT, Nyquist planes zeroed).
The potential is the exact derivative of this discrete energy, v_xc(r_j) = (N/Ω) ∂E_xc/∂ρ_j, taken by
autograd; for GGAs this equals ∂e/∂ρ - ∇·(2 ∂e/∂σ ∇ρ) evaluated with the same FFT derivatives.
With core-corrected pseudopotentials ρ is the valence density plus the partial core density
(:mod:`pwxc.terms.core_correction`, half per spin channel): every functional, neural ones included,
sees ρ_val + ρ_core.
"""
from __future__ import annotations

import torch

from .core_correction import core_density


def density_gradient(basis, rho: torch.Tensor, lattice=None) -> torch.Tensor:
    """∇ρ on the grid, shape (3, *rho.shape), Bohr^-4."""
    g = basis.gvectors(lattice)
    g = torch.where(basis.fft.nyquist[..., None], torch.zeros_like(g), g)
    rho_g = torch.fft.fftn(rho, dim=(-3, -2, -1))
    grads = [torch.fft.ifftn(1j * g[..., c] * rho_g, dim=(-3, -2, -1)).real for c in range(3)]
    return torch.stack(grads)


def xc_inputs(basis, rho: torch.Tensor, lattice=None, positions=None, core=None, gga: bool = True):
    """The functional's inputs on the grid: (ρ, σ) in libxc layout — ρ (N,) or (2, N) for spin, σ (N,)
    or (σ_uu, σ_ud, σ_dd) (3, N), or None when ``gga`` is False — of the valence density rho
    (n_spin, n1, n2, n3) plus the partial core density at (lattice, positions) (default the model's;
    ``core`` passes a precomputed one). Bohr⁻³ and Bohr⁻⁸."""
    lattice = basis.model.crystal.lattice if lattice is None else lattice
    n_spin = rho.shape[0]
    if n_spin not in (1, 2):
        raise ValueError(f"density must have 1 or 2 spin components, got {n_spin}")
    if core is None:
        core = core_density(basis, lattice, positions)
    if core is not None:
        rho = rho + core / n_spin
    flat = rho.reshape(n_spin, -1)
    sigma = None
    if gga:
        g = density_gradient(basis, rho, lattice).reshape(3, n_spin, -1)
        sigma = (g[:, 0] ** 2).sum(0) if n_spin == 1 else \
            torch.stack([(g[:, i] * g[:, j]).sum(0) for i, j in ((0, 0), (0, 1), (1, 1))])
    return (flat[0] if n_spin == 1 else flat), sigma


def xc_energy(basis, rho: torch.Tensor, functional, lattice=None, positions=None,
              core=None) -> torch.Tensor:
    """E_xc (Hartree) of the valence density rho (n_spin, n1, n2, n3) plus the partial core density
    at (lattice, positions) (default the model's; ``core`` passes a precomputed one)."""
    lattice = basis.model.crystal.lattice if lattice is None else lattice
    volume = torch.linalg.det(lattice)
    n, sigma = xc_inputs(basis, rho, lattice, positions, core, gga=functional.is_gga)
    return functional.energy_density(n, sigma).sum() * volume / basis.fft.size


def xc_potential(basis, rho: torch.Tensor, functional, core=None):
    """(E_xc, v_xc) at fixed geometry: v_xc (n_spin, n1, n2, n3) Hartree, detached. ``core``: the
    partial core density if already computed (a detached tensor)."""
    volume = float(basis.model.crystal.volume.detach())
    with torch.enable_grad():
        leaf = rho.detach().requires_grad_(True)
        lattice = basis.model.crystal.lattice.detach()
        if core is None:
            core = core_density(basis, lattice, basis.model.crystal.positions.detach())
        energy = xc_energy(basis, leaf, functional, lattice, core=core)
        (grad,) = torch.autograd.grad(energy, leaf)
    return energy.detach(), grad * (basis.fft.size / volume)
