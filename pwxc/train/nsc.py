"""Stage 1 of Sol58 training: non-self-consistent lattice constants on cached PBE densities.

For a material with cached reference points j (pwxc.train.reference), a functional θ has

    E_θ(s_j) = E_PBE(s_j) + (Ω/N) Σ_r [e_θ(ρ_j, σ_j) − e_PBE(ρ_j, σ_j)]            (Ha)

(exact in everything but the density, whose error enters at second order), and a₀(θ) from a
differentiable third-order Birch–Murnaghan fit of E_θ(s_j) (pwxc.train.losses.eos_lattice_constant).
One epoch over 40 materials × 7 scales is one functional evaluation per cached grid (seconds).

Targets (:func:`targets`): the ZPAE-corrected reference a_ref ("zpae"), or that target shifted by
this code's pseudopotential error, a_ref + (a_PBE,pwxc − a_PBE,published) ("delta"), so that the
functional learns exchange–correlation and not the pseudopotential.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..units import ANGSTROM_IN_BOHR
from .losses import eos_lattice_constant


@dataclass
class NSCMaterial:
    """Cached reference data of one material, as tensors (see :func:`from_points`)."""

    name: str
    scales: list
    a_start: float            # Å, the lattice constant at scale 1
    energies: torch.Tensor    # (n_s,) E_PBE, Ha
    e_xc_pbe: torch.Tensor    # (n_s,) E_xc^PBE of the cached inputs, Ha
    inputs: list              # per scale (rho, sigma, weights (Bohr³ per kept point))

    @classmethod
    def from_points(cls, name, points, compress: bool = True):
        """``compress``: merge grid points whose (ρ, σ) agree to 12 significant digits — on a
        symmetric crystal nearly every point has up to 47 images — into one point of summed weight
        (an exact rewriting up to that rounding; see :func:`compress_grid`)."""
        inputs = []
        for p in points:
            if compress:
                inputs.append(compress_grid(p.rho, p.sigma, p.weight))
            else:
                n = p.rho.shape[-1]
                inputs.append((p.rho, p.sigma, torch.full((n,), p.weight, dtype=torch.float64)))
        return cls(name=name, scales=[p.scale for p in points], a_start=points[0].a_angstrom / points[0].scale,
                   energies=torch.tensor([p.energy for p in points], dtype=torch.float64),
                   e_xc_pbe=torch.tensor([p.e_xc_pbe for p in points], dtype=torch.float64),
                   inputs=inputs)

    @property
    def n_points(self) -> int:
        """Grid points evaluated per epoch (after compression)."""
        return sum(int(w.shape[0]) for _, _, w in self.inputs)

    def energies_nsc(self, functional) -> torch.Tensor:
        """E_θ(s_j), Ha (differentiable in the functional's parameters)."""
        e_xc = torch.stack([(functional.energy_density(rho, sigma) * weights).sum()
                            for rho, sigma, weights in self.inputs])
        return self.energies + (e_xc - self.e_xc_pbe)

    def lattice_constant(self, functional=None, strict: bool = False) -> torch.Tensor:
        """a₀ (Å) of the NSC E(a) of ``functional`` (None: the PBE reference curve itself). ``strict``:
        raise if the minimum lies outside the scales (by default the fit extrapolates, which trial steps
        of an optimiser need; reported numbers are checked with :meth:`inside`)."""
        energies = self.energies if functional is None else self.energies_nsc(functional)
        a0 = eos_lattice_constant(list(energies), self.scales, self.a_start * ANGSTROM_IN_BOHR, strict=strict)
        return a0 / ANGSTROM_IN_BOHR

    def inside(self, a0: float) -> bool:
        """True if a₀ (Å) lies within the scanned lattice constants."""
        return min(self.scales) * self.a_start <= a0 <= max(self.scales) * self.a_start


def compress_grid(rho, sigma, weight: float, digits: int = 12):
    """Merge grid points with equal XC inputs: (rho_kept, sigma_kept, weights) with
    Σ_kept w e(ρ, σ) = Ω/N Σ_r e(ρ(r), σ(r)) up to the rounding of the inputs to ``digits``
    significant digits (relative change of E_xc ≲ 10⁻¹¹).

    rho (N,) or (2, N) Bohr⁻³, sigma (N,) or (3, N) Bohr⁻⁸, weight Ω/N (Bohr³). The key is every
    input of a point rounded in a relative sense, so symmetry images (equal up to FFT round-off, ~1e-15)
    share a key; the kept value is the first image's exact one.
    """
    import numpy as np
    cols = np.vstack([np.atleast_2d(rho.numpy()), np.atleast_2d(sigma.numpy())]).T       # (N, n_in)
    scale = np.where(cols != 0, 10.0 ** np.floor(np.log10(np.abs(np.where(cols != 0, cols, 1.0)))), 1.0)
    keys = np.round(cols / scale, digits - 1) * scale
    _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    idx = torch.from_numpy(first)
    return (rho[..., idx].contiguous(), sigma[..., idx].contiguous(),
            torch.from_numpy(counts.astype(np.float64)) * weight)


def targets(solids: dict, materials: dict, kind: str = "zpae") -> dict:
    """name -> target a₀ (Å): "zpae" a_ref, or "delta" a_ref + (a_PBE,pwxc − a_PBE,published)."""
    if kind not in ("zpae", "delta"):
        raise ValueError(f"target kind must be 'zpae' or 'delta', got {kind!r}")
    out = {}
    for name, mat in materials.items():
        solid = solids[name]
        if kind == "zpae":
            out[name] = solid.a_ref
        else:
            out[name] = solid.a_ref + (float(mat.lattice_constant()) - solid.a_pbe_published)
    return out


def loss(functional, materials: dict, target: dict, names) -> tuple:
    """Mean squared relative a₀ error over ``names`` and the per-material a₀ (Å, floats)."""
    terms, a0s = [], {}
    for name in names:
        a0 = materials[name].lattice_constant(functional)
        terms.append(((a0 - target[name]) / target[name]) ** 2)
        a0s[name] = float(a0.detach())
    return torch.stack(terms).mean(), a0s


def mare(a0s: dict, target: dict) -> float:
    """Mean absolute relative error (%) of a₀ against the targets."""
    return 100 * sum(abs(a0s[n] / target[n] - 1) for n in a0s) / len(a0s)


def fit(functional, materials: dict, target: dict, train, validation=(), max_iter: int = 60,
        l2: float = 0.0, log=None, lr: float = 1.0) -> dict:
    """Minimise the training loss by L-BFGS (small parametric forms) and return the history.

    ``l2``: penalty λ Σ θ² on the raw parameters (0 = PBE for the PBE family). Each closure call
    is one epoch over the training materials. History: list of dicts (loss, train/validation MARE %).
    """
    params = [p for p in functional.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(params, lr=lr, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-14)
    history = []

    def closure():
        opt.zero_grad()
        value, a0s = loss(functional, materials, target, train)
        if l2:
            value = value + l2 * sum((p**2).sum() for p in params)
        value.backward()
        record = {"loss": float(value.detach()), "train_mare": mare(a0s, target)}
        if validation:
            with torch.no_grad():
                _, va = loss(functional, materials, target, validation)
            record["validation_mare"] = mare(va, target)
        history.append(record)
        if log is not None:
            log(record)
        return value

    opt.step(closure)
    if not all(math.isfinite(h["loss"]) for h in history[-1:]):
        raise FloatingPointError("NSC training diverged (non-finite loss)")
    return {"history": history}


def folds(names, solids: dict, k: int = 5, seed: int = 0) -> list:
    """k folds of ``names`` stratified by materials class (round-robin within each class after a
    seeded shuffle); list of name lists."""
    import random
    rng = random.Random(seed)
    out = [[] for _ in range(k)]
    i = 0
    by_class = {}
    for n in names:
        by_class.setdefault(solids[n].material_class, []).append(n)
    for cls in sorted(by_class):
        members = sorted(by_class[cls])
        rng.shuffle(members)
        for n in members:
            out[i % k].append(n)
            i += 1
    return out


class FoldCache:
    """Scores of finished cross-validation folds in one JSON file, rewritten atomically after every
    fold, so that a stage 1 killed mid-way resumes with the folds it had (a fold is a deterministic
    fit: recomputing it would give the same score). A damaged file is an error naming it; it is
    never overwritten."""

    def __init__(self, path):
        import json
        from pathlib import Path
        self.path = Path(path)
        self.scores = {}
        if self.path.exists():
            try:
                self.scores = dict(json.loads(self.path.read_text())["folds"])
            except (ValueError, KeyError, TypeError, OSError) as err:
                raise ValueError(f"cross-validation progress file {self.path} is unreadable ({err}); "
                                 "move it away to recompute the folds") from None

    def get(self, key: str):
        return self.scores.get(key)

    def put(self, key: str, value: dict):
        import json
        from pathlib import Path

        from ..files import atomic_write
        self.scores[key] = value
        text = json.dumps({"folds": self.scores}, indent=1)
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))


