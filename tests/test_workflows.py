"""pwxc.workflows: equation of state, built-in structures, defaults, results files, lattice scans
(auto-extension, resume after interruption), cell relaxation, convergence studies, plots."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from pwxc.structures import BUILTINS, PAPER_TABLE, builtin_structure, known_structures
from pwxc.units import BOHR_IN_ANGSTROM, HARTREE_PER_BOHR3_IN_GPA
from pwxc.workflows import (EOSFitError, NotBracketedError, ResultsStore, birch_murnaghan, converge, fit_eos,
                            kgrid_from_spacing, lattice_scan, murnaghan, point_key, recommended_ecut,
                            reference_length, relax_cell)
from pwxc.workflows.converge import converged_index
from pwxc.workflows.defaults import guess_metal, load_structure

# cheap settings: Si diamond, ecut 15 Ha, 2x2x2 k (about 2 s per SCF on one core); with this
# coarse k-mesh the PBE minimum lies near a = 5.61 Å, so scans start there. At 15 Ha the E(a) curve
# is smooth (rms fit residual ~2e-6 Ha) and the Pulay stress is ~0.2 GPa.
SI_FAST = dict(ecut=15.0, kgrid=(2, 2, 2), quiet=True)
SI_START = 5.61
AL_FAST = dict(ecut=6.0, kgrid=(2, 2, 2), smearing="gaussian", temperature=0.02, quiet=True)


# ---------------------------------------------------------------- equation of state
@pytest.mark.parametrize("kind", ["birch_murnaghan", "murnaghan"])
def test_eos_recovers_its_own_parameters(kind):
    e0, v0, b0, b0p = -10.0, 118.0, 0.003, 4.5            # Ha, Bohr^3, Ha/Bohr^3
    v = np.linspace(100, 140, 9)
    f = birch_murnaghan if kind == "birch_murnaghan" else murnaghan
    fit = fit_eos(v, f(v, e0, v0, b0, b0p), kind)
    assert fit.v0 == pytest.approx(v0, rel=1e-9)
    assert fit.e0 == pytest.approx(e0, abs=1e-10)
    assert fit.b0 == pytest.approx(b0 * HARTREE_PER_BOHR3_IN_GPA, rel=1e-7)
    assert fit.b0_prime == pytest.approx(b0p, rel=1e-6)
    assert fit.rms < 1e-10 and fit.bracketed


def test_eos_variants_agree_and_errors():
    v = np.linspace(105, 132, 7)
    e = birch_murnaghan(v, -3.0, 118.0, 0.003, 4.2)
    bm, mu, poly = (fit_eos(v, e, k) for k in ("bm3", "murnaghan", "polynomial"))
    assert mu.v0 == pytest.approx(bm.v0, rel=2e-4) and poly.v0 == pytest.approx(bm.v0, rel=2e-3)
    assert mu.b0 == pytest.approx(bm.b0, rel=0.02) and poly.b0 == pytest.approx(bm.b0, rel=0.05)
    with pytest.raises(EOSFitError, match="at least 4"):
        fit_eos(v[:3], e[:3])
    with pytest.raises(EOSFitError, match="no minimum"):
        fit_eos(v, -v * 1e-3)                      # monotonic: no minimum
    with pytest.raises(ValueError, match="unknown equation of state"):
        fit_eos(v, e, "vinet2")


# ---------------------------------------------------------------- structures and defaults
def test_builtin_structures_and_reference_length():
    assert set(known_structures()) >= {"Cu", "Ca", "Ag", "Pd", "Rh", "Al", "Ni", "MgO", "CaF2", "Si", "C"}
    for name, meta in BUILTINS.items():
        prim, conv = builtin_structure(name), builtin_structure(name, cell="conventional")
        assert len(conv) == 4 * len(prim)
        assert conv.volume == pytest.approx(4 * prim.volume)
        for s in (prim, conv):
            a, how = reference_length(s)
            assert a == pytest.approx(meta.a, rel=1e-9) and "conventional cubic" in how
    # the paper's table: fcc metals are conventional constants; CaF2 3.900 = a/sqrt(2) of a = 5.515 Å
    assert PAPER_TABLE["Cu"] == BUILTINS["Cu"].a
    assert 5.515 / math.sqrt(2) == pytest.approx(PAPER_TABLE["CaF2"], abs=2e-3)
    assert BUILTINS["MgO"].a == 4.212 and BUILTINS["CaF2"].a == 5.463
    with pytest.raises(ValueError, match="known: Cu, Ca, Ag"):
        builtin_structure("Unobtainium")
    with pytest.raises(ValueError, match="built-ins: Cu"):
        load_structure("no_such_file.cif")


def test_default_settings():
    al, si = builtin_structure("Al"), builtin_structure("Si")
    assert kgrid_from_spacing(al.lattice.matrix / BOHR_IN_ANGSTROM, 0.20) == (8, 8, 8)
    assert kgrid_from_spacing(si.lattice.matrix / BOHR_IN_ANGSTROM, 0.35) == (4, 4, 4)
    ecut, why = recommended_ecut(["Mg", "O"])
    assert ecut == max(recommended_ecut(["Mg"])[0], recommended_ecut(["O"])[0]) and "Mg" in why
    assert guess_metal(al)[0] and not guess_metal(si)[0]
    assert guess_metal(builtin_structure("Ca"))[0]              # even electron count, but all metals
    from pymatgen.core import Lattice, Structure
    nacl_like = Structure(Lattice.cubic(3.0), ["Al", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert guess_metal(nacl_like)[0]                           # 3 + 4 = 7 electrons: odd


def test_defaults_are_printed_and_stored(capsys):
    from pwxc.workflows import choose_settings
    s, _, _ = load_structure("Al")
    settings, defaults, _ = choose_settings(s)
    err = capsys.readouterr().err
    assert {"ecut", "kgrid", "smearing", "pseudopotentials"} <= set(defaults)
    assert "ecut not given" in err and "kgrid not given" in err
    assert settings["smearing"] == "marzari-vanderbilt" and settings["kgrid"] == [8, 8, 8]
    assert settings["ecut"] == recommended_ecut(["Al"])[0]


# ---------------------------------------------------------------- results file
def test_results_store_atomic_lines_and_truncation(tmp_path):
    path = tmp_path / "r.jsonl"
    store = ResultsStore(path)
    store.append({"key": "a", "energy_ha": np.float64(-1.5)})
    with open(path, "a") as fh:             # a crash mid-write leaves a partial line
        fh.write('{"key": "b", "ener')
    store.append({"key": "c", "energy_ha": -2.0})
    with pytest.warns(RuntimeWarning, match="unreadable"):
        fresh = ResultsStore(path)
        assert [r["key"] for r in fresh.records()] == ["a", "c"]
    assert fresh.find("c")["energy_ha"] == -2.0 and fresh.find("b") is None
    lattice = np.eye(3) * 7.0
    k1 = point_key({"ecut": 10.0, "xc": "pbe"}, lattice, [[0, 0, 0]], ["Al"])
    assert k1 == point_key({"xc": "pbe", "ecut": 10.0 + 1e-13}, lattice + 1e-13, [[1, 0, 0]], ["Al"])
    assert k1 != point_key({"ecut": 12.0, "xc": "pbe"}, lattice, [[0, 0, 0]], ["Al"])


# ---------------------------------------------------------------- lattice scans
def test_interrupted_scan_resumes_only_missing_points(tmp_path):
    results = tmp_path / "al.jsonl"
    computed = []

    def stop_after_three(point):
        computed.append(point.scale)
        if len(computed) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lattice_scan("Al", results_file=results, callback=stop_after_three, **AL_FAST)
    assert len(ResultsStore(results).records(kind="lattice_scan_point")) == 3
    first = list(computed)
    computed.clear()
    scan = lattice_scan("Al", results_file=results, callback=lambda p: computed.append(p.scale), **AL_FAST)
    assert scan.n_reused == 3 and scan.n_computed == len(scan.points) - 3
    assert not set(first) & set(computed)              # nothing recomputed
    assert len(computed) == scan.n_computed
    again = lattice_scan("Al", results_file=results, **AL_FAST)
    assert again.n_computed == 0 and again.a0 == pytest.approx(scan.a0, rel=1e-12)
    records = ResultsStore(results).records(kind="lattice_scan_point")
    assert len(records) == len(scan.points) and all("settings" in r and "energy_ha" in r for r in records)


@pytest.fixture(scope="module")
def si_scan():
    return lattice_scan("Si", start=SI_START, pressure=True, **SI_FAST)


def test_scan_result_fields(si_scan):
    s = si_scan
    assert s.bracketed and s.n_extensions == 0 and len(s.points) == 7
    assert 5.5 < s.a0 < 5.7 and 60 < s.b0 < 120 and 3 < s.b0_prime < 6
    assert s.v0 == pytest.approx(s.a0**3 / 4, rel=1e-9)             # primitive diamond cell = a^3/4
    assert s.structure.volume == pytest.approx(s.v0, rel=1e-9)
    assert s.scale0 == pytest.approx(s.a0 / 5.431, rel=1e-12)         # scale of the input (a = 5.431 Å)
    assert np.abs(s.residuals).max() < 2e-5 and s.settings["ecut"] == 15.0
    d = json.loads(json.dumps(s.as_dict()))
    assert d["a0_angstrom"] == s.a0 and len(d["points"]) == 7
    assert "a0 =" in s.summary() and "B0 =" in s.summary()


def test_auto_extension_from_eight_percent_away(si_scan, tmp_path):
    # from 8 % below (compressed Si stays semiconducting; stretched by 8-13 % the gap closes and
    # fixed-occupation SCF struggles, which is not what this test is about)
    far = lattice_scan("Si", start=0.92 * si_scan.a0, results_file=tmp_path / "far.jsonl", **SI_FAST)
    assert far.n_extensions >= 1 and far.bracketed
    assert far.a0 == pytest.approx(si_scan.a0, rel=1e-3)
    assert far.b0 == pytest.approx(si_scan.b0, rel=0.05)
    # the fit is centred on the minimum: 3 fitted points on each side of the lowest one
    fitted = [p for p in far.points if p.fitted]
    i_min = int(np.argmin([p.energy for p in fitted]))
    assert len(fitted) == 7 and i_min == 3
    # without auto-extension: a warning, and with a zero cap a clear error
    with pytest.warns(RuntimeWarning, match="edge"):
        lattice_scan("Si", start=0.92 * si_scan.a0, auto_extend=False, results_file=tmp_path / "far.jsonl",
                     **SI_FAST)
    with pytest.raises(NotBracketedError, match="not bracketed") as info:
        lattice_scan("Si", start=0.92 * si_scan.a0, max_extensions=0, results_file=tmp_path / "far.jsonl",
                     **SI_FAST)
    assert len(info.value.points) == 7


def test_relax_cell_matches_scan_minimum(si_scan):
    """Stress-driven relaxation finds the scan's minimum. They differ by the Pulay stress (fixed-basis
    stress vs constant-cutoff energies): -0.17 GPa at 15 Ha, i.e. -0.08 % in a (-0.27 % at 12 Ha)."""
    relaxed = relax_cell("Si", tol=0.01, **SI_FAST)
    assert relaxed.converged and abs(relaxed.pressure) < 0.01
    assert relaxed.a0 == pytest.approx(si_scan.a0, rel=2e-3)
    # the scan's own pressures change sign around its minimum
    p = [pt.pressure_gpa for pt in si_scan.points]
    assert p[0] > 0 > p[-1]
    # full cell: start from the relaxed cell with a 1.5 % tetragonal + 1 % shear distortion
    eps = np.array([[0.0, 0.01, 0.0], [0.01, 0.0, 0.0], [0.0, 0.0, 0.015]])
    distorted = relaxed.structure.copy()
    distorted.lattice = type(distorted.lattice)(distorted.lattice.matrix @ (np.eye(3) + eps).T)
    full = relax_cell(distorted, mode="full", tol=0.02, max_steps=8, **SI_FAST)
    assert full.converged and len(full.steps) <= 6
    assert np.allclose(full.structure.lattice.angles, 60.0, atol=0.02)
    assert np.allclose(full.structure.lattice.abc, relaxed.structure.lattice.abc, rtol=3e-4)


def test_scan_input_validation():
    with pytest.raises(ValueError, match="window"):
        lattice_scan("Si", window=0.7, **SI_FAST)
    with pytest.raises(ValueError, match="step"):
        lattice_scan("Si", step=0.2, **SI_FAST)
    with pytest.raises(ValueError, match="n_points"):
        lattice_scan("Si", n_points=3, **SI_FAST)
    with pytest.raises(ValueError, match="start"):
        lattice_scan("Si", start=-1.0, **SI_FAST)
    with pytest.raises(ValueError, match="Gaussian basis"):
        lattice_scan("Si", basis="sto-3g", ecut=10.0, quiet=True)


def test_gaussian_basis_dispatch(monkeypatch):
    """basis='sto-3g' goes through pwxc.gaussian.energy (stubbed here with a model E(V))."""
    import pwxc.gaussian as pg

    calls = []

    class Fake:
        converged, n_iterations, fermi_level = True, 3, 0.0

    def fake_energy(structure, xc, kgrid, basis, warm_start, return_result, **kw):
        calls.append((basis, kgrid, kw.get("smearing")))
        v = structure.volume / BOHR_IN_ANGSTROM**3
        return birch_murnaghan(v, -5.0, 120.0, 0.003, 4.0), Fake()

    monkeypatch.setattr(pg, "energy", fake_energy)
    scan = lattice_scan("Al", basis="sto-3g", kgrid=(2, 2, 2), quiet=True)
    assert calls[0][0] == "sto-3g" and calls[0][1] == (2, 2, 2) and calls[0][2] == "fermi"
    assert scan.v0 == pytest.approx(120.0 * BOHR_IN_ANGSTROM**3, rel=1e-6)
    assert scan.settings["engine"] == "gaussian"


# ---------------------------------------------------------------- convergence
def test_converged_index_rule():
    assert converged_index([20.0, 5.0, 0.8, 0.3, 0.0], 1.0) == 2
    assert converged_index([20.0, 0.5, 1.5, 0.3, 0.0], 1.0) == 3      # later values must stay within tol
    assert converged_index([20.0, 5.0, 2.0, 0.0], 1.0) is None       # last two differ by > tol


def test_converge_ecut_and_kgrid(tmp_path):
    with pytest.warns(RuntimeWarning, match="extend the values"):
        r = converge("Si", "ecut", values=[6, 8, 10], kgrid=(1, 1, 1), tol=1e-3, quiet=True,
                     results_file=tmp_path / "c.jsonl")
    assert r.converged_value is None and r.delta_mev[-1] == 0.0
    assert r.delta_mev[0] > r.delta_mev[1] > 0                      # variational in ecut
    assert all(f < 1e-5 for f in r.max_forces) and all(p is not None for p in r.pressures)
    loose = converge("Si", "ecut", values=[6, 8, 10], kgrid=(1, 1, 1), tol=0.1, quiet=True,
                     results_file=tmp_path / "c.jsonl")
    assert all(loose.reused) and loose.converged_value == 8.0 and "smallest ecut" in loose.summary()
    k = converge("Al", "kgrid", values=[1, 2], forces=False, pressure=False, tol=10.0, **AL_FAST)
    assert k.values == [(1, 1, 1), (2, 2, 2)] and k.settings["ecut"] == 6.0


# ---------------------------------------------------------------- plots
def test_plots_written(si_scan, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from pwxc.workflows import plotting
    out = tmp_path / "scan.png"
    plotting.plot_scan(si_scan, out)
    assert out.stat().st_size > 10_000
    plotting.plot_scans([si_scan, si_scan], tmp_path / "two.png")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install pwxc\[plot\]"):
        plotting.plot_scan(si_scan, tmp_path / "x.png")


# ---------------------------------------------------------------- acceptance: Quantum ESPRESSO lattice constants
# tests/data/qe/lattice_constants.json (benchmarks/qe/make_references.py): QE pw.x E(V) scans with the same GTH-PBE
# files, primitive cells, Γ-centred k-meshes, Gaussian smearing for metals, BM3 fitted by linear least squares.
# "fast": 5 points ±2 % at cheap settings; "eos": 9 points ±3 % at QE's converged ecut and k-mesh.
# pwxc computes E at exactly QE's lattice constants (lattice_scan(a_values=...)), fits the same BM3 and must give
# a0 within 0.2 % and B0 within 5 % (issue 5); point energies are compared too.
QE_FILE = Path(__file__).parent / "data" / "qe" / "lattice_constants.json"
QE_MATERIALS = json.loads(QE_FILE.read_text())["materials"] if QE_FILE.exists() else {}
QE_BUILTIN = {"si": "Si", "c": "C", "al": "Al", "cu": "Cu", "mgo": "MgO", "mgo_mgq2": "MgO"}
#: fast cases in the default run (one core: Si ~7 s, Al ~22 s CPU); C (~10 s), Cu and MgO fast cases are
#: marked slow to keep this file near 90 s
QE_FAST_DEFAULT = ("si", "al")


def qe_pwxc_scan(key, stage):
    entry = QE_MATERIALS.get(key, {}).get(stage)
    if not entry:
        pytest.skip(f"no QE {stage} scan for {key} in {QE_FILE.name}")
    s = entry["settings"]
    pseudos = {el: name.split()[1].lower() for el, name in QE_MATERIALS[key]["pseudopotentials"].items()}
    smearing = s.get("smearing")
    kw = dict(smearing=smearing, temperature=s["smearing_width_ha"]) if smearing else dict(smearing=None)
    # QE's FFT grid at each point: the GGA energy on the grid depends on it at the 1e-5 Ha level for hard
    # pseudopotentials at low cutoffs, which is enough to move an ill-conditioned fast-settings B0 by %
    grids = {round(p["a_ang"], 6): tuple(p["fft_grid"]) for p in entry["points"]}
    kw["fft_size"] = lambda a: grids[round(a, 6)]
    scan = lattice_scan(QE_BUILTIN[key], ecut=s["ecutwfc_ha"], kgrid=tuple(s["kmesh"]),
                        a_values=[p["a_ang"] for p in entry["points"]], pseudopotentials=pseudos,
                        scf_tol=1e-9, scf_kwargs=dict(n_bands=s["nbnd"]) if smearing else None, quiet=True, **kw)
    return scan, entry


def check_against_qe(scan, entry):
    fit = entry["fit"]
    e_qe = np.array([p["etot_ha"] for p in entry["points"]])
    e_pw = np.array([p.energy for p in scan.points])
    assert len(e_pw) == len(e_qe)
    assert np.abs(e_pw - e_qe).max() < 2e-5
    assert np.abs((e_pw - e_pw[0]) - (e_qe - e_qe[0])).max() < 5e-6
    assert scan.a0 == pytest.approx(fit["a0_ang"], rel=2e-3)          # acceptance: 0.2 %
    assert scan.b0 == pytest.approx(fit["B0_gpa"], rel=0.05)          # acceptance: 5 %
    # in practice pwxc and QE agree far better than the acceptance bounds
    assert scan.a0 == pytest.approx(fit["a0_ang"], rel=2e-4)
    assert scan.b0 == pytest.approx(fit["B0_gpa"], rel=0.02)


@pytest.mark.parametrize("key", [k if k in QE_FAST_DEFAULT else pytest.param(k, marks=pytest.mark.slow)
                                 for k in QE_BUILTIN])
def test_lattice_constant_vs_qe_fast_settings(key):
    scan, entry = qe_pwxc_scan(key, "fast")
    check_against_qe(scan, entry)


def test_lattice_constant_vs_qe_small_settings_cu():
    """Cu (GTH-PBE-q11) at small settings, in the default run: 80 Ha, k 3×3×3, Gaussian 0.02 Ha, nbnd 8,
    5 points ±4 % (QE: lattice_constants.json materials.cu.small; QE a0 3.6208 Å, B0 153.8 GPa). ~45 s on one
    core with k-point symmetry. The "fast" Cu case (90 Ha, 6×6×6) stays slow."""
    scan, entry = qe_pwxc_scan("cu", "small")
    check_against_qe(scan, entry)


@pytest.mark.slow
@pytest.mark.parametrize("key", list(QE_BUILTIN))
def test_lattice_constant_vs_qe_converged(key):
    """Converged settings (QE's ecut and k-mesh, 9 points ±3 %), k-points reduced by the space group as in QE.
    One core: Si ~2 min, C ~2.5 min, Al ~6 min, MgO (Mg q2) ~15 min, Cu (130 Ha, 18×18×18) ~2 h (10–17 min per point).
    benchmarks/qe_lattice_comparison.py runs the same scans with a results file (resumable) and records them in
    tests/data/qe/pwxc_lattice_comparison.json."""
    scan, entry = qe_pwxc_scan(key, "eos")
    check_against_qe(scan, entry)
