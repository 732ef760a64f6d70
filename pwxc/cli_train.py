"""``pwxc train``: train an MLP+PBE functional (pwxc.train) from the command line.

    pwxc train                                    # paper split: train Cu Ag Rh MgO, validate Pd CaF2,
                                                  # targets = experimental lattice constants
    pwxc train --materials Si --targets energy --ecut 6 --kgrid 1x1x1 --fft-size 15 --epochs 3
    pwxc train --dataset samples.json --validation-dataset val.json --epochs 50 --lr 3e-4
    pwxc train --ecut 60 --kgrid 4 --pseudopotentials Mg=gth-pbe-q2,Rh=gth-pbe-q9,Pd=gth-pbe-q10 \
               --a 0 --lr 2e-3 --epochs 8 --patience 3 --scf-tol 1e-7 --evaluate    # docs/training.md run

``main_train(argv)`` is the subcommand's entry point (returns the exit status: 0 success, 1 failure,
2 bad usage, 130 interrupted). Output in --workdir: checkpoint.pt, metrics.jsonl, curves.png,
best.pt and final.pt (load with pwxc.xc.load(path)). Rerunning the same command resumes from the
checkpoint (--no-resume starts over, after moving the old checkpoint aside).
Defaults (ecut 20 Ha, k 4x4x4) are small test settings, not converged ones. ``--evaluate`` adds a₀ of
the held-out materials with PBE and with the trained functional (best.pt if there is one) at the same
settings (WORKDIR/evaluation.json).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def _ints(text):
    parts = text.lower().replace("x", " ").replace(",", " ").split()
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 4x4x4, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive integers, got {text!r}")
    return tuple(values)


def _floats(text):
    try:
        return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _pseudos(text):
    if "=" not in text:
        return text
    out = {}
    for item in text.replace(" ", "").split(","):
        el, _, name = item.partition("=")
        if not el or not name:
            raise argparse.ArgumentTypeError(f"expected El=variant,..., got {text!r}")
        out[el] = name
    return out


def settings_from_args(args, metal: bool) -> dict:
    """Sample settings of the command line (the same for training, validation and evaluation)."""
    st = dict(ecut=args.ecut, kgrid=args.kgrid, fft_size=args.fft_size, symmetry=not args.no_symmetry,
              tol=args.scf_tol, basis_mode=args.basis_mode)
    if args.pseudopotentials:
        st["pseudopotentials"] = args.pseudopotentials
    if args.scales:
        st["scales"] = list(args.scales)
    if metal:
        st.update(smearing="gaussian", temperature=args.temperature)
    return st


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pwxc train", description="train an MLP+PBE hybrid XC functional "
                                "(the Sol58 pipeline: pwxc train sol58 -h)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--materials", nargs="+", help="built-in structures to train on (default: the paper's "
                                                    "training split Cu Ag Rh MgO)")
    src.add_argument("--dataset", help="training samples (JSON written by pwxc.train.save_dataset)")
    p.add_argument("--validation", nargs="*", help="built-in structures for early stopping (default with the "
                                                   "paper split: Pd CaF2)")
    p.add_argument("--validation-dataset", help="validation samples (JSON)")
    p.add_argument("--targets", choices=["lattice", "energy", "curve"], default="lattice",
                   help="for --materials: experimental lattice constants (default), or pwxc PBE total "
                        "energies / E(a) curves computed once and cached")
    p.add_argument("--lattice-loss", choices=["squared", "absolute"], default="squared",
                   help="lattice targets: ((a0 - a_exp)/a_exp)^2 (default) or |a0 - a_exp|/a_exp")
    p.add_argument("--reference-cache", help="JSON cache of PBE references (default WORKDIR/references.json)")
    p.add_argument("--ecut", type=float, default=20.0, help="plane-wave cutoff, Ha (default 20)")
    p.add_argument("--kgrid", type=_ints, default=(4, 4, 4), help="k-grid (default 4x4x4)")
    p.add_argument("--fft-size", type=_ints, help="FFT grid (default from ecut)")
    p.add_argument("--temperature", type=float, default=0.01, help="gaussian smearing of metals, Ha")
    p.add_argument("--pseudopotentials", type=_pseudos,
                   help="GTH family (default gth-pbe) or per-element variants, e.g. Mg=gth-pbe-q2,Rh=gth-pbe-q9 "
                        "(other elements keep gth-pbe)")
    p.add_argument("--no-symmetry", action="store_true", help="full k-mesh instead of space-group reduction")
    p.add_argument("--basis-mode", choices=["fixed_ecut", "fixed_basis"], default="fixed_ecut",
                   help="E(a) scans at constant cutoff on one FFT grid (default) or with the scale-1 G set "
                        "(smooth, but biased to small a at unconverged cutoffs)")
    p.add_argument("--pbe-warm-start", action="store_true",
                   help="start each new structure from its converged PBE density (one extra SCF per point)")
    p.add_argument("--scales", type=_floats, help="lattice scale factors of the E(a) scans "
                                                  "(default 0.97,0.985,1,1.015,1.03)")
    p.add_argument("--scf-tol", type=float, default=1e-8, help="SCF energy tolerance, Ha")
    p.add_argument("--evaluate", nargs="*", metavar="MATERIAL",
                   help="after training, a0 of these built-in materials (default: the held-out test split "
                        "Al Ni Ca) with PBE and with the trained functional at the same settings; table on "
                        "stdout, rows in WORKDIR/evaluation.json")
    p.add_argument("--coverage", action="store_true",
                   help="before training: PBE densities of every training, validation and --evaluate material "
                        "(default held-out Al Ni Ca) and the fraction of their electrons outside the densities "
                        "the training set visits (pwxc.train.coverage; WORKDIR/coverage.json)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", choices=["adam", "sgd", "adamw"], default="adam")
    p.add_argument("--hidden", type=int, nargs="+", default=[16, 16], help="MLP hidden layer widths")
    p.add_argument("--functional", choices=["hybrid", "enhanced"], default="hybrid",
                   help="hybrid: HybridXC, E_xc = b E_PBE + a int n eps_theta(n, s, zeta) (default); enhanced: "
                        "the constrained EnhancedXC (the network multiplies PBE's exchange enhancement, sees s "
                        "only, starts at PBE; --a does not apply)")
    p.add_argument("--a", type=float, default=0.01, help="initial weight a of the network term")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ramp-epochs", type=int, default=0, help="epochs of the λ ramp (0: off)")
    p.add_argument("--patience", type=int, help="early-stopping patience, epochs")
    p.add_argument("--workdir", default="runs/train")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--save", help="also write the final functional to this path")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _samples(names, args, workdir):
    from . import train
    from .structures import builtin_structure, lookup

    out = []
    for name in names:
        meta = lookup(name)
        st = settings_from_args(args, meta.metal)
        if args.targets == "lattice":
            if meta.name not in train.TARGET_A:
                raise ValueError(f"no experimental lattice constant shipped for {meta.name}")
            a = train.TARGET_A[meta.name]
            targets = {"lattice_constant": a}
        else:
            a, targets = meta.a, {}
        out.append(train.Sample(meta.name, builtin_structure(meta.name, a=a), targets, st, lattice_constant=a))
    if args.targets != "lattice" and out:
        cache = args.reference_cache or str(Path(workdir) / "references.json")
        out = train.reference_targets(out, cache, quantity=args.targets)
    return out


def main_train(argv=None) -> int:
    """Run ``pwxc train`` with arguments ``argv`` (list of str); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sol58"]:                      # the Sol58 pipeline has its own arguments
        from .train.sol58_pipeline import main as sol58_main
        return sol58_main(argv[1:])
    import torch

    import pwxc
    from . import train

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.dataset:
            samples = train.load_dataset(args.dataset)
        else:
            samples = _samples(args.materials or list(train.TRAIN), args, args.workdir)
        if args.validation_dataset:
            val = train.load_dataset(args.validation_dataset)
        elif args.validation is not None:
            val = _samples(args.validation, args, args.workdir)
        elif not args.materials and not args.dataset:
            val = _samples(list(train.VALIDATION), args, args.workdir)
        else:
            val = []
        if args.coverage:
            report_coverage(samples, val + _evaluation_samples(args.evaluate or list(train.TEST), args), args)
        torch.manual_seed(args.seed)
        if args.functional == "enhanced":
            xc = pwxc.xc.EnhancedXC(base="pbe", model=pwxc.xc.MLP(features=("s",), hidden=tuple(args.hidden),
                                                                   zero_last=True))
        else:
            xc = pwxc.xc.HybridXC(base="pbe", model=pwxc.xc.MLP(hidden=tuple(args.hidden)), a=args.a)
        opt_cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}[args.optimizer]
        workdir = Path(args.workdir)
        if args.no_resume and (workdir / "checkpoint.pt").exists():
            old = workdir / f"checkpoint.{int(time.time())}.pt"
            (workdir / "checkpoint.pt").rename(old)
            print(f"moved old checkpoint to {old}", file=sys.stderr)
        config = train.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                   workdir=str(workdir), patience=args.patience, ramp_epochs=args.ramp_epochs,
                                   progress=not args.quiet, scf_tol=args.scf_tol,
                                   pbe_warm_start=args.pbe_warm_start, lattice_norm=args.lattice_loss)
        trainer = train.Trainer(xc, samples, val, optimizer=lambda p: opt_cls(p, lr=args.lr), config=config)
        history = trainer.fit(resume=True)
    except KeyboardInterrupt:
        print("interrupted; the last completed epoch is in the checkpoint", file=sys.stderr)
        return 130
    except (ValueError, train.DatasetError, train.CheckpointError, FileNotFoundError) as err:
        print(f"pwxc train: error: {err}", file=sys.stderr)
        return 1
    for rec in history:
        print(f"epoch {rec['epoch']:3d}  lambda {rec['lambda']:.2f}  train {rec['train_loss']:.4e}  "
              f"val {rec['val_loss']:.4e}  skipped {len(rec['skipped'])}")
    print(f"{trainer.status}; outputs in {workdir}")
    command = "pwxc train " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {"command": command, "status": trainer.status}
    if args.evaluate is not None:
        names = args.evaluate or list(train.TEST)
        chosen = workdir / "best.pt"          # the best-validation epoch when there is a validation split
        evaluation = evaluate(pwxc.xc.load(chosen) if chosen.exists() else xc, names, args, workdir)
        evaluation["functional"] = str(chosen) if chosen.exists() else "final"
        print(train.format_table(evaluation["rows"]))
        meta["evaluation"] = {k: evaluation[k] for k in ("mare_pbe", "mare_trained", "materials", "functional")}
        print(f"held-out MARE: PBE {100 * evaluation['mare_pbe']:.2f} %, trained "
              f"{100 * evaluation['mare_trained']:.2f} % ({evaluation['functional']})")
    if args.save:
        train.loop.save_functional_atomic(xc, args.save, meta)
        print(f"saved {args.save}")
    return 0 if not trainer.status.startswith("stopped") else 1