def fold_key(label: str, fold, train, materials: dict, target: dict, **options) -> str:
    """Identity of one CV fold: form label, members, options, and the data (each material's PBE a₀ and
    target), so that a cache entry is never reused for other references."""
    import hashlib
    import json
    with torch.no_grad():
        data = {n: [round(float(materials[n].lattice_constant()), 10), target[n]] for n in sorted([*fold, *train])}
    blob = json.dumps(dict(label=label, fold=sorted(fold), train=sorted(train), data=data, options=options),
                      sort_keys=True)
    return label + ":" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def cross_validate(make_functional, materials: dict, target: dict, names, solids: dict, k: int = 5,
                   seed: int = 0, l2: float = 0.0, max_iter: int = 60, lr: float = 1.0,
                   cache: FoldCache | None = None, label: str = "") -> dict:
    """k-fold CV of NSC training: per fold, fit a fresh ``make_functional()`` on the other folds and
    score the held-out fold. Returns fold MAREs (%), their mean and standard deviation. A fold whose
    fit breaks (a trial functional without an E(a) minimum for some material) scores inf, with the
    reason in ``failures``: such a form is never chosen. With a ``cache`` (:class:`FoldCache`),
    finished folds are stored under ``label`` and read back on a rerun."""
    scores, failures = [], []
    for fold in folds(names, solids, k, seed):
        train = [n for n in names if n not in fold]
        key = fold_key(label, fold, train, materials, target, l2=l2, max_iter=max_iter, lr=lr) if cache else None
        done = cache.get(key) if cache else None
        if done is None:
            f = make_functional()
            try:
                fit(f, materials, target, train, max_iter=max_iter, l2=l2, lr=lr)
                with torch.no_grad():
                    _, a0s = loss(f, materials, target, fold)
                done = {"mare_pct": mare(a0s, target)}
            except FloatingPointError as err:
                done = {"mare_pct": math.inf, "failure": str(err)}
            if cache:
                cache.put(key, done)
        scores.append(done["mare_pct"])
        if "failure" in done:
            failures.append(done["failure"])
    if failures:
        return {"fold_mare_pct": scores, "mean_pct": math.inf, "std_pct": math.inf, "failures": failures}
    mean = sum(scores) / len(scores)
    std = (sum((x - mean) ** 2 for x in scores) / max(1, len(scores) - 1)) ** 0.5
    return {"fold_mare_pct": scores, "mean_pct": mean, "std_pct": std}
