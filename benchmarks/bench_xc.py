"""Micro-benchmark: XC energy + potential on a 64^3 grid of a realistic density.

The density is a diamond-structure Si-like valence density (8 atoms in a cubic
cell of a = 10.26 Bohr, 32 electrons) built from periodic Gaussian shells plus
bond charges; its gradient comes from FFTs, as in the plane-wave engine.
Timed (median of several repeats, float64, CPU):

* energy density + (vrho, vsigma) by autograd  -- the figure asked for
* the full GGA potential v = vrho - div(2 vsigma grad n) with FFT divergence

Usage:  python benchmarks/bench_xc.py [--n 64] [--threads 1] [--xc pbe] [--spin]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

import pwxc.xc as xc


def si_density(n: int, a: float = 10.26, dtype=torch.float64) -> torch.Tensor:
    """Periodic Si-like valence density on an n^3 grid (Bohr^-3), 32 electrons per cell."""
    g = torch.arange(n, dtype=dtype) / n
    x, y, z = torch.meshgrid(g, g, g, indexing="ij")
    fcc = [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)]
    atoms = [p for b in fcc for p in (b, tuple(c + 0.25 for c in b))]
    bonds = [tuple(c + 0.125 * s for c, s in zip(b, d)) for b in fcc
             for d in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))]
    rho = torch.zeros_like(x)

    def add(centers, width, shell):
        nonlocal rho
        for cx, cy, cz in centers:
            dx = (x - cx + 0.5) % 1.0 - 0.5
            dy = (y - cy + 0.5) % 1.0 - 0.5
            dz = (z - cz + 0.5) % 1.0 - 0.5
            r = a * torch.sqrt(dx * dx + dy * dy + dz * dz)
            rho = rho + torch.exp(-((r - shell) / width) ** 2)

    add(atoms, 0.9, 1.1)
    add(bonds, 0.8, 0.0)
    rho = rho + 1e-4
    return rho * (32.0 / (rho.sum() * a**3 / n**3))


def fft_grad(f: torch.Tensor, a: float) -> torch.Tensor:
    n = f.shape[0]
    k = 2 * math.pi * torch.fft.fftfreq(n, d=a / n, dtype=f.dtype)
    fk = torch.fft.fftn(f)
    ks = torch.meshgrid(k, k, k, indexing="ij")
    return torch.stack([torch.fft.ifftn(1j * ki * fk).real for ki in ks])


def fft_div(v: torch.Tensor, a: float) -> torch.Tensor:
    n = v.shape[1]
    k = 2 * math.pi * torch.fft.fftfreq(n, d=a / n, dtype=v.dtype)
    ks = torch.meshgrid(k, k, k, indexing="ij")
    out = sum(1j * ki * torch.fft.fftn(vi) for ki, vi in zip(ks, v))
    return torch.fft.ifftn(out).real


def timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--xc", default="pbe")
    ap.add_argument("--spin", action="store_true", help="spin-polarized (zeta = 0.2)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a = 10.26
    rho3 = si_density(args.n)
    grad = fft_grad(rho3, a)
    sigma = (grad * grad).sum(0).reshape(-1)
    rho = rho3.reshape(-1)
    if args.spin:
        rho = torch.stack([0.6 * rho, 0.4 * rho])
        sigma = torch.stack([0.36 * sigma, 0.24 * sigma, 0.16 * sigma])
    f = xc.functional(args.xc)
    sig = sigma if f.is_gga else None

    def energy_only():
        with torch.no_grad():
            f.energy_density(rho, sig)

    def energy_and_v():
        f.evaluate(rho, sig)

    def full_potential():
        e, vrho, vsigma = f.evaluate(rho, sig)
        if f.is_gga and not args.spin:
            vrho.reshape(rho3.shape) - fft_div(2.0 * vsigma.reshape(rho3.shape) * grad, a)

    npts = rho.shape[-1]
    print(f"pwxc.xc benchmark: {args.xc} {'polarized' if args.spin else 'unpolarized'}, "
          f"{args.n}^3 = {npts} points, float64, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    t_e = timeit(energy_only, args.repeat)
    t_v = timeit(energy_and_v, args.repeat)
    print(f"  energy density only            : {1e3 * t_e:8.1f} ms")
    print(f"  energy + vrho, vsigma (autograd): {1e3 * t_v:8.1f} ms   "
          f"({1e9 * t_v / npts:.0f} ns/point)")
    if f.is_gga and not args.spin:
        t_p = timeit(full_potential, args.repeat)
        print(f"  + FFT divergence (full v_xc)   : {1e3 * t_p:8.1f} ms")


if __name__ == "__main__":
    main()
