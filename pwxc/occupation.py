"""Occupations: smearing functions, Fermi level by bisection, smearing entropy.

With x = (ε - ε_F)/σ, each smearing gives an occupation θ(x) ∈ [0, 1] (per spin orbital) and an
entropy-like function s(x) such that s'(x) = x θ'(x); then the free energy
F = E - σ Σ_nk w_k g s(x_nk) (g = 2 spin degeneracy) is variational in the occupations.

References: Gaussian — Fu & Ho, PRB 28, 5480 (1983); Methfessel & Paxton, PRB 40, 3616 (1989)
(first order); Marzari, Vanderbilt, De Vita & Payne, PRL 82, 3296 (1999) (cold smearing).
"""
from __future__ import annotations

import math

import torch

_SQRT_PI = math.sqrt(math.pi)
_INV_SQRT2 = 1 / math.sqrt(2)


def _fermi_dirac(x):
    occ = torch.sigmoid(-x)
    # s = -[f ln f + (1-f) ln(1-f)] written with softplus to stay finite for large |x|
    entropy = torch.nn.functional.softplus(-x.abs()) + x.abs() * torch.sigmoid(-x.abs())
    return occ, entropy


def _gaussian(x):
    return 0.5 * torch.erfc(x), torch.exp(-x**2) / (2 * _SQRT_PI)


def _methfessel_paxton(x):
    occ = 0.5 * torch.erfc(x) - x * torch.exp(-x**2) / (2 * _SQRT_PI)
    entropy = (1 - 2 * x**2) * torch.exp(-x**2) / (4 * _SQRT_PI)
    return occ, entropy


def _marzari_vanderbilt(x):
    u = x + _INV_SQRT2
    occ = 0.5 * torch.erfc(u) + torch.exp(-u**2) / math.sqrt(2 * math.pi)
    entropy = u * torch.exp(-u**2) / math.sqrt(2 * math.pi)
    return occ, entropy


SMEARINGS = {
    "gaussian": _gaussian,
    "fermi-dirac": _fermi_dirac,
    "methfessel-paxton": _methfessel_paxton,
    "marzari-vanderbilt": _marzari_vanderbilt,
}
SMEARINGS["cold"] = _marzari_vanderbilt
SMEARINGS["mp"] = _methfessel_paxton
SMEARINGS["mv"] = _marzari_vanderbilt
SMEARINGS["fd"] = _fermi_dirac


def smearing_functions(name: str, x: torch.Tensor):
    """(θ(x), s(x)) of the named smearing."""
    return SMEARINGS[name](x)


def fixed_occupations(eigenvalues: torch.Tensor, n_electrons: float, spin_degeneracy: float = 2.0):
    """Fill the lowest n_electrons / g bands at every k-point: (occupations (nk, nb), homo)."""
    n_occ = int(round(n_electrons / spin_degeneracy))
    if n_occ > eigenvalues.shape[1]:
        raise ValueError(f"{n_occ} occupied bands needed but only {eigenvalues.shape[1]} computed")
    occ = torch.zeros_like(eigenvalues)
    occ[:, :n_occ] = spin_degeneracy
    return occ


def fermi_level(eigenvalues, kweights, n_electrons, smearing, temperature, spin_degeneracy=2.0,
                tol: float = 1e-13, max_iter: int = 200):
    """Fermi level ε_F (Hartree) such that Σ_nk w_k g θ((ε_nk - ε_F)/σ) = N_el, by bisection."""
    def count(ef):
        occ, _ = smearing_functions(smearing, (eigenvalues - ef) / temperature)
        return float((kweights[:, None] * occ).sum() * spin_degeneracy)

    width = 50 * temperature
    lo, hi = float(eigenvalues.min()) - width, float(eigenvalues.max()) + width
    if count(hi) < n_electrons - 1e-8:
        raise ValueError("not enough bands to hold the electrons with this smearing: increase n_bands")
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        diff = count(mid) - n_electrons
        if abs(diff) < tol:
            break
        if diff > 0:
            hi = mid
        else:
            lo = mid
    return mid


def smeared_occupations(eigenvalues, kweights, n_electrons, smearing, temperature, spin_degeneracy=2.0):
    """Occupations g θ((ε - ε_F)/σ) (nk, nb), the Fermi level (Hartree) and the entropy term -σS (Hartree).

    -σS = -σ Σ_nk w_k g s(x_nk) is the smearing contribution to the free energy F = E - σS.
    """
    ef = fermi_level(eigenvalues, kweights, n_electrons, smearing, temperature, spin_degeneracy)
    occ, s = smearing_functions(smearing, (eigenvalues - ef) / temperature)
    minus_ts = -temperature * spin_degeneracy * (kweights[:, None] * s).sum()
    return spin_degeneracy * occ, ef, minus_ts
