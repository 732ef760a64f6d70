"""Ewald energy against ABINIT 9.6.2 and the LOBPCG solver against dense diagonalisation."""
import math

import pytest
import torch

from pwxc.crystal import Crystal
from pwxc.solvers.eigensolver import lobpcg
from pwxc.terms.ewald import ewald_energy

from conftest import FIXED_SETTINGS, random_hermitian

ZION = {"Si": 4, "Al": 3, "Mg": 10, "O": 6, "Cu": 11}


@pytest.mark.parametrize("case_id", ["si_diamond_pbe_k2", "al_fcc_pbe_k8_gaussian", "mgo_rocksalt_pbe_mgq10_k4",
                                     "cu_fcc_pbe_k8_gaussian"])
def test_ewald_matches_abinit(case_id):
    entry = FIXED_SETTINGS[case_id]
    s = entry["structure"]
    crystal = Crystal.from_arrays(s["lattice_vectors_ang"], s["frac_positions"], s["species"], unit="angstrom")
    z = torch.tensor([ZION[e] if not (e == "Mg" and "q2" in case_id) else 2 for e in s["species"]],
                     dtype=torch.float64)
    e = ewald_energy(crystal.lattice, crystal.positions, z)
    assert float(e) == pytest.approx(entry["abinit"]["components_ha"]["Ewald energy"], abs=1e-10)


def test_ewald_is_invariant_to_cell_choice_and_gradient_finite():
    a = 5.0
    lat = a * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)
    pos = torch.tensor([[0, 0, 0], [0.25, 0.25, 0.25]], dtype=torch.float64)
    z = torch.tensor([4.0, 4.0], dtype=torch.float64)
    e1 = ewald_energy(lat, pos, z)
    m = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 1]], dtype=torch.float64)  # unimodular
    lat2 = m @ lat
    pos2 = pos @ lat @ torch.linalg.inv(lat2)
    assert float(ewald_energy(lat2, pos2, z)) == pytest.approx(float(e1), abs=1e-11)
    lat.requires_grad_(True)
    (g,) = torch.autograd.grad(ewald_energy(lat, pos, z), lat)
    assert torch.isfinite(g).all()


def test_lobpcg_matches_dense_eigh():
    torch.manual_seed(0)
    nk, n, m = 3, 60, 5
    h = random_hermitian(nk, n, 10)
    x0 = torch.randn(nk, m + 2, n, dtype=torch.complex128)

    def apply(x, kidx):
        return x @ h[kidx].transpose(-1, -2)

    res = lobpcg(apply, x0, lambda r, x, kidx: r, m, tol=1e-10, maxiter=300)
    exact = torch.linalg.eigvalsh(h)[:, :m]
    assert res.converged
    assert torch.allclose(res.eigenvalues[:, :m], exact, atol=1e-10)
