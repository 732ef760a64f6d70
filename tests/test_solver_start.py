"""Eigensolver details behind the SCF's speed: the plane-wave-subspace start, per-band tolerances
(empty bands converged loosely) and the Cholesky Rayleigh–Ritz path, each against an exact reference."""
import pytest
import torch

import pwxc
from pwxc.hamiltonian import Hamiltonian
from pwxc.solvers.eigensolver import lobpcg, rayleigh_ritz
from pwxc.solvers.initial_guess import subspace_hamiltonian, subspace_orbitals
from pwxc.structures import builtin_structure
from pwxc.terms.local_pseudo import local_potential_recip
from pwxc.terms.nonlocal_pseudo import projectors

from conftest import random_hermitian


def _hamiltonian(name="Al", ecut=6.0):
    model = pwxc.Model(builtin_structure(name), xc="pbe", pseudopotentials="gth-pbe", smearing="gaussian",
                       temperature=0.02)
    basis = pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=(2, 2, 2))
    lat, pos = model.crystal.lattice.detach(), model.crystal.positions.detach()
    v = basis.fft.to_real(local_potential_recip(basis, lat, pos)).real.detach()
    v = v + 0.05 * torch.cos(torch.arange(v.numel(), dtype=v.dtype).reshape(v.shape))   # break any accident
    return Hamiltonian(basis, v, *[t.detach() if t is not None else None for t in projectors(basis, lat, pos)])


@pytest.mark.parametrize("name", ["Al", "Cu"])        # Cu: d projectors (l = 2) in the nonlocal block
def test_subspace_matrix_is_the_block_of_the_operator(name):
    """⟨G_i|H|G_j⟩ of the dense start problem equals H applied to unit vectors (FFT path) exactly."""
    ham = _hamiltonian(name)
    basis = ham.basis
    n_sub, kidx = 12, torch.arange(basis.n_kpoints)
    sel = torch.topk(ham.kinetic.masked_fill(~basis.mask, float("inf")), n_sub, dim=1, largest=False).indices
    dense = subspace_hamiltonian(ham, kidx, sel)
    unit = torch.zeros(basis.n_kpoints, n_sub, basis.mask.shape[1], dtype=torch.complex128)
    unit.scatter_(2, sel[:, :, None], 1.0)
    applied = ham.apply(unit, kidx)                                   # rows H e_j
    block = torch.gather(applied, 2, sel[:, None, :].expand(-1, n_sub, -1)).transpose(-1, -2)  # [i, j]
    assert torch.allclose(dense, block, atol=1e-13, rtol=0)
    assert float((dense - dense.conj().transpose(-1, -2)).abs().max()) < 1e-13


def test_subspace_orbitals_are_exact_when_the_subspace_is_the_whole_sphere():
    ham = _hamiltonian("Al", ecut=3.0)
    basis = ham.basis
    n_all = int(basis.n_planewaves.min())
    psi = subspace_orbitals(ham, 4, n_sub=n_all)
    hpsi = ham.apply(psi, torch.arange(basis.n_kpoints))
    lam = torch.einsum("knp,knp->kn", psi.conj(), hpsi).real
    exact = torch.stack([torch.linalg.eigvalsh(subspace_hamiltonian(
        ham, torch.tensor([k]), torch.arange(int(basis.n_planewaves[k]))[None]))[0, :4]
        for k in range(basis.n_kpoints)])
    if bool((basis.n_planewaves == n_all).all()):
        assert torch.allclose(lam, exact, atol=1e-12)
    assert subspace_orbitals(ham, n_all) is None                     # fewer than 2 plane waves per band


def test_lobpcg_per_band_tolerances():
    """Bands with a loose tolerance stop early; the tight ones still reach theirs."""
    torch.manual_seed(1)
    nk, n, m = 2, 80, 6
    h = random_hermitian(nk, n, 8)

    def apply(x, kidx, rows=None):
        return x @ h[kidx].transpose(-1, -2)

    tol = torch.full((nk, m + 2), 1e-10, dtype=torch.float64)
    tol[:, 3:] = 1e-3
    res = lobpcg(apply, torch.randn(nk, m + 2, n, dtype=torch.complex128), lambda r, x, k: r, m, tol=tol,
                 maxiter=300)
    assert res.converged
    assert bool((res.residual_norms[:, :3] < 1e-10).all()) and bool((res.residual_norms[:, 3:m] < 1e-3).all())
    exact = torch.linalg.eigvalsh(h)[:, :m]
    assert torch.allclose(res.eigenvalues[:, :3], exact[:, :3], atol=1e-12)
    assert bool(((res.eigenvalues[:, 3:m] - exact[:, 3:m]).abs() < 1e-3).all())


