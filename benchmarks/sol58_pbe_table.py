#!/usr/bin/env python3
"""pwxc PBE (self-consistent references) and PBEsol (NSC on them) a₀ of every Sol58 solid next to the
published PBE/PBEsol errors — the pseudopotential error that every trained functional inherits.

    python benchmarks/sol58_pbe_table.py --workdir /work/pwxc-runs/sol58

Writes benchmarks/results/sol58/pbe_pbesol_table.{json,md} (the rows of ``pwxc train sol58 table``).
"""
import argparse
import contextlib
import io
import json
from pathlib import Path

from pwxc.files import atomic_write
from pwxc.train import sol58_pipeline
from pwxc.train.sol58_report import CLASS_ORDER

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "sol58" / "pbe_pbesol_table"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/work/pwxc-runs/sol58")
    args = ap.parse_args()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        sol58_pipeline.main(["table", "--workdir", args.workdir])
    rows = json.loads(buf.getvalue())
    rows.sort(key=lambda r: (CLASS_ORDER.index(r["cls"]), r["material"]))
    lines = ["| material | class | a_ref (Å) | pwxc PBE a₀ (Å) | err % | published PBE err % | "
             "pwxc PBEsol (NSC) err % | published PBEsol err % |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['material']} | {r['cls']} | {r['a_ref']:.3f} | {r['a_pbe']:.4f} | {r['err_pbe_pct']:+.2f} | "
                     f"{r['published_err_pbe_pct']:+.2f} | {r['err_pbesol_pct']:+.2f} | "
                     f"{r['published_err_pbesol_pct']:+.2f} |")
    def mare(key):
        return sum(abs(r[key]) for r in rows) / len(rows)
    lines.append(f"\nMARE over {len(rows)}: pwxc PBE {mare('err_pbe_pct'):.2f} % (published {mare('published_err_pbe_pct'):.2f} %), "
                 f"pwxc PBEsol NSC {mare('err_pbesol_pct'):.2f} % (published {mare('published_err_pbesol_pct'):.2f} %)")
    text_json = json.dumps(rows, indent=1)
    atomic_write(OUT.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text_json))
    atomic_write(OUT.with_suffix(".md"), lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    print("\n".join(lines[-1:]))


if __name__ == "__main__":
    main()
