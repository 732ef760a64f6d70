#!/usr/bin/env python3
"""Epoch times of Sol58 training: stage 1 (NSC, all cached materials) and stage 2 (SCF) on 1 and 2 ranks.

    python benchmarks/bench_sol58_training.py stage1 --workdir /work/pwxc-runs/sol58
    python benchmarks/bench_sol58_training.py stage2 --materials Si C AlP BP   # 1 rank (1, 2 threads), 2 ranks

Stage 2 runs at the settings rule of pwxc.train.sol58 unless --small (ecut 14 Ha, k 3³) and times
one epoch after a warm-up epoch (warm starts in place). Run on an otherwise idle machine; prints the
figures (seconds) and the 2-rank speed-up.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage1(workdir):
    import torch
    import pwxc
    from pwxc.train import nsc, reference, sol58
    solids = sol58.solids()
    refs = reference.load_references(list(solids.values()), workdir)
    materials = {n: nsc.NSCMaterial.from_points(n, p) for n, p in refs.items()}
    target = {n: solids[n].a_ref for n in materials}
    f = pwxc.xc.PBEFamilyXC()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        value, _ = nsc.loss(f, materials, target, list(materials))
        value.backward()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"stage1_epoch_seconds": min(times), "n_materials": len(materials),
                      "n_grid_points_after_merge": sum(m.n_points for m in materials.values())}))


def stage2_worker(workdir, materials, small):
    import pwxc
    from pwxc.train import scf_stage, sol58
    warnings.simplefilter("ignore")
    solids = sol58.solids()

    def rule(solid):
        s = sol58.settings(solid)
        if small:
            s.update(ecut=14.0, kgrid=(3, 3, 3))
        return s
    f = pwxc.xc.PBEFamilyXC(learn_kappa=False, rs_beta=False)
    stage = scf_stage.SCFStage(f, [solids[n] for n in materials], {n: solids[n].a_ref for n in materials},
                               workdir, rule=rule, lr=0.01)
    stage.run_epoch()                     # warm-up: first SCFs from scratch
    t0 = time.perf_counter()
    stage.run_epoch()
    if stage.rank == 0:
        print("EPOCH", time.perf_counter() - t0, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["stage1", "stage2", "_worker"])
    ap.add_argument("--workdir", default="/work/pwxc-runs/sol58")
    ap.add_argument("--materials", nargs="*", default=["Si", "C", "AlP", "BP"])
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    if args.stage == "stage1":
        return stage1(args.workdir)
    if args.stage == "_worker":
        return stage2_worker(args.workdir, args.materials, args.small)
    out = {}
    # (ranks, threads per rank): one rank on one core, one rank on both cores, two ranks
    for ranks, threads in ((1, 1), (1, 2), (2, 1)):
        work = tempfile.mkdtemp(prefix=f"pwxc_bench_{ranks}_{threads}_")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), __file__, "_worker",
               "--workdir", work, "--materials", *args.materials] + (["--small"] if args.small else [])
        text = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
        label = f"{ranks} rank(s) x {threads} thread(s)"
        out[label] = float(next(line for line in text.splitlines() if line.startswith("EPOCH")).split()[1])
        print(f"stage 2, {label}: {out[label]:.1f} s per epoch", flush=True)
    two = out["2 rank(s) x 1 thread(s)"]
    print(json.dumps({"stage2_epoch_seconds": out, "speedup_2_ranks_vs_1_rank_1_thread": out["1 rank(s) x 1 thread(s)"] / two,
                      "speedup_2_ranks_vs_1_rank_2_threads": out["1 rank(s) x 2 thread(s)"] / two,
                      "materials": args.materials, "small": args.small}))

if __name__ == "__main__":
    sys.exit(main())