def test_rayleigh_ritz_cholesky_and_fallback_paths_agree():
    torch.manual_seed(2)
    nk, m, n = 3, 8, 40
    herm = torch.randn(n, n, dtype=torch.complex128)
    herm = herm + herm.conj().T
    v = torch.randn(nk, m, n, dtype=torch.complex128)
    e, c = rayleigh_ritz(v, v @ herm.T)                                 # well conditioned: Cholesky path
    q = torch.linalg.qr(v.transpose(-1, -2)).Q                          # (nk, n, m) orthonormal basis
    ref = torch.linalg.eigvalsh(q.conj().transpose(-1, -2) @ herm @ q)
    assert torch.allclose(e, ref, atol=1e-10)
    x = c.transpose(-1, -2) @ v
    assert torch.allclose(x.conj() @ x.transpose(-1, -2), torch.eye(m, dtype=torch.complex128).expand(nk, m, m),
                          atol=1e-10)
    dep = torch.cat([v, v[:, :2] + 1e-14 * torch.randn(nk, 2, n, dtype=torch.complex128)], 1)  # dependent rows
    e2, _ = rayleigh_ritz(dep, dep @ herm.T)                            # falls back to dropping directions
    assert torch.allclose(e2[:, :m], ref, atol=1e-8) and bool((e2[:, m:] > 1e7).all())


def test_empty_band_tolerance_keeps_energy_and_occupied_bands():
    """Default (empty bands to residual 1e-4) vs every band converged: same energy and occupied bands;
    empty-band eigenvalues within the quadratic error bound."""
    model = pwxc.Model(builtin_structure("Al"), xc="pbe", pseudopotentials="gth-pbe", smearing="gaussian",
                       temperature=0.01)
    basis = pwxc.PlaneWaveBasis(model, ecut=10.0, kgrid=(4, 4, 4))
    loose = pwxc.scf(basis, tol=1e-10, n_bands=10)
    full = pwxc.scf(basis, tol=1e-10, n_bands=10, empty_band_tol=None)
    assert loose.converged and full.converged
    assert abs(float(loose.energy) - float(full.energy)) < 1e-9
    occupied = full.occupations > 1e-12
    assert float((loose.eigenvalues - full.eigenvalues)[occupied].abs().max()) < 1e-7
    assert float((loose.eigenvalues - full.eigenvalues).abs().max()) < 1e-4
    assert bool((~occupied).any())                                     # the test exercises empty bands


def test_response_converges_loose_empty_bands_first():
    """Linear response mixes occupied and empty bands: from an SCF with loose empty bands (default),
    KSState brings them to the occupied bands' residual, so d²E/ds² (Sternheimer) matches the fully
    converged SCF; without that step the error is ~40× larger (measured 2e-6 vs 5e-8 Ha)."""
    from pwxc.response.eos import strain_derivatives

    model = pwxc.Model(builtin_structure("Al"), xc="pbe", pseudopotentials="gth-pbe", smearing="gaussian",
                       temperature=0.02)
    basis = pwxc.PlaneWaveBasis(model, ecut=8.0, kgrid=(3, 3, 3))
    full = strain_derivatives(pwxc.scf(basis, tol=1e-11, n_bands=8, empty_band_tol=None)).d2e_ds2
    loose = pwxc.scf(basis, tol=1e-11, n_bands=8)
    assert loose.empty_band_tol == 1e-4
    refined = strain_derivatives(loose).d2e_ds2
    loose.empty_band_tol = None                        # pretend the bands were converged: no refinement
    unrefined = strain_derivatives(loose).d2e_ds2
    assert abs(refined - full) < 3e-7 < abs(unrefined - full)
