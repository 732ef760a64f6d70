"""Monkhorst–Pack k-point grids with time-reversal reduction.

k-points are in fractional (reduced) coordinates of the reciprocal lattice, k = Σ_i k_i b_i.
"""
from __future__ import annotations

import numpy as np
import torch


def _check_kgrid(kgrid, kshift):
    try:
        kgrid = tuple(int(n) for n in kgrid)
    except (TypeError, ValueError):
        raise ValueError(f"kgrid must be three positive integers, got {kgrid!r}") from None
    if len(kgrid) != 3 or any(n < 1 for n in kgrid):
        raise ValueError(f"kgrid must be three positive integers, got {kgrid!r}")
    kshift = tuple(float(s) for s in kshift)
    if len(kshift) != 3 or any(not (0 <= s < 1) for s in kshift):
        raise ValueError(f"kshift must be three numbers in [0, 1) (units of one k-step), got {kshift!r}")
    return kgrid, kshift


def mesh(kgrid, kshift):
    """All mesh points k_i = (j_i + s_i) / n_i, j_i = 0 .. n_i - 1, as (n1 n2 n3, 3), j_3 fastest."""
    axes = [(np.arange(n) + s) / n for n, s in zip(kgrid, kshift)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def fold(k):
    """Fractional k folded into (-1/2, 1/2] (a copy)."""
    k = k - np.round(k - 1e-12)
    k[np.isclose(k, -0.5)] = 0.5
    return k


def monkhorst_pack(kgrid, kshift=(0.0, 0.0, 0.0), time_reversal: bool = True):
    """Monkhorst–Pack grid k_i = (j_i + s_i) / n_i, j_i = 0 .. n_i - 1, folded into (-1/2, 1/2].

    Args:
        kgrid: (n1, n2, n3) points per reciprocal direction.
        kshift: offset per direction in units of one k-step (0: Γ-centred, 1/2: QE's "1 1 1").
        time_reversal: merge k and -k (ε(k) = ε(-k) without spin–orbit), doubling the weight.
    Returns:
        (kpoints (n_k, 3) fractional float64 tensor, weights (n_k,) summing to 1).
    """
    kgrid, kshift = _check_kgrid(kgrid, kshift)
    k = fold(mesh(kgrid, kshift))
    weights = np.ones(len(k))
    if time_reversal:
        scale = 2 * np.lcm.reduce(kgrid) * 4

        def key(v):
            v = (v + 0.5) % 1.0 - 0.5
            return tuple(np.round(v * scale).astype(np.int64) % int(scale))

        index = {}
        keep = []
        for i, v in enumerate(k):
            partner = index.get(key(-v))
            if partner is not None:
                weights[partner] += 1
                weights[i] = 0
            else:
                index[key(v)] = i
                keep.append(i)
        k, weights = k[keep], weights[keep]
    return torch.tensor(k, dtype=torch.float64), torch.tensor(weights / weights.sum(), dtype=torch.float64)
