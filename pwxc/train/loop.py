"""Training loop for neural XC functionals on solids: mini-batches, warm starts, retries, checkpoints.

    trainer = Trainer(hybrid, train_samples, validation_samples,
                      optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
                      config=TrainConfig(epochs=20, batch_size=2, workdir="runs/hybrid", patience=5))
    history = trainer.fit()            # resumes from workdir/checkpoint.pt if it exists

Per epoch e (0-based): λ = ramp_lambda(e, ramp_epochs) (E_xc = E_base + λ(E_θ − E_base), see ramp.py);
the training samples are shuffled with a generator seeded by (seed, e) and split into mini-batches; each
sample's loss L_i (losses.SampleLoss) is back-propagated at once (its graph is freed) as w_i L_i / n_b
and the optimiser steps once per batch, with the gradient rescaled to the samples that succeeded.

SCF robustness: every (sample, scale) starts from its cached density — on first sight the converged
base-functional (PBE) density, afterwards the previous epoch's — so each SCF is a small correction.
If an SCF fails (not converged or non-finite), it is retried once from atomic densities with safer
mixing (Kerker α = ``retry_alpha``, twice the iterations); if that fails too the sample is skipped for
this epoch, and the reason is logged (logger "pwxc.train") and written to the metrics. A non-finite
sample loss skips the sample; a non-finite gradient skips the optimiser step; non-finite parameters
after a step stop training (status "stopped: ...") without writing them to any checkpoint.

Files in ``workdir``: checkpoint.pt (written atomically after every epoch: functional weights and spec,
optimiser state, epoch, metrics history, RNG states, warm-start densities, early-stopping state),
metrics.jsonl (one JSON line per epoch), best.pt (best-validation functional, pwxc.xc.load-able),
final.pt, and curves.png (training / validation loss per epoch).
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..files import atomic_write
from ..xc.io import save as save_functional, spec as functional_spec
from .dataset import build_basis, write_json_atomic
from .losses import SampleLoss
from .ramp import ramp_lambda, ramped

log = logging.getLogger("pwxc.train")
CHECKPOINT_FORMAT = "pwxc.train.checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable or does not match the functional/optimiser (names the file)."""


class SampleFailed(RuntimeError):
    """A sample could not be evaluated this epoch (reason in the message)."""


@dataclass
class TrainConfig:
    """Settings of :class:`Trainer` (stored in every checkpoint).

    epochs: total number of epochs; batch_size: structures per optimiser step; seed: shuffling seed;
    workdir: output folder; patience: early-stopping patience in epochs on the validation loss (None: off);
    min_delta: improvement below which an epoch counts as no improvement; ramp_epochs: epochs of the
    linear λ ramp (0: λ = 1 from the start); weights / lattice_method / lattice_norm: passed to SampleLoss;
    scf_tol (Ha), maxiter: SCF settings (a sample's settings["tol"/"maxiter"] override them);
    retry_alpha: Kerker mixing α of the retry; pbe_warm_start: start new structures from the base
    functional's converged density; progress: tqdm bar; plot: write curves.png every epoch;
    lr_decay: every param group's lr is multiplied by it after each epoch (kept in the optimiser state,
    so a resumed run continues the same schedule).
    """

    epochs: int = 10
    batch_size: int = 4
    seed: int = 0
    workdir: str = "runs/train"
    patience: int | None = None
    min_delta: float = 0.0
    ramp_epochs: int = 0
    weights: dict = field(default_factory=dict)
    lattice_method: str = "scan"
    lattice_norm: str = "squared"
    scf_tol: float = 1e-8
    maxiter: int = 100
    retry_alpha: float = 0.1
    pbe_warm_start: bool = True
    progress: bool = True
    plot: bool = True
    lr_decay: float = 1.0


