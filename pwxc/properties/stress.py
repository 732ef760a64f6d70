"""Stress tensor σ_ab = (1/Ω) ∂F/∂ε_ab (Hartree/Bohr³) at the converged state.

The lattice is strained as a_i → (1 + ε) a_i with fractional positions and the integer G-vector set
held fixed (fixed-basis stress, as in plane-wave codes; it contains the Pulay stress of a finite
cutoff). Hellmann–Feynman: derivative of the energy functional at fixed orbitals, by autograd.
Pressure P = -tr(σ)/3. (Quantum ESPRESSO prints -σ.)
"""
from __future__ import annotations

import torch

from ..basis.symmetry import symmetrize_stress
from ..energy import energy_terms


def stress(result) -> torch.Tensor:
    """Symmetric 3×3 stress tensor, Hartree/Bohr³."""
    basis = result.basis
    crystal = basis.model.crystal
    lattice = crystal.lattice.detach()
    with torch.enable_grad():
        strain = torch.zeros(3, 3, dtype=lattice.dtype, device=lattice.device, requires_grad=True)
        eye = torch.eye(3, dtype=lattice.dtype, device=lattice.device)
        strained = lattice @ (eye + strain).T
        energy = energy_terms(basis, result.orbitals, result.occupations, result.entropy_term,
                              lattice=strained, positions=crystal.positions.detach())["total"]
        (grad,) = torch.autograd.grad(energy, strain)
    sigma = grad / torch.linalg.det(lattice)
    sigma = 0.5 * (sigma + sigma.T)
    if basis.symmetry is not None:   # irreducible k-set: each k stands for its star
        sigma = symmetrize_stress(sigma, basis.symmetry, lattice)
    return sigma


def pressure(result) -> torch.Tensor:
    """P = -tr(σ)/3, Hartree/Bohr³ (multiply by pwxc.units.HARTREE_PER_BOHR3_IN_GPA for GPa)."""
    return -torch.trace(stress(result)) / 3
