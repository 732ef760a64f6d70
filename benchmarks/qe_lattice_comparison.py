"""pwxc lattice scans at exactly Quantum ESPRESSO's settings, compared with QE's a0 / B0 (issue 5).

For each material of ``tests/data/qe/lattice_constants.json`` and a stage (``eos``: QE's converged cutoff
and k-mesh, 9 points ±3 %; ``fast`` / ``small``: cheap settings) this runs
``pwxc.workflows.lattice_scan(..., a_values=<QE's lattice constants>)`` with the same GTH-PBE
pseudopotentials, cutoff, Γ-centred k-mesh, Gaussian smearing, number of bands and, at every point, QE's FFT
grid — the same call as ``tests/test_workflows.py::qe_pwxc_scan`` — and fits the same third-order
Birch–Murnaghan equation of state. k-points are reduced with the space group (``symmetry=True``, as QE does).

Each finished point is appended to ``runs/qe_lattice/<material>_<stage>.jsonl``, so an interrupted run
resumes where it stopped. The comparison is merged into ``tests/data/qe/pwxc_lattice_comparison.json``
(``<material>/<stage>``: pwxc a0/B0/B0', QE's, relative differences, point energies, settings, timing,
pwxc commit).

Usage (one material at a time, one thread)::

    OMP_NUM_THREADS=1 python benchmarks/qe_lattice_comparison.py si al c --stage eos
    OMP_NUM_THREADS=1 python benchmarks/qe_lattice_comparison.py --table        # print the markdown table
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QE_FILE = os.path.join(ROOT, "tests", "data", "qe", "lattice_constants.json")
OUT_FILE = os.path.join(ROOT, "tests", "data", "qe", "pwxc_lattice_comparison.json")
BUILTIN = {"si": "Si", "c": "C", "al": "Al", "cu": "Cu", "mgo": "MgO", "mgo_mgq2": "MgO"}
LABEL = {"si": "Si", "c": "C", "al": "Al", "cu": "Cu", "mgo": "MgO (Mg q10)", "mgo_mgq2": "MgO (Mg q2)"}


def _commit():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except Exception:  # noqa: BLE001 - provenance only
        return None


def run(key, stage, results_dir, progress=True, subset=None):
    """Scan `key` at QE's `stage` settings and record the comparison. With `subset` (indices into QE's points,
    e.g. (0, 2, 4, 6, 8)) those points are computed first and compared on their own (QE's energies at the same
    points refitted with the same BM3), recorded as stage "<stage>_subset"; the full scan then reuses them."""
    if subset:
        _run(key, stage, results_dir, progress, subset)
    return _run(key, stage, results_dir, progress, None)


def _run(key, stage, results_dir, progress, subset):
    from pwxc.workflows import lattice_scan
    from pwxc.workflows.eos import fit_eos

    materials = json.load(open(QE_FILE))["materials"]
    entry = dict(materials[key][stage])
    if subset:
        entry["points"] = [entry["points"][i] for i in subset]
        qfit = fit_eos([p["volume_bohr3"] for p in entry["points"]], [p["etot_ha"] for p in entry["points"]])
        # all materials here have fcc Bravais lattices: conventional cell = 4 primitive cells
        entry["fit"] = {"a0_ang": (4 * qfit.v0) ** (1 / 3) * 0.529177210903, "B0_gpa": qfit.b0,
                        "B0_prime": qfit.b0_prime,
                        "method": "QE energies at these points refitted with pwxc.workflows.eos.fit_eos (BM3)"}
    s = entry["settings"]
    pseudos = {el: name.split()[1].lower() for el, name in materials[key]["pseudopotentials"].items()}
    smearing = s.get("smearing")
    kw = dict(smearing=smearing, temperature=s["smearing_width_ha"]) if smearing else dict(smearing=None)
    grids = {round(p["a_ang"], 6): tuple(p["fft_grid"]) for p in entry["points"]}
    kw["fft_size"] = lambda a: grids[round(a, 6)]
    os.makedirs(results_dir, exist_ok=True)
    results_file = os.path.join(results_dir, f"{key}_{stage}.jsonl")
    t0 = time.time()
    scan = lattice_scan(BUILTIN[key], ecut=s["ecutwfc_ha"], kgrid=tuple(s["kmesh"]),
                        a_values=[p["a_ang"] for p in entry["points"]], pseudopotentials=pseudos,
                        scf_tol=1e-9, scf_kwargs=dict(n_bands=s["nbnd"]) if smearing else None, quiet=True,
                        results_file=results_file, progress=progress, symmetry=True, **kw)
    wall = time.time() - t0
    e_qe = np.array([p["etot_ha"] for p in entry["points"]])
    e_pw = np.array([p.energy for p in scan.points])
    fit = entry["fit"]
    rec = {
        "material": key, "stage": stage, "builtin": BUILTIN[key], "pseudopotentials": pseudos,
        "settings": {"ecut_ha": s["ecutwfc_ha"], "kgrid": s["kmesh"], "smearing": smearing,
                     "smearing_width_ha": s["smearing_width_ha"], "nbnd": s["nbnd"] if smearing else None,
                     "fft": "QE's FFT grid at every point", "symmetry": True, "scf_tol_ha": 1e-9},
        "a_ang": [p.a for p in scan.points], "energy_ha": e_pw.tolist(), "energy_qe_ha": e_qe.tolist(),
        "max_abs_energy_diff_ha": float(np.abs(e_pw - e_qe).max()),
        "max_abs_relative_energy_diff_ha": float(np.abs((e_pw - e_pw[0]) - (e_qe - e_qe[0])).max()),
        "pwxc": {"a0_ang": scan.a0, "b0_gpa": scan.b0, "b0_prime": scan.b0_prime,
                 "rms_residual_ha": float(scan.fit.rms)},
        "qe": {"a0_ang": fit["a0_ang"], "b0_gpa": fit["B0_gpa"], "b0_prime": fit["B0_prime"]},
        "a0_rel_diff": scan.a0 / fit["a0_ang"] - 1, "b0_rel_diff": scan.b0 / fit["B0_gpa"] - 1,
        "points_computed_now": sum(1 for p in scan.points if not getattr(p, "reused", False)),
        "wall_s_this_run": round(wall, 1),
        "cpu_seconds_points": round(float(sum(getattr(p, "seconds", 0.0) or 0.0 for p in scan.points)), 1),
        "pwxc_commit": _commit(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical cores (shared), OMP_NUM_THREADS="
                   f"{os.environ.get('OMP_NUM_THREADS')}",
    }
    data = json.load(open(OUT_FILE)) if os.path.exists(OUT_FILE) else {
        "description": "pwxc lattice_scan at exactly QE's settings (tests/data/qe/lattice_constants.json): same "
                       "GTH-PBE files, ecut, Gamma-centred k-mesh (space-group reduced), Gaussian smearing, nbnd, "
                       "QE's FFT grid per point, same lattice constants, same BM3 fit (linear least squares in "
                       "V^(-2/3)). Made by benchmarks/qe_lattice_comparison.py.",
        "results": {}}
    if subset:
        rec["subset_indices"] = list(subset)
        rec["qe"]["fit_method"] = entry["fit"]["method"]
    data["results"].setdefault(key, {})[stage + ("_subset" if subset else "")] = rec
    tmp = OUT_FILE + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, OUT_FILE)
    print(f"{LABEL[key]} {stage}{' subset ' + str(list(subset)) if subset else ''}: pwxc a0 = {scan.a0:.5f} Å, B0 = {scan.b0:.2f} GPa, B0' = {scan.b0_prime:.3f} | "
          f"QE a0 = {fit['a0_ang']:.5f} Å, B0 = {fit['B0_gpa']:.2f} GPa, B0' = {fit['B0_prime']:.3f} | "
          f"da0 = {100 * rec['a0_rel_diff']:+.4f} %, dB0 = {100 * rec['b0_rel_diff']:+.3f} %, "
          f"max |dE| = {rec['max_abs_energy_diff_ha']:.1e} Ha ({wall:.0f} s)", flush=True)
    return rec


def table():
    data = json.load(open(OUT_FILE))["results"]
    print("| material | stage | ecut (Ha), k | QE a₀ (Å) | pwxc a₀ (Å) | Δa₀/a₀ | QE B₀ (GPa) | pwxc B₀ (GPa) "
          "| ΔB₀/B₀ | max abs ΔE (Ha) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key in BUILTIN:
        for stage, r in data.get(key, {}).items():
            st = r["settings"]
            k = "×".join(map(str, st["kgrid"]))
            sm = f", Gaussian {st['smearing_width_ha']:g} Ha" if st["smearing"] else ""
            print(f"| {LABEL[key]} | {stage} | {st['ecut_ha']:g}, {k}{sm} | {r['qe']['a0_ang']:.6f} | "
                  f"{r['pwxc']['a0_ang']:.6f} | {r['a0_rel_diff']:+.1e} | {r['qe']['b0_gpa']:.3f} | "
                  f"{r['pwxc']['b0_gpa']:.3f} | {r['b0_rel_diff']:+.1e} | {r['max_abs_energy_diff_ha']:.1e} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("materials", nargs="*", default=[], help=f"any of {list(BUILTIN)}")
    p.add_argument("--stage", default="eos", choices=["eos", "fast", "small"])
    p.add_argument("--results-dir", default=os.path.join(ROOT, "runs", "qe_lattice"))
    p.add_argument("--table", action="store_true")
    p.add_argument("--subset", default=None, help="comma-separated point indices to compute and compare first, "
                   "e.g. 0,2,4,6,8 (every other point of the 9-point scans: a usable early result for slow cases)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    bad = [m for m in args.materials if m not in BUILTIN]
    if bad:
        p.error(f"unknown material(s) {bad}; choose from {list(BUILTIN)}")
    for key in args.materials:
        subset = tuple(int(i) for i in args.subset.split(",")) if args.subset else None
        run(key, args.stage, args.results_dir, progress=not args.no_progress, subset=subset)
    if args.table:
        table()


if __name__ == "__main__":
    main()
