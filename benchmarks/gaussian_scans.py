"""Lattice-constant scans and grid-convergence checks with the Gaussian-basis path (pwxc.gaussian).

The reference paper's Figure 2 scans (fcc, STO-3G, PBE, auxiliary basis def2-SV(P)):
Al 3.40-4.45 Å, Ni 3.00-4.00 Å, Ca 4.50-6.50 Å, step 0.05 Å. Every point is appended to a JSON-lines
file as soon as it finishes (so a long scan can be watched / resumed), one object per point::

    {"element": "Al", "a": 4.05, "energy": ..., "converged": true, "n_iterations": 9, ...}

Usage (one thread is plenty; the cells are tiny)::

    OMP_NUM_THREADS=1 python benchmarks/gaussian_scans.py scan Al --kgrid 2 2 2
    OMP_NUM_THREADS=1 python benchmarks/gaussian_scans.py scan Al --grid-level 6 --out runs/al_l6.jsonl
    OMP_NUM_THREADS=1 python benchmarks/gaussian_scans.py grids Al --a 4.05

``grids`` evaluates one lattice constant on Becke grids of increasing level and on uniform meshes,
to show how far PySCF's default grid is from a converged one for all-electron cells.
Energies are Hartree per primitive cell; lattice constants are the conventional cubic ones in Å.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

SCANS = {  # element: (start, stop, step) in Å, the paper's Figure 2 ranges
    "Al": (3.40, 4.45, 0.05),
    "Ni": (3.00, 4.00, 0.05),
    "Ca": (4.50, 6.50, 0.05),
}
EXPERIMENT = {"Al": 4.05, "Ni": 3.52, "Ca": 5.58}  # Å, room-temperature experimental constants


def fcc_system(element: str, a: float) -> dict:
    """Primitive fcc cell in the reference paper's dict format (Å)."""
    h = a / 2
    return {"mol_desc": f"{element} 0 0 0", "lattice": f"0 {h} {h}; {h} 0 {h}; {h} {h} 0"}


def _point(pg, element, a, args, warm, **grid):
    t0 = time.perf_counter()
    e, res = pg.energy(fcc_system(element, a), args.xc, kgrid=tuple(args.kgrid), basis=args.basis,
                       auxbasis=args.auxbasis, pseudo=args.pseudo, smearing="fermi",
                       temperature=args.temperature, warm_start=warm, return_result=True,
                       max_iter=args.max_iter, conv_tol=args.conv_tol, **grid)
    if not res.converged and warm is not None and warm.density_matrix is not None:
        # a warm start from a very different lattice constant can mislead DIIS: retry from scratch
        e, res = pg.energy(fcc_system(element, a), args.xc, kgrid=tuple(args.kgrid), basis=args.basis,
                           auxbasis=args.auxbasis, pseudo=args.pseudo, smearing="fermi",
                           temperature=args.temperature, return_result=True, max_iter=args.max_iter,
                           conv_tol=args.conv_tol, **grid)
        if res.converged:
            warm.update(res)
    return {"element": element, "a": round(a, 6), "energy": float(e), "e_tot": res.energies["total"],
            "converged": bool(res.converged), "n_iterations": res.n_iterations,
            "fermi_level": float(res.fermi_level), "ngrids": res.integrals.info["ngrids"],
            "grid": res.integrals.grid, "grid_level": res.integrals.info["grid_level"],
            "mesh": res.integrals.info["mesh"], "kgrid": list(args.kgrid), "basis": args.basis,
            "auxbasis": args.auxbasis, "xc": args.xc, "temperature": args.temperature,
            "seconds": round(time.perf_counter() - t0, 2)}


