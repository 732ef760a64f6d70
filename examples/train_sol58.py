#!/usr/bin/env python3
"""The Sol58 pipeline (see pwxc/train/sol58_pipeline.py; same as ``pwxc train sol58 ...``).

    python examples/train_sol58.py all --quick --workdir /tmp/sol58-quick    # whole pipeline, 8 solids, minutes
    python examples/train_sol58.py reference --workdir /work/pwxc-runs/sol58
    torchrun --nproc-per-node 2 examples/train_sol58.py reference --workdir /work/pwxc-runs/sol58
    python examples/train_sol58.py table --workdir /work/pwxc-runs/sol58
    python examples/train_sol58.py nsc --workdir /work/pwxc-runs/sol58 --out runs/sol58/nsc.json
    torchrun --nproc-per-node 2 examples/train_sol58.py scf --workdir /work/pwxc-runs/sol58 \
        --out runs/sol58/nsc.json --epochs 3          # stage 2 -> runs/sol58/nsc_stage2.pt
    torchrun --nproc-per-node 2 examples/train_sol58.py evaluate --functional runs/sol58/nsc.pt \
        --materials test Ca Ni --workdir /work/pwxc-runs/sol58
    python examples/train_sol58.py evaluate --functional runs/sol58/nsc.pt --materials test Ca Ni \
        --workdir /work/pwxc-runs/sol58 --out-scf runs/sol58/scf_trained.json
    python examples/train_sol58.py report --out runs/sol58/nsc.json --scf trained=runs/sol58/scf_trained.json
    python examples/train_sol58.py ship --out runs/sol58/nsc.json --name my_functional_sol58

The commands behind the shipped pbe_family_sol58 are in docs/training.md (Sol58 section).
"""
import sys

from pwxc.train.sol58_pipeline import main

if __name__ == "__main__":
    sys.exit(main())
