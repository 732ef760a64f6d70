"""Stage 2 of Sol58 training: self-consistent fine-tuning, data parallel over materials.

Each epoch, every training material's E(a) scan is converged with the current functional θ at the
scales of its reference (warm started from the previous epoch's state at that scale), and

    a₀(θ) = BM-fit[E_θ(s_j)],   dE_θ(s_j)/dθ by Hellmann–Feynman (the SCF energy is stationary),
    L = (1/M) Σ_m ((a₀,m − t_m)/t_m)²,

so dL/dθ needs no linear response. With ``torch.distributed`` (gloo on CPU, nccl on CUDA; started by
``torchrun``) each rank owns a cost-balanced share of the materials (pwxc.train.reference.partition),
the per-rank sums of the loss and of its gradient are all-reduced, and every rank takes the same
optimizer step. Rank 0 writes an atomic checkpoint after every epoch (parameters, optimizer state,
history, a hash of the settings); a rerun resumes from it and refuses a checkpoint of other settings.
Warm-start states are not checkpointed, so a resumed run's first epoch starts its SCFs from scratch: its
parameters agree with an uninterrupted run's to the SCF tolerance, not bitwise (documented tolerance:
1e-6 in the raw parameters at scf_tol 1e-8 Ha; measured 1.5e-7 after a kill mid-epoch 2 of 3).
A material whose SCF fails is retried from scratch once, then skipped for that epoch with a logged
reason. If a rank dies, the others fail in the next collective (timeout), and the last checkpoint is
intact because it is only ever replaced atomically.
"""
from __future__ import annotations

import datetime
import json
import logging
import math
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from ..files import atomic_write
from ..units import ANGSTROM_IN_BOHR
from .losses import eos_lattice_constant
from .reference import SCALES, material_settings, partition, settings_key

log = logging.getLogger("pwxc.train")


class CheckpointMismatch(RuntimeError):
    """A checkpoint in the workdir was written for other settings."""


def _dist():
    import torch.distributed as dist
    return dist if dist.is_available() and dist.is_initialized() else None


