"""Evaluation of (trained) functionals: equilibrium lattice constants against targets, per material.

    rows = lattice_table({"PBE": "pbe", "trained": hybrid}, train.paper_samples("test", settings))
    print(format_table(rows))

a₀ comes from the same fixed-basis E(a) scan and Birch–Murnaghan fit as the training loss
(losses.eos_lattice_constant), so training and evaluation measure the same quantity. Relative error
(a₀ − a_exp)/a_exp; the mean absolute relative error MARE = (1/N) Σ |a₀ − a_exp|/a_exp.
"""
from __future__ import annotations

import logging
import math

import torch

from ..units import ANGSTROM_IN_BOHR
from .dataset import build_basis
from .losses import eos_lattice_constant, reference_lattice_constant

log = logging.getLogger("pwxc.train")


def lattice_constant(sample, xc, tol: float = 1e-8, maxiter: int = 100) -> float:
    """a₀ (Å) of ``sample`` with functional ``xc`` (name or object) from its E(a) scan; nan if it fails."""
    import pwxc

    energies, guess = [], None
    try:
        with torch.no_grad():
            for s in sample.scales:
                r = pwxc.scf(build_basis(sample, xc, s), tol=tol, maxiter=maxiter, guess=guess,
                             raise_on_failure=True)
                guess = r
                energies.append(r.energy.detach())
            a_ref = reference_lattice_constant(sample) * ANGSTROM_IN_BOHR
            return float(eos_lattice_constant(energies, sample.scales, a_ref)) / ANGSTROM_IN_BOHR
    except (pwxc.SCFNotConvergedError, FloatingPointError) as err:
        log.warning(f"{sample.name}: no lattice constant with {getattr(xc, 'name', xc)} "
                    f"(scales {min(sample.scales)}..{max(sample.scales)}): {err}")
        return float("nan")


def lattice_table(functionals: dict, samples, tol: float = 1e-8, maxiter: int = 100) -> list:
    """Rows {material, a_exp, <label>: a₀, <label>_err: relative error} for every functional label."""
    rows = []
    for sample in samples:
        row = {"material": sample.name, "a_exp": float(sample.targets.get("lattice_constant", math.nan))}
        for label, xc in functionals.items():
            a0 = lattice_constant(sample, xc, tol=float(sample.settings.get("tol", tol)),
                                  maxiter=int(sample.settings.get("maxiter", maxiter)))
            row[label] = a0
            row[label + "_err"] = (a0 - row["a_exp"]) / row["a_exp"]
        rows.append(row)
    return rows


def mare(rows, label) -> float:
    """Mean absolute relative error of column ``label`` (nan entries ignored; nan if none)."""
    errs = [abs(r[label + "_err"]) for r in rows if math.isfinite(r[label + "_err"])]
    return sum(errs) / len(errs) if errs else float("nan")


def format_table(rows) -> str:
    """Plain-text table of :func:`lattice_table` rows with a MARE line per functional."""
    labels = [k for k in rows[0] if k not in ("material", "a_exp") and not k.endswith("_err")] if rows else []
    head = f"{'material':>9} {'a_exp/Å':>8} " + " ".join(f"{lab + '/Å':>12} {'err':>7}" for lab in labels)
    lines = [head]
    for r in rows:
        lines.append(f"{r['material']:>9} {r['a_exp']:8.3f} " +
                     " ".join(f"{r[lab]:12.4f} {100 * r[lab + '_err']:6.2f}%" for lab in labels))
    lines.append(f"{'MARE':>9} {'':8} " + " ".join(f"{'':12} {100 * mare(rows, lab):6.2f}%" for lab in labels))
    return "\n".join(lines)
