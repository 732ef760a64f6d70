"""Cost of the pieces of an SCF step and of the backward pass.

    OMP_NUM_THREADS=1 python benchmarks/bench_components.py

1. XC energy + potential (PBE, by autograd) on the FFT grid vs one Hamiltonian application to all
   bands and k-points (issue 3: XC must not be the bottleneck of an SCF step).
2. Hellmann–Feynman backward: time of `result.energy.backward()` reaching the weights of a HybridXC,
   plus the one graph-carrying energy evaluation done at the end of `pwxc.scf`, against the SCF time
   (issue 4: at most half of one SCF).
"""
import time

import torch

import pwxc
import pwxc.energy
from pwxc.crystal import Crystal
from pwxc.hamiltonian import Hamiltonian
from pwxc.terms.nonlocal_pseudo import projectors
from pwxc.terms.xc import xc_potential

torch.set_num_threads(1)
SI8 = dict(lattice=10.263102582843 * torch.eye(3, dtype=torch.float64),
           positions=[[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0], [.25, .25, .25], [.25, .75, .75],
                      [.75, .25, .75], [.75, .75, .25]])


def best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def xc_vs_hamiltonian():
    crystal = Crystal.from_arrays(SI8["lattice"], SI8["positions"], ["Si"] * 8)
    for fft in [(45, 45, 45), (64, 64, 64)]:
        basis = pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc="pbe"), ecut=20, kgrid=(2, 2, 2), fft_size=fft)
        # a smooth positive density with the right electron count (values do not change the cost)
        rho = 0.03 * (1.2 + torch.rand(1, *fft, dtype=torch.float64))
        t_xc = best(lambda: xc_potential(basis, rho, basis.model.xc))
        psi = torch.randn(basis.n_kpoints, 20, basis.mask.shape[1], dtype=torch.complex128) * basis.mask[:, None]
        ham = Hamiltonian(basis, torch.zeros(fft, dtype=torch.float64), *projectors(basis))
        kidx = torch.arange(basis.n_kpoints)
        t_h = best(lambda: ham.apply(psi, kidx), repeats=2)
        print(f"Si8 FFT {fft}: PBE energy+potential {t_xc * 1e3:7.1f} ms | one H application "
              f"({basis.n_kpoints} k x 20 bands) {t_h * 1e3:8.1f} ms | ratio {t_xc / t_h:.3f}")


def backward_cost():
    a = 5.131551291421
    cases = {
        "Si2 PBE+MLP ecut 15 k4": (Crystal.from_arrays(a * torch.tensor([[0., 1, 1], [1, 0, 1], [1, 1, 0]]),
                                                       [[0, 0, 0], [.25, .25, .25]], ["Si", "Si"]), {}),
        "Al PBE+MLP ecut 15 k6": (Crystal.from_arrays(3.826695402367 * torch.tensor([[0., 1, 1], [1, 0, 1], [1, 1, 0]]),
                                                      [[0, 0, 0]], ["Al"]), dict(smearing="gaussian", temperature=0.01)),
    }
    for name, (crystal, kw) in cases.items():
        torch.manual_seed(0)
        xc = pwxc.xc.HybridXC(base="pbe", model=pwxc.xc.MLP(hidden=(32, 32)), a=0.1)
        basis = pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc=xc, **kw), ecut=15,
                                    kgrid=(4, 4, 4) if "Si" in name else (6, 6, 6))
        t0 = time.perf_counter()
        result = pwxc.scf(basis, tol=1e-8)
        t_scf = time.perf_counter() - t0
        t_eval = best(lambda: pwxc.energy.energy_terms(basis, result.orbitals, result.occupations,
                                                       result.entropy_term)["total"], repeats=2)
        t0 = time.perf_counter()
        result.energy.backward()
        t_back = time.perf_counter() - t0
        print(f"{name}: SCF {t_scf:.2f} s ({result.n_iterations} it) | graph energy evaluation {t_eval:.2f} s | "
              f"backward {t_back:.3f} s | (eval + backward) / SCF = {(t_eval + t_back) / t_scf:.3f}")


if __name__ == "__main__":
    xc_vs_hamiltonian()
    backward_cost()