def run_scan(args):
    import pwxc.gaussian as pg

    start, stop, step = SCANS[args.element]
    if args.range:
        start, stop = args.range
    if args.step:
        step = args.step
    grid = dict(grid=args.grid, grid_level=args.grid_level)
    if args.mesh:
        grid["mesh"] = tuple(args.mesh)
    tag = f"becke{args.grid_level}" if args.grid == "becke" else f"uniform{args.mesh[0] if args.mesh else 'default'}"
    out = args.out or f"runs/gaussian_scans/{args.element}_{args.basis}_{tag}.jsonl"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    done = set()
    if os.path.exists(out):  # resume
        with open(out) as fh:
            done = {round(json.loads(line)["a"], 6) for line in fh if line.strip()}
    warm = pg.WarmStart()
    n = int(round((stop - start) / step)) + 1
    for a in np.linspace(start, stop, n):
        if round(float(a), 6) in done:
            continue
        rec = _point(pg, args.element, float(a), args, warm, **grid)
        with open(out, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        flag = "" if rec["converged"] else "   NOT CONVERGED"
        print(f"{args.element} a = {a:.3f} Å  F = {rec['energy']:.8f} Ha  ({rec['n_iterations']} it, "
              f"{rec['seconds']:.1f} s){flag}", flush=True)
    summarize(out)


def summarize(path):
    """Print the minimum of a scan file: cubic fit E(a) through the 7 converged points nearest the
    lowest one (Å, Hartree); None when the lowest point is at an end of the range (no minimum)."""
    with open(path) as fh:
        recs = sorted((json.loads(line) for line in fh if line.strip()), key=lambda r: r["a"])
    bad = [r["a"] for r in recs if not r["converged"]]
    ok = [r for r in recs if r["converged"]]
    print(f"{path}: {len(recs)} points, {len(ok)} converged" + (f", NOT converged at {bad}" if bad else ""))
    if len(ok) < 4:
        return None
    a = np.array([r["a"] for r in ok])
    e = np.array([r["energy"] for r in ok])
    i = int(np.argmin(e))
    if i in (0, len(a) - 1):
        print(f"  no minimum inside the range: lowest energy at the end point {a[i]:.2f} Å")
        return None
    lo = max(0, min(i - 3, len(a) - 7))
    sel = slice(lo, lo + 7)
    poly = np.polynomial.Polynomial.fit(a[sel], e[sel], 3)
    roots = [r.real for r in poly.deriv().roots() if abs(r.imag) < 1e-12 and a[sel][0] <= r.real <= a[sel][-1]]
    a0 = min(roots, key=lambda r: poly(r)) if roots else float(a[i])
    print(f"  minimum a0 = {a0:.4f} Å (lowest point {a[i]:.2f} Å), E(a0) = {poly(a0):.8f} Ha")
    return a0


def run_grids(args):
    import pwxc.gaussian as pg

    out = args.out or f"runs/gaussian_scans/{args.element}_{args.basis}_grids_a{args.a}.jsonl"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    warm = pg.WarmStart()
    settings = [dict(grid="becke", grid_level=lv) for lv in args.levels]
    settings += [dict(grid="uniform", mesh=(m, m, m)) for m in args.meshes]
    for grid in settings:
        rec = _point(pg, args.element, args.a, args, warm, **grid)
        with open(out, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        label = f"becke level {grid['grid_level']}" if grid["grid"] == "becke" else f"uniform {grid['mesh']}"
        print(f"{label:22s} ngrids = {rec['ngrids']:7d}  F = {rec['energy']:.8f} Ha  "
              f"converged = {rec['converged']}  ({rec['seconds']:.1f} s)", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["scan", "grids", "summary"])
    p.add_argument("element", nargs="?", default="Al", choices=sorted(SCANS))
    p.add_argument("--kgrid", type=int, nargs=3, default=[2, 2, 2])
    p.add_argument("--basis", default="sto-3g")
    p.add_argument("--auxbasis", default="def2-sv(p)")
    p.add_argument("--pseudo", default=None)
    p.add_argument("--xc", default="pbe")
    p.add_argument("--temperature", type=float, default=0.01, help="Fermi-Dirac sigma, Hartree")
    p.add_argument("--grid", default="becke", choices=["becke", "uniform"])
    p.add_argument("--grid-level", type=int, default=3)
    p.add_argument("--mesh", type=int, nargs=3, default=None)
    p.add_argument("--range", type=float, nargs=2, default=None, help="override the scan range (Å)")
    p.add_argument("--step", type=float, default=None, help="override the scan step (Å)")
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--conv-tol", type=float, default=1e-9)
    p.add_argument("--a", type=float, default=4.05, help="lattice constant for 'grids' (Å)")
    p.add_argument("--levels", type=int, nargs="*", default=[1, 2, 3, 4, 5, 6, 7])
    p.add_argument("--meshes", type=int, nargs="*", default=[20, 30, 40])
    p.add_argument("--out", default=None, help="JSON-lines output (appended; scans resume from it)")
    args = p.parse_args(argv)
    if args.mode == "scan":
        run_scan(args)
    elif args.mode == "grids":
        run_grids(args)
    else:
        summarize(args.out)


if __name__ == "__main__":
    main()
