"""pwxc.gaussian: torch SCF on PySCF Gaussian integrals, checked number for number against PySCF.

The PySCF side (``pbc.dft.KRKS(cell, cell.make_kpts(kgrid)).density_fit(auxbasis=...)``, same basis,
grids, k mesh and smearing) is computed live; everything is skipped with a reason when PySCF is not
installed. Cells and k meshes are tiny so the file runs in about a minute on one core.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from pwxc.gaussian import _deps

needs_pyscf = pytest.mark.skipif(not _deps.have_pyscf(),
                                 reason="PySCF not installed (optional extra: pip install pwxc[gaussian])")

PAPER_DICT = {"mol_desc": "C 0 0 0; C 2.324 1.342 0", "lattice": "4.64 0 0; 2.32 4 0; 0 0 37",
              "basis": "sto-3g", "auxbasis": "def2-sv(p)"}
TOL = 1e-6  # Hartree per cell


def fcc_al(a=4.05, **extra):
    h = a / 2
    return {"mol_desc": "Al 0 0 0", "lattice": f"0 {h} {h}; {h} 0 {h}; {h} {h} 0", **extra}


def diamond_si(a=5.43, **extra):
    h, q = a / 2, a / 4
    return {"mol_desc": f"Si 0 0 0; Si {q} {q} {q}", "lattice": f"0 {h} {h}; {h} 0 {h}; {h} {h} 0", **extra}


CASES = {
    # name: (system, options); Al is a metal: Fermi-Dirac smearing, σ large enough that S != 0 on 2 k-points
    "Al-allelectron-sto3g": (fcc_al(), dict(basis="sto-3g", kgrid=(2, 1, 1), smearing="fermi", temperature=0.05)),
    "Al-gth-szv": (fcc_al(), dict(basis="gth-szv", pseudo="gth-pbe", kgrid=(2, 1, 1), smearing="fermi",
                                  temperature=0.05)),
    "Si-allelectron-sto3g": (diamond_si(), dict(basis="sto-3g", kgrid=(1, 1, 1))),
    "Si-gth-szv": (diamond_si(), dict(basis="gth-szv", pseudo="gth-pbe", kgrid=(1, 1, 1))),
}
_CACHE = {}


def run_case(name):
    """(pwxc result, converged PySCF KRKS object) for one case, computed once per session."""
    if name not in _CACHE:
        import pwxc.gaussian as pg
        from pyscf.pbc import dft

        system, opts = CASES[name]
        opts = dict(opts, auxbasis="def2-sv(p)")
        kgrid = opts.pop("kgrid")
        res = pg.scf(system, "pbe", kgrid, conv_tol=1e-10, **opts)
        cell = res.cell
        mf = dft.KRKS(cell, cell.make_kpts(kgrid)).density_fit(auxbasis=opts["auxbasis"])
        mf.xc = "pbe"
        if opts.get("smearing"):
            mf = mf.smearing(sigma=opts["temperature"], method="fermi")
        mf.conv_tol = 1e-10
        mf.verbose = 0
        # PySCF iterates to its own convergence; to save time it starts from pwxc's converged density
        # matrix except for the first case, which runs from PySCF's own 'minao' guess end to end.
        dm0 = res.density_matrix.numpy()
        if np.allclose(res.kpts, 0):
            dm0 = dm0.real  # PySCF's Γ-point code wants a real density matrix
        mf.kernel(dm0=None if name == "Al-allelectron-sto3g" else dm0)
        assert mf.converged
        _CACHE[name] = (res, mf)
    return _CACHE[name]


# ---------------------------------------------------------------------------------------- vs PySCF
@needs_pyscf
@pytest.mark.parametrize("name", list(CASES))
def test_total_energy_matches_pyscf_krks(name):
    res, mf = run_case(name)
    assert res.converged
    e_free = mf.e_free if getattr(mf, "e_free", None) is not None else mf.e_tot
    assert abs(float(res.energy) - e_free) < TOL, (float(res.energy), e_free)
    assert abs(res.energies["total"] - mf.e_tot) < TOL, (res.energies["total"], mf.e_tot)
    # band energies agree too
    assert np.allclose(res.mo_energy.numpy(), np.asarray(mf.mo_energy), atol=1e-4)
    if CASES[name][1].get("smearing"):
        assert res.energies["entropy"] < -1e-4  # smearing is really active in this test


@needs_pyscf
def test_dict_cell_matches_pyscf_angstrom_cell():
    """The paper dict (Å) builds the same cell PySCF builds from the same Å strings."""
    import pwxc.gaussian as pg
    from pyscf.pbc import gto

    cell, aux = pg.build_cell(PAPER_DICT)
    ref = gto.M(atom=PAPER_DICT["mol_desc"].replace(";", "\n"), a=PAPER_DICT["lattice"], basis="sto-3g",
                unit="Angstrom", verbose=0)
    assert aux == "def2-sv(p)"
    assert np.allclose(cell.lattice_vectors(), ref.lattice_vectors(), atol=1e-8)
    assert np.allclose(cell.atom_coords(), ref.atom_coords(), atol=1e-8)
    assert cell.nao == ref.nao == 10


@needs_pyscf
def test_pymatgen_structure_input_equals_dict_input():
    import pwxc.gaussian as pg
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.from_parameters(2.8638, 2.8638, 2.8638, 60, 60, 60), ["Al"], [[0, 0, 0]])
    cell_s, _ = pg.build_cell(s, "sto-3g")
    lat = " ; ".join(" ".join(f"{x:.12f}" for x in row) for row in s.lattice.matrix)
    cell_d, _ = pg.build_cell({"mol_desc": "Al 0 0 0", "lattice": lat})
    assert np.allclose(cell_s.lattice_vectors(), cell_d.lattice_vectors(), atol=1e-9)
    assert cell_s.basis == cell_d.basis == "sto-3g"


# ------------------------------------------------------------------------- neural functional, grads
@needs_pyscf
def test_hybridxc_a0_is_pbe_and_gradient_matches_finite_differences():
    import pwxc.gaussian as pg
    import pwxc.xc as X

    base, _ = run_case("Al-gth-szv")
    ints, opts = base.integrals, dict(smearing="fermi", temperature=0.05)
    torch.manual_seed(0)
    h0 = X.HybridXC(base="pbe", model=X.MLP(), a=0.0).double()
    r0 = pg.scf(None, h0, integrals=ints, conv_tol=1e-10, **opts)
    assert abs(float(r0.energy.detach()) - float(base.energy)) < 1e-9

    hyb = X.HybridXC(base="pbe", model=X.MLP(), a=0.3).double()  # float64 weights: clean FD

    def free_energy():
        return pg.scf(None, hyb, integrals=ints, conv_tol=1e-13, conv_tol_grad=1e-9,
                      dm0=base.density_matrix, **opts).energy

    e = free_energy()
    hyb.zero_grad()
    e.backward()
    params = list(hyb.parameters())
    grads = [p.grad.clone() for p in params]
    assert all(torch.isfinite(g).all() for g in grads)
    # the mixing weight a, one weight of the first layer, and a random direction in parameter space
    gen = torch.Generator().manual_seed(1)
    w0 = torch.zeros_like(hyb.model.layers[0].weight)
    w0[0, 0] = 1.0
    directions = [[torch.ones_like(p) if p is hyb.a else torch.zeros_like(p) for p in params],
                  [w0 if p is hyb.model.layers[0].weight else torch.zeros_like(p) for p in params],
                  [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]]
    h = 1e-4
    for v in directions:
        analytic = sum(float((g * d).sum()) for g, d in zip(grads, v))
        with torch.no_grad():
            for p, d in zip(params, v):
                p.add_(h * d)
            e_plus = float(free_energy())
            for p, d in zip(params, v):
                p.sub_(2 * h * d)
            e_minus = float(free_energy())
            for p, d in zip(params, v):
                p.add_(h * d)
        fd = (e_plus - e_minus) / (2 * h)
        assert abs(analytic - fd) <= 1e-6 * abs(fd), (analytic, fd)


@needs_pyscf
def test_warm_start_reuses_density_matrix():
    import pwxc.gaussian as pg

    base, _ = run_case("Al-gth-szv")
    ws = pg.WarmStart(base.density_matrix)
    e, res = pg.energy(None, "pbe", integrals=base.integrals, smearing="fermi", temperature=0.05,
                       conv_tol=1e-10, warm_start=ws, return_result=True)
    assert res.converged and res.n_iterations <= 3 < base.n_iterations
    assert abs(float(e) - float(base.energy)) < 1e-8
    assert ws.last_result is res


# ------------------------------------------------------------------------------------- bad input
@needs_pyscf
@pytest.mark.parametrize("change, quoted", [
    (dict(basis="sto-4q"), "sto-4q"),
    (dict(mol_desc="C 0 0; C 1 1 1"), "C 0 0"),
    (dict(mol_desc="C 0 0 0; Qq 1 1 1"), "Qq"),
    (dict(mol_desc="C 0 0 zero"), "C 0 0 zero"),
    (dict(lattice="4.64 0 0; 2.32 4 0"), "4.64 0 0; 2.32 4 0"),
    (dict(lattice="4.64 0 0; 2.32 4 0; 0 0 3x7"), "0 0 3x7"),
    (dict(lattice="1 0 0; 2 0 0; 0 0 1"), "1 0 0; 2 0 0; 0 0 1"),
    (dict(lattice=None), "lattice"),
    (dict(latice="1 0 0; 0 1 0; 0 0 1"), "latice"),
])
def test_bad_system_input_raises_valueerror_quoting_text(change, quoted):
    import pwxc.gaussian as pg

    system = {**PAPER_DICT, **change}
    if change.get("lattice", "") is None:
        del system["lattice"]
    with pytest.raises(ValueError) as info:
        pg.build_cell(system)
    assert quoted in str(info.value)


@needs_pyscf
def test_bad_auxbasis_pseudo_and_odd_electrons_fail_early():
    import pwxc.gaussian as pg

    with pytest.raises(ValueError, match="nonexistent-fit"):
        pg.scf(fcc_al(basis="gth-szv", pseudo="gth-pbe"), "pbe", (2, 1, 1), auxbasis="nonexistent-fit")
    with pytest.raises(ValueError, match="gth-foo"):
        pg.scf(fcc_al(), "pbe", (2, 1, 1), pseudo="gth-foo")
    with pytest.raises(ValueError, match="odd"):
        pg.scf(fcc_al(), "pbe", (1, 1, 1))  # 13 electrons, one k-point, restricted
    with pytest.raises(ValueError, match="temperature"):
        pg.scf(fcc_al(), "pbe", (2, 1, 1), smearing="fermi")


@needs_pyscf
def test_basis_set_exchange_names():
    from pwxc.gaussian.basis_sets import resolve_basis

    assert resolve_basis("sto-3g", ["Al"]) == "sto-3g"  # shipped with PySCF: passed by name
    aux = resolve_basis("def2-sv(p)", ["Al", "Si"])  # not in PySCF's tables: basis-set-exchange
    assert set(aux) == {"Al", "Si"}
    assert [sh[0] for sh in aux["Al"]].count(2) == 1  # one d shell in def2-SV(P) for Al
    sp = resolve_basis("6-31g", ["Si"])  # Pople, PySCF's own
    assert sp == "6-31g"
    with pytest.raises(ValueError, match="Og"):
        resolve_basis("def2-sv(p)", ["Og"])


def test_missing_extra_names_pip_install():
    with pytest.raises(ImportError, match=r"pip install pwxc\[gaussian\]"):
        _deps.require("pyscf_module_that_does_not_exist")
    # a fresh interpreter in which PySCF cannot be imported at all
    code = ("import sys; sys.modules['pyscf'] = None\n"
            "import pwxc.gaussian as pg\n"
            "try:\n    pg.scf({'mol_desc': 'Al 0 0 0', 'lattice': '3 0 0; 0 3 0; 0 0 3'}, 'pbe', (2, 1, 1))\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install pwxc[gaussian]" in out.stdout, out.stderr


@needs_pyscf
def test_uniform_grid_too_large_for_all_electron_is_refused():
    import pwxc.gaussian as pg

    with pytest.raises(ValueError, match="grid='becke'"):  # cell.mesh is 435^3 for all-electron Al
        pg.scf(fcc_al(), "pbe", (2, 1, 1), grid="uniform")


# ------------------------------------------------------------------------------------ slow checks
@needs_pyscf
@pytest.mark.slow
@pytest.mark.parametrize("grid", ["uniform", "becke"])
def test_al_gth_222_matches_pyscf(grid):
    """Bigger k mesh, both grid kinds (uniform = PySCF UniformGrids on cell.mesh)."""
    import pwxc.gaussian as pg
    from pyscf.pbc import dft
    from pyscf.pbc.dft import gen_grid

    res = pg.scf(fcc_al(), "pbe", (2, 2, 2), basis="gth-szv", pseudo="gth-pbe", auxbasis="def2-sv(p)",
                 smearing="fermi", temperature=0.01, grid=grid, conv_tol=1e-10)
    cell = res.cell
    mf = dft.KRKS(cell, cell.make_kpts((2, 2, 2))).density_fit(auxbasis="def2-sv(p)")
    if grid == "uniform":
        mf.grids = gen_grid.UniformGrids(cell)
    mf.xc, mf.conv_tol, mf.verbose = "pbe", 1e-10, 0
    mf = mf.smearing(sigma=0.01, method="fermi")
    mf.kernel()
    assert abs(float(res.energy) - mf.e_free) < TOL
    assert abs(res.energies["total"] - mf.e_tot) < TOL
