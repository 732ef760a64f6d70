"""Do the training materials cover the densities the held-out materials are evaluated on?

A neural XC term ε_θ(n, s) is only constrained where the training densities put electrons; anywhere else
it extrapolates. This script computes the PBE density of every material of the paper's split at the
training settings of examples/train_paper.py (experimental lattice constant, scale 1) and reports, per
material, electron-weighted quantiles of the density n (Bohr⁻³) and the fraction of its electrons that lie
in (x_n, x_s) cells — the MLP's own input variables, x_n = ln(1 + n^{1/3}), x_s = s²/(1 + s²), on a 40×40
grid — that no training material occupies (with at least 10⁻⁴ of its electrons). No target value is used.

    OMP_NUM_THREADS=1 python benchmarks/descriptor_coverage.py                # the run's pseudopotentials
    OMP_NUM_THREADS=1 python benchmarks/descriptor_coverage.py --semicore     # semicore variants for training

Writes benchmarks/results/descriptor_coverage[_semicore].json.
"""
import argparse
import json
import math
from pathlib import Path

import torch

import pwxc
from pwxc import train
from pwxc.terms.xc import density_gradient

LIGHT = {"Mg": "gth-pbe-q2", "Rh": "gth-pbe-q9", "Pd": "gth-pbe-q10"}
SEMICORE = {"Mg": "gth-pbe-q10", "Rh": "gth-pbe-q17", "Pd": "gth-pbe-q18", "Cu": "gth-pbe-q19",
            "Ag": "gth-pbe-q19"}
BINS = 40
#: a cell counts as covered when a training material has at least this fraction of its electrons in it
COVER = 1e-4


def features(result):
    """Electron weights w_i = n_i dV / N and the MLP inputs (x_n, x_s) at every grid point."""
    basis = result.basis
    n = result.density[0]
    grad = density_gradient(basis, n)
    nn = n.clamp_min(1e-12)
    s2 = (grad**2).sum(0) / (4 * (3 * math.pi**2) ** (2 / 3) * nn ** (8 / 3))
    w = (n / n.sum()).reshape(-1)
    return w, torch.log1p(nn ** (1 / 3)).reshape(-1), (s2 / (1 + s2)).reshape(-1), n.reshape(-1)


def histogram(w, xn, xs, xn_max):
    i = (xn / xn_max * BINS).long().clamp(0, BINS - 1)
    j = (xs * BINS).long().clamp(0, BINS - 1)
    h = torch.zeros(BINS * BINS, dtype=w.dtype)
    return h.index_add_(0, i * BINS + j, w)


def weighted_quantile(values, w, q):
    order = torch.argsort(values)
    c = torch.cumsum(w[order], 0)
    return float(values[order][torch.searchsorted(c, torch.tensor(q, dtype=c.dtype)).clamp(max=len(c) - 1)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ecut", type=float, default=60.0)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--semicore", action="store_true", help="semicore variants for Mg, Rh, Pd, Cu, Ag")
    args = ap.parse_args()
    pseudos = {**LIGHT, **SEMICORE} if args.semicore else LIGHT
    st = {"ecut": args.ecut, "kgrid": (args.k,) * 3, "symmetry": True, "basis_mode": "fixed_ecut",
          "pseudopotentials": pseudos, "temperature": 0.01}
    data = {}
    for split in ("train", "validation", "test"):
        for sample in train.paper_samples(split, st):
            r = pwxc.scf(train.build_basis(sample, "pbe"), tol=1e-7)
            w, xn, xs, n = features(r)
            data[sample.name] = dict(split=split, w=w, xn=xn, xs=xs, n=n)
            print(f"{sample.name}: SCF {r.n_iterations} steps, n_max {float(n.max()):.3g} Bohr^-3", flush=True)
    xn_max = max(float(d["xn"].max()) for d in data.values()) * 1.0001
    covered = torch.zeros(BINS * BINS, dtype=torch.bool)
    for d in data.values():
        d["h"] = histogram(d["w"], d["xn"], d["xs"], xn_max)
        if d["split"] == "train":
            covered |= d["h"] >= COVER
    n_train_max = max(float(d["n"].max()) for d in data.values() if d["split"] == "train")
    rows = []
    print(f"\n{'material':10s} {'split':10s} {'n50':>8s} {'n90':>8s} {'n99':>8s} {'n_max':>8s} "
          f"{'e(n>train max)':>15s} {'e outside':>10s}")
    for name, d in data.items():
        q = [weighted_quantile(d["n"], d["w"], p) for p in (0.5, 0.9, 0.99)]
        above = float(d["w"][d["n"] > n_train_max].sum())
        outside = float(d["h"][~covered].sum())
        rows.append(dict(material=name, split=d["split"], n50=q[0], n90=q[1], n99=q[2], n_max=float(d["n"].max()),
                         electrons_above_train_max=above, electrons_outside_training_cells=outside))
        print(f"{name:10s} {d['split']:10s} {q[0]:8.3g} {q[1]:8.3g} {q[2]:8.3g} {float(d['n'].max()):8.3g} "
              f"{above:15.2%} {outside:10.2%}")
    out = Path(__file__).parent / "results" / f"descriptor_coverage{'_semicore' if args.semicore else ''}.json"
    out.write_text(json.dumps({"settings": train.dataset._plain(st), "bins": BINS, "cover": COVER,
                               "n_train_max": n_train_max, "rows": rows}, indent=1))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
