"""The `pwxc` command line (pwxc.cli): subcommands, tables, --json, results files, plots, errors."""
import json
import shutil
import subprocess
import sys

import pytest

from pwxc.cli import main

AL = ["--ecut", "6", "--kgrid", "2x2x2", "--smearing", "gaussian", "--temperature", "0.02"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_structures_listing(capsys):
    code, out, _ = run(capsys, "structures")
    assert code == 0 and "MgO" in out and "2.661" in out and "fluorite" in out
    code, out, _ = run(capsys, "structures", "--json")
    assert json.loads(out)["Al"]["a_angstrom"] == 4.05


def test_bad_input_messages(capsys, tmp_path):
    code, _, err = run(capsys, "scan", "Unobtainium", "--no-save", "--no-plot")
    assert code == 1 and "built-ins: Cu, Ca" in err
    with pytest.raises(SystemExit) as info:
        main(["scan", "Al", "--kgrid", "3x3"])
    assert info.value.code == 2
    assert "three positive integers" in capsys.readouterr().err
    bad = tmp_path / "broken.cif"
    bad.write_text("this is not a CIF\n")
    code, _, err = run(capsys, "scf", str(bad))
    assert code == 1 and "could not read a structure" in err


def test_scan_json_plot_and_resume(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "al.png"
    code, out, err = run(capsys, "scan", "Al", *AL, "--window", "0.04", "--n-points", "5", "--plot", str(plot),
                         "--json")
    assert code == 0
    data = json.loads(out)                                   # stdout holds only the JSON document
    assert 3.8 < data["a0_angstrom"] < 4.2 and data["b0_gpa"] > 0 and len(data["points"]) >= 5
    assert data["settings"]["ecut"] == 6.0 and data["settings"]["smearing"] == "gaussian"
    assert "pseudopotentials" in data["defaults"]            # defaults are stored ...
    assert "pseudopotentials not given" in err               # ... and printed (stderr)
    results = tmp_path / "al.jsonl"                          # results file next to the plot
    assert plot.exists() and results.exists() and data["plot"] == str(plot)
    n_lines = len(results.read_text().splitlines())
    # rerun: the table, nothing recomputed, no new lines
    code, out, _ = run(capsys, "scan", "Al", *AL, "--window", "0.04", "--n-points", "5", "--plot", str(plot))
    assert code == 0 and "a0 =" in out and "B0 =" in out and f"0 computed, {len(data['points'])} from file" in out
    assert len(results.read_text().splitlines()) == n_lines


def test_scf_json_and_verbose_log(capsys):
    code, out, err = run(capsys, "scf", "Si", "--ecut", "8", "--kgrid", "1x1x1", "--json", "-v")
    assert code == 0
    data = json.loads(out)
    assert data["converged"] and data["energy_ha"] < -7 and len(data["forces_ha_bohr"]) == 2
    assert "scf   1" in err and "scf   1" not in out                # SCF log on stderr with -v
    code, out, _ = run(capsys, "scf", "Si", "--ecut", "8", "--kgrid", "1", "-q")
    assert code == 0 and "total energy" in out and "forces (Ha/Bohr)" in out


def test_converge_command(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    res = tmp_path / "si_ecut.jsonl"
    code, out, err = run(capsys, "converge", "Si", "--values", "6,8", "--kgrid", "1x1x1", "--tol", "1.0",
                         "--results", str(res), "-q")
    assert code == 0 and "smallest ecut" in out and res.exists()
    assert (tmp_path / "si_ecut.png").exists()                     # plot next to the results file
    code, out, _ = run(capsys, "converge", "Si", "--parameter", "kgrid", "--values", "1,1x1x2", "--ecut", "6",
                       "--json", "--no-save", "--no-plot", "-q")
    assert json.loads(out)["values"] == [[1, 1, 1], [1, 1, 2]]


def test_relax_command(capsys, tmp_path):
    code, out, _ = run(capsys, "relax", "Si", "--ecut", "10", "--kgrid", "2x2x2", "--tol", "0.5", "--max-steps", "6",
                       "--results", str(tmp_path / "r.jsonl"), "-q")
    assert code == 0 and "converged: a0 =" in out


def test_console_entry_point():
    exe = shutil.which("pwxc")
    cmd = [exe, "structures"] if exe else [sys.executable, "-m", "pwxc.cli", "structures"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "CaF2" in proc.stdout
