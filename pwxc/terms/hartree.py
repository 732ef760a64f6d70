"""Hartree energy and potential by an FFT Poisson solve.

V_H(G) = 4π ρ(G)/G² (G ≠ 0, the G = 0 term cancels against ions and background),
E_H = (Ω/2) Σ_{G≠0} 4π |ρ(G)|² / G²   (Hartree; ρ(G) Fourier coefficients of ρ(r) in Bohr^-3).
"""
from __future__ import annotations

import math

import torch


def _inverse_g2(basis, lattice):
    g = basis.gvectors(lattice)
    g2 = (g**2).sum(-1)
    is_g0 = g2.detach() == 0
    return torch.where(is_g0, torch.zeros_like(g2), 1 / torch.where(is_g0, torch.ones_like(g2), g2))


def hartree_potential_recip(basis, rho_recip: torch.Tensor, lattice=None) -> torch.Tensor:
    """V_H(G), Hartree, from the total density coefficients ρ(G) (n1, n2, n3)."""
    return 4 * math.pi * rho_recip * _inverse_g2(basis, lattice)


def hartree_energy(basis, rho_recip: torch.Tensor, lattice=None) -> torch.Tensor:
    lattice = basis.model.crystal.lattice if lattice is None else lattice
    volume = torch.linalg.det(lattice)
    return 0.5 * volume * 4 * math.pi * ((rho_recip.abs() ** 2) * _inverse_g2(basis, lattice)).sum()
