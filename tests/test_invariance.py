"""Discretisation checks: cutoff convergence, exact invariances, and the egg-box effect.

- Energy vs ecut decreases monotonically and converges (variational in the basis size).
- Rigid translation of all atoms by whole FFT-grid steps leaves the energy unchanged (1e-10 Ha).
- An equivalent primitive cell (unimodular change of lattice vectors) gives the same energy (1e-10 Ha)
  when the real-space grid points coincide (equal n in all directions).
"""
import pytest
import torch

import pwxc
from pwxc.crystal import Crystal

from conftest import SI_LATTICE_BOHR

TIGHT = dict(tol=1e-13, density_tol=1e-9)
POS = torch.tensor([[0.0, 0.0, 0.0], [0.26, 0.24, 0.25]], dtype=torch.float64)


def _energy(lattice, positions, n=20, ecut=7.0, kgrid=(2, 2, 2), xc="pbe"):
    model = pwxc.Model(Crystal.from_arrays(lattice, positions, ["Si", "Si"]), xc=xc)
    return float(pwxc.scf(pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=kgrid, fft_size=(n, n, n)), **TIGHT).energy)


def test_energy_decreases_monotonically_with_ecut():
    energies = []
    for ecut in (6, 9, 12, 15, 18):
        model = pwxc.Model(Crystal.from_arrays(SI_LATTICE_BOHR, POS, ["Si", "Si"]), xc="lda_pz")
        energies.append(float(pwxc.scf(pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=(1, 1, 1))).energy))
    steps = [b - a for a, b in zip(energies, energies[1:])]
    assert all(s < 0 for s in steps)
    assert abs(steps[-1]) < abs(steps[0]) / 10


def test_translation_by_grid_steps_is_exact():
    e0 = _energy(SI_LATTICE_BOHR, POS)
    shift = torch.tensor([3 / 20, -1 / 20, 7 / 20], dtype=torch.float64)
    assert abs(_energy(SI_LATTICE_BOHR, POS + shift) - e0) < 1e-10


def test_equivalent_primitive_cell_gives_the_same_energy():
    e0 = _energy(SI_LATTICE_BOHR, POS)
    # a3' = a3 - a1 is another fcc primitive vector of the same length (det m = 1), so the same grid
    # (n, n, n) resolves the density sphere in both cells and maps grid points onto grid points
    m = torch.tensor([[1, 0, 0], [0, 1, 0], [-1, 0, 1]], dtype=torch.float64)
    lattice2 = m @ SI_LATTICE_BOHR
    positions2 = POS @ SI_LATTICE_BOHR @ torch.linalg.inv(lattice2)
    assert abs(_energy(lattice2, positions2) - e0) < 1e-10
