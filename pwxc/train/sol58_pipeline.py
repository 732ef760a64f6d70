"""The Sol58 pipeline: PBE references with cached densities → NSC training (stage 1) → SCF fine-tuning
(stage 2) → self-consistent evaluation → tables, figure, shipped functional.

    pwxc train sol58 all --quick --workdir /tmp/sol58-quick      # the whole pipeline on 8 cheap solids, minutes
    pwxc train sol58 all --workdir /work/pwxc-runs/sol58          # the whole pipeline on the 48 (days on 2 cores)

or stage by stage (each resumes from what the workdir holds):

    pwxc train sol58 reference --workdir /work/pwxc-runs/sol58        # resumable; one point at a time
    torchrun --nproc-per-node 2 -m pwxc.train.sol58_pipeline reference --workdir /work/pwxc-runs/sol58
    # several nodes: torchrun --nnodes N --node-rank R --master-addr HOST --nproc-per-node P (same args;
    # the workdir on a shared filesystem)
    pwxc train sol58 table --workdir ...       # pwxc PBE and NSC PBEsol a0 of every complete material
    pwxc train sol58 nsc --workdir ...         # stage 1: CV model choice (folds saved as they finish), fit
    torchrun --nproc-per-node 2 -m pwxc.train.sol58_pipeline scf --workdir ... --epochs 3   # stage 2
    pwxc train sol58 evaluate --functional FILE --materials test Ca Ni --out-scf FILE   # SCF a0 (torchrun too)
    pwxc train sol58 report --scf trained=FILE ;  pwxc train sol58 ship --name NAME

The densities (.npz) stay in the workdir; the small .json record of every point is also copied to
--record (default benchmarks/results/sol58/reference/ under the current folder) so that the PBE
table survives without them. ``--quick`` uses sol58.quick_settings (unconverged small settings) and
sol58.QUICK_TRAIN + QUICK_TEST; give it its own workdir.
"""
import argparse
import json
import logging
import shutil
import sys
import warnings
from pathlib import Path

ROOT = Path.cwd()

