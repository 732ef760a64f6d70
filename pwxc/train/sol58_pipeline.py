"""The Sol58 pipeline: PBE references with cached densities → NSC training (stage 1) → tables.

    pwxc train sol58 reference --workdir /work/pwxc-runs/sol58        # resumable; one point at a time
    torchrun --nproc-per-node 2 -m pwxc.train.sol58_pipeline reference --workdir /work/pwxc-runs/sol58
    # several nodes: torchrun --nnodes N --node-rank R --master-addr HOST --nproc-per-node P (same args;
    # the workdir on a shared filesystem)
    pwxc train sol58 table --workdir ...       # pwxc PBE and NSC PBEsol a0 of every complete material
    pwxc train sol58 nsc --workdir ...         # stage 1: CV model choice, fit, held-out NSC table

The densities (.npz) stay in the workdir; the small .json record of every point is also copied to
--record (default benchmarks/results/sol58/reference/ under the current folder) so that the PBE
table survives without them. Stage 2 (self-consistent fine-tuning over torch.distributed ranks) is
pwxc.train.scf_stage.SCFStage.
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
    ap.add_argument("stage", choices=["reference", "table", "nsc", "evaluate", "report", "ship"])
    ap.add_argument("--name", default="pbe_family_sol58", help="ship: the shipped functional's name")
    ap.add_argument("--scf", nargs="*", default=[], metavar="LABEL=FILE",
                    help="report: self-consistent results (evaluate --out-scf) to tabulate, e.g. pbesol=... trained=...")
    ap.add_argument("--functional", help="evaluate: a saved functional (pwxc.xc.load) or a name ('pbe', 'pbesol')")
    ap.add_argument("--target", choices=["zpae", "delta"], default="zpae")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sol58" / "nsc_stage1.json"))
    ap.add_argument("--workdir", default="/work/pwxc-runs/sol58")
    ap.add_argument("--materials", nargs="*", help="subset (default: all 48; 'test' = the held-out set)")
    ap.add_argument("--candidates", nargs="*", help="nsc: functional forms to cross-validate (default: all)")
    ap.add_argument("--out-scf", default="", help="evaluate: write the self-consistent rows to this JSON file")
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "sol58" / "reference"),
                    help="folder to copy the per-point .json records to ('' = none)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("pwxc.train").setLevel(logging.INFO)      # progress, not every SCF step
    warnings.simplefilter("ignore", category=UserWarning)
    from pwxc.train import nsc, reference, sol58

    solids = sol58.solids()
    names = []
    for n in args.materials or list(solids):       # "test" stands for the held-out set
        names += [m for m in (sol58.TEST if n == "test" else [n]) if m not in names]
    chosen = [solids[n] for n in names]
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

        orig = reference.compute_material
        reference.compute_material = lambda *a, **k: orig(*a, progress=progress, **k)
        out = reference.generate(chosen, args.workdir, rank=rank, world_size=world)
        failed = {k: v for k, v in out.items() if isinstance(v, str)}
        print(f"rank {rank}: {len(out) - len(failed)} materials done, {len(failed)} skipped {failed}")
        return 0
    if args.stage == "evaluate":
        import pwxc
        functional = pwxc.xc.functional(args.functional) if args.functional in ("pbe", "pbesol") else \
            pwxc.xc.load(args.functional)
        rank, world = reference.distributed_context()
        if world > 1:       # each rank scans its cost-balanced share; a plain rerun then reads them all
            share = set(reference.partition(chosen, world)[rank])
            chosen = [s for s in sorted(chosen, key=reference.cost_estimate) if s.name in share]
        rows = evaluate_scf(functional, chosen, args.workdir)
        if world == 1 and args.out_scf:
            from pwxc.files import atomic_write
            text = json.dumps(dict(functional=args.functional, functional_id=functional_id(functional),
                                   rows=rows), indent=1)
            Path(args.out_scf).parent.mkdir(parents=True, exist_ok=True)
            atomic_write(Path(args.out_scf), lambda tmp: Path(tmp).write_text(text))
        print(json.dumps(rows, indent=1))
        return 0
    if args.stage == "report":
        return run_report(args)
    if args.stage == "ship":
        return run_ship(args)
    refs = reference.load_references(chosen, args.workdir)
    if args.stage == "nsc":
        return run_nsc(refs, solids, args)
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


def run_nsc(refs, solids, args):
    """Stage 1: model choice by 5-fold CV on the training materials, final fit, NSC held-out table."""
    import torch

    import pwxc
    from pwxc.files import atomic_write
    from pwxc.train import nsc, sol58

    materials = {n: nsc.NSCMaterial.from_points(n, p) for n, p in refs.items()}
    target = nsc.targets(solids, materials, args.target)
    train = [n for n in sol58.train_names(materials)]
    test = [n for n in sol58.TEST if n in materials]
    print(f"references complete for {len(materials)} materials: {len(train)} train, {len(test)} test", flush=True)
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
    for name, make in candidates.items():
        cv[name] = nsc.cross_validate(make, materials, target, train, solids, k=min(5, len(train)),
                                      lr=0.1 if name.endswith("mlp") else 1.0)
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
    result = dict(stage="nsc (stage 1)", target=args.target, model=best, cv=cv, parameters=parameters,
                  train=train, test=test, command="pwxc train sol58 nsc " + " ".join(sys.argv[2:]),
                  summary_mare_pct=summary, materials=rows, n_materials=len(materials),
                  note="non-self-consistent a0 on cached PBE densities; self-consistent evaluation is stage 3")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    functional.save(out.with_suffix(".pt"), metadata={"record": str(out.name)})
    print(json.dumps(summary, indent=1))
    return 0



def run_report(args):
    """Tables (JSON + markdown) and the per-material error figure from the PBE references and the
    self-consistent ``evaluate`` files; written next to --out."""
    from pwxc.files import atomic_write
    from pwxc.train import sol58_report as report
    scf_files = dict(item.split("=", 1) for item in args.scf)
    nsc_functionals = {"pbesol_nsc": "pbesol"} if "pbesol" not in scf_files else {}
    rows = report.collect(args.workdir, scf_files, nsc_file=args.out if Path(args.out).exists() else None,
                          nsc_functionals=nsc_functionals)
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

def run_ship(args):
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
    functional = pwxc.xc.load(out.with_suffix(".pt"))
    solids = sol58.solids()
    record = dict(
        name=args.name, form=stage1["model"], parameters=stage1["parameters"], target=stage1["target"],
        trained_on=stage1["train"], held_out=list(sol58.TEST),
        settings_rule=("pwxc.train.sol58.settings: PseudoDojo NC SR PBE v0.4.1 standard (pseudodojo-pbe), ecut = "
                       "largest 'normal' hint of the elements; k spacing 0.15 Bohr^-1 (metals and PBE gap < 0.25 eV, "
                       "Marzari-Vanderbilt 0.01 Ha) / 0.30 (others, fixed occupations); Fe/Ni/Co spin-polarised; "
                       "E(a) at 0.97..1.03 x published PBE a, constant cutoff, BM3 fit"),
        settings={n: {k: (list(v) if isinstance(v, tuple) else v) for k, v in sol58.settings(s).items()}
                  for n, s in solids.items()},
        commands=["pwxc train sol58 reference --workdir DIR   (or torchrun --nproc-per-node 2 -m "
                  "pwxc.train.sol58_pipeline reference --workdir DIR)",
                  stage1.get("command", "pwxc train sol58 nsc --workdir DIR"),
                  "torchrun --nproc-per-node 2 -m pwxc.train.sol58_pipeline evaluate --functional FILE "
                  "--materials ... --workdir DIR; then the same without torchrun and with --out-scf",
                  "pwxc train sol58 report --scf pbesol=... trained=...", f"pwxc train sol58 ship --name {args.name}"],
        cv=stage1["cv"], stage="stage 1 (non-self-consistent) only; no stage-2 fine-tuning",
        report=report)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    functional.save(DATA_DIR / f"{args.name}.pt", metadata={"record": f"{args.name}.json", "form": stage1["model"]})
    text = json.dumps(record, indent=1)
    atomic_write(DATA_DIR / f"{args.name}.json", lambda tmp: Path(tmp).write_text(text))
    print(f"shipped {DATA_DIR / args.name}.pt (+ .json); pwxc.xc.load({args.name!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
