"""UPF norm-conserving pseudopotentials and the nonlinear core correction (pwxc.pseudo.upf,
pwxc.pseudo.radial, pwxc.terms.core_correction): reader, radial transforms, finite-difference checks
of forces, stress and dE/dθ with core-corrected files, and bad input. The comparison with Quantum
ESPRESSO at equal settings is in test_upf_qe.py."""
import math
import warnings

import numpy as np
import pytest
import torch

import pwxc
from pwxc.crystal import Crystal
from pwxc.pseudo import PseudopotentialFunctionalWarning, UPFError, UPFPseudopotential
from pwxc.pseudo.library import UPF_FAMILIES, load_pseudopotential, pseudopotential_dir
from pwxc.pseudo.radial import RadialTransform, simpson_weights
from pwxc.terms.core_correction import core_density

DOJO = pseudopotential_dir() / UPF_FAMILIES["pseudodojo-pbe"]
TIGHT = dict(tol=1e-12, density_tol=1e-8)
EYE = torch.eye(3, dtype=torch.float64)
FCC = 0.5 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)


def dojo(element):
    return load_pseudopotential(element, "pseudodojo-pbe")


# ------------------------------------------------------------------------------------------- reader
def test_reads_pseudodojo_header_and_sections():
    al = dojo("Al")
    assert al.element == "Al" and al.z_ion == 3 and al.functional == "PBE"
    assert al.has_core_correction and al.lmax == 2
    assert [al.n_projectors(l) for l in range(3)] == [2, 2, 2]
    assert len(al.r) == 1876 and al.r[0] == 0.0
    # D_ij of the file (Rydberg) halved: first s-channel entry 1.0253333203E+01 Ry
    assert al.h[0][0][0] == pytest.approx(0.5 * 10.253333203, rel=1e-12)
    mg = dojo("Mg")
    assert not mg.has_core_correction and mg.z_ion == 10
    assert torch.equal(mg.core_form_factor(torch.ones(3, dtype=torch.float64)), torch.zeros(3, dtype=torch.float64))


def test_every_bundled_file_reads():
    files = sorted(DOJO.glob("*.upf"))
    assert len(files) == 43
    with_core = 0
    for path in files:
        pp = UPFPseudopotential(path)
        assert pp.element == path.stem and pp.z_ion > 0 and pp.functional_family == "pbe"
        with_core += pp.has_core_correction
        q = torch.zeros(1, dtype=torch.float64)
        # the atomic valence density integrates to the valence charge
        assert float(pp.atomic_density_form_factor(q)) == pytest.approx(pp.z_ion, rel=2e-3)
    assert with_core == 39


def test_simpson_weights_integrate_polynomials_exactly():
    for n in (3, 4, 5, 6, 101, 102):
        x = np.arange(n, dtype=float)
        w = simpson_weights(n)
        for power in (0, 1, 2, 3):
            assert w @ x**power == pytest.approx((n - 1) ** (power + 1) / (power + 1), rel=1e-13)


def test_radial_transform_of_a_gaussian_is_analytic():
    """4π ∫ r² e^{-r²} j_0(qr) dr = π^{3/2} e^{-q²/4}; the interpolated table and its slope match."""
    r = np.arange(0, 2001) * 0.005
    table = RadialTransform(r, np.full_like(r, 0.005), r**2 * np.exp(-r**2), l=0)
    q = torch.linspace(0, 12, 997, dtype=torch.float64, requires_grad=True)
    values = table(q)
    exact = math.pi**1.5 * torch.exp(-q.detach()**2 / 4)
    assert torch.allclose(values.detach(), exact, atol=1e-11, rtol=0)
    (slope,) = torch.autograd.grad(values.sum(), q)
    # the slope of a cubic Hermite interpolant errs by O(DQ^3 max|F''''|): 4e-9 here
    assert torch.allclose(slope, -q.detach() / 2 * exact, atol=1e-8, rtol=0)


