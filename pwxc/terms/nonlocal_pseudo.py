"""Nonlocal (separable, Kleinman–Bylander form) part of the GTH/HGH pseudopotential.

V_nl = Σ_I Σ_lm Σ_ij |p^I_lmi⟩ h^l_ij ⟨p^I_lmj|, with projectors p_lmi(r) = p_i^l(r) Y_lm(r̂) (real
spherical harmonics). In the plane-wave basis of k (coefficients c(G), ψ = Ω^{-1/2} Σ c e^{i(k+G)·r}):

    ⟨p^I_lmi | ψ_k⟩ = Σ_G P^I_lmi(k+G)* c(G),
    P^I_lmi(q) = Ω^{-1/2} (-i)^l Y_lm(q̂) R_li(|q|) e^{-i q·R_I},

with R_li the radial transform of :meth:`GTHPseudopotential.projector_form_factor` (Bohr^{3/2}).
E_nl = Σ_k w_k Σ_n f_nk Σ β*_{nk} D β_{nk}, with β = P^H c and D block-diagonal of the h^l_ij (Hartree).
"""
from __future__ import annotations

import math

import torch


def real_spherical_harmonics(l: int, q: torch.Tensor, q_norm: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics Y_lm(q̂), m = -l..l, shape (2l+1, *q.shape[:-1]); l ≤ 3.

    Normalised on the unit sphere; Σ_m Y_lm(u)² = (2l+1)/4π. Entries at q = 0 are finite (their
    radial factors vanish for l > 0).
    """
    u = q / q_norm[..., None]
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    pi = math.pi
    if l == 0:
        return torch.full_like(x, 0.5 / math.sqrt(pi))[None]
    if l == 1:
        c = math.sqrt(3 / (4 * pi))
        return torch.stack([c * y, c * z, c * x])
    if l == 2:
        return torch.stack([
            math.sqrt(15 / (4 * pi)) * x * y,
            math.sqrt(15 / (4 * pi)) * y * z,
            math.sqrt(5 / (16 * pi)) * (3 * z**2 - 1),
            math.sqrt(15 / (4 * pi)) * x * z,
            math.sqrt(15 / (16 * pi)) * (x**2 - y**2),
        ])
    if l == 3:
        return torch.stack([
            math.sqrt(35 / (32 * pi)) * y * (3 * x**2 - y**2),
            math.sqrt(105 / (4 * pi)) * x * y * z,
            math.sqrt(21 / (32 * pi)) * y * (5 * z**2 - 1),
            math.sqrt(7 / (16 * pi)) * z * (5 * z**2 - 3),
            math.sqrt(21 / (32 * pi)) * x * (5 * z**2 - 1),
            math.sqrt(105 / (16 * pi)) * z * (x**2 - y**2),
            math.sqrt(35 / (32 * pi)) * x * (x**2 - 3 * y**2),
        ])
    raise ValueError(f"angular momentum l = {l} > 3 is not supported")


def projectors(basis, lattice=None, positions=None):
    """Projector tensor P (nk, n_proj, npw_max) complex and coupling matrix D (n_proj, n_proj), Hartree.

    Returns (None, None) when no atom has nonlocal projectors.
    """
    crystal = basis.model.crystal
    lattice = crystal.lattice if lattice is None else lattice
    positions = crystal.positions if positions is None else positions
    kg = basis.kplusg(lattice)                                       # (nk, npw, 3)
    q2 = (kg**2).sum(-1)
    zero = q2.detach() == 0
    q = torch.sqrt(torch.where(zero, torch.ones_like(q2), q2))
    q = torch.where(zero, torch.zeros_like(q), q)
    kg_safe = torch.where(zero[..., None], torch.tensor([0.0, 0.0, 1.0], dtype=kg.dtype, device=kg.device), kg)
    q_safe = torch.where(zero, torch.ones_like(q), q)
    volume = torch.linalg.det(lattice)
    kfrac = basis.kpoints[:, None, :] + basis.miller.to(basis.dtype)   # (nk, npw, 3) fractional
    mask = basis.mask

    blocks, couplings = [], []
    for element, pp in basis.model.pseudopotentials.items():
        if pp.lmax < 0:
            continue
        atoms = [i for i, s in enumerate(crystal.species) if s == element]
        phase = -2 * math.pi * torch.einsum("kpc,ac->akp", kfrac, positions[atoms])
        structure = torch.polar(torch.ones_like(phase), phase)              # (na, nk, npw)
        for atom in range(len(atoms)):
            for l in range(pp.lmax + 1):
                n_p = pp.n_projectors(l)
                if n_p == 0:
                    continue
                ylm = real_spherical_harmonics(l, kg_safe, q_safe)          # (2l+1, nk, npw)
                radial = torch.stack([pp.projector_form_factor(l, i + 1, q) for i in range(n_p)])
                prefac = (-1j) ** l
                # order: m outer, i inner
                p = prefac * ylm[:, None] * radial[None] * structure[atom][None, None]
                blocks.append(p.reshape((2 * l + 1) * n_p, *q.shape))
                h = torch.tensor(pp.h[l], dtype=basis.dtype, device=basis.device)
                couplings.append(torch.kron(torch.eye(2 * l + 1, dtype=basis.dtype, device=basis.device), h))
    if not blocks:
        return None, None
    proj = torch.cat(blocks, 0).permute(1, 0, 2) * mask[:, None, :] / torch.sqrt(volume)
    coupling = torch.block_diag(*couplings)
    return proj, coupling


def nonlocal_energy(proj, coupling, psi, occupations, kweights) -> torch.Tensor:
    """E_nl = Σ_k w_k Σ_n f_nk β*_nk D β_nk with β = P^H c (Hartree)."""
    if proj is None:
        return torch.zeros((), dtype=kweights.dtype, device=kweights.device)
    beta = torch.einsum("kap,knp->kna", proj.conj(), psi)
    e = torch.einsum("kna,ab,knb->kn", beta.conj(), coupling.to(beta.dtype), beta).real
    return (kweights[:, None] * occupations * e).sum()
