"""pwxc.train: losses, datasets and reference cache, λ-ramp, training loop robustness, checkpoints, CLI.

Tiny cells only (Si 2 atoms, ecut 5 Ha, Γ, FFT 15³; Al 1 atom, ecut 5 Ha, k 2³); most loop-logic tests
use a cheap analytic loss so that they run without SCF.
"""
import json
import logging
import math

import pytest
import torch

import pwxc
from pwxc import train
from pwxc.structures import builtin_structure

SI = dict(ecut=5.0, kgrid=(1, 1, 1), fft_size=(15, 15, 15))
AL = dict(ecut=5.0, kgrid=(2, 2, 2), smearing="gaussian", temperature=0.05)


def _hybrid(seed=0):
    torch.manual_seed(seed)
    return pwxc.xc.HybridXC(model=pwxc.xc.MLP(hidden=(4, 4)), a=0.05)


def _si(a=5.431, name="Si", **extra):
    return train.Sample(name, builtin_structure("Si", a=a), settings={**SI, **extra}, lattice_constant=a)


@pytest.fixture(scope="module")
def si_refs(tmp_path_factory):
    cache = tmp_path_factory.mktemp("refs") / "refs.json"
    return train.reference_targets([_si(), _si(5.431 * 0.97, "Si-")], cache), cache


# ----------------------------------------------------------------------------------- losses
def test_relative_energy_loss_penalises_both_signs():
    e = torch.tensor(-10.0, dtype=torch.float64)
    assert float(train.relative_energy_loss(e - 0.1, -10.0)) == pytest.approx(1e-4)
    assert float(train.relative_energy_loss(e + 0.1, -10.0)) == pytest.approx(1e-4)
    assert float(train.relative_energy_loss(e, -10.0)) == 0.0


