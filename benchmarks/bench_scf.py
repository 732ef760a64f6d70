"""Wall time of one full SCF, pwxc vs pw.x (QE 6.7) at the same settings, single-threaded.

    OMP_NUM_THREADS=1 python benchmarks/bench_scf.py [--repeats 2] [--threads 1]

Systems (issue 2): Si 8-atom conventional cell, PBE, ecut 20 Ha, k 2×2×2; Al fcc, PBE, ecut 20 Ha,
k 8×8×8, Gaussian smearing 0.01 Ha. pw.x timings are read from benchmarks/qe/timings.json (made by
benchmarks/qe/make_references.py on the same machine): "nosym" is the same k-point set as pwxc
(time reversal only), "sym" is QE's default space-group reduction.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import pwxc
from pwxc.crystal import Crystal

HERE = Path(__file__).parent


def _case(entry, smearing=None, width=0.0):
    s = entry["structure"]
    crystal = Crystal.from_arrays(s["lattice_bohr"], s["frac_positions"], s["species"])
    model = pwxc.Model(crystal, xc="pbe", pseudopotentials="gth-pbe", smearing=smearing, temperature=width)
    return pwxc.PlaneWaveBasis(model, ecut=entry["ecutwfc_ha"], kgrid=entry["kmesh"], fft_size=entry["fft_grid"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    qe = json.loads((HERE / "qe" / "timings.json").read_text())["entries"]
    rows = []
    for name, key, smearing in [("Si8 PBE ecut 20 k2", "si8_conv_pbe", None), ("Al fcc PBE ecut 20 k8", "al_fcc_pbe", "gaussian")]:
        entry = qe[key + "_nosym"]
        basis = _case(entry, smearing, entry.get("smearing_width_ha") or 0.0)
        n_bands = entry["nbnd"] if smearing else None
        times, cpu, result = [], [], None
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            result = pwxc.scf(basis, tol=1e-9, n_bands=n_bands)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        ref_e = entry["results"]["etot_ha"]
        rows.append((name, min(times), min(cpu), result.n_iterations, basis.n_kpoints, float(result.energy) - ref_e,
                     entry["results"]["wall_s_min"], min(entry["results"]["cpu_s_reported_all"]),
                     qe[key + "_sym"]["results"]["wall_s_min"]))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("wall = wall-clock seconds, cpu = process CPU seconds (fair on a shared machine); pw.x cpu is its "
          "own reported CPU time")
    print(f"{'system':24s} {'pwxc wall':>9s} {'pwxc cpu':>8s} {'iters':>5s} {'nk':>4s} {'E-E_QE Ha':>10s} "
          f"{'pw.x nosym wall':>15s} {'pw.x nosym cpu':>14s} {'cpu ratio':>9s} {'pw.x sym wall':>13s}")
    for name, t, c, it, nk, de, qn, qc, qs in rows:
        print(f"{name:24s} {t:9.2f} {c:8.2f} {it:5d} {nk:4d} {de:10.1e} {qn:15.2f} {qc:14.2f} {c / qc:9.2f} {qs:13.2f}")


if __name__ == "__main__":
    main()
