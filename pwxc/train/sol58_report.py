"""The Sol58 result tables: per-material a₀ and B₀ of PBE / PBEsol / a trained functional, MAREs by
split and class, the paired bootstrap of the improvement over PBE, and the per-material error figure.

Inputs (all made by ``pwxc train sol58``):

* the PBE reference scans (``reference``): pwxc PBE a₀ and B₀ of every material at the settings rule;
* self-consistent scans of other functionals (``evaluate --out-scf FILE``), e.g. PBEsol and the trained one;
* optionally the stage-1 record (``nsc``) for the NSC a₀ of the trained functional.

Errors are relative to the ZPAE-corrected a_ref (%, signed); MARE = mean |error|. B₀ errors are
relative to the experimental bulk moduli of ``pwxc/data/sol58_bulk_moduli.csv`` where it has one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import sol58

CLASS_ORDER = ("simple metals", "transition metals", "semiconductors", "ionic")


def pbe_rows(workdir, rule=None) -> dict:
    """name -> {a0, b0_gpa} of the PBE reference scans (self-consistent, the settings rule)."""
    from ..units import ANGSTROM_IN_BOHR
    from ..workflows.eos import fit_eos
    from . import nsc, reference
    solids = sol58.solids()
    out = {}
    for name, points in reference.load_references(list(solids.values()), workdir, rule=rule).items():
        m = nsc.NSCMaterial.from_points(name, points, compress=False)
        volumes = [solids[name].structure(p.a_angstrom).volume * ANGSTROM_IN_BOHR**3 for p in points]
        fit = fit_eos(volumes, [p.energy for p in points])
        out[name] = dict(a0=float(m.lattice_constant()), b0_gpa=float(fit.b0),
                         inside=bool(m.inside(float(m.lattice_constant()))),
                         converged=all(p.converged for p in points))
    return out


def nsc_rows(workdir, functional, rule=None) -> dict:
    """name -> {a0, b0_gpa} of ``functional`` evaluated non-self-consistently on the PBE references."""
    import torch

    import pwxc
    from ..units import ANGSTROM_IN_BOHR
    from ..workflows.eos import fit_eos
    from . import nsc, reference
    f = pwxc.xc.functional(functional) if isinstance(functional, str) else functional
    solids = sol58.solids()
    out = {}
    with torch.no_grad():
        for name, points in reference.load_references(list(solids.values()), workdir, rule=rule).items():
            m = nsc.NSCMaterial.from_points(name, points)
            energies = [float(e) for e in m.energies_nsc(f)]
            volumes = [solids[name].structure(p.a_angstrom).volume * ANGSTROM_IN_BOHR**3 for p in points]
            out[name] = dict(a0=float(m.lattice_constant(f)), b0_gpa=float(fit_eos(volumes, energies).b0))
    return out


def scf_rows(path) -> dict:
    """name -> row of an ``evaluate --out-scf`` file (failed materials carry 'error')."""
    data = json.loads(Path(path).read_text())
    return {r["material"]: r for r in data["rows"]}


def collect(workdir, scf_files: dict, nsc_file=None, nsc_functionals=None, rule=None) -> dict:
    """name -> one row: class, split, a_ref, published PBE/PBEsol a, B0_exp, and for each functional
    label ('pbe' from the references, then the labels of ``scf_files``, then those of
    ``nsc_functionals`` = {label: functional}, NSC on the references) a0 (Å), err (%), b0 (GPa)."""
    solids, extra = sol58.solids(), sol58.companion()
    columns = {"pbe": pbe_rows(workdir, rule)}
    for label, f in (nsc_functionals or {}).items():
        columns[label] = nsc_rows(workdir, f, rule)
    for label, path in scf_files.items():
        columns[label] = {n: dict(a0=r["a0_scf"], b0_gpa=r["b0_gpa"], a0_nsc=r.get("a0_nsc"))
                          for n, r in scf_rows(path).items() if "error" not in r}
    nsc = json.loads(Path(nsc_file).read_text())["materials"] if nsc_file and Path(nsc_file).exists() else {}
    rows = {}
    for name, s in solids.items():
        row = dict(material=name, cls=s.material_class, split="test" if name in sol58.TEST else "train",
                   a_ref=s.a_ref, err_pbe_published=100 * s.err_pbe / s.a_ref,
                   err_pbesol_published=100 * s.err_pbesol / s.a_ref, b0_exp=extra[name]["b0_exp_gpa"])
        for label, col in columns.items():
            if name in col:
                row[label] = dict(col[name], err=100 * (col[name]["a0"] / s.a_ref - 1))
        if name in nsc:
            row["trained_nsc"] = dict(a0=nsc[name]["trained_nsc"], err=100 * (nsc[name]["trained_nsc"] / s.a_ref - 1))
        rows[name] = row
    return rows


def bootstrap(err_a, err_b, n: int = 10000, seed: int = 0):
    """Paired bootstrap over materials of MARE(a) − MARE(b) (%): (value, 2.5 %, 97.5 % quantiles)."""
    a, b = np.abs(np.asarray(err_a, float)), np.abs(np.asarray(err_b, float))
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n, len(a)))
    d = a[idx].mean(1) - b[idx].mean(1)
    return float(a.mean() - b.mean()), float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def summary(rows: dict, labels, split: str = "test", baseline: str = "pbe") -> dict:
    """MARE (%) per functional label over the materials of ``split`` that every label has, by class;
    B₀ MARE (%) over those with an experimental B₀; bootstrap of MARE(baseline) − MARE(label)."""
    names = [n for n, r in rows.items() if (split == "all" or r["split"] == split)
             and all(lab in r for lab in labels)]
    out = dict(split=split, materials=names, n=len(names), mare={}, by_class={}, b0_mare={}, improvement={})
    for lab in labels:
        errs = [rows[n][lab]["err"] for n in names]
        out["mare"][lab] = float(np.mean(np.abs(errs))) if names else None
        for cls in CLASS_ORDER:
            members = [rows[n][lab]["err"] for n in names if rows[n]["cls"] == cls]
            if members:
                out["by_class"].setdefault(cls, {})[lab] = float(np.mean(np.abs(members)))
        with_b0 = [n for n in names if rows[n]["b0_exp"] and rows[n][lab].get("b0_gpa") is not None]
        if with_b0:
            out["b0_mare"][lab] = float(np.mean([abs(rows[n][lab]["b0_gpa"] / rows[n]["b0_exp"] - 1) * 100
                                                 for n in with_b0]))
        if lab != baseline and names:
            value, lo, hi = bootstrap([rows[n][baseline]["err"] for n in names], [rows[n][lab]["err"] for n in names])
            out["improvement"][lab] = dict(pbe_minus_label_pct=value, ci95=[lo, hi],
                                           ratio=out["mare"][lab] / out["mare"][baseline])
    return out


def markdown_table(rows: dict, labels, names=None) -> str:
    """Per-material table: a_ref, then a₀ (Å) and error (%) per label, B₀ (GPa) per label and experiment."""
    names = names or [n for n in rows if all(lab in rows[n] for lab in labels)]
    names = sorted(names, key=lambda n: (CLASS_ORDER.index(rows[n]["cls"]), n))
    head = "| material | class | split | a_ref (Å) | " + " | ".join(f"{lab} a₀ (Å) / err %" for lab in labels) + \
        " | " + " | ".join(f"{lab} B₀" for lab in labels) + " | B₀ exp (GPa) |"
    lines = [head, "|" + "---|" * (5 + 2 * len(labels))]
    for n in names:
        r = rows[n]
        cells = [f"{r[lab]['a0']:.4f} / {r[lab]['err']:+.2f}" for lab in labels]
        b0 = [f"{r[lab]['b0_gpa']:.0f}" if r[lab].get("b0_gpa") is not None else "–" for lab in labels]
        lines.append(f"| {n} | {r['cls']} | {r['split']} | {r['a_ref']:.3f} | " + " | ".join(cells) + " | " +
                     " | ".join(b0) + f" | {r['b0_exp'] if r['b0_exp'] else '–'} |")
    return "\n".join(lines)


def figure(rows: dict, labels, path, names=None, title=None):
    """Grouped bars of the signed relative error (%) per material, sorted by class (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = names or [n for n in rows if all(lab in rows[n] for lab in labels)]
    names = sorted(names, key=lambda n: (CLASS_ORDER.index(rows[n]["cls"]), n))
    x = np.arange(len(names))
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(8, 0.32 * len(names) * len(labels)), 4))
    for i, lab in enumerate(labels):
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, [rows[n][lab]["err"] for n in names], width, label=lab)
    ax.axhline(0, color="k", lw=0.6)
    edges = [i for i in range(1, len(names)) if rows[names[i]]["cls"] != rows[names[i - 1]]["cls"]]
    for e in edges:
        ax.axvline(e - 0.5, color="0.6", lw=0.6, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels([n + ("*" if rows[n]["split"] == "test" else "") for n in names], rotation=90)
    ax.set_ylabel("a₀ error vs ZPAE-corrected experiment (%)")
    ax.set_title(title or "Sol58 (pwxc, PseudoDojo PBE; * = held out)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