def atomic_torch_save(obj, path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then os.replace (never a partial file)."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_functional_atomic(xc, path, metadata=None) -> None:
    """pwxc.xc.save through a temporary file + fsync + os.replace."""
    atomic_write(path, lambda tmp: save_functional(xc, tmp, metadata))


def _rng_state() -> dict:
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_rng_state(state: dict) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


class _Context:
    """What a loss function sees: ``xc``, ``scf_kwargs`` and ``solve(scale) -> SCFResult`` (cached per call)."""

    def __init__(self, trainer, key, sample, xc):
        self.trainer, self.key, self.sample, self.xc = trainer, key, sample, xc
        self.scf_kwargs = trainer.scf_kwargs(sample)
        self._results = {}

    def solve(self, scale: float = 1.0):
        if scale not in self._results:
            self._results[scale] = self.trainer.solve(self.key, self.sample, self.xc, scale)
        return self._results[scale]


class Trainer:
    """Fit a neural functional (any nn.Module Functional with parameters) to training samples.

    ``optimizer``: a torch optimiser over ``functional.parameters()`` or a callable params → optimiser
    (default Adam, lr 1e-3). ``loss_fn(sample, ctx) -> (loss, info)``: default SampleLoss(config.weights,
    config.lattice_method).
    """

    def __init__(self, functional, train, validation=(), optimizer=None, config: TrainConfig | None = None,
                 loss_fn=None):
        self.xc = functional
        self.train, self.validation = list(train), list(validation)
        if not self.train:
            raise ValueError("no training samples")
        self.config = config or TrainConfig()
        params = [p for p in functional.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the functional has no trainable parameters")
        if optimizer is None:
            optimizer = torch.optim.Adam(params, lr=1e-3)
        elif callable(optimizer) and not isinstance(optimizer, torch.optim.Optimizer):
            optimizer = optimizer(params)
        self.optimizer = optimizer
        self.loss_fn = loss_fn or SampleLoss(self.config.weights, self.config.lattice_method,
                                              self.config.lattice_norm)
        self.workdir = Path(self.config.workdir)
        self.warm = {}            # "split:i:name@scale" -> converged density (detached)
        self._last = {}           # "split:i:name" -> last converged density of that sample (any scale)
        self.history = []
        self.epoch = 0            # epochs completed
        self.best_val, self.bad_epochs, self.status = math.inf, 0, "running"

    # ----------------------------------------------------------------- SCF with warm starts and retry
    def scf_kwargs(self, sample) -> dict:
        st = sample.settings
        return dict(tol=float(st.get("tol", self.config.scf_tol)), maxiter=int(st.get("maxiter", self.config.maxiter)))

    def solve(self, key, sample, xc, scale):
        """Converged SCFResult of ``sample`` at ``scale`` with functional ``xc``; SampleFailed after one retry."""
        import pwxc

        wkey = f"{key}@{scale:.6f}"
        basis = build_basis(sample, xc, scale)
        kw = self.scf_kwargs(sample)
        if wkey not in self.warm and self.config.pbe_warm_start:
            try:
                base = pwxc.scf(build_basis(sample, self.xc.base_name, scale), raise_on_failure=True, **kw)
                self.warm[wkey] = base.density.detach().clone()
            except (pwxc.SCFNotConvergedError, FloatingPointError) as err:
                log.info("no base-functional warm start for %s: %s", wkey, err)
        first = None
        for attempt in (0, 1):
            opts = dict(kw)
            if attempt == 0:        # this point's last density, else the sample's last one (same FFT grid)
                opts["guess"] = self.warm.get(wkey, self._last.get(key))
            else:       # safer: atomic start, gentle Kerker mixing, more iterations
                opts.update(mixing=pwxc.KerkerMixing(alpha=self.config.retry_alpha), maxiter=2 * kw["maxiter"])
            try:
                result = pwxc.scf(basis, raise_on_failure=True, **opts)
            except (pwxc.SCFNotConvergedError, FloatingPointError) as err:
                if attempt == 0:
                    first = f"{type(err).__name__}: {err}"
                    log.info("SCF of %s failed (%s); retrying with Kerker alpha=%g", wkey, first, self.config.retry_alpha)
                    continue
                raise SampleFailed(f"SCF failed at scale {scale:g}: {first}; retry (alpha={self.config.retry_alpha}, "
                                   f"maxiter={2 * kw['maxiter']}): {type(err).__name__}: {err}") from None
            self.warm[wkey] = result.density.detach().clone()
            self._last[key] = self.warm[wkey]
            return result

    def _evaluate(self, key, sample, xc):
        """(loss tensor, info) or raises SampleFailed (SCF failure, bad fit, non-finite loss)."""
        try:
            loss, info = self.loss_fn(sample, _Context(self, key, sample, xc))
        except SampleFailed:
            raise
        except FloatingPointError as err:
            raise SampleFailed(f"{type(err).__name__}: {err}") from None
        if not torch.isfinite(torch.as_tensor(loss)).all():
            raise SampleFailed(f"non-finite loss ({float(loss)})")
        return loss, info

    # ----------------------------------------------------------------------------- one epoch
    def _train_epoch(self, epoch, lam, bar):
        cfg, xc = self.config, ramped(self.xc, lam)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train), generator=gen).tolist()
        losses, skipped, infos, steps_skipped = [], [], {}, 0
        params = [p for p in self.xc.parameters() if p.requires_grad]
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            n_ok, wsum = 0, 0.0
            for i in batch:
                sample = self.train[i]
                try:
                    loss, info = self._evaluate(f"train:{i}:{sample.name}", sample, xc)
                except SampleFailed as err:
                    log.warning("epoch %d: skipping %s: %s", epoch + 1, sample.name, err)
                    skipped.append({"sample": sample.name, "reason": str(err)})
                    bar.update(1)
                    continue
                (sample.weight * loss / len(batch)).backward()
                n_ok, wsum = n_ok + 1, wsum + sample.weight
                losses.append(float(loss.detach()))
                infos[sample.name] = info
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3e}", lam=f"{lam:.2f}")
            if n_ok == 0:
                continue
            grads = [p.grad for p in params if p.grad is not None]
            for g in grads:
                g.mul_(len(batch) / n_ok)
            if not all(torch.isfinite(g).all() for g in grads):
                log.warning("epoch %d: non-finite gradient, optimiser step skipped", epoch + 1)
                steps_skipped += 1
                continue
            saved = [p.detach().clone() for p in params]
            self.optimizer.step()
            if not all(torch.isfinite(p).all() for p in params):
                with torch.no_grad():
                    for p, s in zip(params, saved):
                        p.copy_(s)
                self.status = "stopped: non-finite parameters after an optimiser step"
                log.error("epoch %d: %s; training stopped, last checkpoint kept", epoch + 1, self.status)
                break
        mean = sum(losses) / len(losses) if losses else float("nan")
        return mean, skipped, infos, steps_skipped

    def validate(self, lam: float = 1.0):
        """Mean validation loss (nan if none evaluated) and skipped samples; no parameter update."""
        xc, losses, skipped, infos = ramped(self.xc, lam), [], [], {}
        for i, sample in enumerate(self.validation):
            try:
                loss, info = self._evaluate(f"val:{i}:{sample.name}", sample, xc)
            except SampleFailed as err:
                log.warning("validation: skipping %s: %s", sample.name, err)
                skipped.append({"sample": sample.name, "reason": str(err)})
                continue
            losses.append(float(loss.detach()))
            infos[sample.name] = info
        return (sum(losses) / len(losses) if losses else float("nan")), skipped, infos

    # ------------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        """Write checkpoint.pt atomically (temporary file + os.replace)."""
        atomic_torch_save({
            "format": CHECKPOINT_FORMAT, "version": 1, "epoch": self.epoch,
            "functional_spec": json.dumps(functional_spec(self.xc)),
            "functional": {k: v.detach().clone() for k, v in self.xc.state_dict().items()},
            "optimizer": self.optimizer.state_dict(), "history": self.history,
            "best_val": self.best_val, "bad_epochs": self.bad_epochs, "status": self.status,
            "rng": _rng_state(), "warm": dict(self.warm), "last": dict(self._last), "config": json.dumps(asdict(self.config)),
        }, self.checkpoint_path)

    def load_checkpoint(self, path=None) -> None:
        """Restore weights, optimiser, epoch, metrics, RNG and warm starts; CheckpointError naming the file."""
        path = Path(path or self.checkpoint_path)
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file
            raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a pwxc training checkpoint")
        try:
            self.xc.load_state_dict(ck["functional"])
            self.optimizer.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint {path} does not match this functional/optimiser: {err}") from None
        self.epoch, self.history = int(ck["epoch"]), list(ck["history"])
        self.best_val, self.bad_epochs = float(ck["best_val"]), int(ck["bad_epochs"])
        self.status, self.warm, self._last = str(ck["status"]), dict(ck["warm"]), dict(ck.get("last", {}))
        _set_rng_state(ck["rng"])

    # ------------------------------------------------------------------------------- fit
    def fit(self, resume: bool = True) -> list:
        """Train until config.epochs, early stopping or a stop condition; returns the metrics history.

        With ``resume`` and an existing workdir/checkpoint.pt, continues after its last epoch.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        self.workdir.mkdir(parents=True, exist_ok=True)
        if resume and self.checkpoint_path.exists():
            self.load_checkpoint()
            log.info("resumed from %s after epoch %d", self.checkpoint_path, self.epoch)
            if self.status.startswith("stopped") or self.status.startswith("early"):
                return self.history
            self.status = "running"
        while self.epoch < cfg.epochs and self.status == "running":
            epoch, t0 = self.epoch, time.perf_counter()
            lam = ramp_lambda(epoch, cfg.ramp_epochs)
            with tqdm(total=len(self.train), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not cfg.progress,
                      leave=False) as bar:
                train_loss, skipped, infos, steps_skipped = self._train_epoch(epoch, lam, bar)
            if self.status != "running":
                break                                   # non-finite parameters: keep the last checkpoint
            val_loss, val_skipped, val_infos = self.validate(lam) if self.validation else (float("nan"), [], {})
            self.epoch = epoch + 1
            record = {"epoch": self.epoch, "lambda": lam, "train_loss": train_loss, "val_loss": val_loss,
                      "n_train": len(self.train) - len(skipped), "skipped": skipped, "val_skipped": val_skipped,
                      "steps_skipped": steps_skipped, "train": infos, "validation": val_infos,
                      "lr": [g["lr"] for g in self.optimizer.param_groups if "lr" in g],
                      "seconds": time.perf_counter() - t0}
            self.history.append(record)
            if not self.validation:
                pass                                    # no early stopping without a validation split
            elif math.isfinite(val_loss) and val_loss < self.best_val - cfg.min_delta:
                self.best_val, self.bad_epochs = val_loss, 0
                save_functional_atomic(self.xc, self.workdir / "best.pt", {"epoch": self.epoch, "val_loss": val_loss})
            elif lam >= 1.0:                            # patience counts only at full λ
                self.bad_epochs += 1
                if cfg.patience is not None and self.bad_epochs >= cfg.patience:
                    self.status = f"early stopped after epoch {self.epoch} (best val {self.best_val:.4e})"
            if not math.isfinite(train_loss):
                self.status = f"stopped: no training sample gave a finite loss in epoch {self.epoch}"
            log.info("epoch %d  λ=%.2f  train %.4e  val %.4e  skipped %d", self.epoch, lam, train_loss, val_loss,
                     len(skipped))
            if cfg.lr_decay != 1.0:
                for group in self.optimizer.param_groups:
                    group["lr"] *= cfg.lr_decay
            self.save_checkpoint()
            self._write_metrics()
        if self.status == "running":
            self.status = "finished"
        save_functional_atomic(self.xc, self.workdir / "final.pt", {"epochs": self.epoch, "status": self.status})
        return self.history

    def _write_metrics(self) -> None:
        lines = "".join(json.dumps(rec, allow_nan=True) + "\n" for rec in self.history)
        atomic_write(self.workdir / "metrics.jsonl", lambda tmp: Path(tmp).write_text(lines))
        write_json_atomic(self.workdir / "status.json", {"epoch": self.epoch, "status": self.status,
                                                         "best_val": self.best_val})
        if self.config.plot:
            plot_history(self.history, self.workdir / "curves.png")


def plot_history(history, path) -> None:
    """Training and validation loss per epoch (log scale) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="training")
    if any(math.isfinite(r["val_loss"]) for r in history):
        ax.plot(epochs, [r["val_loss"] for r in history], "s--", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if all(r["train_loss"] > 0 for r in history if math.isfinite(r["train_loss"])):
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