def test_lattice_loss_norms():
    a0 = torch.tensor(4.1, dtype=torch.float64, requires_grad=True)
    sq, ab = train.lattice_loss(a0, 4.0), train.lattice_loss(a0, 4.0, norm="absolute")
    assert float(sq) == pytest.approx(0.025**2) and float(ab) == pytest.approx(0.025)
    (g,) = torch.autograd.grad(ab, a0)
    assert float(g) == pytest.approx(0.25)              # d|a0 - a|/a / da0 = sign / a
    below = torch.tensor(3.9, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(train.lattice_loss(below, 4.0, norm="absolute"), below)
    assert float(g) == pytest.approx(-0.25)             # every material pulls with the same weight
    with pytest.raises(ValueError, match="norm"):
        train.lattice_loss(a0, 4.0, norm="l3")
    with pytest.raises(ValueError, match="lattice_norm"):
        train.SampleLoss(lattice_norm="abs")


def test_curve_loss_shift_invariant_and_eos_a0():
    ref = [1.0, 0.2, 0.0, 0.3, 1.1]
    e = [torch.tensor(x - 7.0, dtype=torch.float64) for x in ref]
    assert float(train.curve_loss(e, ref)) == pytest.approx(0.0, abs=1e-14)
    assert float(train.curve_loss([torch.tensor(2 * x) for x in ref], ref)) == pytest.approx(1.0)
    scales = [0.96, 0.98, 1.0, 1.02, 1.04]
    energies = [torch.tensor((s - 1.01) ** 2, dtype=torch.float64) for s in scales]
    assert float(train.eos_lattice_constant(energies, scales, 10.0)) == pytest.approx(10.1, rel=2e-3)


def test_ramped_xc_interpolates():
    xc = _hybrid()
    rho = torch.linspace(1e-3, 0.3, 50, dtype=torch.float64)
    sigma = torch.linspace(0, 0.05, 50, dtype=torch.float64)
    full, base = xc.energy_density(rho, sigma), pwxc.xc.functional("pbe").energy_density(rho, sigma)
    for lam in (0.0, 0.5, 1.0):
        got = train.RampedXC(xc, lam).energy_density(rho, sigma)
        assert torch.allclose(got, base + lam * (full - base), atol=1e-14)
    assert train.ramped(xc, 1.0) is xc and train.ramp_lambda(0, 4) == 0.25 and train.ramp_lambda(9, 4) == 1.0


# ---------------------------------------------------------------------- datasets and references
def test_dataset_roundtrip_and_errors(tmp_path, si_refs):
    samples, cache = si_refs
    path = tmp_path / "d.json"
    train.save_dataset(samples, path)
    back = train.load_dataset(path)
    assert [s.targets for s in back] == [s.targets for s in samples]
    assert back[0].structure == samples[0].structure
    path.write_text(path.read_text()[:100])
    with pytest.raises(train.DatasetError, match="d.json"):
        train.load_dataset(path)
    with pytest.raises(train.DatasetError, match="missing.json"):
        train.load_dataset(tmp_path / "missing.json")
    bad = tmp_path / "refs.json"
    bad.write_text('{"format": "pwxc.train.references", "entries": {')
    with pytest.raises(train.DatasetError, match="refs.json"):
        train.reference_targets([_si()], bad)


def test_references_computed_once(si_refs, monkeypatch):
    samples, cache = si_refs
    assert samples[0].targets["energy"] < samples[1].targets["energy"] < 0
    monkeypatch.setattr(pwxc, "scf", lambda *a, **k: pytest.fail("reference recomputed"))
    again = train.reference_targets([_si(), _si(5.431 * 0.97, "Si-")], cache)
    assert [s.targets for s in again] == [s.targets for s in samples]


# ------------------------------------------------------------------------ training with SCF
def _run(samples, workdir, epochs, seed=0):
    xc = _hybrid(seed)
    cfg = train.TrainConfig(epochs=epochs, batch_size=1, seed=seed, workdir=str(workdir), ramp_epochs=2,
                            progress=False, plot=False)
    trainer = train.Trainer(xc, samples, samples[:1], optimizer=lambda p: torch.optim.Adam(p, lr=1e-2), config=cfg)
    return trainer, trainer.fit()


def test_reproducible_and_resume_matches_uninterrupted(tmp_path, si_refs):
    samples, _ = si_refs
    t1, h1 = _run(samples, tmp_path / "a", 3)
    t2, h2 = _run(samples, tmp_path / "b", 3)
    assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
    assert [r["val_loss"] for r in h1] == [r["val_loss"] for r in h2]
    _run(samples, tmp_path / "c", 2)                      # "crash" after epoch 2 ...
    t3, h3 = _run(samples, tmp_path / "c", 3)             # ... resume to epoch 3
    assert len(h3) == 3 and [r["epoch"] for r in h3] == [1, 2, 3]
    for p1, p3 in zip(t1.xc.parameters(), t3.xc.parameters()):
        assert torch.allclose(p1, p3, rtol=0, atol=1e-12)
    lines = (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    loaded = pwxc.xc.load(tmp_path / "c" / "final.pt")
    assert torch.equal(loaded.a, t3.xc.a)


def test_unconverged_structure_skipped_with_reason(tmp_path, si_refs, caplog):
    samples, _ = si_refs
    bad = train.Sample("Si-bad", samples[1].structure, dict(samples[1].targets), {**SI, "maxiter": 1})
    cfg = train.TrainConfig(epochs=1, batch_size=2, workdir=str(tmp_path), progress=False, plot=False,
                            pbe_warm_start=False)
    trainer = train.Trainer(_hybrid(), [samples[0], bad], config=cfg)
    with caplog.at_level(logging.WARNING, logger="pwxc.train"):
        (rec,) = trainer.fit()
    assert rec["n_train"] == 1 and rec["skipped"][0]["sample"] == "Si-bad"
    assert "SCF failed" in rec["skipped"][0]["reason"] and "retry" in rec["skipped"][0]["reason"]
    assert "Si-bad" in caplog.text and math.isfinite(rec["train_loss"])


def test_lattice_loss_through_eos_has_gradient():
    xc = _hybrid()
    sample = train.Sample("Al", builtin_structure("Al"), {"lattice_constant": 4.05}, AL, lattice_constant=4.05)

    class Ctx:
        scf_kwargs = {"tol": 1e-8}

        def __init__(self):
            self.xc, self.guess = xc, None

        def solve(self, s):
            r = pwxc.scf(train.build_basis(sample, xc, s), tol=1e-8, guess=self.guess)
            self.guess = r
            return r

    loss, info = train.SampleLoss()(sample, Ctx())
    loss.backward()
    assert 3.6 < info["a0_angstrom"] < 4.4 and math.isfinite(float(loss))
    assert xc.a.grad is not None and float(xc.a.grad.abs()) > 0


def test_coverage_of_held_out_densities():
    """A training material covers itself (almost); Si's denser bonds lie above everything in Al's density."""
    si = pwxc.scf(train.build_basis(_si(), "pbe"), tol=1e-8)
    al = pwxc.scf(train.build_basis(train.Sample("Al", builtin_structure("Al"), {}, AL), "pbe"), tol=1e-8)
    rows = {r["material"]: r for r in train.coverage_table({"Al": al}, {"Si": si, "Al-again": al})}
    assert rows["Al"]["training"] and not rows["Si"]["training"]
    for name in ("Al", "Al-again"):
        # covered by itself, up to its electrons in cells where it has less than `cover` (1e-4) each
        assert rows[name]["electrons_outside"] < 1e-3 and rows[name]["electrons_above_train_max"] == 0
    f_si = train.density_features(si)
    n_al_max = float(al.density.max())
    expected = float(f_si.weight[f_si.n > n_al_max].sum())
    assert rows["Si"]["electrons_above_train_max"] == pytest.approx(expected) and expected > 0.3
    assert rows["Si"]["electrons_outside"] >= expected - 1e-12   # cells above the training range are unvisited
    assert float(f_si.weight.sum()) == pytest.approx(1.0) and rows["Si"]["n_max"] > n_al_max
    assert "Si" in train.format_coverage(list(rows.values()))
    with pytest.raises(ValueError, match="training"):
        train.coverage_table({}, {"Si": si})


# ------------------------------------------------------------- loop logic with a cheap analytic loss
def _toy_samples(names):
    s = builtin_structure("Si")
    return [train.Sample(n, s, {"energy": -1.0}, SI) for n in names]


def _toy_loss(bad=()):
    def loss_fn(sample, ctx):
        a = ctx.xc.xc.a if isinstance(ctx.xc, train.RampedXC) else ctx.xc.a
        if sample.name in bad:
            return a * float("nan"), {}
        if sample.name.startswith("val"):
            return a**2, {}                  # validation prefers a = 0 ...
        return (a - 1.0) ** 2, {}            # ... training pulls a to 1: validation gets worse
    return loss_fn


def _toy_trainer(tmp_path, names, val=(), bad=(), **cfg):
    cfg = {"epochs": 3, "batch_size": 2, "workdir": str(tmp_path), "progress": False, "plot": False, **cfg}
    return train.Trainer(_hybrid(), _toy_samples(names), _toy_samples(val),
                         optimizer=lambda p: torch.optim.SGD(p, lr=0.1), config=train.TrainConfig(**cfg),
                         loss_fn=_toy_loss(bad))


def test_nan_loss_skips_sample_then_stops_cleanly(tmp_path):
    trainer = _toy_trainer(tmp_path / "one", ["ok", "nan"], bad=("nan",))
    history = trainer.fit()
    assert trainer.status == "finished" and all(r["skipped"][0]["reason"].startswith("non-finite loss")
                                                for r in history)
    assert all(math.isfinite(float(p.sum())) for p in trainer.xc.parameters())
    trainer = _toy_trainer(tmp_path / "all", ["nan"], bad=("nan",))
    history = trainer.fit()
    assert len(history) == 1 and trainer.status.startswith("stopped")
    fresh = _toy_trainer(tmp_path / "all", ["nan"], bad=("nan",))
    fresh.load_checkpoint()                               # the checkpoint is intact and loadable
    assert fresh.epoch == 1 and all(torch.isfinite(p).all() for p in fresh.xc.parameters())


def test_early_stopping_and_best_model(tmp_path):
    trainer = _toy_trainer(tmp_path, ["t1", "t2"], val=["val1"], epochs=20, patience=2)
    history = trainer.fit()
    assert trainer.status.startswith("early stopped") and len(history) == 3
    best = pwxc.xc.load(tmp_path / "best.pt")
    assert best.metadata["epoch"] == 1
    assert trainer.fit() == history                       # resuming a stopped run does nothing


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    trainer = _toy_trainer(tmp_path, ["t1"], epochs=1)
    trainer.fit()
    good = (tmp_path / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crashing_save)
    trainer.epoch += 1
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "checkpoint.pt").read_bytes() == good
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(train.CheckpointError, match="checkpoint.pt"):
        _toy_trainer(tmp_path, ["t1"], epochs=2).fit()


# ------------------------------------------------------------------------------- data and CLI
def test_shipped_data_and_split():
    assert train.PAPER_TABLE["MgO"] == 2.661 and train.TARGET_A["MgO"] == 4.212
    assert set(train.TEST) == {"Al", "Ni", "Ca"} and not set(train.TEST) & set(train.TRAIN + train.VALIDATION)
    assert set(train.TRAIN + train.VALIDATION + train.TEST) == set(train.PAPER_TABLE)
    s = train.paper_samples("test", settings={"ecut": 10})
    assert [x.name for x in s] == ["Al", "Ni", "Ca"] and s[0].settings["smearing"] == "gaussian"


def test_cli_train_tiny(tmp_path, capsys):
    from pwxc.cli_train import main_train

    args = ["--materials", "Si", "--targets", "energy", "--ecut", "5", "--kgrid", "1", "--fft-size", "15",
            "--epochs", "1", "--hidden", "4", "--workdir", str(tmp_path), "-q", "--save", str(tmp_path / "f.pt")]
    assert main_train(args) == 0
    assert "epoch   1" in capsys.readouterr().out
    assert pwxc.xc.load(tmp_path / "f.pt").metadata["status"] == "finished"
    assert main_train(["--dataset", str(tmp_path / "nope.json"), "--workdir", str(tmp_path / "x")]) == 1


def test_pwxc_train_subcommand(tmp_path, capsys):
    """`pwxc train` goes through pwxc.cli.main (lattice target of Al at tiny settings, symmetry, evaluation)."""
    from pwxc.cli import build_parser, main

    assert "train" in build_parser().format_help()
    args = ["train", "--materials", "Al", "--ecut", "5", "--kgrid", "2", "--temperature", "0.05", "--epochs", "1",
            "--hidden", "4", "--workdir", str(tmp_path), "-q", "--evaluate", "Al", "--save", str(tmp_path / "f.pt")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "epoch   1" in out and "MARE" in out
    ev = json.loads((tmp_path / "evaluation.json").read_text())
    assert ev["materials"] == ["Al"] and math.isfinite(ev["mare_pbe"]) and ev["settings"]["Al"]["symmetry"]
    assert pwxc.xc.load(tmp_path / "f.pt").metadata["evaluation"]["materials"] == ["Al"]
    assert main(["train", "--epochs", "x"]) == 2


def test_cli_enhanced_functional_absolute_lattice_loss(tmp_path):
    """--functional enhanced trains the constrained EnhancedXC; --lattice-loss absolute logs |a0 - a|/a;
    --coverage writes the density coverage table first."""
    from pwxc.cli_train import main_train

    args = ["--materials", "Al", "--ecut", "5", "--kgrid", "2", "--temperature", "0.05", "--epochs", "1",
            "--hidden", "4", "--functional", "enhanced", "--lattice-loss", "absolute", "--workdir", str(tmp_path),
            "-q", "--save", str(tmp_path / "f.pt")]
    assert main_train(args + ["--coverage", "--evaluate", "Al"]) == 0
    assert isinstance(pwxc.xc.load(tmp_path / "f.pt"), pwxc.xc.EnhancedXC)
    (row,) = json.loads((tmp_path / "coverage.json").read_text())["rows"]   # Al trained on: no second row
    assert row["material"] == "Al" and row["training"] and row["electrons_above_train_max"] == 0
    rec = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    a0 = rec["train"]["Al"]["a0_angstrom"]
    assert rec["train_loss"] == pytest.approx(abs(a0 - train.TARGET_A["Al"]) / train.TARGET_A["Al"], rel=1e-10)


def test_fixed_ecut_basis_and_per_element_pseudopotentials():
    st = {**AL, "basis_mode": "fixed_ecut", "symmetry": True, "pseudopotentials": {"Mg": "gth-pbe-q2"},
          "scales": [0.9, 1.0, 1.2]}
    sample = train.Sample("Al", builtin_structure("Al"), {"lattice_constant": 4.05}, st, lattice_constant=4.05)
    b1, b2 = train.build_basis(sample, "pbe", 1.0), train.build_basis(sample, "pbe", 1.2)
    assert b1.fft.shape == b2.fft.shape                       # densities transfer between scales
    assert int(b2.n_planewaves.sum()) > int(b1.n_planewaves.sum())   # same ecut, larger cell: more waves
    assert b1.symmetry is not None and b1.model.pseudopotentials["Al"].z_ion == 3
    with pytest.raises(ValueError, match="basis_mode"):
        train.build_basis(train.Sample("Al", sample.structure, settings={**AL, "basis_mode": "x"}), "pbe")


SHIPPED = "mlp_pbe_lattice_small"


def test_spin_polarised_sample(tmp_path):
    """settings["magnetic_moments"] (per element) makes a sample spin-polarised; it survives a dataset file."""
    st = dict(ecut=20.0, kgrid=(2, 2, 2), smearing="gaussian", temperature=0.01, symmetry=True,
              magnetic_moments={"Ni": 1.0})
    sample = train.Sample("Ni", builtin_structure("Ni", a=3.52), {"lattice_constant": 3.52}, st, lattice_constant=3.52)
    train.save_dataset([sample], tmp_path / "ni.json")
    (loaded,) = train.load_dataset(tmp_path / "ni.json")
    assert loaded.settings["magnetic_moments"] == {"Ni": 1.0}
    basis = train.build_basis(loaded, "pbe")
    assert basis.model.n_spin == 2 and basis.model.magnetic_moments.tolist() == [1.0]
    r = pwxc.scf(basis, tol=1e-9)
    assert r.converged and r.magnetization > 0.1
    sample.settings = {**st, "magnetic_moments": {"Fe": 2.0}}
    with pytest.raises(ValueError, match="not in the structure"):
        train.build_basis(sample, "pbe")


def test_shipped_trained_functional_loads_and_runs():
    """The functional trained by examples/train_paper.py ships in pwxc/data/functionals with its record."""
    assert SHIPPED in pwxc.xc.available()
    xc = pwxc.xc.load(SHIPPED)                                 # no path needed
    assert isinstance(xc, pwxc.xc.HybridXC) and xc.metadata["held_out"] == ["Al", "Ni", "Ca"]
    assert set(xc.metadata["trained_on"]) == {"Cu", "Ag", "Rh", "MgO"}
    assert math.isfinite(xc.metadata["mare_pbe"]) and math.isfinite(xc.metadata["mare_trained"])
    record = json.loads((pwxc.xc.io.DATA_DIR / f"{SHIPPED}.json").read_text())
    assert record["settings"]["ecut"] > 0 and record["evaluation"]["rows"][0]["material"] == "Al"
    sample = train.Sample("Al", builtin_structure("Al"), settings=AL)
    e_nn = float(pwxc.scf(train.build_basis(sample, xc), tol=1e-8).energy)
    e_pbe = float(pwxc.scf(train.build_basis(sample, "pbe"), tol=1e-8).energy)
    assert math.isfinite(e_nn) and abs(e_nn - e_pbe) < 0.5


def test_lr_decay_survives_resume(tmp_path):
    trainer = _toy_trainer(tmp_path, ["t1"], epochs=2, lr_decay=0.5)
    trainer.fit()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.25)
    resumed = _toy_trainer(tmp_path, ["t1"], epochs=3, lr_decay=0.5)
    resumed.fit()
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.125)
    straight = _toy_trainer(tmp_path / "b", ["t1"], epochs=3, lr_decay=0.5)
    straight.fit()
    for p1, p2 in zip(resumed.xc.parameters(), straight.xc.parameters()):
        assert torch.equal(p1, p2)


