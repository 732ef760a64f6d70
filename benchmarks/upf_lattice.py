#!/usr/bin/env python3
"""Converged PBE (and PBEsol) lattice constants with the bundled PseudoDojo pseudopotentials.

Two studies of the UPF issue, from one resumable run (each finished E(a) point is appended to
``benchmarks/results/upf_lattice/<label>_<xc>.jsonl``; rerunning reuses them):

1. PBE a₀ of Al, Cu, Si, MgO, Ca, Ni (non-magnetic, as the reference) against the all-electron PBE
   values of the ACWF verification (Bosoni et al., Nat. Rev. Phys. 6, 45 (2024); average of WIEN2k and
   FLEUR, aiidateam/acwf-verification-scripts, results-{unaries,oxides}-verification-PBE-v1 files).
2. The PBE → PBEsol shift of a₀ for Al, Si, Ge, GaAs, Cu next to the published shift of the Sol58LC
   table (PAW, err_pbesol − err_pbe of ../shared/reference/solids/sol58lc_public.csv): the ratio is the
   "leverage" of the valence XC functional on a₀ through these pseudopotentials.

Settings (one rule for all): ecut = the PseudoDojo "high" hint of the hardest element; k-mesh 12³
for metals (Marzari–Vanderbilt smearing 0.01 Ha) and 6³ for insulators (fixed occupations),
Γ-centred, space-group symmetry; 7 points a_start·(1 + 0.01 k), k = −3..3, extended when the minimum
is on an edge; third-order Birch–Murnaghan fit. SCF tolerance 1e-8 Ha.

    OMP_NUM_THREADS=1 python benchmarks/upf_lattice.py                # everything (~1.5 h on one core)
    python benchmarks/upf_lattice.py --only Al Si --xc pbe            # a subset
    python benchmarks/upf_lattice.py --report                         # table from the files only
    (two processes on disjoint --only/--xc sets may run at once: one summary file per job)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "upf_lattice"

#: label: (prototype, species, start a (Å) = ACWF AE-PBE where known, metal)
MATERIALS = {
    "Si": ("diamond", ["Si"], 5.4699, False),
    "Al": ("fcc", ["Al"], 4.0409, True),
    "MgO": ("b1", ["Mg", "O"], 4.2543, False),
    "Cu": ("fcc", ["Cu"], 3.6294, True),
    "Ca": ("fcc", ["Ca"], 5.5263, True),
    "Ni": ("fcc", ["Ni"], 3.5126, True),
    "Ge": ("diamond", ["Ge"], 5.7620, False),
    "GaAs": ("b3", ["Ga", "As"], 5.75, False),
}
#: all-electron PBE a₀ (Å), ACWF verification, WIEN2k/FLEUR average, non-magnetic (Ni too)
ACWF_AE_PBE = {"Al": 4.0409, "Cu": 3.6294, "Si": 5.4699, "MgO": 4.2543, "Ca": 5.5263, "Ni": 3.5126,
               "Ge": 5.7620}
#: leverage with the bundled GTH-PBE files (no core correction), measured with pwxc (design notes
#: ../shared/design/training-notes.md §1.3: NSC PBEsol@PBE at moderate settings; Ga q3, Cu q11)
GTH_LEVERAGE = {"Al": -0.05, "Si": 0.30, "Ge": 0.25, "GaAs": 0.25, "Cu": 0.91}
PBE_MATERIALS = ["Si", "Al", "MgO", "Cu", "Ca", "Ni", "Ge", "GaAs"]
PBESOL_MATERIALS = ["Si", "Al", "Ge", "GaAs", "Cu"]


def settings_for(label):
    from pwxc.workflows.defaults import _recommended_table
    prototype, species, a_start, metal = MATERIALS[label]
    table = _recommended_table()["families"]["pseudodojo-pbe"]
    ecut = max(table[el]["hints_ha"]["high"] for el in species)
    kw = dict(ecut=ecut, kgrid=(12, 12, 12) if metal else (6, 6, 6), pseudopotentials="pseudodojo-pbe")
    if metal:
        kw.update(smearing="marzari-vanderbilt", temperature=0.01)
    else:
        kw.update(smearing=None)
    return kw


def run(label, xc):
    from pwxc.pseudo import PseudopotentialFunctionalWarning
    from pwxc.structures import prototype_structure
    from pwxc.workflows import lattice_scan

    prototype, species, a_start, _ = MATERIALS[label]
    kw = settings_for(label)
    t0 = time.time()
    with warnings.catch_warnings():
        # PBEsol on PBE pseudopotentials is the point of the leverage study
        warnings.simplefilter("ignore", PseudopotentialFunctionalWarning)
        res = lattice_scan(prototype_structure(prototype, species, a_start), xc=xc, window=0.03, n_points=7,
                           results_file=OUT / f"{label}_{xc}.jsonl", scf_tol=1e-8, quiet=True, **kw)
    record = dict(label=label, xc=xc, a0=res.a0, b0_gpa=res.b0, b0_prime=res.b0_prime,
                  settings={k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()},
                  n_points=len(res.points), n_computed=res.n_computed, seconds=round(time.time() - t0, 1))
    print(json.dumps(record), flush=True)
    return record


#: PBE → PBEsol shifts of materials outside the shipped 48 (GPAW, mBEEF-vdW SI, as quoted in
#: ../shared/design/training-notes.md §1.3)
NOTES_SHIFT = {"Ge": -0.0146}


def published_shift(label):
    import csv
    path = ROOT.parent / "shared" / "reference" / "solids" / "sol58lc_public.csv"
    if not path.exists():
        path = ROOT / "pwxc" / "data" / "sol58lc.csv"
    with open(path) as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    for r in rows:
        if r["material"] == label:
            a = float(r["a_ref_angstrom"])
            return (float(r["err_pbesol"]) - float(r["err_pbe"])) / (a + float(r["err_pbe"]))
    return NOTES_SHIFT.get(label)


def report(records):
    by = {(r["label"], r["xc"]): r for r in records}
    lines = ["| material | ecut (Ha) | k | pwxc PBE a₀ (Å) | ACWF AE-PBE a₀ (Å) | difference |",
             "|---|---|---|---|---|---|"]
    for label in PBE_MATERIALS:
        r = by.get((label, "pbe"))
        if r is None:
            continue
        ref = ACWF_AE_PBE.get(label)
        diff = f"{100 * (r['a0'] / ref - 1):+.3f} %" if ref else "–"
        lines.append(f"| {label} | {r['settings']['ecut']:g} | {r['settings']['kgrid'][0]}³ | {r['a0']:.4f} | "
                     f"{ref if ref else '–'} | {diff} |")
    lines += ["", "| material | pwxc PBE a₀ (Å) | pwxc PBEsol a₀ (Å) | pwxc shift | published shift (Sol58LC, PAW) | "
              "leverage PseudoDojo | leverage GTH |", "|---|---|---|---|---|---|---|"]
    for label in PBESOL_MATERIALS:
        p, s = by.get((label, "pbe")), by.get((label, "pbesol"))
        if p is None or s is None:
            continue
        shift = s["a0"] / p["a0"] - 1
        pub = published_shift(label)
        lines.append(f"| {label} | {p['a0']:.4f} | {s['a0']:.4f} | {100 * shift:+.3f} % | "
                     f"{100 * pub:+.3f} % | {shift / pub:.2f} | {GTH_LEVERAGE.get(label, '–')} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="materials (default: all)")
    ap.add_argument("--xc", nargs="*", default=["pbe", "pbesol"])
    ap.add_argument("--report", action="store_true", help="only print the table from the summary")
    args = ap.parse_args(argv)
    records = [json.loads(p.read_text()) for p in sorted(OUT.glob("summary_*.json"))]
    if not args.report:
        OUT.mkdir(parents=True, exist_ok=True)
        jobs = [(m, "pbe") for m in PBE_MATERIALS] + [(m, "pbesol") for m in PBESOL_MATERIALS]
        for label, xc in jobs:
            if xc not in args.xc or (args.only and label not in args.only):
                continue
            rec = run(label, xc)
            records = [r for r in records if (r["label"], r["xc"]) != (label, xc)] + [rec]
            from pwxc.files import atomic_write
            text = json.dumps(rec, indent=1)       # one file per job: parallel runs do not collide
            atomic_write(OUT / f"summary_{label}_{xc}.json", lambda tmp: Path(tmp).write_text(text))
    print(report(records))


if __name__ == "__main__":
    sys.exit(main())