from .sol58_report import bootstrap as bootstrap_improvement  # noqa: E402  (paired bootstrap of a MARE difference)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="pwxc train sol58", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["reference", "table", "nsc", "scf", "evaluate", "report", "ship", "all"])
    ap.add_argument("--quick", action="store_true",
                    help="few cheap solids (sol58.QUICK_TRAIN + QUICK_TEST) at small settings (sol58.quick_settings): "
                         "a smoke run of the whole pipeline in minutes; use its own --workdir and --out")
    ap.add_argument("--epochs", type=int, default=3, help="scf (stage 2): epochs of self-consistent fine-tuning")
    ap.add_argument("--lr", type=float, default=1e-3, help="scf (stage 2): Adam step on the raw parameters")
    ap.add_argument("--name", default="pbe_family_sol58", help="ship: the shipped functional's name")
    ap.add_argument("--scf", nargs="*", default=[], metavar="LABEL=FILE",
                    help="report: self-consistent results (evaluate --out-scf) to tabulate, e.g. pbesol=... trained=...")
    ap.add_argument("--functional", help="evaluate: a saved functional (pwxc.xc.load) or a name ('pbe', 'pbesol')")
    ap.add_argument("--target", choices=["zpae", "delta"], default="zpae")
    ap.add_argument("--out", help="the stage-1 record (default benchmarks/results/sol58/nsc_stage1.json; with "
                                  "--quick WORKDIR/results/nsc_stage1.json); the other stages' files go beside it")
    ap.add_argument("--workdir", default="/work/pwxc-runs/sol58")
    ap.add_argument("--materials", nargs="*", help="subset (default: all 48; 'test' = the held-out set)")
    ap.add_argument("--candidates", nargs="*", help="nsc: functional forms to cross-validate (default: all)")
    ap.add_argument("--out-scf", default="", help="evaluate: write the self-consistent rows to this JSON file")
    ap.add_argument("--record", help="folder to copy the per-point .json records to ('' = none; default "
                                     "benchmarks/results/sol58/reference, none with --quick)")
    args = ap.parse_args(argv)
    args.command = "pwxc train sol58 " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.out is None:
        args.out = str(Path(args.workdir) / "results" / "nsc_stage1.json" if args.quick else
                       ROOT / "benchmarks" / "results" / "sol58" / "nsc_stage1.json")
    if args.record is None:
        args.record = "" if args.quick else str(ROOT / "benchmarks" / "results" / "sol58" / "reference")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("pwxc.train").setLevel(logging.INFO)      # progress, not every SCF step
    warnings.simplefilter("ignore", category=UserWarning)
    from pwxc.train import nsc, reference, sol58

    solids = sol58.solids()
    rule = sol58.quick_settings if args.quick else None      # None: the settings rule, sol58.settings
    if args.quick and not args.materials:
        args.materials = list(sol58.QUICK_TRAIN + sol58.QUICK_TEST)
    if args.quick and not args.candidates:
        args.candidates = ["mu_beta", "kappa_mu_beta"]
    names = []
    for n in args.materials or list(solids):       # "test" stands for the held-out set
        names += [m for m in (sol58.TEST if n == "test" else [n]) if m not in names]
    chosen = [solids[n] for n in names]
    if args.stage == "all":
        return run_all(args, chosen, rule)
    if args.stage == "reference":
        rank, world = reference.distributed_context()

        def progress(name, scale, meta):
            print(f"rank {rank}: {name} s={scale:.2f} E={meta['energy_ha']:.8f} Ha "
                  f"{'converged' if meta['converged'] else 'NOT converged'} {meta['seconds']:.0f} s", flush=True)
            if args.record:
                dest = Path(args.record) / name
                dest.mkdir(parents=True, exist_ok=True)
                src = Path(args.workdir) / name / f"s{scale:.4f}.json"
                shutil.copyfile(src, dest / src.name)

        out = reference.generate(chosen, args.workdir, rank=rank, world_size=world, rule=rule, progress=progress)
        failed = {k: v for k, v in out.items() if isinstance(v, str)}
        print(f"rank {rank}: {len(out) - len(failed)} materials done, {len(failed)} skipped {failed}")
        return 0
    if args.stage == "evaluate":
        import pwxc
        functional = pwxc.xc.functional(args.functional) if args.functional in ("pbe", "pbesol") else \
            pwxc.xc.load(args.functional)
        rank, world = reference.distributed_context()
        if world > 1:       # each rank scans its cost-balanced share; a plain rerun then reads them all
            share = set(reference.partition(chosen, world, rule)[rank])
            chosen = [s for s in sorted(chosen, key=lambda s: reference.cost_estimate(s, rule)) if s.name in share]
        rows = evaluate_scf(functional, chosen, args.workdir, rule)
        if world == 1 and args.out_scf:
            from pwxc.files import atomic_write
            text = json.dumps(dict(functional=args.functional, functional_id=functional_id(functional),
                                   rows=rows), indent=1)
            Path(args.out_scf).parent.mkdir(parents=True, exist_ok=True)
            atomic_write(Path(args.out_scf), lambda tmp: Path(tmp).write_text(text))
        print(json.dumps(rows, indent=1))
        return 0
    if args.stage == "report":
        return run_report(args, rule)
    if args.stage == "ship":
        return run_ship(args, rule)
    refs = reference.load_references(chosen, args.workdir, rule=rule)
    if args.stage == "nsc":
        return run_nsc(refs, solids, args)
    if args.stage == "scf":
        return run_scf(refs, solids, args, rule)
    rows = []
    for name, points in refs.items():
        m = nsc.NSCMaterial.from_points(name, points)
        s = solids[name]
        a_pbe = float(m.lattice_constant())
        import pwxc
        a_sol = float(m.lattice_constant(pwxc.xc.functional("pbesol")))
        rows.append(dict(material=name, cls=s.material_class, a_ref=s.a_ref, a_pbe=a_pbe, a_pbesol_nsc=a_sol,
                         err_pbe_pct=100 * (a_pbe / s.a_ref - 1), published_err_pbe_pct=100 * s.err_pbe / s.a_ref,
                         err_pbesol_pct=100 * (a_sol / s.a_ref - 1),
                         published_err_pbesol_pct=100 * s.err_pbesol / s.a_ref))
    print(json.dumps(rows, indent=1))
    return 0


