"""Loss functions for training XC functionals on solids (all dimensionless; energies in Ha, lengths in Bohr).

Energy loss (the reference paper's Eq. (3), as intended). As printed, Eq. (3) divides the energy error
by the reference total energy E_tot itself, which is negative for every bound system; read literally
(as the issue reports it) minimising it rewards a *larger* error of the right sign. What is meant is a
relative squared error, implemented here:

    L_E = (1/N) Σ_i ((E_θ,i − E_ref,i) / |E_ref,i|)²                                        (1)

Lattice-constant loss, through the differentiable equation of state. The E(a) scan at scales s_j
(fixed plane-wave basis) gives energies E_θ(s_j) that carry their exact θ-gradient (Hellmann–Feynman);
a third-order Birch–Murnaghan fit (pwxc.response.eos.birch_murnaghan_fit) gives x₀ and

    a₀(θ) = a_ref x₀^{-1/2},   L_a = ((a₀(θ) − a_exp) / a_exp)²                              (2)

or, with ``norm="absolute"``, L_a = |a₀(θ) − a_exp| / a_exp (its mean over materials is the MARE that
the held-out evaluation reports; every material then pulls with the same weight, whatever its error)

(the alternative route pwxc.response.eos.zero_pressure_lattice gives a₀ by zero pressure and da₀/dθ by
the implicit-function theorem; selected with ``lattice_method="zero_pressure"``).

Energy-difference (curve-shape) loss: only energy *differences* are what a functional can be expected
to improve (total energies carry pseudopotential-specific constants). With centred curves
d_j = E_θ(s_j) − mean_j E_θ, r_j = E_ref(s_j) − mean_j E_ref,

    L_ΔE = Σ_j (d_j − r_j)² / Σ_j r_j²                                                       (3)

which is independent of any constant energy shift and zero iff the curves agree up to a constant.
"""
from __future__ import annotations

import math

import torch

from ..units import ANGSTROM_IN_BOHR
from .dataset import build_basis

__all__ = ["relative_energy_loss", "lattice_loss", "curve_loss", "eos_lattice_constant", "SampleLoss",
           "reference_lattice_constant"]


def relative_energy_loss(energy, reference) -> torch.Tensor:
    """((E − E_ref)/|E_ref|)², Eq. (1) for one sample (mean over samples is taken by the loop)."""
    reference = float(reference)
    if reference == 0 or not math.isfinite(reference):
        raise ValueError(f"reference energy must be finite and non-zero, got {reference}")
    return ((energy - reference) / abs(reference)) ** 2


LATTICE_NORMS = ("squared", "absolute")


def lattice_loss(a0, a_target, norm: str = "squared") -> torch.Tensor:
    """((a₀ − a_target)/a_target)² (``norm="squared"``, Eq. (2)) or |a₀ − a_target|/a_target
    (``norm="absolute"``); a₀ and a_target in the same unit."""
    if norm not in LATTICE_NORMS:
        raise ValueError(f"lattice loss norm must be one of {LATTICE_NORMS}, got {norm!r}")
    rel = (a0 - float(a_target)) / float(a_target)
    return rel**2 if norm == "squared" else rel.abs()


def curve_loss(energies, reference) -> torch.Tensor:
    """Eq. (3): squared error of the centred E(a) curve relative to the reference curve's spread."""
    e = torch.stack([torch.as_tensor(x) for x in energies])
    r = torch.as_tensor([float(x) for x in reference], dtype=e.dtype, device=e.device)
    if e.shape != r.shape or len(r) < 2:
        raise ValueError(f"curve needs ≥ 2 points and matching lengths, got {tuple(e.shape)} and {tuple(r.shape)}")
    d, rc = e - e.mean(), r - r.mean()
    spread = float((rc**2).sum())
    if spread <= 0:
        raise ValueError("reference curve is flat: energy-difference loss undefined")
    return ((d - rc) ** 2).sum() / spread


