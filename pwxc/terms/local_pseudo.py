"""Local part of the GTH pseudopotential and its G = 0 ("αZ", psp_correction) term.

V_loc(G) = (1/Ω) Σ_species v_s(|G|) S_s(G),  S_s(G) = Σ_{I∈s} e^{-iG·R_I} = e^{-2πi m·x_I},
E_loc = Ω Σ_{G≠0} Re[ρ(G)* V_loc(G)],   E_psp_correction = (N_el/Ω) Σ_I α_I,
with α_I = lim_{G→0}[v_I(G) + 4πZ_I/G²] (Hartree·Bohr³). The G = 0 constant Σ_I α_I/Ω is included in
the potential (as Quantum ESPRESSO does), so eigenvalues and the Fermi level follow QE's convention.
"""
from __future__ import annotations

import torch


def local_potential_recip(basis, lattice=None, positions=None, include_g0: bool = True) -> torch.Tensor:
    """V_loc(G) on the density grid (n1, n2, n3), complex, Hartree."""
    crystal = basis.model.crystal
    lattice = crystal.lattice if lattice is None else lattice
    positions = crystal.positions if positions is None else positions
    g = basis.gvectors(lattice)
    g2 = (g**2).sum(-1)
    is_g0 = g2.detach() == 0
    q = torch.sqrt(torch.where(is_g0, torch.ones_like(g2), g2))
    g2_safe = torch.where(is_g0, torch.ones_like(g2), g2)
    volume = torch.linalg.det(lattice)
    miller = basis.fft.miller.to(basis.dtype)
    total = torch.zeros(basis.fft.shape, dtype=torch.complex128 if basis.dtype == torch.float64
                        else torch.complex64, device=basis.device)
    for element, pp in basis.model.pseudopotentials.items():
        idx = [i for i, s in enumerate(crystal.species) if s == element]
        phase = -2 * torch.pi * torch.einsum("xyzc,ac->axyz", miller, positions[idx])
        structure_factor = torch.polar(torch.ones_like(phase), phase).sum(0)
        form = pp.local_form_factor(q) - 4 * torch.pi * pp.z_ion / g2_safe
        form = torch.where(is_g0, torch.full_like(form, pp.alpha_z if include_g0 else 0.0), form)
        total = total + form * structure_factor
    return total / volume


def psp_correction_energy(basis, lattice=None) -> torch.Tensor:
    """(N_el/Ω) Σ_I α_I, Hartree."""
    crystal = basis.model.crystal
    lattice = crystal.lattice if lattice is None else lattice
    alpha = sum(basis.model.pseudopotentials[s].alpha_z for s in crystal.species)
    return basis.model.n_electrons * alpha / torch.linalg.det(lattice)