def functional_id(functional) -> str:
    """Stable id of a functional's kind and parameter values (results files of different θ never mix)."""
    import hashlib
    h = hashlib.sha256(type(functional).__name__.encode() + str(getattr(functional, "name", "")).encode())
    for key, value in sorted(functional.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().double().numpy().tobytes())
    return h.hexdigest()[:12]


def evaluate_scf(functional, solids_list, workdir, rule=None) -> list:
    """Self-consistent a₀ (Å) of ``functional`` at the settings rule, on the reference scales (fixed-ecut
    E(a) through pwxc.workflows.lattice_scan; every point appended to
    WORKDIR/evaluate/<functional id>/<material>.jsonl, so a rerun resumes). With cached references the
    NSC a₀ of the same functional is reported beside it."""
    import warnings as _warnings

    import torch

    from ..pseudo import PseudopotentialFunctionalWarning
    from ..workflows import lattice_scan
    from . import nsc, reference, sol58

    folder = Path(workdir) / "evaluate" / functional_id(functional)
    rows = []
    for solid in solids_list:
        s = (rule or sol58.settings)(solid)
        kw = {k: s[k] for k in ("pseudopotentials", "smearing", "temperature", "magnetic_moments") if k in s}
        a_values = [solid.a_pbe_published * x for x in reference.SCALES]
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore", PseudopotentialFunctionalWarning)
                res = lattice_scan(solid.structure(solid.a_pbe_published), xc=functional, ecut=s["ecut"],
                                   kgrid=tuple(s["kgrid"]), a_values=a_values,
                                   results_file=folder / f"{solid.name}.jsonl",
                                   scf_tol=reference.SCF_TOL, quiet=True, auto_extend=False,
                                   scf_kwargs=dict(maxiter=150), **kw)
        except (RuntimeError, ValueError, FloatingPointError) as err:      # logged and skipped, never fatal
            logging.getLogger("pwxc.train").warning("%s: self-consistent scan failed, skipped: %s", solid.name, err)
            rows.append(dict(material=solid.name, cls=solid.material_class, error=str(err)))
            continue
        row = dict(material=solid.name, cls=solid.material_class, a_ref=solid.a_ref, a0_scf=res.a0, b0_gpa=res.b0,
                   err_pct=100 * (res.a0 / solid.a_ref - 1))
        refs = reference.load_references([solid], workdir, rule=rule)
        if solid.name in refs:
            with torch.no_grad():
                a_nsc = float(nsc.NSCMaterial.from_points(solid.name, refs[solid.name]).lattice_constant(functional))
            row.update(a0_nsc=a_nsc, nsc_minus_scf_pct=100 * (a_nsc / res.a0 - 1))
        rows.append(row)
    return rows


def usable_materials(refs) -> dict:
    """name -> NSCMaterial for the references whose PBE E(a) has a fittable minimum; the others are
    left out of training and evaluation with the reason logged (a noisy or unbracketed scan)."""
    from pwxc.train import nsc
    out = {}
    for name, points in refs.items():
        m = nsc.NSCMaterial.from_points(name, points)
        try:
            m.lattice_constant()
        except (FloatingPointError, ValueError) as err:
            logging.getLogger("pwxc.train").warning("%s: PBE reference scan not usable, skipped: %s", name, err)
            continue
        out[name] = m
    return out


