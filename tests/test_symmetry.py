"""Space-group k-point reduction: the same numbers as the full mesh, for less work.

Every comparison is against pwxc's own full-mesh (time-reversal only) calculation at identical
settings: symmetry reduction must be an exact accelerator, never an approximation.
"""
import pytest
import torch
from pymatgen.core import Lattice, Structure

import pwxc
from pwxc.basis.kpoints import monkhorst_pack
from pwxc.basis.symmetry import find_symmetry, irreducible_kpoints
from pwxc.crystal import Crystal

FCC = torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)


def _pair(model, **basis_kwargs):
    out = []
    for symmetry in (False, True):
        basis = pwxc.PlaneWaveBasis(model, symmetry=symmetry, **basis_kwargs)
        out.append((basis, pwxc.scf(basis, tol=1e-11)))
    return out


def test_fcc_irreducible_mesh_counts_and_weights():
    crystal = Crystal.from_arrays(3.8 * FCC, [[0, 0, 0]], ["Al"])
    ops = find_symmetry(crystal)
    assert ops.n_ops == 48
    # Γ-centred n×n×n meshes of the fcc lattice: 29 (n = 8) and 8 (n = 4) irreducible points,
    # the numbers pw.x prints for these meshes
    for n, expected in ((8, 29), (4, 8)):
        k, w, used = irreducible_kpoints((n, n, n), (0, 0, 0), ops)
        assert len(k) == expected and used.n_ops == 48
        assert abs(float(w.sum()) - 1) < 1e-14
        # every weight is an orbit size over n³
        assert torch.allclose(w * n**3, torch.round(w * n**3))
    full, _ = monkhorst_pack((8, 8, 8))
    assert len(full) == 260


def test_metal_energy_fermi_level_and_stress_equal_full_mesh():
    crystal = Crystal.from_arrays(3.8 * FCC, [[0, 0, 0]], ["Al"])
    model = pwxc.Model(crystal, xc="pbe", smearing="gaussian", temperature=0.01)
    (b_full, full), (b_sym, sym) = _pair(model, ecut=10.0, kgrid=(6, 6, 6))
    assert b_sym.n_kpoints == 16 and b_full.n_kpoints == 112
    assert abs(float(sym.energy - full.energy)) < 1e-9
    assert abs(float(sym.fermi_level - full.fermi_level)) < 1e-7
    assert torch.allclose(pwxc.stress(sym), pwxc.stress(full), atol=1e-9, rtol=0)
    # the symmetrised density is that of the full mesh
    assert float((sym.density - full.density).abs().max()) < 1e-7


def test_symmetry_breaking_displacement_forces_equal_full_mesh():
    positions = [[0.01, 0.02, -0.005], [0.25, 0.25, 0.25]]
    crystal = Crystal.from_arrays(5.13 * FCC, positions, ["Si", "Si"])
    model = pwxc.Model(crystal, xc="lda_pz")
    (_, full), (b_sym, sym) = _pair(model, ecut=10.0, kgrid=(3, 3, 3), fft_size=(24, 24, 24))
    assert 1 < b_sym.symmetry.n_ops < 48
    assert abs(float(sym.energy - full.energy)) < 1e-9
    f_full, f_sym = pwxc.forces(full), pwxc.forces(sym)
    assert float(f_full.abs().max()) > 1e-2          # a real force, not zero by symmetry
    assert float((f_sym - f_full).abs().max()) < 1e-6
    assert torch.allclose(pwxc.stress(sym), pwxc.stress(full), atol=1e-8, rtol=0)


def test_hexagonal_cell_and_xc_parameter_gradient():
    hcp = Structure(Lattice.hexagonal(3.21, 5.21), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    torch.manual_seed(0)
    functional = pwxc.xc.HybridXC(model=pwxc.xc.MLP(hidden=(4,)), a=0.3)
    model = pwxc.Model(hcp, xc=functional, pseudopotentials={"Mg": "gth-pbe-q2"},
                       smearing="gaussian", temperature=0.01)
    grads, energies = [], []
    for symmetry in (False, True):
        basis = pwxc.PlaneWaveBasis(model, ecut=8.0, kgrid=(3, 3, 2), symmetry=symmetry)
        result = pwxc.scf(basis, tol=1e-11)
        params = [p for p in functional.parameters()]
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(result.energy, params)]))
        energies.append(float(result.energy.detach()))
        if symmetry:
            assert basis.symmetry.n_ops == 24
    assert abs(energies[0] - energies[1]) < 1e-9
    assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-10)


def test_broken_symmetry_is_refused():
    crystal = Crystal.from_arrays(3.8 * FCC, [[0, 0, 0]], ["Al"])
    model = pwxc.Model(crystal, xc="pbe", smearing="gaussian", temperature=0.01)
    basis = pwxc.PlaneWaveBasis(model, ecut=6.0, kgrid=(2, 2, 2), symmetry=True)
    basis.with_model(pwxc.Model(Crystal.from_arrays(3.9 * FCC, [[0, 0, 0]], ["Al"]), xc="pbe",
                                smearing="gaussian", temperature=0.01))     # isotropic scaling: fine
    sheared = 3.8 * FCC + torch.tensor([[0.0, 0.2, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="symmetry"):
        basis.with_model(pwxc.Model(Crystal.from_arrays(sheared, [[0, 0, 0]], ["Al"]), xc="pbe",
                                    smearing="gaussian", temperature=0.01))
    result = pwxc.scf(basis, tol=1e-6)
    with pytest.raises(NotImplementedError, match="symmetry=False"):
        pwxc.response.make_differentiable(result)


def test_density_symmetrizer_is_a_projection_and_cache_free_path_agrees(monkeypatch):
    from pwxc.basis.symmetry import DensitySymmetrizer
    positions = [[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]]
    crystal = Crystal.from_arrays(5.13 * FCC, positions, ["Si", "Si"])   # non-symmorphic ops (t ≠ 0)
    basis = pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc="lda_pz"), ecut=6.0, kgrid=(2, 2, 2), symmetry=True)
    sym = basis.symmetrizer
    assert any(bool((torch.as_tensor(t) != 0).any()) for t in basis.symmetry.translations)
    rho = torch.rand(1, *basis.fft.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    once = sym(rho)
    assert torch.allclose(sym(once), once, atol=1e-13)                       # P² = P
    monkeypatch.setattr(DensitySymmetrizer, "CACHE_ENTRIES", 0)
    uncached = DensitySymmetrizer(basis.symmetry, basis.fft, crystal.lattice, 2 * (2 * 6.0) ** 0.5)
    assert uncached._cache is None
    assert torch.allclose(uncached(rho), once, atol=1e-13)


def test_bad_symmetry_arguments_are_named():
    model = pwxc.Model(Crystal.from_arrays(3.8 * FCC, [[0, 0, 0]], ["Al"]), xc="pbe",
                       smearing="gaussian", temperature=0.01)
    with pytest.raises(TypeError, match="symmetry must be"):
        pwxc.PlaneWaveBasis(model, ecut=6.0, kgrid=(2, 2, 2), symmetry="yes")
    with pytest.raises(ValueError, match="symprec"):
        pwxc.PlaneWaveBasis(model, ecut=6.0, kgrid=(2, 2, 2), symmetry=True, symprec=0.0)
