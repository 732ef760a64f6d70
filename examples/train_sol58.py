#!/usr/bin/env python3
"""The Sol58 pipeline (see pwxc/train/sol58_pipeline.py; same as ``pwxc train sol58 ...``).

    python examples/train_sol58.py reference --workdir /work/pwxc-runs/sol58
    torchrun --nproc-per-node 2 examples/train_sol58.py reference --workdir /work/pwxc-runs/sol58
    python examples/train_sol58.py table --workdir /work/pwxc-runs/sol58
    python examples/train_sol58.py nsc --workdir /work/pwxc-runs/sol58
"""
import sys

from pwxc.train.sol58_pipeline import main

if __name__ == "__main__":
    sys.exit(main())