@pytest.mark.parametrize("element", ["Cu", "O", "K"])
def test_interpolated_form_factors_equal_quadrature(element):
    """The Hermite tables reproduce direct quadrature at off-grid q to 1e-10 of the form factor's scale."""
    pp = dojo(element)
    q = torch.tensor(np.random.default_rng(0).uniform(0, 14, 200), dtype=torch.float64)
    tables = [pp._local, pp._core] + [t for channel in pp._projectors for t in channel]
    for table in tables:
        exact, _ = table.exact(q.numpy())
        scale = np.abs(table.exact(np.linspace(0, 14, 50))[0]).max()
        assert np.abs(table(q).numpy() - exact).max() < 1e-10 * scale


def test_local_integrals_stop_at_r_cut():
    """The Cu file's V(r) is not -Z/r far out (r V/2 + Z ≈ 1e-5 beyond 4 Bohr, 2e-3 beyond 9.8 Bohr):
    integrating the whole mesh moves the G = 0 term by ~1 Ha·Bohr³ (0.2 Ha per Cu atom), integrating to
    QE's 10 Bohr by 0.03 (a spurious 2 GPa). The family's r_cut (5.99 Bohr, <El>.toml) is the default;
    r_cut=10 reproduces QE."""
    import re
    pp = dojo("Cu")
    assert pp.r_cut == 5.99
    qe = UPFPseudopotential(pp.path, r_cut=10.0)
    text = pp.path.read_text()
    v = np.array(re.search(r"<PP_LOCAL[^>]*>(.*?)</PP_LOCAL>", text, re.S).group(1).split(), dtype=float)
    r, rab = pp.r, pp.rab
    integrand = 4 * math.pi * r * (r * v / 2 + pp.z_ion) * rab
    for radius, obj in ((10.0, qe), (5.99, pp)):
        n = int(np.searchsorted(r, radius, side="right")) + 1
        n = 2 * ((n + 1) // 2) - 1                  # QE's rule: first point beyond, odd count
        assert obj.alpha_z == pytest.approx(simpson_weights(n) @ integrand[:n], abs=1e-9)
    assert abs(qe.alpha_z - simpson_weights(len(r)) @ integrand) > 0.5
    assert 0.01 < abs(qe.alpha_z - pp.alpha_z) < 0.1
    bad = pp.path.parent / "nonexistent.upf"
    assert not bad.exists()


def test_local_form_factor_is_smooth_at_zero():
    pp = dojo("Si")
    q = torch.tensor([0.0, 1e-6, 1e-3], dtype=torch.float64)
    values = pp.local_form_factor(q)
    assert float(values[0]) == pytest.approx(pp.alpha_z, abs=1e-9)
    assert float(values[1]) == pytest.approx(pp.alpha_z, abs=1e-8)


# ------------------------------------------------------------------------------------------- core correction
def al_model(lattice=None, **kw):
    lattice = 7.6 * FCC if lattice is None else lattice
    crystal = Crystal.from_arrays(lattice, [[0.0, 0, 0]], ["Al"])
    kw.setdefault("pseudopotentials", "pseudodojo-pbe")
    return pwxc.Model(crystal, xc="pbe", smearing="gaussian", temperature=0.02, **kw)


def test_core_density_integrates_to_the_core_charge():
    basis = pwxc.PlaneWaveBasis(al_model(), ecut=30, kgrid=(1, 1, 1))
    core = core_density(basis)
    volume = float(basis.model.crystal.volume)
    charge = float(core.sum()) * volume / basis.fft.size
    pp = basis.model.pseudopotentials["Al"]
    assert charge == pytest.approx(float(pp.core_form_factor(torch.zeros(1, dtype=torch.float64))), rel=1e-10)
    assert charge > 0.5     # the Al model core holds a sizeable charge


def test_core_correction_enters_the_xc_energy():
    """Dropping the core (same file otherwise) changes E_xc by far more than the SCF tolerance, and a
    Mg file without core has core_density None."""
    basis = pwxc.PlaneWaveBasis(al_model(), ecut=12, kgrid=(2, 2, 2))
    with_core = pwxc.scf(basis, tol=1e-9)
    pp = basis.model.pseudopotentials["Al"]
    bare = UPFPseudopotential(pp.path)
    bare.has_core_correction, bare._core = False, None
    without = pwxc.scf(pwxc.PlaneWaveBasis(al_model(pseudopotentials={"Al": bare}), ecut=12, kgrid=(2, 2, 2)),
                       tol=1e-9)
    assert abs(float(with_core.energies["xc"] - without.energies["xc"])) > 0.1
    mg = pwxc.Model(Crystal.from_arrays(7.6 * FCC, [[0.0, 0, 0]], ["Mg"]), pseudopotentials="pseudodojo-pbe",
                    smearing="gaussian", temperature=0.02)
    assert core_density(pwxc.PlaneWaveBasis(mg, ecut=10)) is None


def _energy(basis, crystal):
    model = basis.model
    new = pwxc.Model(crystal, xc=model.xc, pseudopotentials=model.pseudopotentials, smearing=model.smearing,
                     temperature=model.temperature, magnetic_moments=model.magnetic_moments)
    return float(pwxc.scf(basis.with_model(new), **TIGHT).energy)


MGO_LATTICE = 7.96 * FCC
MGO_POS = torch.tensor([[0.0, 0, 0], [0.51, 0.49, 0.5]], dtype=torch.float64)


def test_forces_with_core_correction_match_finite_differences():
    """MgO (O core-corrected, Mg not), O displaced: Hellmann–Feynman forces incl. the core term."""
    crystal = Crystal.from_arrays(MGO_LATTICE, MGO_POS, ["Mg", "O"])
    model = pwxc.Model(crystal, xc="pbe", pseudopotentials="pseudodojo-pbe")
    basis = pwxc.PlaneWaveBasis(model, ecut=14, kgrid=(1, 1, 1))
    forces = pwxc.forces(pwxc.scf(basis, **TIGHT))
    assert float(forces.abs().max()) > 1e-3
    h = 1e-3
    inv = torch.linalg.inv(MGO_LATTICE)
    for atom, axis in [(1, 0), (0, 1)]:
        step = torch.zeros_like(MGO_POS)
        step[atom] = h * EYE[axis] @ inv
        ep = _energy(basis, Crystal.from_arrays(MGO_LATTICE, MGO_POS + step, ["Mg", "O"]))
        em = _energy(basis, Crystal.from_arrays(MGO_LATTICE, MGO_POS - step, ["Mg", "O"]))
        assert float(forces[atom, axis]) == pytest.approx(-(ep - em) / (2 * h), abs=1e-5)


def test_stress_with_core_correction_matches_finite_differences():
    eps = torch.tensor([[0.01, 0.004, 0], [0.004, -0.005, 0.002], [0, 0.002, 0.003]], dtype=torch.float64)
    lattice = 7.6 * FCC @ (EYE + eps).T
    basis = pwxc.PlaneWaveBasis(al_model(lattice), ecut=12, kgrid=(3, 3, 3))
    sigma = pwxc.stress(pwxc.scf(basis, **TIGHT))
    volume = float(torch.linalg.det(lattice))
    pos = torch.zeros(1, 3, dtype=torch.float64)
    h = 5e-4
    for a, b in [(0, 0), (2, 2), (0, 1), (1, 2)]:
        e = torch.zeros(3, 3, dtype=torch.float64)
        e[a, b] = e[b, a] = h / (2 if a != b else 1)
        ep = _energy(basis, Crystal.from_arrays(lattice @ (EYE + e).T, pos, ["Al"]))
        em = _energy(basis, Crystal.from_arrays(lattice @ (EYE - e).T, pos, ["Al"]))
        assert float(sigma[a, b]) == pytest.approx((ep - em) / (2 * h) / volume, abs=1e-6)


def test_spin_polarised_stress_and_moment_with_core():
    """Ferromagnetic Ni (core split equally between the channels): a moment forms, and the strain
    derivative matches finite differences."""
    lattice = 6.65 * FCC @ (EYE + torch.diag(torch.tensor([0.01, 0.0, -0.005], dtype=torch.float64))).T
    crystal = Crystal.from_arrays(lattice, [[0.0, 0, 0]], ["Ni"])
    model = pwxc.Model(crystal, xc="pbe", pseudopotentials="pseudodojo-pbe", smearing="gaussian",
                       temperature=0.02, magnetic_moments=[1.0])
    basis = pwxc.PlaneWaveBasis(model, ecut=20, kgrid=(2, 2, 2))
    result = pwxc.scf(basis, **TIGHT)
    assert result.magnetization > 0.3
    sigma = pwxc.stress(result)
    volume = float(torch.linalg.det(lattice))
    h = 5e-4
    e = torch.zeros(3, 3, dtype=torch.float64)
    e[0, 0] = h
    ep = _energy(basis, Crystal.from_arrays(lattice @ (EYE + e).T, [[0.0, 0, 0]], ["Ni"]))
    em = _energy(basis, Crystal.from_arrays(lattice @ (EYE - e).T, [[0.0, 0, 0]], ["Ni"]))
    assert float(sigma[0, 0]) == pytest.approx((ep - em) / (2 * h) / volume, abs=1e-6)


def test_neural_functional_gradient_with_core_matches_finite_differences():
    """dE/dθ of a HybridXC on a core-corrected file (the network sees ρ_val + ρ_core): autograd at
    the converged state against central differences of re-converged SCF energies."""
    torch.manual_seed(0)
    xc = pwxc.xc.HybridXC(base="pbe", model=pwxc.xc.MLP(hidden=(6,)), a=0.5)
    crystal = Crystal.from_arrays(10.26 * FCC, [[0.0, 0, 0], [0.25, 0.25, 0.25]], ["Si", "Si"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PseudopotentialFunctionalWarning)
        basis = pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc=xc, pseudopotentials="pseudodojo-pbe"), ecut=10,
                                    kgrid=(2, 2, 2))
    result = pwxc.scf(basis, **TIGHT)
    params = list(xc.parameters())
    grads = torch.autograd.grad(result.energy, params)
    gen = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    analytic = sum(float((g * d).sum()) for g, d in zip(grads, v))

    def energy(h):
        with torch.no_grad():
            for p, d in zip(params, v):
                p.add_(h * d)
        try:
            return float(pwxc.scf(basis, **TIGHT).energy)
        finally:
            with torch.no_grad():
                for p, d in zip(params, v):
                    p.sub_(h * d)

    h = 1e-3
    fd = (energy(h) - energy(-h)) / (2 * h)
    assert abs(analytic) > 1e-4
    assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_implicit_density_gradient_with_core_matches_finite_differences():
    """scf(differentiable=True) on core-corrected Si: d ρ(r_j)/d x (an atom displaced) from one backward
    pass against central differences (the Hxc kernel includes the core in f_xc)."""
    pos0 = torch.tensor([[0.0, 0, 0], [0.27, 0.24, 0.25]], dtype=torch.float64)
    lattice = 10.26 * FCC

    def run(pos, differentiable=False):
        crystal = Crystal.from_arrays(lattice, pos, ["Si", "Si"])
        basis = pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc="pbe", pseudopotentials="pseudodojo-pbe"), ecut=8)
        return pwxc.scf(basis, differentiable=differentiable, tol=1e-12, density_tol=1e-9)

    positions = pos0.clone().requires_grad_(True)
    result = run(positions, differentiable=True)
    point = (3, 5, 7)
    (grad,) = torch.autograd.grad(result.density[0][point], positions)
    d_pos = torch.zeros_like(pos0)
    d_pos[1] = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    h = 2.5e-4
    fd = (float(run(pos0 + h * d_pos).density[0][point]) - float(run(pos0 - h * d_pos).density[0][point])) / (2 * h)
    assert float((grad * d_pos).sum()) == pytest.approx(fd, rel=1e-4)


