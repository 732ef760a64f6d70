"""Radial Fourier (Bessel) transforms of functions tabulated on a radial mesh.

For a function f(r) Y_lm(r̂) the 3D transform is 4π (-i)^l Y_lm(q̂) F_l(q) with

    F_l(q) = 4π ∫_0^∞ r² f(r) j_l(q r) dr,

evaluated by Simpson's rule on the mesh of the file (r_i, and dr/di = rab_i as in UPF). Callers pass
the integrand already multiplied by the powers of r they need (``r2f`` = r² f).

Evaluating F_l at every |G| of a basis costs n_G × n_r; instead F_l and dF_l/dq are computed exactly
on a uniform q table (step ``DQ``) and interpolated by cubic Hermite polynomials, which are C¹ and
differentiable in q (strain derivatives of form factors need dF/dq). The interpolation error is
≤ DQ⁴ max|F⁗| / 384 (≈ 1e-11 |F| for the PseudoDojo files, test_upf.py); the table grows on demand.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import spherical_jn

#: q step of the interpolation tables, Bohr⁻¹
DQ = 0.0025
#: rows of the q × r Bessel matrix evaluated at once (bounds the table build's memory)
_CHUNK_ELEMENTS = 2_000_000


def simpson_weights(n: int) -> np.ndarray:
    """Weights w_i with ∫ f di ≈ Σ w_i f_i on i = 0..n-1 (unit spacing): composite Simpson, and for even
    n Simpson's 3/8 rule on the last three intervals, so that cubics are integrated exactly for any n."""
    if n < 3:
        raise ValueError(f"a radial mesh needs at least 3 points, got {n}")
    w = np.zeros(n)
    m = n if n % 2 == 1 else n - 3           # points covered by the 1/3 rule (odd count)
    if m >= 3:
        w[0:m:2] = 2.0 / 3.0
        w[1:m:2] = 4.0 / 3.0
        w[0] = w[m - 1] = 1.0 / 3.0
    if m < n:
        start = n - 4
        w[start:] += np.array([3.0, 9.0, 9.0, 3.0]) / 8.0
    return w


class RadialTransform:
    """F_l(q) = 4π ∫ r² f(r) j_l(q r) dr as a differentiable function of q (Hermite-interpolated table).

    Args:
        r, rab: radial mesh (Bohr) and its Jacobian dr/di.
        r2f: r² f(r) on the mesh (units of f times Bohr²).
        l: angular momentum of the Bessel function.
        prefactor: multiplies the integral (default 4π).
    """

    def __init__(self, r: np.ndarray, rab: np.ndarray, r2f: np.ndarray, l: int = 0,
                 prefactor: float = 4 * math.pi):
        self.l = int(l)
        nonzero = np.nonzero(r2f)[0]
        stop = max(3, int(nonzero[-1]) + 2 if len(nonzero) else 3)   # integrand is zero beyond
        stop = min(stop, len(r))
        self._r = np.asarray(r[:stop], dtype=float)
        self._weight = prefactor * simpson_weights(stop) * np.asarray(rab[:stop], dtype=float) * r2f[:stop]
        self._values = np.zeros(0)
        self._slopes = np.zeros(0)
        self._torch_cache = {}

    @property
    def q_max(self) -> float:
        """Largest q (Bohr⁻¹) covered by the current table."""
        return (len(self._values) - 2) * DQ

    def exact(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F_l(q), dF_l/dq) by quadrature at the given q values (numpy, no interpolation)."""
        q = np.asarray(q, dtype=float).reshape(-1)
        values, slopes = np.empty_like(q), np.empty_like(q)
        step = max(1, _CHUNK_ELEMENTS // len(self._r))
        for start in range(0, len(q), step):
            qq = q[start:start + step, None]
            x = qq * self._r[None, :]
            values[start:start + step] = spherical_jn(self.l, x) @ self._weight
            slopes[start:start + step] = spherical_jn(self.l, x, derivative=True) @ (self._weight * self._r)
        return values, slopes

    def _extend(self, q_needed: float):
        n = int(math.ceil(max(q_needed, 1.0) * 1.25 / DQ)) + 3
        q = np.arange(n) * DQ
        self._values, self._slopes = self.exact(q)
        self._torch_cache = {}

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """F_l at q (Bohr⁻¹, any shape, q ≥ 0); differentiable in q (cubic Hermite, C¹)."""
        q_max = float(q.detach().max()) if q.numel() else 0.0
        if q_max > self.q_max:
            self._extend(q_max)
        key = (q.dtype, q.device)
        if key not in self._torch_cache:
            self._torch_cache[key] = (torch.as_tensor(self._values, dtype=q.dtype, device=q.device),
                                      torch.as_tensor(self._slopes * DQ, dtype=q.dtype, device=q.device))
        values, slopes = self._torch_cache[key]
        x = q / DQ
        i = x.detach().floor().clamp(0, len(self._values) - 2).long()
        t = x - i.to(x.dtype)
        t2, t3 = t * t, t * t * t
        return ((2 * t3 - 3 * t2 + 1) * values[i] + (t3 - 2 * t2 + t) * slopes[i]
                + (3 * t2 - 2 * t3) * values[i + 1] + (t3 - t2) * slopes[i + 1])
