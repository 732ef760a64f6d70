"""Equations of state E(V): third-order Birch–Murnaghan (default), Murnaghan, plain polynomial.

Everything here is in atomic units: volumes in Bohr³, energies in Hartree; only the reported bulk
modulus ``b0`` is converted to GPa (``b0_au`` keeps Ha/Bohr³).

Third-order Birch–Murnaghan (BM3), with η = (V0/V)^{2/3}::

    E(V) = E0 + (9 V0 B0 / 16) [ (η - 1)³ B0' + (η - 1)² (6 - 4η) ]

is *exactly* a cubic polynomial in x = V^{-2/3}: E = c0 + c1 x + c2 x² + c3 x³, and the map
(E0, V0, B0, B0') ↔ (c0..c3) is one-to-one wherever the cubic has a minimum. So the least-squares
BM3 fit is a linear least-squares problem; no starting guess, no local minima. The parameters follow
from the polynomial p(x) at its minimum x0 (p'(x0) = 0), with x' = dx/dV = -(2/3) V^{-5/3}::

    V0 = x0^{-3/2},  B0 = V0 E''(V0) = V0 p''(x0) x'²,
    B0' = dB/dP |_{P=0} = -(1 + V0 E'''(V0) / E''(V0)),   E''' = p''' x'³ + 3 p'' x' x''   (p' = 0)

Murnaghan::

    E(V) = E0 + B0 V / B0' [ (V0/V)^{B0'} / (B0' - 1) + 1 ] - B0 V0 / (B0' - 1)

is fitted by nonlinear least squares (scipy) started from the BM3 parameters.
Polynomial (``kind="polynomial"``, ``degree`` default 3): E(V) = Σ_k c_k V^k, with B0 and B0' from
the same derivative formulas at the minimum.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..units import HARTREE_PER_BOHR3_IN_GPA

EOS_KINDS = ("birch_murnaghan", "murnaghan", "polynomial")
_ALIASES = {"bm": "birch_murnaghan", "bm3": "birch_murnaghan", "birch-murnaghan": "birch_murnaghan",
            "birch_murnaghan": "birch_murnaghan", "murnaghan": "murnaghan", "poly": "polynomial",
            "polynomial": "polynomial"}


class EOSFitError(ValueError):
    """The data cannot be fitted (too few points, or the fitted curve has no minimum)."""


@dataclass
class EOSFit:
    """Result of :func:`fit_eos`.

    Attributes:
        kind: "birch_murnaghan", "murnaghan" or "polynomial".
        v0: equilibrium volume, Bohr³ (``v0_angstrom3`` in Å³).
        e0: energy at the minimum, Hartree.
        b0: bulk modulus B0 = V d²E/dV² at V0, GPa (``b0_au`` in Ha/Bohr³).
        b0_prime: dB/dP at P = 0 (dimensionless).
        residuals: E_fit(V_i) - E_i at the input points, Hartree.
        rms: root-mean-square residual, Hartree.
        volumes, energies: the fitted data (Bohr³, Hartree).
        params: the raw parameters (polynomial coefficients for BM3 and polynomial fits).
    """

    kind: str
    v0: float
    e0: float
    b0: float
    b0_prime: float
    residuals: np.ndarray
    volumes: np.ndarray
    energies: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(self.residuals**2)))

    @property
    def b0_au(self) -> float:
        return self.b0 / HARTREE_PER_BOHR3_IN_GPA

    @property
    def v0_angstrom3(self) -> float:
        from ..units import BOHR_IN_ANGSTROM
        return self.v0 * BOHR_IN_ANGSTROM**3

    @property
    def bracketed(self) -> bool:
        """True when V0 lies strictly inside the range of fitted volumes."""
        return bool(self.volumes.min() < self.v0 < self.volumes.max())

    def energy(self, volume) -> np.ndarray:
        """Fitted E(V) (Hartree) at volumes in Bohr³."""
        v = np.asarray(volume, dtype=float)
        if self.kind == "birch_murnaghan":
            return np.polyval(self.params["coefficients"], v ** (-2.0 / 3.0))
        if self.kind == "polynomial":
            return np.polyval(self.params["coefficients"], v)
        return murnaghan(v, self.e0, self.v0, self.b0_au, self.b0_prime)

    def pressure(self, volume) -> np.ndarray:
        """P = -dE/dV of the fit (Ha/Bohr³) at volumes in Bohr³ (central differences of `energy`)."""
        v = np.asarray(volume, dtype=float)
        h = 1e-4 * v
        return -(self.energy(v + h) - self.energy(v - h)) / (2 * h)

    def as_dict(self) -> dict:
        return dict(kind=self.kind, v0_bohr3=self.v0, e0_ha=self.e0, b0_gpa=self.b0, b0_prime=self.b0_prime,
                    rms_residual_ha=self.rms, residuals_ha=[float(r) for r in self.residuals])


def birch_murnaghan(volume, e0, v0, b0, b0_prime):
    """Third-order Birch–Murnaghan E(V); any consistent units (B0 in energy/volume)."""
    eta = (v0 / np.asarray(volume, dtype=float)) ** (2.0 / 3.0)
    return e0 + 9.0 * v0 * b0 / 16.0 * ((eta - 1) ** 3 * b0_prime + (eta - 1) ** 2 * (6 - 4 * eta))


def murnaghan(volume, e0, v0, b0, b0_prime):
    """Murnaghan E(V); any consistent units (B0 in energy/volume)."""
    v = np.asarray(volume, dtype=float)
    return e0 + b0 * v / b0_prime * ((v0 / v) ** b0_prime / (b0_prime - 1) + 1) - b0 * v0 / (b0_prime - 1)


def _minimum_of_polynomial(coeffs, lo, hi):
    """The local minimum of polynomial `coeffs` (np.polyval order) closest to the middle of [lo, hi]."""
    d1 = np.polyder(coeffs)
    d2 = np.polyder(d1)
    roots = np.roots(d1)
    roots = roots[np.abs(roots.imag) < 1e-9 * max(1.0, np.abs(roots).max(initial=1.0))].real
    minima = [r for r in roots if np.polyval(d2, r) > 0]
    if not minima:
        raise EOSFitError("the fitted curve has no minimum: the points are not around an energy minimum "
                          "(extend the scan window)")
    mid = 0.5 * (lo + hi)
    return min(minima, key=lambda r: abs(r - mid))


def _derived_from_polynomial(coeffs, x0, v0, dx):
    """B0 and B0' from a polynomial p(x) in a variable x(V) at its minimum x0 = x(V0).

    `dx` = (x', x'', x''') at V0. E'' = p'' x'², E''' = p''' x'³ + 3 p'' x' x'' (p'(x0) = 0).
    """
    p2 = np.polyval(np.polyder(coeffs, 2), x0)
    p3 = np.polyval(np.polyder(coeffs, 3), x0) if len(coeffs) > 3 else 0.0
    x1, x2, _ = dx
    e2 = p2 * x1**2
    e3 = p3 * x1**3 + 3 * p2 * x1 * x2
    b0 = v0 * e2
    b0_prime = -(1 + v0 * e3 / e2)
    return float(b0), float(b0_prime)


def fit_eos(volumes, energies, kind: str = "birch_murnaghan", degree: int = 3) -> EOSFit:
    """Fit an equation of state to E(V) points.

    Args:
        volumes: cell volumes, Bohr³ (at least 4 points; 5+ recommended).
        energies: total energies per cell, Hartree.
        kind: "birch_murnaghan" (default, aliases "bm3"), "murnaghan" or "polynomial".
        degree: polynomial degree in V for kind="polynomial" (≥ 2).
    Returns:
        :class:`EOSFit` (v0 Bohr³, e0 Ha, b0 GPa, b0_prime, residuals Ha).
    Raises:
        EOSFitError: too few points or no minimum of the fitted curve.
    """
    key = _ALIASES.get(str(kind).lower())
    if key is None:
        raise ValueError(f"unknown equation of state {kind!r}; choose one of {list(EOS_KINDS)}")
    v = np.asarray(volumes, dtype=float).ravel()
    e = np.asarray(energies, dtype=float).ravel()
    if v.shape != e.shape:
        raise ValueError(f"{v.size} volumes but {e.size} energies")
    if not (np.isfinite(v).all() and np.isfinite(e).all()) or (v <= 0).any():
        raise ValueError("volumes must be positive and energies finite")
    n_params = degree + 1 if key == "polynomial" else 4
    if key == "polynomial" and degree < 2:
        raise ValueError(f"polynomial degree must be >= 2, got {degree}")
    if len(np.unique(np.round(v, 10))) < n_params:
        raise EOSFitError(f"{kind} fit needs at least {n_params} distinct volumes, got {len(np.unique(v))}")
    order = np.argsort(v)
    v, e = v[order], e[order]
    e_ref = e.mean()          # subtract a constant for a well-conditioned fit

    if key == "polynomial":
        vs = v.mean()
        coeffs = np.polyfit(v / vs, e - e_ref, degree)
        t0 = _minimum_of_polynomial(coeffs, v[0] / vs, v[-1] / vs)
        v0 = t0 * vs
        b0, b0p = _derived_from_polynomial(coeffs, t0, v0, (1 / vs, 0.0, 0.0))
        phys = np.polyfit(v, e, degree)
        fit = EOSFit("polynomial", float(v0), float(np.polyval(coeffs, t0) + e_ref),
                     b0 * HARTREE_PER_BOHR3_IN_GPA, b0p, np.polyval(phys, v) - e, v, e,
                     dict(coefficients=phys, degree=degree))
        return _check(fit)

    # BM3 as a cubic in x = V^{-2/3} (scaled by xs for conditioning)
    x = v ** (-2.0 / 3.0)
    xs = x.mean()
    coeffs = np.polyfit(x / xs, e - e_ref, 3)
    t0 = _minimum_of_polynomial(coeffs, x[-1] / xs, x[0] / xs)
    x0 = t0 * xs
    v0 = x0 ** (-1.5)
    dx = (-2.0 / 3.0 * v0 ** (-5.0 / 3.0) / xs, 10.0 / 9.0 * v0 ** (-8.0 / 3.0) / xs, 0.0)
    b0, b0p = _derived_from_polynomial(coeffs, t0, v0, dx)
    e0 = float(np.polyval(coeffs, t0) + e_ref)
    scaled = coeffs / xs ** np.arange(3, -1, -1)
    scaled[-1] += e_ref
    bm = EOSFit("birch_murnaghan", float(v0), e0, b0 * HARTREE_PER_BOHR3_IN_GPA, b0p,
                np.polyval(scaled, x) - e, v, e, dict(coefficients=scaled))
    if key == "birch_murnaghan":
        return _check(bm)

    from scipy.optimize import least_squares

    def resid(p):
        return murnaghan(v, p[0], p[1], p[2], p[3]) - e

    start = np.array([e0, v0, bm.b0_au, b0p if b0p > 1.5 else 4.0])
    scale = np.array([max(1e-3, np.ptp(e)), v0, abs(start[2]), 1.0])
    sol = least_squares(resid, start, x_scale=scale, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    e0m, v0m, b0m, b0pm = sol.x
    if not sol.success or b0m <= 0:
        raise EOSFitError(f"Murnaghan fit failed: {sol.message}")
    fit = EOSFit("murnaghan", float(v0m), float(e0m), float(b0m) * HARTREE_PER_BOHR3_IN_GPA, float(b0pm),
                 resid(sol.x), v, e, dict(e0=e0m, v0=v0m, b0_au=b0m, b0_prime=b0pm))
    return _check(fit)


def _check(fit: EOSFit) -> EOSFit:
    if not np.isfinite([fit.v0, fit.e0, fit.b0, fit.b0_prime]).all() or fit.b0 <= 0:
        raise EOSFitError(f"{fit.kind} fit gave unphysical parameters (V0 = {fit.v0}, B0 = {fit.b0} GPa)")
    return fit