# ------------------------------------------------------------------------------------------- bad input
def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_truncated_file_names_the_file(tmp_path):
    text = (DOJO / "Al.upf").read_text()
    for cut in (len(text) // 2, len(text) - 100, 3000):
        path = _write(tmp_path, "Al.upf", text[:cut])
        with pytest.raises(UPFError, match="Al.upf"):
            UPFPseudopotential(path)


def test_malformed_numbers_and_sizes(tmp_path):
    text = (DOJO / "Si.upf").read_text()
    start = text.index("<PP_LOCAL")
    bad = text[:start + 200] + " 1.0x3 " + text[start + 200:]
    with pytest.raises(UPFError, match="non-numeric data in PP_LOCAL"):
        UPFPseudopotential(_write(tmp_path, "Si.upf", bad))
    short = text.replace('mesh_size="  1510"', 'mesh_size="  1400"') if 'mesh_size="  1510"' in text else None
    header_mesh = text[text.index("mesh_size"):].split('"')[1]
    short = text.replace(f'mesh_size="{header_mesh}"', 'mesh_size="17"')
    with pytest.raises(UPFError, match="mesh_size"):
        UPFPseudopotential(_write(tmp_path, "Si2.upf", short))
    with pytest.raises(UPFError, match="not a UPF"):
        UPFPseudopotential(_write(tmp_path, "x.upf", "hello\n"))


@pytest.mark.parametrize("edit, message", [
    (('pseudo_type="NC"', 'pseudo_type="US"'), "ultrasoft"),
    (('is_ultrasoft="F"', 'is_ultrasoft="T"'), "ultrasoft"),
    (('is_paw="F"', 'is_paw="T"'), "PAW"),
    (('pseudo_type="NC"', 'pseudo_type="SL"'), "semilocal"),
    (('has_so="F"', 'has_so="T"'), "spin–orbit"),
])
def test_unsupported_kinds_are_named(tmp_path, edit, message):
    text = (DOJO / "Si.upf").read_text()
    assert edit[0] in text
    path = _write(tmp_path, "Si.upf", text.replace(edit[0], edit[1]))
    with pytest.raises(UPFError, match=message) as info:
        UPFPseudopotential(path)
    assert "Si.upf" in str(info.value)


def test_functional_mismatch_warns():
    crystal = Crystal.from_arrays(10.26 * FCC, [[0.0, 0, 0], [0.25, 0.25, 0.25]], ["Si", "Si"])
    with pytest.warns(PseudopotentialFunctionalWarning, match="PBE"):
        pwxc.Model(crystal, xc="lda", pseudopotentials="pseudodojo-pbe")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PseudopotentialFunctionalWarning)
        pwxc.Model(crystal, xc="pbe", pseudopotentials="pseudodojo-pbe")