def run_nsc(refs, solids, args):
    """Stage 1: model choice by 5-fold CV on the training materials, final fit, NSC held-out table."""
    import torch

    import pwxc
    from pwxc.files import atomic_write
    from pwxc.train import nsc, sol58

    materials = usable_materials(refs)
    target = nsc.targets(solids, materials, args.target)
    train = [n for n in sol58.train_names(materials)]
    test = [n for n in sol58.TEST if n in materials]
    print(f"references complete for {len(materials)} materials: {len(train)} train, {len(test)} test", flush=True)
    key = nsc.fold_key("stage1", test, train, materials, target, candidates=sorted(args.candidates or []))
    out = Path(args.out)
    if out.exists() and out.with_suffix(".pt").exists():
        try:
            done = json.loads(out.read_text()).get("inputs_key")
        except ValueError as err:
            raise ValueError(f"stage-1 record {out} is unreadable ({err}); move it away") from None
        if done == key:       # finished for these inputs: refitting would only change the last digits
            print(f"stage 1 already done for these references: {out}", flush=True)
            return 0
    def seeded(make):
        def build():
            torch.manual_seed(0)                 # the networks' initial weights: reproducible
            return make()
        return build
    candidates = {
        "mu_beta": lambda: pwxc.xc.PBEFamilyXC(learn_kappa=False, rs_beta=False),
        "kappa_mu_beta": lambda: pwxc.xc.PBEFamilyXC(rs_beta=False),
        "kappa_mu_beta_rs": lambda: pwxc.xc.PBEFamilyXC(),
        # neural forms: the constrained exchange enhancement (network of s on PBE's F_x) and the free
        # MLP + PBE hybrid; same NSC loss, L-BFGS, CV
        "enhanced_mlp": seeded(lambda: pwxc.xc.EnhancedXC("pbe")),
        "hybrid_mlp": seeded(lambda: pwxc.xc.HybridXC("pbe")),
    }
    if args.candidates:
        candidates = {k: v for k, v in candidates.items() if k in args.candidates}
    cv = {}
    cache = nsc.FoldCache(Path(args.out).with_suffix(".cv_folds.json"))    # a rerun skips finished folds
    for name, make in candidates.items():
        cv[name] = nsc.cross_validate(make, materials, target, train, solids, k=min(5, len(train)),
                                      lr=0.1 if name.endswith("mlp") else 1.0, cache=cache, label=name)
        print(f"CV {name}: {cv[name]['mean_pct']:.3f} ± {cv[name]['std_pct']:.3f} %", flush=True)
    best = min(cv, key=lambda k: cv[k]["mean_pct"])
    functional = candidates[best]()
    nsc.fit(functional, materials, target, train, lr=0.1 if best.endswith("mlp") else 1.0)
    pbesol = pwxc.xc.functional("pbesol")
    rows = {}
    with torch.no_grad():
        for n, m in materials.items():
            rows[n] = dict(split="test" if n in sol58.TEST else "train", cls=solids[n].material_class,
                           target=target[n], a_ref=solids[n].a_ref, pbe=float(m.lattice_constant()),
                           pbesol_nsc=float(m.lattice_constant(pbesol)),
                           trained_nsc=float(m.lattice_constant(functional)))
            rows[n]["inside_scan"] = all(m.inside(rows[n][k]) for k in ("pbe", "pbesol_nsc", "trained_nsc"))
    def err(n, key):
        return 100 * (rows[n][key] / rows[n]["target"] - 1)
    summary = {}
    for split, names in (("train", train), ("test", test)):
        if names:
            summary[split] = {k: sum(abs(err(n, k)) for n in names) / len(names) for k in ("pbe", "pbesol_nsc", "trained_nsc")}
    if test:
        summary["test_improvement_pbe_minus_trained_pct"] = bootstrap_improvement(
            [err(n, "pbe") for n in test], [err(n, "trained_nsc") for n in test])
    parameters = functional.summary() if hasattr(functional, "summary") else \
        {"n_parameters": sum(p.numel() for p in functional.parameters())}
    result = dict(stage="nsc (stage 1)", inputs_key=key, target=args.target, model=best, cv=cv, parameters=parameters,
                  train=train, test=test, command=args.command,
                  summary_mare_pct=summary, materials=rows, n_materials=len(materials),
                  note="non-self-consistent a0 on cached PBE densities; self-consistent evaluation is stage 3")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    functional.save(out.with_suffix(".pt"), metadata={"record": str(out.name)})
    print(json.dumps(summary, indent=1))
    return 0