def init_distributed(timeout_s: float = 1800.0):
    """Initialise the process group from torchrun's environment (gloo on CPU, nccl with CUDA);
    returns (rank, world_size); (0, 1) without torchrun."""
    import os

    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SCFStage:
    """Self-consistent lattice-constant training over materials (see the module docstring).

    Args:
        functional: a trainable pwxc functional (nn.Module).
        solids: list of pwxc.train.sol58.Solid (the training materials).
        targets: name -> target a₀ (Å).
        workdir: folder for checkpoint.pt and metrics.jsonl.
        rule: settings rule (default pwxc.train.sol58.settings); scales: of the published PBE a.
        lr: Adam step; scf_tol: SCF energy tolerance (Ha).
    """

    def __init__(self, functional, solids, targets, workdir, rule=None, scales=SCALES, lr=0.01,
                 scf_tol=1e-8):
        self.functional = functional
        self.solids = list(solids)
        self.targets = dict(targets)
        self.workdir = Path(workdir)
        self.rule = rule
        self.scales = tuple(scales)
        self.scf_tol = scf_tol
        self.optimizer = torch.optim.Adam([p for p in functional.parameters() if p.requires_grad], lr=lr)
        self.history = []
        self.epoch = 0
        self._states = {}        # (material, scale) -> last SCFResult, for warm starts
        self._bases = {}
        self.rank, self.world = init_distributed()
        self.mine = set(partition(self.solids, self.world, rule)[self.rank])
        self.key = settings_key({"materials": sorted(s.name for s in self.solids), "targets": self.targets,
                                 "scales": list(self.scales), "lr": lr, "scf_tol": scf_tol,
                                 "rules": {s.name: material_settings(s, rule) for s in self.solids},
                                 "functional": type(functional).__name__})
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._resume()

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / "checkpoint.pt"

    def _resume(self):
        if not self.checkpoint_path.exists():
            return
        try:
            ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        except Exception as err:      # torch raises several types for damaged files
            raise RuntimeError(f"checkpoint {self.checkpoint_path} is unreadable ({err}); move it away") from None
        if ckpt.get("key") != self.key:
            raise CheckpointMismatch(f"checkpoint {self.checkpoint_path} was written for other settings; "
                                     "use another workdir or remove it")
        self.functional.load_state_dict(ckpt["functional"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.history, self.epoch = ckpt["history"], ckpt["epoch"]
        log.info("resumed at epoch %d from %s", self.epoch, self.checkpoint_path)

    def _save(self):
        if self.rank != 0:
            return
        ckpt = dict(key=self.key, functional=self.functional.state_dict(),
                    optimizer=self.optimizer.state_dict(), history=self.history, epoch=self.epoch)
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(ckpt, tmp))
        lines = "".join(json.dumps(h) + "\n" for h in self.history)
        atomic_write(self.workdir / "metrics.jsonl", lambda tmp: Path(tmp).write_text(lines))

    # ------------------------------------------------------------------ one material
    def _basis(self, solid, scale):
        import pwxc
        from ..workflows._engine import crystal_of

        key = (solid.name, scale)
        if key not in self._bases:
            s = material_settings(solid, self.rule)
            model_kw = {k: s[k] for k in ("pseudopotentials", "smearing", "temperature", "magnetic_moments")
                        if k in s}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pwxc.pseudo.PseudopotentialFunctionalWarning)
                model = pwxc.Model(crystal_of(solid.structure(solid.a_pbe_published * scale)),
                                   xc=self.functional, **model_kw)
            self._bases[key] = pwxc.PlaneWaveBasis(model, ecut=s["ecut"], kgrid=tuple(s["kgrid"]), symmetry=True)
        return self._bases[key]

    def material_loss(self, solid):
        """(loss tensor with its θ graph, a₀ Å) of one material, SCF at every scale (warm started)."""
        import pwxc

        energies = []
        for scale in self.scales:
            basis = self._basis(solid, scale)
            guess = self._states.get((solid.name, scale))
            result = pwxc.scf(basis, tol=self.scf_tol, guess=guess)
            if not result.converged:
                result = pwxc.scf(basis, tol=self.scf_tol, maxiter=250, anderson_depth=5)
            if not result.converged:
                raise RuntimeError(f"SCF at scale {scale} did not converge")
            # keep what a warm start needs, not the energy's autograd graph
            self._states[(solid.name, scale)] = SimpleNamespace(density=result.density.detach(), basis=basis,
                                                                orbitals_all=result.orbitals_all)
            energies.append(result.energy)
        a0 = eos_lattice_constant(energies, list(self.scales), solid.a_pbe_published * ANGSTROM_IN_BOHR)
        a0 = a0 / ANGSTROM_IN_BOHR
        t = self.targets[solid.name]
        return ((a0 - t) / t) ** 2, float(a0.detach())

    # ------------------------------------------------------------------ epochs
    def run_epoch(self) -> dict:
        t0 = time.perf_counter()
        params = [p for p in self.functional.parameters() if p.requires_grad]
        self.optimizer.zero_grad()
        total, count, a0s, skipped = 0.0, 0, {}, {}
        for solid in self.solids:
            if solid.name not in self.mine:
                continue
            for attempt in (0, 1):
                try:
                    loss, a0 = self.material_loss(solid)
                    loss.backward()
                    total += float(loss.detach())
                    count += 1
                    a0s[solid.name] = a0
                    break
                except (RuntimeError, FloatingPointError, ValueError) as err:
                    for scale in self.scales:              # retry from scratch
                        self._states.pop((solid.name, scale), None)
                    if attempt == 1:
                        skipped[solid.name] = str(err)
                        log.warning("epoch %d: %s skipped: %s", self.epoch + 1, solid.name, err)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
                         + [torch.tensor([total, float(count)], dtype=params[0].dtype)])
        dist = _dist()
        if dist is not None:
            dist.all_reduce(flat)
            gathered = [None] * self.world
            dist.all_gather_object(gathered, {"a0": a0s, "skipped": skipped})
            for g in gathered:
                a0s.update(g["a0"])
                skipped.update(g["skipped"])
        total, count = float(flat[-2]), int(flat[-1])
        if count == 0:
            raise RuntimeError(f"every material failed in this epoch: {skipped}")
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = (flat[offset:offset + n] / count).reshape(p.shape).to(p.dtype)
            offset += n
        self.optimizer.step()
        self.epoch += 1
        record = dict(epoch=self.epoch, loss=total / count, n_materials=count, skipped=skipped,
                      mare_pct=100 * sum(abs(a0s[n] / self.targets[n] - 1) for n in a0s) / max(1, len(a0s)),
                      a0=a0s, seconds=round(time.perf_counter() - t0, 2), ranks=self.world)
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(f"epoch {self.epoch}: non-finite loss")
        self.history.append(record)
        self._save()
        return record

    def fit(self, epochs: int) -> list:
        """Run until ``epochs`` epochs are done in total (resumed runs continue where they stopped)."""
        while self.epoch < epochs:
            record = self.run_epoch()
            if self.rank == 0:
                log.info("epoch %d loss %.3e MARE %.3f %% (%d materials, %.1f s)", record["epoch"], record["loss"],
                         record["mare_pct"], record["n_materials"], record["seconds"])
        return self.history