def eos_lattice_constant(energies, scales, a_ref: float, strict: bool = True) -> torch.Tensor:
    """a₀ = a_ref x₀^{-1/2} from a Birch–Murnaghan fit of E(s·a_ref) (any length unit of a_ref).

    Volumes are taken as s³ (relative), so x = s^{-2}; differentiable in the energies. ``strict``:
    raise when the minimum lies outside the scanned scales (else the fit extrapolates; an optimiser's
    trial steps may go there).
    """
    from ..response.eos import birch_murnaghan_fit

    if len(energies) < 4:
        raise ValueError("a Birch–Murnaghan fit needs at least 4 scan points")
    x0, _, curvature = birch_murnaghan_fit([s**3 for s in scales], energies, 1.0)
    x0_value, curvature = float(torch.as_tensor(x0).detach()), float(torch.as_tensor(curvature).detach())
    if not math.isfinite(x0_value) or not curvature > 0 or x0_value <= 0:
        raise FloatingPointError("E(a) scan has no minimum inside the fit (non-convex or not bracketed)")
    lo, hi = min(scales), max(scales)
    a0_rel = x0_value ** -0.5
    if strict and not lo <= a0_rel <= hi:
        raise FloatingPointError(f"E(a) minimum at scale {a0_rel:.4f} outside the scan [{lo}, {hi}]")
    return a_ref * x0 ** (-0.5)


def reference_lattice_constant(sample) -> float:
    """a_ref of the sample's cell in Å: ``sample.lattice_constant`` or, if None, Ω^{1/3}."""
    if sample.lattice_constant is not None:
        return float(sample.lattice_constant)
    return float(sample.structure.lattice.volume) ** (1 / 3)


class SampleLoss:
    """Weighted sum of Eqs. (1)–(3) over the targets a sample has.

    ``weights``: {"energy": w_E, "lattice_constant": w_a, "curve": w_ΔE} (missing → 1).
    ``lattice_method``: "scan" (Eq. (2) from the E(a) scan, default) or "zero_pressure".
    ``lattice_norm``: "squared" (Eq. (2), default) or "absolute" (relative absolute error).
    Called as ``loss, info = SampleLoss()(sample, ctx)`` where ``ctx.solve(scale)`` returns a converged
    SCFResult of the sample at lattice scale ``scale`` (the training loop supplies warm starts and
    retries), ``ctx.xc`` is the functional in use and ``ctx.scf_kwargs`` the SCF options. ``info`` holds
    floats for the metrics log (a0_angstrom, per-term losses).
    """

    def __init__(self, weights: dict | None = None, lattice_method: str = "scan", lattice_norm: str = "squared"):
        if lattice_method not in ("scan", "zero_pressure"):
            raise ValueError(f"lattice_method must be 'scan' or 'zero_pressure', got {lattice_method!r}")
        if lattice_norm not in LATTICE_NORMS:
            raise ValueError(f"lattice_norm must be one of {LATTICE_NORMS}, got {lattice_norm!r}")
        self.weights = dict(weights or {})
        self.lattice_method = lattice_method
        self.lattice_norm = lattice_norm

    def __call__(self, sample, ctx):
        t = sample.targets
        known = {"energy", "lattice_constant", "curve", "scales"}
        if not (set(t) & {"energy", "lattice_constant", "curve"}) or set(t) - known:
            raise ValueError(f"sample {sample.name!r}: targets must be among energy, lattice_constant, curve "
                             f"(+ scales); got {sorted(t)}")
        terms, info = {}, {}
        if "energy" in t:
            terms["energy"] = relative_energy_loss(ctx.solve(1.0).energy, t["energy"])
        if "curve" in t or ("lattice_constant" in t and self.lattice_method == "scan"):
            scales = sample.scales
            energies = [ctx.solve(s).energy for s in scales]
            if "curve" in t:
                terms["curve"] = curve_loss(energies, t["curve"])
            if "lattice_constant" in t and self.lattice_method == "scan":
                a0 = eos_lattice_constant(energies, scales, reference_lattice_constant(sample) * ANGSTROM_IN_BOHR)
                terms["lattice_constant"] = lattice_loss(a0, float(t["lattice_constant"]) * ANGSTROM_IN_BOHR,
                                                         self.lattice_norm)
                info["a0_angstrom"] = float(a0.detach()) / ANGSTROM_IN_BOHR
        if "lattice_constant" in t and self.lattice_method == "zero_pressure":
            from ..response.eos import zero_pressure_lattice

            zp = zero_pressure_lattice(build_basis(sample, ctx.xc),
                                       lattice_constant=reference_lattice_constant(sample) * ANGSTROM_IN_BOHR,
                                       **ctx.scf_kwargs)
            terms["lattice_constant"] = lattice_loss(zp.a0, float(t["lattice_constant"]) * ANGSTROM_IN_BOHR,
                                                     self.lattice_norm)
            info["a0_angstrom"] = float(zp.a0.detach()) / ANGSTROM_IN_BOHR
        loss = sum(float(self.weights.get(k, 1.0)) * v for k, v in terms.items())
        info.update({f"loss_{k}": float(v.detach()) for k, v in terms.items()})
        return loss, info