def run_report(args, rule=None):
    """Tables (JSON + markdown) and the per-material error figure from the PBE references and the
    self-consistent ``evaluate`` files; written next to --out."""
    from pwxc.files import atomic_write
    from pwxc.train import sol58_report as report
    scf_files = dict(item.split("=", 1) for item in args.scf)
    nsc_functionals = {"pbesol_nsc": "pbesol"} if "pbesol" not in scf_files else {}
    rows = report.collect(args.workdir, scf_files, nsc_file=args.out if Path(args.out).exists() else None,
                          nsc_functionals=nsc_functionals, rule=rule)
    labels = ["pbe"] + list(scf_files) + list(nsc_functionals)
    out = {"test": report.summary(rows, labels, "test"), "train": report.summary(rows, labels, "train"),
           "paper_trio": {n: {lab: rows[n][lab]["err"] for lab in labels + ["trained_nsc"] if lab in rows[n]}
                          for n in ("Al", "Ni", "Ca")},
           "rows": rows}
    folder = Path(args.out).parent
    text = json.dumps(out, indent=1)
    atomic_write(folder / "report.json", lambda tmp: Path(tmp).write_text(text))
    table = report.markdown_table(rows, labels)
    atomic_write(folder / "table.md", lambda tmp: Path(tmp).write_text(table + "\n"))
    report.figure(rows, labels, folder / "sol58_errors.png")
    print(json.dumps({k: out[k] for k in ("test", "train", "paper_trio")}, indent=1))
    return 0

def run_ship(args, rule=None):
    """Copy the stage-1 functional (--out's .pt) into pwxc/data/functionals/NAME.pt with its record
    NAME.json: the settings rule and the settings it gave every material, split, commands, CV, and the
    report (report.json next to --out) with the per-material a₀ of PBE / PBEsol / trained."""
    import pwxc
    from pwxc.files import atomic_write
    from pwxc.train import sol58
    from pwxc.xc.io import DATA_DIR
    out = Path(args.out)
    stage1 = json.loads(out.read_text())
    report_file = out.parent / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    stage2_file = stage2_record_path(out)
    stage2 = json.loads(stage2_file.read_text()) if stage2_file.exists() else None
    source = Path(args.functional) if args.functional else out.with_suffix(".pt")
    functional = pwxc.xc.load(source)
    if stage2 is not None and source.resolve() == Path(stage2["functional_file"]).resolve():
        stage = f"stage 1 (non-self-consistent) + stage 2 ({stage2['epochs']} self-consistent epochs)"
    else:
        stage, stage2 = "stage 1 (non-self-consistent) only; no stage-2 fine-tuning", None
    solids = sol58.solids()
    if args.quick:
        solids = {n: s for n, s in solids.items() if n in sol58.QUICK_TRAIN + sol58.QUICK_TEST}
    record = dict(
        name=args.name, form=stage1["model"], parameters=stage1["parameters"], target=stage1["target"],
        trained_on=stage1["train"], held_out=list(sol58.TEST),
        settings_rule=("pwxc.train.sol58.settings: PseudoDojo NC SR PBE v0.4.1 standard (pseudodojo-pbe), ecut = "
                       "largest 'normal' hint of the elements; k spacing 0.15 Bohr^-1 (metals and PBE gap < 0.25 eV, "
                       f"Marzari-Vanderbilt 0.01 Ha) / {sol58.KSPACING_INSULATOR:.2f} (others, fixed occupations); Fe/Ni/Co spin-polarised; "
                       "E(a) at 0.97..1.03 x published PBE a, constant cutoff, BM3 fit"),
        settings={n: {k: (list(v) if isinstance(v, tuple) else v) for k, v in (rule or sol58.settings)(s).items()}
                  for n, s in solids.items()},
        commands=["pwxc train sol58 reference --workdir DIR   (or torchrun --nproc-per-node 2 -m "
                  "pwxc.train.sol58_pipeline reference --workdir DIR)",
                  stage1.get("command", "pwxc train sol58 nsc --workdir DIR"),
                  "torchrun --nproc-per-node 2 -m pwxc.train.sol58_pipeline evaluate --functional FILE "
                  "--materials ... --workdir DIR; then the same without torchrun and with --out-scf",
                  "pwxc train sol58 report --scf pbesol=... trained=...", f"pwxc train sol58 ship --name {args.name}"],
        cv=stage1["cv"], stage=stage, stage2=stage2, report=report)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if args.quick:
        record["settings_rule"] = "pwxc.train.sol58.quick_settings (NOT converged: a smoke run)"
    functional.save(DATA_DIR / f"{args.name}.pt", metadata={"record": f"{args.name}.json", "form": stage1["model"]})
    text = json.dumps(record, indent=1)
    atomic_write(DATA_DIR / f"{args.name}.json", lambda tmp: Path(tmp).write_text(text))
    print(f"shipped {DATA_DIR / args.name}.pt (+ .json); pwxc.xc.load({args.name!r})")
    return 0


