"""Ion–ion (Ewald) energy of point charges Z_I in a neutralising background, any cell shape.

E = ½ Σ_{I,J,L}' Z_I Z_J erfc(η|R_I - R_J + L|)/|R_I - R_J + L|
    + (2π/Ω) Σ_{G≠0} e^{-G²/4η²}/G² |Σ_I Z_I e^{iG·R_I}|²
    - (η/√π) Σ_I Z_I² - π (Σ_I Z_I)² / (2 η² Ω)
(Hartree; lengths Bohr). The result does not depend on η; both sums are cut where their terms
fall below ~1e-16 relative.
"""
from __future__ import annotations

import math

import torch

_CUT = 6.0   # erfc(6) ≈ 2e-17 and e^{-36} ≈ 2e-16


def ewald_energy(lattice: torch.Tensor, positions_frac: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
    """Ewald energy (Hartree); differentiable in `lattice` (rows, Bohr) and `positions_frac`."""
    volume = torch.linalg.det(lattice)
    eta = math.sqrt(math.pi) / float(volume.detach()) ** (1 / 3)
    recip = 2 * math.pi * torch.linalg.inv(lattice).T
    lat_d, rec_d = lattice.detach(), recip.detach()

    # real-space sum: lattice vectors within r_cut + cell diameter
    r_cut = _CUT / eta
    diameter = float(lat_d.abs().sum())
    nmax = [math.ceil((r_cut + diameter) * float(b.norm()) / (2 * math.pi)) for b in rec_d]
    ranges = [torch.arange(-n, n + 1, dtype=lattice.dtype, device=lattice.device) for n in nmax]
    cells = torch.stack(torch.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)
    diff_frac = positions_frac[:, None, :] - positions_frac[None, :, :]            # (N, N, 3)
    vec = (diff_frac[:, :, None, :] + cells[None, None]) @ lattice                  # (N, N, L, 3)
    d2 = (vec**2).sum(-1)
    keep = (d2.detach() > 1e-20) & (d2.detach() < r_cut**2)
    d = torch.sqrt(torch.where(keep, d2, torch.ones_like(d2)))
    pair = charges[:, None, None] * charges[None, :, None]
    real = 0.5 * torch.where(keep, pair * torch.erfc(eta * d) / d, torch.zeros_like(d)).sum()

    # reciprocal-space sum
    g_cut = 2 * eta * _CUT
    mmax = [math.ceil(g_cut * float(a.norm()) / (2 * math.pi)) for a in lat_d]
    ranges = [torch.arange(-m, m + 1, dtype=lattice.dtype, device=lattice.device) for m in mmax]
    miller = torch.stack(torch.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)
    miller = miller[(miller != 0).any(-1)]
    g = miller @ recip
    g2 = (g**2).sum(-1)
    phase = 2 * math.pi * (miller @ positions_frac.T)                               # (nG, N)
    s_re = (charges * torch.cos(phase)).sum(-1)
    s_im = (charges * torch.sin(phase)).sum(-1)
    recip_sum = (2 * math.pi / volume) * (torch.exp(-g2 / (4 * eta**2)) / g2 * (s_re**2 + s_im**2)).sum()

    self_term = -eta / math.sqrt(math.pi) * (charges**2).sum()
    background = -math.pi * charges.sum() ** 2 / (2 * eta**2 * volume)
    return real + recip_sum + self_term + background
