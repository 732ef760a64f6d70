"""Forces F_I = -∂F/∂R_I (Hartree/Bohr) at the converged state.

Because the SCF free energy is stationary in the orbitals and occupations, the total derivative
equals the partial derivative at fixed orbitals (Hellmann–Feynman), taken here by autograd through
the energy functional (local and nonlocal pseudopotential and Ewald terms carry the position dependence).
"""
from __future__ import annotations

import torch

from ..basis.symmetry import symmetrize_forces
from ..energy import energy_terms


def forces(result, remove_net_force: bool = False) -> torch.Tensor:
    """Cartesian forces (n_atoms, 3), Hartree/Bohr: the exact derivative of the discrete energy.

    The XC energy on the real-space grid is not exactly invariant under a rigid translation of all
    atoms (the "egg-box" effect, larger with core-corrected pseudopotentials, whose partial core is
    sharp), so these forces can sum to a small nonzero net force. ``remove_net_force=True`` subtracts
    its mean from every atom, as Quantum ESPRESSO does before printing forces."""
    basis = result.basis
    crystal = basis.model.crystal
    lattice = crystal.lattice.detach()
    with torch.enable_grad():
        positions = crystal.positions.detach().clone().requires_grad_(True)
        energy = energy_terms(basis, result.orbitals, result.occupations, result.entropy_term,
                              lattice=lattice, positions=positions)["total"]
        (grad_frac,) = torch.autograd.grad(energy, positions)
    # R = x L (rows) ⇒ ∂E/∂x = (∂E/∂R) Lᵀ
    f = -grad_frac @ torch.linalg.inv(lattice).T
    if basis.symmetry is not None:   # irreducible k-set: each k stands for its star
        f = symmetrize_forces(f, basis.symmetry, lattice)
    if remove_net_force:
        f = f - f.mean(0, keepdim=True)
    return f