def stage2_record_path(out: Path) -> Path:
    """The stage-2 record next to the stage-1 record ``out`` (its functional: the same stem + .pt)."""
    out = Path(out)
    return out.with_name(out.stem + "_stage2.json")


def run_scf(refs, solids, args, rule=None):
    """Stage 2: self-consistent fine-tuning of the stage-1 functional (``--functional`` or --out's .pt) on
    the training materials with references, over torch.distributed ranks (pwxc.train.scf_stage.SCFStage:
    checkpoint after every epoch in WORKDIR/stage2/<start id>, resumed on a rerun). Rank 0 writes the
    fine-tuned functional (<out stem>_stage2.pt) and its record (<out stem>_stage2.json)."""
    import pwxc
    from pwxc.files import atomic_write
    from pwxc.train import nsc, reference, sol58
    from pwxc.train.scf_stage import SCFStage
    out = Path(args.out)
    start_file = Path(args.functional) if args.functional else out.with_suffix(".pt")
    functional = pwxc.xc.load(start_file)
    start_id = functional_id(functional)
    materials = usable_materials(refs)
    train = sol58.train_names(list(materials))
    target = nsc.targets(solids, {n: materials[n] for n in train}, args.target)
    stage = SCFStage(functional, [solids[n] for n in train], target, Path(args.workdir) / "stage2" / start_id,
                     rule=rule, lr=args.lr, scf_tol=reference.SCF_TOL)
    history = stage.fit(args.epochs)
    if stage.rank != 0:
        return 0
    dest = out.with_name(out.stem + "_stage2.pt")
    functional.save(dest, metadata={"record": stage2_record_path(out).name, "start": str(start_file)})
    record = dict(stage="scf (stage 2)", start=str(start_file), start_id=start_id, functional_file=str(dest),
                  functional_id=functional_id(functional), epochs=stage.epoch, lr=args.lr, train=train,
                  target=args.target, ranks=stage.world, history=history,
                  parameters=functional.summary() if hasattr(functional, "summary") else None,
                  command=args.command)
    text = json.dumps(record, indent=1)
    atomic_write(stage2_record_path(out), lambda tmp: Path(tmp).write_text(text))
    print(f"stage 2: {stage.epoch} epochs, training MARE {history[-1]['mare_pct']:.3f} % -> {dest}")
    return 0


def run_all(args, chosen, rule=None):
    """The whole pipeline on ``chosen``: references → stage 1 → stage 2 → self-consistent evaluation of
    the held-out materials among them with the stage-2 functional → report. Under torchrun the
    distributed steps are split over the ranks and rank 0 alone runs the rest (the others wait).
    Every step resumes from what the workdir and --out already hold."""
    from pwxc.train import reference, sol58
    rank, world = reference.distributed_context()
    import torch.distributed as dist

    def barrier():
        if world > 1:
            dist.barrier()

    out = Path(args.out)
    argv = ["--workdir", args.workdir, "--out", str(out), "--target", args.target, "--materials",
            *[s.name for s in chosen]] + (["--quick"] if args.quick else [])
    if args.candidates:
        argv += ["--candidates", *args.candidates]
    main(["reference", *argv, "--record", args.record])
    barrier()
    if rank == 0:
        main(["nsc", *argv])
    barrier()
    main(["scf", *argv, "--epochs", str(args.epochs), "--lr", str(args.lr)])
    barrier()
    final = out.with_name(out.stem + "_stage2.pt")
    held_out = [s.name for s in chosen if s.name in sol58.TEST]
    eval_argv = ["--workdir", args.workdir, "--functional", str(final), "--materials", *held_out] + \
        (["--quick"] if args.quick else [])
    scf_file = out.with_name(out.stem + "_scf_trained.json")
    main(["evaluate", *eval_argv])                 # split over the ranks
    barrier()
    if rank == 0:
        main(["evaluate", *eval_argv, "--out-scf", str(scf_file)])      # reads what the ranks computed
        main(["report", "--workdir", args.workdir, "--out", str(out), "--scf", f"trained={scf_file}"]
             + (["--quick"] if args.quick else []))
    barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
