"""Where does a trained network extrapolate? Coverage of evaluation densities by the training densities.

A neural XC term ε_θ(n, s) is constrained by training only at the (n, s) that the training densities
actually visit; at any other point it extrapolates. For each material this module takes its converged
density and asks how many of its electrons sit where no training material has any:

* ``electrons_above_train_max``: the fraction of the electrons at densities n above the highest density
  of every training material (the MLP's density input is then outside the range it was fitted on);
* ``electrons_outside``: the fraction of the electrons in cells of a ``bins`` × ``bins`` grid over the
  MLP's own inputs x_n = ln(1 + n^{1/3}) and x_s = s²/(1 + s²) (pwxc.xc.neural.FEATURES) in which no
  training material has at least ``cover`` of its electrons.

Electron weights: w_i = n(r_i) ΔV / N_el on the FFT grid, so every fraction is "of this material's
electrons". No target value enters; the check can be made before training.

    rows = coverage_table({"Cu": result_cu, "Ag": result_ag}, {"Ni": result_ni})
    print(format_coverage(rows))

Example (benchmarks/descriptor_coverage.py, the issue-7 settings): with the light pseudopotentials of
the training metals (no semicore states), 41 % of Ni q18's electrons lie above the densest training
density; with the semicore variants, none.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..terms.xc import density_gradient
from ..xc.descriptors import Descriptors
from ..xc.neural import FEATURES

__all__ = ["DensityFeatures", "density_features", "coverage_table", "format_coverage"]


@dataclass
class DensityFeatures:
    """Per grid point: electron weight w (sums to 1), density n (Bohr⁻³), MLP inputs x_n and x_s."""

    weight: torch.Tensor
    n: torch.Tensor
    x_n: torch.Tensor
    x_s: torch.Tensor


def density_features(result) -> DensityFeatures:
    """The :class:`DensityFeatures` of a converged SCF result (spin-unpolarised density)."""
    basis = result.basis
    n = result.density.detach()[0]
    if float(n.sum()) <= 0:
        raise ValueError("the density of the result is zero or negative everywhere")
    grad = density_gradient(basis, n)
    sigma = (grad**2).sum(0).reshape(-1)
    flat = n.reshape(-1)
    desc = Descriptors.from_rho(flat.clamp_min(0.0), sigma)
    return DensityFeatures(weight=flat.clamp_min(0.0) / flat.clamp_min(0.0).sum(), n=flat,
                           x_n=FEATURES["n"][0](desc).detach(), x_s=FEATURES["s"][0](desc).detach())


def _histogram(f: DensityFeatures, bins: int, x_n_max: float) -> torch.Tensor:
    i = (f.x_n / x_n_max * bins).long().clamp(0, bins - 1)
    j = (f.x_s * bins).long().clamp(0, bins - 1)        # x_s ∈ [0, 1)
    return torch.zeros(bins * bins, dtype=f.weight.dtype).index_add_(0, (i * bins + j).cpu(), f.weight.cpu())


def _quantile(values: torch.Tensor, weight: torch.Tensor, q: float) -> float:
    order = torch.argsort(values)
    cumulative = torch.cumsum(weight[order], 0)
    idx = int(torch.searchsorted(cumulative, torch.tensor(q, dtype=cumulative.dtype)).clamp(max=len(values) - 1))
    return float(values[order][idx])


def coverage_table(training: dict, evaluated: dict, bins: int = 20, cover: float = 1e-4) -> list:
    """Coverage of every material's density by the training materials' densities.

    Args:
        training: {name: converged SCFResult} of the training materials.
        evaluated: {name: SCFResult} of the materials to check (held-out, validation, or training
            ones again: a training material is covered by itself, up to its electrons in cells where
            it has less than ``cover`` each).
        bins: cells per axis of the (x_n, x_s) grid.
        cover: a cell counts as visited when a training material has at least this fraction of its
            electrons in it.
    Returns:
        rows {material, training (bool), n_median, n_max (Bohr⁻³), electrons_above_train_max,
        electrons_outside} for the training materials first, then the evaluated ones.
    """
    if not training:
        raise ValueError("coverage needs at least one training material")
    if bins < 1 or not 0 < cover < 1:
        raise ValueError(f"need bins >= 1 and 0 < cover < 1, got bins={bins}, cover={cover}")
    feats = {("train", k): density_features(r) for k, r in training.items()}
    feats.update({("eval", k): density_features(r) for k, r in evaluated.items()})
    x_n_max = max(float(f.x_n.max()) for f in feats.values()) * (1 + 1e-9)
    hists = {key: _histogram(f, bins, x_n_max) for key, f in feats.items()}
    visited = torch.zeros(bins * bins, dtype=torch.bool)
    for (split, _), h in hists.items():
        if split == "train":
            visited |= h >= cover
    n_train_max = max(float(f.n.max()) for (split, _), f in feats.items() if split == "train")
    rows = []
    for (split, name), f in feats.items():
        rows.append(dict(material=name, training=split == "train", n_median=_quantile(f.n, f.weight, 0.5),
                         n_max=float(f.n.max()), electrons_above_train_max=float(f.weight[f.n > n_train_max].sum()),
                         electrons_outside=float(hists[(split, name)][~visited].sum())))
    return rows


def format_coverage(rows) -> str:
    """Plain-text table of :func:`coverage_table` rows (fractions in %)."""
    lines = [f"{'material':>9} {'set':>8} {'n_median':>9} {'n_max':>8} {'e(n > train max)':>17} "
             f"{'e outside':>10}"]
    for r in rows:
        lines.append(f"{r['material']:>9} {'train' if r['training'] else 'checked':>8} {r['n_median']:9.3g} "
                     f"{r['n_max']:8.3g} {100 * r['electrons_above_train_max']:16.2f}% "
                     f"{100 * r['electrons_outside']:9.2f}%")
    return "\n".join(lines)
