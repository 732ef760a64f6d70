"""Train an MLP+PBE hybrid end to end at tiny settings (minutes on 2 CPU cores), with pwxc.train.

Stage 1 (the reference paper's setup): targets are pwxc's own PBE total energies and E(a) curves of
Si (2 atoms) and Al (1 atom), computed once and cached in WORKDIR/references.json; the hybrid starts as
PBE plus a 5 % network term and is trained to reproduce them (λ-ramped in over 2 epochs).
Stage 2: a lattice-constant fit of Al to its experimental a = 4.05 Å through the differentiable EOS,
and a table of a₀ with PBE and with the trained hybrid.

    OMP_NUM_THREADS=1 python examples/train_small.py [--workdir runs/train_small] [--epochs 4]

The settings (ecut 5 Ha, Γ-only Si, 2x2x2 Al) are far from converged: this demonstrates and tests
the machinery; it is not a physically meaningful functional. Rerunning resumes from the checkpoints.
"""
import argparse
import logging
import time
from pathlib import Path

import torch

import pwxc
from pwxc import train
from pwxc.structures import builtin_structure

SI = dict(ecut=5.0, kgrid=(1, 1, 1), fft_size=(15, 15, 15))
AL = dict(ecut=5.0, kgrid=(2, 2, 2), smearing="gaussian", temperature=0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="runs/train_small")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work, t0 = Path(args.workdir), time.perf_counter()

    # ---- stage 1: reproduce pwxc PBE energies and curve shapes
    samples = [train.Sample("Si", builtin_structure("Si"), settings=SI, lattice_constant=5.431),
               train.Sample("Si-3%", builtin_structure("Si", a=5.431 * 0.97), settings=SI, lattice_constant=5.268),
               train.Sample("Al", builtin_structure("Al"), settings=AL, lattice_constant=4.05)]
    energy = train.reference_targets(samples, work / "references.json", xc="pbe", quantity="energy")
    curve = train.reference_targets(samples[2:], work / "references.json", xc="pbe", quantity="curve")
    train.save_dataset(energy + curve, work / "stage1_dataset.json")
    torch.manual_seed(args.seed)
    hybrid = pwxc.xc.HybridXC(base="pbe", model=pwxc.xc.MLP(hidden=(8, 8)), a=0.05)
    cfg = train.TrainConfig(epochs=args.epochs, batch_size=2, seed=args.seed, workdir=str(work / "stage1"),
                            ramp_epochs=2, patience=3, weights={"energy": 1e4, "curve": 1.0})
    trainer = train.Trainer(hybrid, energy[:2] + curve, energy[2:], config=cfg,
                            optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    for rec in trainer.fit():
        print(f"stage 1 epoch {rec['epoch']}: λ={rec['lambda']:.2f} train {rec['train_loss']:.3e} "
              f"val {rec['val_loss']:.3e} skipped {[s['sample'] for s in rec['skipped']]}")
    print(f"stage 1 {trainer.status}; curves in {work / 'stage1' / 'curves.png'}")

    # ---- stage 2: experimental lattice constant of Al through the differentiable EOS
    al = train.Sample("Al", builtin_structure("Al"), {"lattice_constant": 4.05}, AL, lattice_constant=4.05)
    cfg2 = train.TrainConfig(epochs=args.epochs, batch_size=1, seed=args.seed, workdir=str(work / "stage2"))
    trainer2 = train.Trainer(hybrid, [al], config=cfg2, optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    for rec in trainer2.fit():
        print(f"stage 2 epoch {rec['epoch']}: loss {rec['train_loss']:.3e} "
              f"a0 {rec['train'].get('Al', {}).get('a0_angstrom', float('nan')):.4f} Å")
    rows = train.lattice_table({"PBE": "pbe", "trained": hybrid}, [al])
    print(train.format_table(rows))
    hybrid.save(work / "hybrid_small.pt", {"example": "examples/train_small.py", "settings": {"Si": SI, "Al": AL}})
    print(f"saved {work / 'hybrid_small.pt'}  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
