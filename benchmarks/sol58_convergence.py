"""Is PBE a₀ converged to ≤ 0.05 % at the Sol58 settings rule? A pressure-based study per element.

    OMP_NUM_THREADS=1 python benchmarks/sol58_convergence.py --workdir /work/pwxc-runs/sol58 [--elements Cu Fe]

For every element of the 48, the cheapest solid that contains it (pwxc.train.reference.cost_estimate) is
computed at its rule a₀ (the minimum of the constant-cutoff PBE reference scan, which must exist) with
pwxc.workflows.converge against the cutoff (rule, +10, +20 Ha at the rule k-mesh) and the k-mesh (rule,
and the mesh of a 0.7× spacing at the rule cutoff). The a₀ error of the rule follows from the pressure
(analytic, fixed basis) and the rule's bulk modulus B₀ (from the same reference scan):

    Δa₀/a₀ ≈ P_conv(a₀,rule) / (3 B₀)

with P_conv the pressure at the largest cutoff (the constant-cutoff minimum has zero total stress at the rule
cutoff; its Pulay part vanishes with the cutoff) or at the denser mesh minus that at the rule mesh (same
cutoff, the Pulay part cancels). Points are saved as they come (resumable); the table is printed and
written to benchmarks/results/sol58/convergence.json.
"""
import argparse
import json
import math
import warnings
from pathlib import Path

from pwxc.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "sol58" / "convergence.json"
TOL_PCT = 0.05


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/work/pwxc-runs/sol58")
    ap.add_argument("--elements", nargs="*")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)
    from pwxc.train import reference, sol58
    from pwxc.train.sol58_report import pbe_rows
    from pwxc.workflows import converge
    from pwxc.workflows.defaults import kgrid_from_spacing
    from pwxc.units import ANGSTROM_IN_BOHR

    solids = sol58.solids()
    pbe = pbe_rows(args.workdir)
    by_element = {}
    for s in sorted(solids.values(), key=reference.cost_estimate):
        for el in s.species:
            if s.name in pbe:
                by_element.setdefault(el, s)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for el, solid in by_element.items():
        if args.elements and el not in args.elements:
            continue
        rule = sol58.settings(solid)
        a0, b0 = pbe[solid.name]["a0"], pbe[solid.name]["b0_gpa"]
        kw = {k: rule[k] for k in ("pseudopotentials", "smearing", "temperature", "magnetic_moments") if k in rule}
        structure = solid.structure(a0)
        folder = Path(args.workdir) / "convergence" / solid.name
        ec = converge(structure, parameter="ecut", values=[rule["ecut"], rule["ecut"] + 10, rule["ecut"] + 20],
                      kgrid=tuple(rule["kgrid"]), forces=False, pressure=True, quiet=True,
                      results_file=folder / "ecut.jsonl", **kw)
        spacing = 0.7 * (sol58.KSPACING_METAL if "smearing" in rule and rule["smearing"] else sol58.KSPACING_INSULATOR)
        dense = kgrid_from_spacing(solid.structure().lattice.matrix * ANGSTROM_IN_BOHR, spacing)
        kc = converge(structure, parameter="kgrid", values=[tuple(rule["kgrid"]), tuple(dense)], ecut=rule["ecut"],
                      forces=False, pressure=True, quiet=True, results_file=folder / "kgrid.jsonl", **kw)
        p_e = [float(p) for p in ec.pressures]
        p_k = [float(p) for p in kc.pressures]
        da_ecut = 100 * p_e[-1] / (3 * b0)
        da_k = 100 * (p_k[-1] - p_k[0]) / (3 * b0)
        results[el] = dict(material=solid.name, a0_rule=a0, b0_gpa=b0, ecut_values=list(ec.values), p_ecut_gpa=p_e,
                           kgrids=[list(v) for v in kc.values], p_kgrid_gpa=p_k, da0_ecut_pct=da_ecut,
                           da0_kgrid_pct=da_k, converged=abs(da_ecut) <= TOL_PCT and abs(da_k) <= TOL_PCT)
        text = json.dumps(results, indent=1)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(OUT, lambda tmp: Path(tmp).write_text(text))
        print(f"{el:3s} ({solid.name:5s}) Δa0 ecut {da_ecut:+.3f} %  k {da_k:+.3f} %  "
              f"{'ok' if results[el]['converged'] else 'NOT within ' + str(TOL_PCT) + ' %'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
