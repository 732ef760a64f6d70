"""PBE gaps of the Sol58 non-metals, which decide metal-like settings in pwxc.train.sol58.settings.

    OMP_NUM_THREADS=1 python benchmarks/sol58_gaps.py          # resumes: measured gaps are kept

Writes pwxc/data/sol58_pbe_gaps.json after every material (atomic). One SCF each (sol58.measure_pbe_gap).
"""
import json
import sys
import time
import warnings
from pathlib import Path

from pwxc.files import atomic_write
from pwxc.train import sol58


def main(names=None):
    warnings.simplefilter("ignore", UserWarning)
    path = sol58.GAP_FILE
    data = json.loads(path.read_text()) if path.exists() else {
        "note": "PBE Kohn-Sham gap (eV) at the published PBE a, rule cutoff (normal hints), insulator k-mesh "
                "(0.30 Bohr^-1), Marzari-Vanderbilt 0.01 Ha; made by benchmarks/sol58_gaps.py "
                "(pwxc.train.sol58.measure_pbe_gap)", "family": sol58.FAMILY, "gaps_ev": {}}
    solids = sol58.solids()
    for name in names or [n for n, s in solids.items() if not s.metal]:
        if name in data["gaps_ev"]:
            continue
        t0 = time.time()
        data["gaps_ev"][name] = round(sol58.measure_pbe_gap(solids[name]), 4)
        text = json.dumps(data, indent=1, sort_keys=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))
        print(f"{name}: {data['gaps_ev'][name]:+.3f} eV ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
