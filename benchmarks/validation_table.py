"""Print the validation table of docs/validation.md: pwxc vs QE 6.7 / ABINIT 9.6.2 at equal settings.

    OMP_NUM_THREADS=1 python benchmarks/validation_table.py > validation.md
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pwxc  # noqa: E402
from conftest import FIXED_SETTINGS, reference_basis  # noqa: E402
from pwxc.units import HARTREE_IN_EV  # noqa: E402

print("| case | xc | ecut (Ha) | k-mesh | smearing | E pwxc (Ha) | E − E_QE (Ha) | E − E_ABINIT (Ha) "
      "| ε_F − ε_F,QE (Ha) | SCF iters | time (s) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for case_id, entry in FIXED_SETTINGS.items():
    basis = reference_basis(case_id)
    t0 = time.perf_counter()
    result = pwxc.scf(basis, tol=1e-10, n_bands=entry["nbnd"] if entry["smearing"] else None)
    seconds = time.perf_counter() - t0
    qe = entry["qe"]
    ef_qe = (qe["fermi_ev"] if qe["fermi_ev"] is not None else qe["homo_ev"]) / HARTREE_IN_EV
    sm = entry["smearing"]
    sm = "none" if sm is None else f"{sm['kind']} {sm['width_ha']}"
    kmesh = "×".join(map(str, entry["kmesh"])) + (" shifted" if any(entry["kshift"]) else "")
    print(f"| {case_id} | {entry['xc']['name']} | {entry['ecut_ha']:g} | {kmesh} | {sm} | {float(result.energy):.8f} "
          f"| {float(result.energy) - qe['etot_ha']:+.1e} | {float(result.energy) - entry['abinit']['etot_ha']:+.1e} "
          f"| {float(result.fermi_level) - ef_qe:+.1e} | {result.n_iterations} | {seconds:.1f} |", flush=True)
