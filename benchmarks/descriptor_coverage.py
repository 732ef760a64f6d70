"""Do the training materials cover the densities the held-out materials are evaluated on?

PBE densities of every material of the paper's split at the settings of examples/train_paper.py
(experimental lattice constant, scale 1; k 2×2×2 suffices for a density histogram), then
pwxc.train.coverage_table: per material, the fraction of its electrons at densities above the densest
training material, and in (x_n, x_s) cells of the MLP's inputs that no training material visits. No
target value is used.

    OMP_NUM_THREADS=1 python benchmarks/descriptor_coverage.py                # the run's pseudopotentials
    OMP_NUM_THREADS=1 python benchmarks/descriptor_coverage.py --semicore     # semicore variants for training

Writes benchmarks/results/descriptor_coverage[_semicore].json.
"""
import argparse
import json
import sys
from pathlib import Path

import pwxc
from pwxc import train

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "examples"))
from train_paper import PSEUDOS, SEMICORE  # noqa: E402  (one definition of the run's pseudopotentials)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ecut", type=float, default=60.0)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--bins", type=int, default=20)
    ap.add_argument("--semicore", action="store_true", help="semicore variants for Mg, Rh, Pd, Cu, Ag in training "
                                                             "and validation (as train_paper.py --semicore)")
    args = ap.parse_args()
    base = {"ecut": args.ecut, "kgrid": (args.k,) * 3, "symmetry": True, "basis_mode": "fixed_ecut",
            "temperature": 0.01}
    fit = {**base, "pseudopotentials": dict(SEMICORE if args.semicore else PSEUDOS)}
    held_out = {**base, "pseudopotentials": dict(PSEUDOS)}
    results = {}
    for split, st in (("train", fit), ("validation", fit), ("test", held_out)):
        for sample in train.paper_samples(split, st):
            r = pwxc.scf(train.build_basis(sample, "pbe"), tol=1e-7, raise_on_failure=True)
            results[sample.name] = (split, r)
            print(f"{sample.name}: SCF {r.n_iterations} steps", flush=True)
    rows = train.coverage_table({k: r for k, (sp, r) in results.items() if sp == "train"},
                                {k: r for k, (sp, r) in results.items() if sp != "train"}, bins=args.bins)
    for row in rows:
        row["split"] = results[row["material"]][0]
    print(train.format_coverage(rows))
    out = HERE / "results" / f"descriptor_coverage{'_semicore' if args.semicore else ''}.json"
    out.write_text(json.dumps({"command": "python benchmarks/descriptor_coverage.py " + " ".join(sys.argv[1:]),
                               "training_settings": train.dataset._plain(fit),
                               "held_out_settings": train.dataset._plain(held_out), "bins": args.bins,
                               "rows": rows}, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
