"""The ``pwxc`` command: scf, scan, relax, converge (and structures) over pwxc.workflows.

    pwxc scan Al                                  # built-in fcc Al, defaults printed, al_scan.png/.jsonl
    pwxc scan my.cif --ecut 30 --kgrid 6x6x6 --window 0.04 --plot out.png --json
    pwxc converge Si --parameter ecut --values 10,15,20,25,30 --plot si_ecut.png
    pwxc relax MgO --mode isotropic
    pwxc scf POSCAR -v                            # -v: SCF log
    pwxc structures                               # list built-in structures
    pwxc train --epochs 10                        # train an MLP+PBE hybrid (pwxc.cli_train)

Tables go to stdout (``--json``: one JSON document instead); the chosen defaults, the progress bar
and the SCF log (``-v``) go to stderr. Results are appended point by point to a JSON-lines file
(default ``<name>_<command>.jsonl``; rerunning the same command resumes). Exit status: 0 success,
1 failure (message on stderr), 2 bad usage, 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path


def _kgrid(text):
    parts = text.lower().replace("x", " ").replace(",", " ").split()
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"k-grid must look like 8x8x8 or 8, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"k-grid must be three positive integers (8x8x8), got {text!r}")
    return tuple(values)


def _floats(text):
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _common(p, ecut=True):
    p.add_argument("structure", help="structure file (CIF, POSCAR, ... read by pymatgen) or built-in name "
                                     "(see `pwxc structures`)")
    p.add_argument("--xc", default="pbe", help="exchange-correlation functional (default pbe)")
    if ecut:
        p.add_argument("--ecut", type=float, help="plane-wave cutoff, Ha (default: recommended per element)")
    p.add_argument("--kgrid", type=_kgrid, help="Monkhorst-Pack grid, e.g. 8x8x8 (default: k-spacing rule)")
    p.add_argument("--smearing", help="none, gaussian, fermi-dirac, marzari-vanderbilt, methfessel-paxton "
                                      "(default: marzari-vanderbilt for metals, none for insulators)")
    p.add_argument("--temperature", type=float, help="smearing width, Ha (default 0.01)")
    p.add_argument("--pseudopotentials", help="GTH family, e.g. gth-pbe (default by xc)")
    p.add_argument("--magnetic-moments", type=_floats, metavar="M1,M2,...",
                   help="starting magnetic moment of every atom, Bohr magnetons (site order): a collinear "
                        "spin-polarised calculation; needs smearing (the default for metals)")
    p.add_argument("--scf-tol", type=float, help="SCF energy tolerance, Ha")
    p.add_argument("--no-symmetry", action="store_true",
                   help="use the full k-mesh (time reversal only) instead of the space group")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    p.add_argument("-v", "--verbose", action="store_true", help="show the SCF log")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print chosen defaults or progress")


def _model_kwargs(args):
    kw = {}
    if args.smearing is not None:
        kw["smearing"] = None if args.smearing.lower() in ("none", "off", "fixed") else args.smearing
    if args.temperature is not None:
        kw["temperature"] = args.temperature
    if args.pseudopotentials:
        kw["pseudopotentials"] = args.pseudopotentials
    if args.magnetic_moments is not None:
        kw["magnetic_moments"] = list(args.magnetic_moments)
    if args.scf_tol is not None:
        kw["scf_tol"] = args.scf_tol
    kw["symmetry"] = not args.no_symmetry
    return kw


def _label(spec):
    from .workflows.defaults import load_structure
    _, label, _ = load_structure(spec)
    return label.replace("/", "_").replace(" ", "_")


def _paths(args, label, command):
    """Results file and plot path: --plot X ⇒ X with .jsonl beside it; else <label>_<command>.{jsonl,png}."""
    if args.plot:
        stem = Path(args.plot).with_suffix("")
    elif getattr(args, "results", None):
        stem = Path(args.results).with_suffix("")
    else:
        stem = Path(f"{label.lower()}_{command}")
    results = None if args.no_save else Path(args.results) if args.results else stem.with_suffix(".jsonl")
    plot = None if args.no_plot else Path(args.plot) if args.plot else stem.with_suffix(".png")
    return results, plot


def _save_plot(kind, result, path, explicit):
    if path is None:
        return None
    try:
        from .workflows import plotting
        (plotting.plot_scan if kind == "scan" else plotting.plot_convergence)(result, path)
        return str(path)
    except ImportError as err:
        if explicit:
            raise
        print(f"pwxc: no plot written ({err})", file=sys.stderr)
        return None


def cmd_structures(args):
    from .structures import BUILTINS
    if args.json:
        print(json.dumps({k: dict(prototype=v.prototype, a_angstrom=v.a, metal=v.metal, paper_value=v.paper_value,
                                  note=v.note) for k, v in BUILTINS.items()}, indent=1))
        return
    print(f"{'name':6} {'prototype':9} {'a (Å)':>7} {'paper':>6}  note")
    for k, v in BUILTINS.items():
        paper = "" if v.paper_value is None else f"{v.paper_value:g}"
        print(f"{k:6} {v.prototype:9} {v.a:7.3f} {paper:>6}  {v.note}")


def cmd_scf(args):
    import numpy as np

    import pwxc
    from .units import HARTREE_IN_EV, HARTREE_PER_BOHR3_IN_GPA
    from .workflows._engine import crystal_of, scaled
    from .workflows.defaults import choose_settings, load_structure

    struct, label, meta = load_structure(args.structure)
    if args.scale != 1.0:
        struct = scaled(struct, args.scale)
    kw = _model_kwargs(args)
    scf_tol = kw.pop("scf_tol", 1e-8)
    symmetry = kw.pop("symmetry", True)
    settings, defaults, extra = choose_settings(struct, xc=args.xc, ecut=args.ecut, kgrid=args.kgrid, builtin=meta,
                                                model_kwargs=kw, quiet=args.quiet)
    model = pwxc.Model(crystal_of(struct), xc=args.xc, pseudopotentials=settings["pseudopotentials"],
                       smearing=settings["smearing"], temperature=settings["temperature"], **extra)
    basis = pwxc.PlaneWaveBasis(model, ecut=settings["ecut"], kgrid=settings["kgrid"],
                                symmetry=symmetry)
    with contextlib.redirect_stdout(sys.stderr):
        res = pwxc.scf(basis, tol=scf_tol, verbose=args.verbose)
        forces = pwxc.forces(res).detach().numpy()
        sigma = pwxc.stress(res).detach().numpy() * HARTREE_PER_BOHR3_IN_GPA
    out = dict(label=label, energy_ha=float(res.energy), energy_ev=float(res.energy) * HARTREE_IN_EV,
               energies_ha={k: float(v) for k, v in res.energies.items()}, converged=res.converged,
               n_iterations=res.n_iterations, fermi_level_ha=float(res.fermi_level),
               magnetization_bohr_magneton=res.magnetization,
               pressure_gpa=float(-np.trace(sigma) / 3), stress_gpa=sigma.tolist(), forces_ha_bohr=forces.tolist(),
               settings=settings, defaults=defaults, basis=repr(basis))
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"SCF of {label}: {basis}")
    for k, v in out["energies_ha"].items():
        print(f"  {k:>15}: {v:18.10f} Ha")
    print(f"total energy  = {out['energy_ha']:.10f} Ha = {out['energy_ev']:.6f} eV "
          f"({'converged' if res.converged else 'NOT converged'} in {res.n_iterations} iterations)")
    print(f"Fermi level   = {out['fermi_level_ha']:.6f} Ha;  pressure = {out['pressure_gpa']:.4f} GPa")
    if model.n_spin == 2:
        print(f"magnetisation = {res.magnetization:.4f} μ_B per cell (absolute {res.absolute_magnetization:.4f})")
    print("forces (Ha/Bohr):")
    for site, f in zip(struct, forces):
        print(f"  {site.specie.symbol:3} {f[0]: .6e} {f[1]: .6e} {f[2]: .6e}")


def cmd_scan(args):
    from .workflows import lattice_scan
    label = _label(args.structure)
    results, plot = _paths(args, label, "scan")
    kw = _model_kwargs(args)
    with contextlib.redirect_stdout(sys.stderr):
        res = lattice_scan(args.structure, xc=args.xc, ecut=args.ecut, kgrid=args.kgrid, start=args.start,
                           window=args.window, step=args.step, n_points=args.n_points, auto_extend=not args.no_extend,
                           max_extensions=args.max_extensions, eos=args.eos, results_file=results, basis=args.basis,
                           a_values=args.a_values, pressure=args.pressure, progress=not args.quiet,
                           verbose=args.verbose, quiet=args.quiet, **kw)
    plot_file = _save_plot("scan", res, plot, explicit=bool(args.plot))
    out = res.as_dict()
    out["plot"] = plot_file
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(res.summary())
    print(f"a0 = {res.a0:.4f} Å   B0 = {res.b0:.2f} GPa")
    if results:
        print(f"results: {results}" + (f"   plot: {plot_file}" if plot_file else ""))


def cmd_relax(args):
    from .workflows import relax_cell
    label = _label(args.structure)
    results = None if args.no_save else Path(args.results or f"{label.lower()}_relax.jsonl")
    kw = _model_kwargs(args)
    with contextlib.redirect_stdout(sys.stderr):
        res = relax_cell(args.structure, mode=args.mode, xc=args.xc, ecut=args.ecut, kgrid=args.kgrid,
                         target_pressure=args.target_pressure, tol=args.tol, max_steps=args.max_steps,
                         results_file=results, verbose=args.verbose, quiet=args.quiet, **kw)
    if args.json:
        print(json.dumps(res.as_dict(), indent=1))
    else:
        print(res.summary())
    if not res.converged:
        return 1


def cmd_converge(args):
    from .workflows import converge
    label = _label(args.structure)
    results, plot = _paths(args, label, f"converge_{args.parameter}")
    kw = _model_kwargs(args)
    values = None
    if args.values:
        values = _floats(args.values) if args.parameter == "ecut" else [_kgrid(v) for v in args.values.split(",")]
    with contextlib.redirect_stdout(sys.stderr):
        res = converge(args.structure, parameter=args.parameter, values=values, tol=args.tol, xc=args.xc,
                       ecut=args.ecut, kgrid=args.kgrid, results_file=results, progress=not args.quiet,
                       verbose=args.verbose, quiet=args.quiet, **kw)
    plot_file = _save_plot("converge", res, plot, explicit=bool(args.plot))
    out = res.as_dict()
    out["plot"] = plot_file
    if args.json:
        print(json.dumps(out, indent=1, default=list))
        return
    print(res.summary())
    if results:
        print(f"results: {results}" + (f"   plot: {plot_file}" if plot_file else ""))


def _files(p):
    p.add_argument("--results", help="JSON-lines results file (default <name>_<command>.jsonl; resumes)")
    p.add_argument("--no-save", action="store_true", help="do not write a results file")
    p.add_argument("--plot", help="figure file (png/pdf/svg); default <name>_<command>.png")
    p.add_argument("--no-plot", action="store_true", help="do not draw the figure")


def build_parser():
    parser = argparse.ArgumentParser(prog="pwxc", description="Plane-wave Kohn-Sham DFT workflows (pwxc).")
    sub = parser.add_subparsers(dest="command", metavar="{scf,scan,relax,converge,structures,train}")
    sub.required = True

    p = sub.add_parser("scf", help="one self-consistent calculation: energy, forces, stress")
    _common(p)
    p.add_argument("--scale", type=float, default=1.0, help="scale factor on the input lattice")
    p.set_defaults(func=cmd_scf)

    p = sub.add_parser("scan", help="lattice-constant scan with auto-extending window and EOS fit")
    _common(p)
    p.add_argument("--start", type=float, help="starting lattice constant, Å (default: the input's)")
    p.add_argument("--window", type=float, default=0.05, help="relative half-width of the window (0.05)")
    p.add_argument("--step", type=float, help="relative step (default 2*window/(n_points-1))")
    p.add_argument("--n-points", type=int, default=7, help="points in the first window (7)")
    p.add_argument("--a-values", type=_floats, help="explicit lattice constants, Å, e.g. 3.9,4.0,4.1,4.2")
    p.add_argument("--no-extend", action="store_true", help="do not extend the window")
    p.add_argument("--max-extensions", type=int, default=4)
    p.add_argument("--eos", default="birch_murnaghan", choices=["birch_murnaghan", "murnaghan", "polynomial"])
    p.add_argument("--basis", default="planewave", help="planewave (default) or a Gaussian basis, e.g. sto-3g")
    p.add_argument("--pressure", action="store_true", help="also compute the pressure at each point")
    _files(p)
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("relax", help="stress-driven cell relaxation")
    _common(p)
    p.add_argument("--mode", default="isotropic", choices=["isotropic", "full"])
    p.add_argument("--target-pressure", type=float, default=0.0, help="GPa")
    p.add_argument("--tol", type=float, default=0.05, help="pressure/stress tolerance, GPa")
    p.add_argument("--max-steps", type=int, default=20)
    p.add_argument("--results", help="JSON-lines results file (default <name>_relax.jsonl)")
    p.add_argument("--no-save", action="store_true")
    p.set_defaults(func=cmd_relax)

    p = sub.add_parser("converge", help="cutoff or k-grid convergence study")
    _common(p)
    p.add_argument("--parameter", default="ecut", choices=["ecut", "kgrid"])
    p.add_argument("--values", help="ecut values in Ha (10,15,20) or k-grids (4x4x4,6x6x6)")
    p.add_argument("--tol", type=float, default=1e-3, help="tolerance, eV/atom (default 1e-3)")
    _files(p)
    p.set_defaults(func=cmd_converge)

    p = sub.add_parser("structures", help="list the built-in structures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_structures)

    # listed here for the help text; `main` hands `pwxc train ...` to pwxc.cli_train.main_train
    sub.add_parser("train", help="train an MLP+PBE hybrid XC functional (pwxc train -h)", add_help=False)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "train":
        from .cli_train import main_train
        return main_train(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        print("pwxc: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError, RuntimeError) as err:
        if getattr(args, "verbose", False):
            raise
        print(f"pwxc: error: {err}", file=sys.stderr)
        return 1
    return int(status or 0)


if __name__ == "__main__":         # pragma: no cover
    sys.exit(main())
