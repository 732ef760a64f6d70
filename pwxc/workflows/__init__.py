"""Workflows users run: lattice-constant scans, equation-of-state fits, cell relaxation, convergence.

    from pwxc.workflows import lattice_scan
    scan = lattice_scan("Al")                 # built-in fcc Al, recommended ecut, k-spacing rule
    print(scan.a0, scan.b0)                   # Å, GPa
    scan = lattice_scan(structure, xc="pbe", ecut=20, kgrid=(8, 8, 8), results_file="al.jsonl")

See docs/workflows.md. Units: atomic units inside; a0 in Å, volumes in Å³, B0 in GPa at the boundary.
"""
from .converge import ConvergenceResult, converge
from .defaults import choose_settings, kgrid_from_spacing, load_structure, recommended_ecut
from .eos import EOSFit, EOSFitError, birch_murnaghan, fit_eos, murnaghan
from .lattice_scan import LatticeScanResult, NotBracketedError, ScanPoint, lattice_scan, reference_length
from .relax import RelaxResult, relax_cell
from .store import ResultsStore, point_key

__all__ = ["lattice_scan", "LatticeScanResult", "ScanPoint", "NotBracketedError", "reference_length",
           "fit_eos", "EOSFit", "EOSFitError", "birch_murnaghan", "murnaghan", "relax_cell", "RelaxResult",
           "converge", "ConvergenceResult", "choose_settings", "kgrid_from_spacing", "load_structure",
           "recommended_ecut", "ResultsStore", "point_key"]
