"""Layout checks, libxc-like thresholds and NaN-safe helpers shared by all functionals.

Threshold policy (follows libxc 7, so that values *and* first derivatives
agree with libxc above its thresholds):

* a point whose total density n = n_up + n_dn is below ``dens_threshold``
  contributes exactly zero energy and zero derivatives;
* otherwise each spin density is raised to at least ``dens_threshold`` and each
  sigma_ss to at least ``sigma_floor`` = dens_threshold^(8/3) (libxc's
  sigma_threshold^2), and sigma_ud is kept in [-(s_uu+s_dd)/2, (s_uu+s_dd)/2]
  so that |grad n|^2 >= 0.  These floors are *straight-through*: the value is
  clamped but the derivative passes unchanged, i.e. derivatives below a floor
  are those at the floor -- as libxc, which evaluates vrho/vsigma at the
  clamped point.  A fully polarized point (n_dn = 0) therefore gets the
  physical zeta -> 1 limit of the down-spin potential, and sigma = 0 gets the
  true d e / d sigma at sigma = 0, never zero by accident;
* powers (1 +- zeta)^p are cut at ``zeta_threshold`` (machine epsilon) like
  libxc's ``opz_pow_n``, which keeps second derivatives finite at zeta = +-1.

Unsafe arguments are replaced by a safe value *before* any singular operation
(double-``where`` pattern), so no NaN/inf ever appears in values, first or
second derivatives, for any real input (negative densities included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

ZETA_THRESHOLD = 2.220446049250313e-16  # DBL_EPSILON, libxc's zeta_threshold


class _STFloor(torch.autograd.Function):
    """max(x, floor) in the forward pass, identity in the backward pass (any order)."""

    @staticmethod
    def forward(ctx, x: Tensor, floor: float) -> Tensor:
        return torch.clamp_min(x, floor)

    @staticmethod
    def backward(ctx, g: Tensor):
        return g, None


def st_floor(x: Tensor, floor: float) -> Tensor:
    """Straight-through floor: value max(x, floor), derivative d/dx = 1 everywhere."""
    return _STFloor.apply(x, floor)


def safe_where(mask: Tensor, x: Tensor, safe: float = 1.0) -> Tensor:
    """x where mask, else the constant ``safe`` (first half of double-where)."""
    return torch.where(mask, x, safe)


def safe_cbrt(x: Tensor, cut: float) -> Tensor:
    """x^(1/3) where x > cut, 1 elsewhere (safe argument for :func:`opz_pow`)."""
    return torch.where(x > cut, x, 1.0).pow(1.0 / 3.0)


def opz_pow(x: Tensor, p: float, x13: Optional[Tensor] = None, zeta_threshold: float = ZETA_THRESHOLD) -> Tensor:
    """(1 +- zeta)^p for x = 1 +- zeta >= 0 and p in {1/3, 2/3, 4/3}, cut to
    zeta_threshold^p when x <= zeta_threshold (libxc's opz_pow_n).  ``x13`` is
    :func:`safe_cbrt` of x (pass it to share the cube root between powers)."""
    if x13 is None:
        x13 = safe_cbrt(x, zeta_threshold)
    if p == 1.0 / 3.0:
        v = x13
    elif p == 2.0 / 3.0:
        v = x13 * x13
    elif p == 4.0 / 3.0:
        v = x * x13
    else:
        raise ValueError("p must be 1/3, 2/3 or 4/3")
    return torch.where(x > zeta_threshold, v, zeta_threshold**p)


@dataclass
class SpinInputs:
    """Thresholded inputs of a semilocal functional on N grid points.

    At invalid points (total density < threshold) every field holds a safe,
    harmless value and the functional's result must be masked with ``valid``.
    ``opz`` / ``omz`` are 1 + zeta and 1 - zeta computed as 2 n_up / n and
    2 n_dn / n (no cancellation).
    """

    polarized: bool
    valid: Tensor
    n: Tensor
    n_up: Tensor
    n_dn: Tensor
    zeta: Tensor
    opz: Tensor
    omz: Tensor
    sigma: Optional[Tensor] = None  # |grad n|^2 (total)
    sigma_uu: Optional[Tensor] = None
    sigma_dd: Optional[Tensor] = None

    _cache: dict = field(default_factory=dict, repr=False)

    def finish(self, e: Tensor) -> Tensor:
        """Mask an energy density: exact zero (and zero gradient) at invalid points."""
        return torch.where(self.valid, e, 0.0)

    def _cached(self, key: str, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    @property
    def n13(self) -> Tensor:
        """n^(1/3) (computed once)."""
        return self._cached("n13", lambda: self.n.pow(1.0 / 3.0))

    def spin13(self, spin: int) -> Tensor:
        """n_s^(1/3) of spin channel 0 (up) or 1 (down)."""
        if not self.polarized:
            return self._cached("s13", lambda: self.n13 * 0.5 ** (1.0 / 3.0))
        return self._cached(f"s13_{spin}", lambda: (self.n_up if spin == 0 else self.n_dn).pow(1.0 / 3.0))

    @property
    def opz13(self) -> Tensor:
        """Safe cube root of 1 + zeta (see :func:`opz_pow`)."""
        return self._cached("opz13", lambda: safe_cbrt(self.opz, ZETA_THRESHOLD))

    @property
    def omz13(self) -> Tensor:
        """Safe cube root of 1 - zeta."""
        return self._cached("omz13", lambda: safe_cbrt(self.omz, ZETA_THRESHOLD))


def check_layout(rho: Tensor, sigma: Optional[Tensor], needs_sigma: bool) -> bool:
    """Validate libxc layout; return True if spin polarized."""
    if not isinstance(rho, Tensor):
        raise TypeError("rho must be a torch.Tensor")
    if rho.dim() == 1:
        polarized = False
    elif rho.dim() == 2 and rho.shape[0] == 2:
        polarized = True
    else:
        raise ValueError(f"rho must have shape (N,) or (2, N); got {tuple(rho.shape)}")
    if needs_sigma:
        if sigma is None:
            raise ValueError("this functional is a GGA: sigma = |grad n|^2 is required")
        want = (3, rho.shape[-1]) if polarized else (rho.shape[-1],)
        if tuple(sigma.shape) != want:
            raise ValueError(f"sigma must have shape {want}; got {tuple(sigma.shape)}")
    return polarized


def prepare(
    rho: Tensor,
    sigma: Optional[Tensor] = None,
    dens_threshold: float = 1e-15,
    needs_sigma: bool = False,
) -> SpinInputs:
    """Apply the threshold policy of this module and return :class:`SpinInputs`."""
    polarized = check_layout(rho, sigma, needs_sigma)
    if sigma is not None and sigma.dtype != rho.dtype:
        sigma = sigma.to(rho.dtype)
    thr = float(dens_threshold)
    sigma_floor = thr ** (8.0 / 3.0)
    if not polarized:
        valid = rho >= thr
        n = torch.where(valid, rho, 1.0)
        n_up = 0.5 * n
        zero = torch.zeros_like(n)
        one = torch.ones_like(n)
        inp = SpinInputs(False, valid, n, n_up, n_up, zero, one, one)
        if needs_sigma:
            s = st_floor(sigma, sigma_floor)  # finite anywhere; invalid points are masked later
            inp.sigma = s
            inp.sigma_uu = inp.sigma_dd = 0.25 * s
        return inp

    valid = (rho[0] + rho[1]) >= thr
    n_up = torch.where(valid, st_floor(rho[0], thr), 0.5)
    n_dn = torch.where(valid, st_floor(rho[1], thr), 0.5)
    n = n_up + n_dn
    zeta = (n_up - n_dn) / n
    inp = SpinInputs(True, valid, n, n_up, n_dn, zeta, 2.0 * n_up / n, 2.0 * n_dn / n)
    if needs_sigma:
        suu = st_floor(sigma[0], sigma_floor)
        sdd = st_floor(sigma[2], sigma_floor)
        sud = sigma[1]
        hi = (0.5 * (suu + sdd)).detach()
        st = sud - sud.detach()
        sud = torch.where(sud > hi, st + hi, torch.where(sud < -hi, st - hi, sud))
        inp.sigma_uu, inp.sigma_dd = suu, sdd
        inp.sigma = st_floor(suu + 2.0 * sud + sdd, 0.0)
    return inp
