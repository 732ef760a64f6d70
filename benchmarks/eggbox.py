"""Egg-box effect: variation of the total energy under rigid translations of all atoms.

    OMP_NUM_THREADS=1 python benchmarks/eggbox.py

Translations by whole FFT-grid steps leave the energy unchanged (tested to 1e-10 Ha in
tests/test_invariance.py); translations by fractions of a grid step change it, because the XC energy is
integrated on the real-space grid. Prints the spread of E over fractional shifts along [111] for Si
(PBE and LDA) at the default FFT grid.
"""
import torch

import pwxc
from pwxc.crystal import Crystal

L = 5.131551291421 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)
POS = torch.tensor([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]], dtype=torch.float64)

for xc, ecut in [("lda_pz", 15.0), ("pbe", 15.0), ("pbe", 25.0)]:
    energies, basis0, result = [], None, None
    for i in range(9):
        model = pwxc.Model(Crystal.from_arrays(L, POS, ["Si", "Si"]), xc=xc)
        if basis0 is None:
            basis0 = pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=(2, 2, 2))
            n = basis0.fft.shape[0]
        shift = i / 8 / n                         # 0 .. 1 grid step along each axis
        model = pwxc.Model(Crystal.from_arrays(L, POS + shift, ["Si", "Si"]), xc=xc)
        result = pwxc.scf(basis0.with_model(model), tol=1e-12, density_tol=1e-8, guess=result)
        energies.append(float(result.energy))
    spread = max(energies) - min(energies)
    print(f"{xc:7s} ecut {ecut:4.1f} Ha  FFT {basis0.fft.shape}: E spread over shifts = {spread:.2e} Ha "
          f"(first-last {energies[-1] - energies[0]:.1e})")
