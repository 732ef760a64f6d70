"""The Kohn–Sham free-energy functional, evaluated term by term.

F[ψ, f] = E_kin + E_loc + E_psp_correction + E_nl + E_H + E_xc + E_ewald - σS   (Hartree)

`energy_terms` is a plain differentiable function of the lattice, the fractional positions, the
orbitals, the occupations and the XC functional's parameters. Evaluated at the converged orbitals it
gives exact first derivatives with respect to anything but the orbitals (Hellmann–Feynman), which is
how forces, stress and dE/dθ are obtained.
"""
from __future__ import annotations

import torch

from .density import compute_density
from .terms.ewald import ewald_energy
from .terms.hartree import hartree_energy
from .terms.local_pseudo import local_potential_recip, psp_correction_energy
from .terms.nonlocal_pseudo import nonlocal_energy, projectors
from .terms.xc import xc_energy

TERM_NAMES = ("kinetic", "local", "nonlocal", "hartree", "xc", "ewald", "psp_correction", "entropy")


def ion_charges(model) -> torch.Tensor:
    return torch.tensor([model.pseudopotentials[s].z_ion for s in model.species],
                        dtype=model.dtype, device=model.device)


def energy_terms(basis, psi, occupations, minus_ts=0.0, *, lattice=None, positions=None,
                 functional=None, rho=None, proj=None, core=None) -> dict:
    """Named energy terms (0-dim tensors, Hartree) and their sum under "total".

    Args:
        psi: (nk, nb, npw) orbital coefficients; occupations: (nk, nb) in [0, 2]. Spin-polarised:
            psi (2, nk, nb, npw) and occupations (2, nk, nb) in [0, 1] (up, down).
        minus_ts: the smearing term -σS (Hartree), a constant at fixed occupations.
        lattice, positions: (3, 3) Bohr rows and (n_atoms, 3) fractional; default the model's.
        functional: XC functional; default the model's.
        rho: density at this lattice if already computed (else computed from psi).
        proj: (P, D) nonlocal projectors if already computed at this geometry.
        core: the partial core density at this geometry if already computed (a constant in the SCF).
    """
    model = basis.model
    lattice = model.crystal.lattice if lattice is None else lattice
    positions = model.crystal.positions if positions is None else positions
    functional = model.xc if functional is None else functional
    volume = torch.linalg.det(lattice)
    w = basis.kweights
    # spin-polarised: psi (2, nk, nb, npw), occupations (2, nk, nb); the orbital terms sum over spin
    density2 = psi.real**2 + psi.imag**2
    kinetic = (w[:, None] * occupations * (basis.kinetic(lattice)[:, None, :] * density2).sum(-1)).sum()
    if rho is None:
        rho = compute_density(basis, psi, occupations, lattice)
    rho_g = torch.fft.fftn(rho.sum(0)) / basis.fft.size
    v_loc = local_potential_recip(basis, lattice, positions, include_g0=False)
    local = volume * (rho_g.conj() * v_loc).real.sum()
    p, d = projectors(basis, lattice, positions) if proj is None else proj
    terms = {
        "kinetic": kinetic,
        "local": local,
        "nonlocal": (nonlocal_energy(p, d, psi, occupations, w) if psi.dim() == 3 else
                     sum(nonlocal_energy(p, d, psi[s], occupations[s], w) for s in range(psi.shape[0]))),
        "hartree": hartree_energy(basis, rho_g, lattice),
        "xc": xc_energy(basis, rho, functional, lattice, positions, core=core),
        "ewald": ewald_energy(lattice, positions, ion_charges(model)),
        "psp_correction": psp_correction_energy(basis, lattice),
        "entropy": torch.as_tensor(minus_ts, dtype=basis.dtype, device=basis.device),
    }
    terms["total"] = sum(terms[name] for name in TERM_NAMES)
    return terms