def test_missing_element_and_wrong_file(tmp_path):
    crystal = Crystal.from_arrays(10.0 * FCC, [[0.0, 0, 0]], ["Xe"])
    with pytest.raises(ValueError, match="Xe has no pseudopotential in the 'pseudodojo-pbe' family"):
        pwxc.Model(crystal, pseudopotentials="pseudodojo-pbe", smearing="gaussian", temperature=0.01)
    al = Crystal.from_arrays(7.6 * FCC, [[0.0, 0, 0]], ["Al"])
    with pytest.raises(ValueError, match="is for element Si, not Al"):
        pwxc.Model(al, pseudopotentials={"Al": str(DOJO / "Si.upf")}, smearing="gaussian", temperature=0.01)
    with pytest.raises(FileNotFoundError, match="nothere.upf"):
        pwxc.Model(al, pseudopotentials={"Al": str(tmp_path / "nothere.upf")}, smearing="gaussian",
                   temperature=0.01)


def test_user_files_by_path_folder_and_object(tmp_path):
    """A path, a folder of <El>.upf and an object give the same energy as the bundled family."""
    al = Crystal.from_arrays(7.6 * FCC, [[0.0, 0, 0]], ["Al"])
    (tmp_path / "Al.upf").write_text((DOJO / "Al.upf").read_text())
    energies = []
    for spec in ("pseudodojo", str(tmp_path), {"Al": str(tmp_path / "Al.upf")},
                 {"Al": UPFPseudopotential(DOJO / "Al.upf")}):
        model = pwxc.Model(al, pseudopotentials=spec, smearing="gaussian", temperature=0.02)
        energies.append(float(pwxc.scf(pwxc.PlaneWaveBasis(model, ecut=8, kgrid=(2, 2, 2)), tol=1e-10).energy))
    assert max(energies) - min(energies) < 1e-9