def evaluate(xc, names, args, workdir) -> dict:
    """a0 with PBE and with ``xc`` for built-in materials ``names`` at the command line's settings;
    written to WORKDIR/evaluation.json (computed once: rerunning reads the PBE rows back)."""
    from . import train

    samples = _evaluation_samples(names, args)
    rows = train.lattice_table({"PBE": "pbe", "trained": xc}, samples, tol=args.scf_tol)
    out = {"materials": [s.name for s in samples], "rows": rows, "mare_pbe": train.mare(rows, "PBE"),
           "mare_trained": train.mare(rows, "trained"), "settings": {s.name: train.dataset._plain(s.settings)
                                                                   for s in samples}}
    train.write_json_atomic(Path(workdir) / "evaluation.json", out)
    return out


def _evaluation_samples(names, args) -> list:
    """Built-in materials ``names`` at their experimental lattice constants, the command line's settings."""
    from . import train
    from .structures import builtin_structure, lookup

    samples = []
    for name in names:
        meta = lookup(name)
        a = train.TARGET_A.get(meta.name, meta.a)
        samples.append(train.Sample(meta.name, builtin_structure(meta.name, a=a), {"lattice_constant": a},
                                    settings_from_args(args, meta.metal), lattice_constant=a))
    return samples


def report_coverage(training, checked, args) -> list:
    """PBE densities (scale 1) of the training and checked samples; prints and writes
    WORKDIR/coverage.json with pwxc.train.coverage_table's rows."""
    import pwxc
    from . import train

    def density(sample):
        return pwxc.scf(train.build_basis(sample, "pbe"), tol=args.scf_tol, raise_on_failure=True)

    names = {s.name for s in training}
    rows = train.coverage_table({s.name: density(s) for s in training},
                                {s.name: density(s) for s in checked if s.name not in names})
    print(train.format_coverage(rows))
    train.write_json_atomic(Path(args.workdir) / "coverage.json", {"rows": rows})
    return rows


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_train())