@pytest.mark.slow   # flaky in the full default run (resumed vs straight weights beyond 1e-8), see the note
def test_lattice_training_reproducible_and_resumable(tmp_path):
    """The issue-7 path (lattice targets, fixed-ecut scans, symmetry, per-element pseudos): two runs give the
    same curve; stopping after epoch 1 and resuming gives the same final weights."""
    st = {**AL, "basis_mode": "fixed_ecut", "symmetry": True, "pseudopotentials": {"Mg": "gth-pbe-q2"}, "tol": 1e-9}
    samples = [train.Sample("Al", builtin_structure("Al", a=4.05), {"lattice_constant": 4.05}, st,
                            lattice_constant=4.05)]

    def run(workdir, epochs):
        torch.manual_seed(0)
        xc = pwxc.xc.HybridXC(model=pwxc.xc.MLP(hidden=(4, 4)), a=0.0)
        cfg = train.TrainConfig(epochs=epochs, batch_size=1, workdir=str(workdir), progress=False, plot=False,
                                pbe_warm_start=False, scf_tol=1e-9)
        t = train.Trainer(xc, samples, config=cfg, optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
        return t, t.fit()

    t1, h1 = run(tmp_path / "a", 2)
    t2, h2 = run(tmp_path / "b", 2)
    # equal to ~1e-10 relative (seen bit-identical, and once differing in the 10th digit on the shared machine)
    assert [r["train_loss"] for r in h1] == pytest.approx([r["train_loss"] for r in h2], rel=1e-8)
    assert h1[0]["train"]["Al"]["a0_angstrom"] != h1[1]["train"]["Al"]["a0_angstrom"]    # it learns
    run(tmp_path / "c", 1)
    t3, h3 = run(tmp_path / "c", 2)
    assert [r["epoch"] for r in h3] == [1, 2]
    # Resumed = uninterrupted to what the SCF determines. torch's CPU reductions and MKL are not bitwise
    # reproducible between allocations, and the adaptive eigensolver (locking, loose empty bands) turns a
    # last-bit difference into one at its tolerance: measured max |Δw| over 11 runs of this test: 0 (4×),
    # 6e-14 – 2e-13 (5×), 1.1e-9 (2×) — the last from one discrete solver decision, scf_tol = 1e-9 Ha.
    for p1, p3 in zip(t1.xc.parameters(), t3.xc.parameters()):
        assert torch.allclose(p1, p3, rtol=0, atol=1e-8)
