"""Lattice constant and bulk modulus of fcc aluminium (PBE, GTH-PBE) — the reference paper's Section 3.2
workflow with pwxc.workflows.

    OMP_NUM_THREADS=1 python examples/lattice_scan_al.py            # same as `pwxc scan Al`
    OMP_NUM_THREADS=1 python examples/lattice_scan_al.py --far      # start 8 % too large: auto-extension

Writes al_scan.jsonl (every point, as soon as it is done; rerunning resumes) and al_scan.png.
"""
import argparse

from pwxc.structures import builtin_structure
from pwxc.workflows import lattice_scan
from pwxc.workflows.plotting import plot_scan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--far", action="store_true", help="start from a = 1.08 x 4.05 Å")
    parser.add_argument("--ecut", type=float, default=None, help="Ha (default: recommended for Al)")
    parser.add_argument("--kgrid", type=int, nargs=3, default=None, help="default: k-spacing rule (8 8 8)")
    args = parser.parse_args()

    al = builtin_structure("Al")                        # primitive fcc cell, a = 4.05 Å (experiment)
    start = 1.08 * 4.05 if args.far else None           # None: start at the structure's own a
    scan = lattice_scan(al, xc="pbe", ecut=args.ecut, kgrid=args.kgrid, start=start, window=0.05, n_points=7,
                        results_file="al_scan.jsonl", progress=True)
    print(scan.summary())
    print(f"\na0 = {scan.a0:.4f} Å (experiment 4.05 Å; PBE typically 4.04 Å), B0 = {scan.b0:.1f} GPa")
    plot_scan(scan, "al_scan.png")
    print("figure: al_scan.png, points: al_scan.jsonl")


if __name__ == "__main__":
    main()