def _as_upf_v1(pp: UPFPseudopotential, text_v2: str) -> str:
    """The same pseudopotential written in UPF v1 layout (for the v1 reader)."""
    import re

    def block(tag):
        m = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}>", text_v2, re.DOTALL)
        return m.group(1).strip()

    n_beta = sum(pp.n_projectors(l) for l in range(pp.lmax + 1))
    lines = ["<PP_HEADER>", "   0                   Version Number", f"  {pp.element}                   Element",
             "   NC                  Norm - Conserving pseudopotential",
             f"    {'T' if pp.has_core_correction else 'F'}                  Nonlinear Core Correction",
             " SLA  PW   PBX  PBC    PBE  Exchange-Correlation functional",
             f"    {pp.z_ion:.8f}     Z valence", "    0.0000000000      Total energy",
             "    0.0000000    0.0000000 Suggested cutoff for wfc and rho", "    2                  Max angular momentum component",
             f"  {len(pp.r)}                  Number of points in mesh", f"    0    {n_beta}             Number of Wavefunctions, Number of Projectors",
             "</PP_HEADER>", "<PP_MESH>", "<PP_R>", block("PP_R"), "</PP_R>", "<PP_RAB>", block("PP_RAB"), "</PP_RAB>",
             "</PP_MESH>", "<PP_NLCC>", block("PP_NLCC"), "</PP_NLCC>", "<PP_LOCAL>", block("PP_LOCAL"), "</PP_LOCAL>",
             "<PP_NONLOCAL>"]
    dij = np.array(block("PP_DIJ").split(), dtype=float).reshape(n_beta, n_beta)
    for j in range(1, n_beta + 1):
        m = re.search(rf"<PP_BETA\.{j}\b([^>]*)>(.*?)</PP_BETA\.{j}>", text_v2, re.DOTALL)
        l = int(re.search(r'angular_momentum="\s*(\d+)"', m.group(1)).group(1))
        lines += ["<PP_BETA>", f"    {j}    {l}             Beta    L", f"  {len(pp.r)}", m.group(2).strip(), "</PP_BETA>"]
    nonzero = [(i, j) for i in range(n_beta) for j in range(i, n_beta) if dij[i, j] != 0]
    lines += ["<PP_DIJ>", f"    {len(nonzero)}    Number of nonzero Dij"]
    lines += [f"    {i + 1}    {j + 1}   {dij[i, j]:.10E}" for i, j in nonzero]
    lines += ["</PP_DIJ>", "</PP_NONLOCAL>", "<PP_RHOATOM>", block("PP_RHOATOM"), "</PP_RHOATOM>"]
    return "\n".join(lines) + "\n"


def test_upf_v1_reads_the_same_pseudopotential(tmp_path):
    pp = dojo("Al")
    path = _write(tmp_path, "Al_v1.upf", _as_upf_v1(pp, (DOJO / "Al.upf").read_text()))
    v1 = UPFPseudopotential(path)
    assert v1.z_ion == 3 and v1.has_core_correction and v1.functional_family == "pbe"
    assert v1.h == pp.h and v1.alpha_z == pp.alpha_z
    q = torch.linspace(0, 10, 50, dtype=torch.float64)
    for l in range(3):
        for i in (1, 2):
            assert torch.equal(v1.projector_form_factor(l, i, q), pp.projector_form_factor(l, i, q))
    assert torch.equal(v1.core_form_factor(q), pp.core_form_factor(q))
