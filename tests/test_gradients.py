"""Forces and stress (Hellmann–Feynman, autograd) against central finite differences of SCF energies.

Finite differences hold the integer G-vector set fixed (`basis.with_model`), which is the definition
of the analytic (fixed-basis) stress. Acceptance: forces 1e-5 Ha/Bohr, stress 1e-6 Ha/Bohr³.
"""
import pytest
import torch

import pwxc
from pwxc.crystal import Crystal

from conftest import SI_LATTICE_BOHR, aluminium, silicon

TIGHT = dict(tol=1e-12, density_tol=1e-8)
EYE = torch.eye(3, dtype=torch.float64)


def _energy(basis, crystal):
    model = basis.model
    new = pwxc.Model(crystal, xc=model.xc, pseudopotentials=model.pseudopotentials, smearing=model.smearing,
                     temperature=model.temperature)
    return float(pwxc.scf(basis.with_model(new), **TIGHT).energy)


def test_forces_match_finite_differences_si():
    pos = torch.tensor([[0, 0, 0], [0.27, 0.24, 0.25]], dtype=torch.float64)
    basis = silicon(positions=pos, ecut=10, fft_size=(24, 24, 24))
    result = pwxc.scf(basis, **TIGHT)
    forces = pwxc.forces(result)
    # Σ F = -dE/d(rigid shift) vanishes up to the egg-box effect of the real-space XC grid
    assert torch.allclose(forces.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-5)
    h = 1e-3
    inv = torch.linalg.inv(SI_LATTICE_BOHR)
    for atom, axis in [(1, 0), (1, 2), (0, 1)]:
        step = torch.zeros_like(pos)
        step[atom] = h * EYE[axis] @ inv
        ep = _energy(basis, Crystal.from_arrays(SI_LATTICE_BOHR, pos + step, ["Si", "Si"]))
        em = _energy(basis, Crystal.from_arrays(SI_LATTICE_BOHR, pos - step, ["Si", "Si"]))
        assert float(forces[atom, axis]) == pytest.approx(-(ep - em) / (2 * h), abs=1e-5)


@pytest.mark.parametrize("system", ["si", pytest.param("al", marks=pytest.mark.slow)])
def test_stress_matches_finite_differences(system):
    eps = torch.tensor([[0.01, 0.004, 0], [0.004, -0.005, 0.002], [0, 0.002, 0.003]], dtype=torch.float64)
    if system == "si":
        pos = torch.tensor([[0, 0, 0], [0.26, 0.25, 0.24]], dtype=torch.float64)
        basis = silicon(positions=pos, ecut=10, fft_size=(24, 24, 24))
        species = ["Si", "Si"]
    else:
        pos = torch.zeros(1, 3, dtype=torch.float64)
        a = 3.826695402367
        lattice = a * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64) @ (EYE + eps).T
        basis = aluminium(lattice=lattice, ecut=8, kgrid=(4, 4, 4))
        species = ["Al"]
    lattice = basis.model.crystal.lattice
    result = pwxc.scf(basis, **TIGHT)
    sigma = pwxc.stress(result)
    volume = float(torch.linalg.det(lattice))
    h = 5e-4
    for a, b in [(0, 0), (2, 2), (0, 1), (1, 2)]:
        e = torch.zeros(3, 3, dtype=torch.float64)
        e[a, b] = e[b, a] = h / (2 if a != b else 1)
        ep = _energy(basis, Crystal.from_arrays(lattice @ (EYE + e).T, pos, species))
        em = _energy(basis, Crystal.from_arrays(lattice @ (EYE - e).T, pos, species))
        fd = (ep - em) / (2 * h) / volume
        assert float(sigma[a, b]) == pytest.approx(fd, abs=1e-6)
