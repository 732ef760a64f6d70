#!/usr/bin/env python3
"""The Sol58 pipeline: PBE references with cached densities → NSC training → SCF evaluation.

    # 1. references (resumable; each finished point is written at once), one or more ranks:
    python examples/train_sol58.py reference --workdir /work/pwxc-runs/sol58
    torchrun --nproc-per-node 2 examples/train_sol58.py reference --workdir /work/pwxc-runs/sol58
    # several nodes: torchrun --nnodes N --node-rank R --master-addr HOST --nproc-per-node P ... (same args)
    # 2. the PBE table of every material that is complete
    python examples/train_sol58.py table --workdir /work/pwxc-runs/sol58

The densities (.npz) stay in the workdir; the small .json records of every point are also copied
to benchmarks/results/sol58/reference/ (with --record) so that the PBE table survives without them.
"""
import argparse
import json
import logging
import shutil
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["reference", "table"])
    ap.add_argument("--workdir", default="/work/pwxc-runs/sol58")
    ap.add_argument("--materials", nargs="*", help="subset (default: all 48)")
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "sol58" / "reference"),
                    help="folder to copy the per-point .json records to ('' = none)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warnings.simplefilter("ignore", category=UserWarning)
    from pwxc.train import nsc, reference, sol58

    solids = sol58.solids()
    chosen = [solids[n] for n in (args.materials or solids)]
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
    refs = reference.load_references(chosen, args.workdir)
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


if __name__ == "__main__":
    sys.exit(main())
