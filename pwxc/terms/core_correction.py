"""Nonlinear core correction: the partial core density that the XC functional sees beside the valence.

    ρ_core(r) = (1/Ω) Σ_{|G|² ≤ 8 ecut} Σ_species ρ_c,s(|G|) S_s(G) e^{iG·r},   S_s(G) = Σ_{I∈s} e^{-iG·R_I},

with ρ_c,s(q) = 4π ∫ r² ρ_c(r) j_0(qr) dr from the pseudopotential file (electrons). The sum runs over
the density sphere ½|G|² ≤ 4 ecut, as in Quantum ESPRESSO (the box corners would otherwise change
E_xc); like the orbital spheres, that G-set is fixed with the basis (``basis.density_mask``), so a
strained lattice at fixed basis keeps it (the fixed-basis stress). E_xc = E_xc[ρ_val + ρ_core]; the potential is ∂E_xc/∂ρ_val (the same function); the core is
split equally between the spin channels. Differentiable in the lattice and the positions, so forces
and stress get the core terms by autograd.
"""
from __future__ import annotations

import torch


def has_core_correction(model) -> bool:
    return any(getattr(pp, "has_core_correction", False) for pp in model.pseudopotentials.values())


def core_density(basis, lattice=None, positions=None):
    """ρ_core on the FFT grid (n1, n2, n3), Bohr⁻³, or None when no pseudopotential has a core."""
    model = basis.model
    if not has_core_correction(model):
        return None
    crystal = model.crystal
    lattice = crystal.lattice if lattice is None else lattice
    positions = crystal.positions if positions is None else positions
    g = basis.gvectors(lattice)
    g2 = (g**2).sum(-1)
    inside = basis.density_mask
    positive = inside & (g2.detach() > 0)
    # |G| with a finite derivative everywhere (sqrt'(0) would poison the strain gradient at G = 0)
    q = torch.where(positive, torch.sqrt(torch.where(positive, g2, torch.ones_like(g2))), torch.zeros_like(g2))
    miller = basis.fft.miller.to(basis.dtype)
    total = torch.zeros(basis.fft.shape, dtype=torch.complex128 if basis.dtype == torch.float64
                        else torch.complex64, device=basis.device)
    for element, pp in model.pseudopotentials.items():
        if not getattr(pp, "has_core_correction", False):
            continue
        idx = [i for i, s in enumerate(crystal.species) if s == element]
        phase = -2 * torch.pi * torch.einsum("xyzc,ac->axyz", miller, positions[idx])
        structure_factor = torch.polar(torch.ones_like(phase), phase).sum(0)
        total = total + torch.where(inside, pp.core_form_factor(q), torch.zeros_like(q)) * structure_factor
    volume = torch.linalg.det(lattice)
    return basis.fft.to_real(total).real / volume
