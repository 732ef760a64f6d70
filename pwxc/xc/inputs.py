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

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

ZETA_THRESHOLD = 2.220446049250313e-16  # DBL_EPSILON, libxc's zeta_threshold


def st_floor(x: Tensor, floor: float) -> Tensor:
    """Straight-through floor: value max(x, floor), derivative d/dx = 1 everywhere."""
    return torch.where(x >= floor, x, x - x.detach() + floor)


def safe_where(mask: Tensor, x: Tensor, safe: float = 1.0) -> Tensor:
    """x where mask, else the constant ``safe`` (first half of double-where)."""
    return torch.where(mask, x, torch.full_like(x, safe))


def opz_pow(x: Tensor, p: float, zeta_threshold: float = ZETA_THRESHOLD) -> Tensor:
    """(1 +- zeta)^p for x = 1 +- zeta >= 0, cut to zeta_threshold^p when x <= zeta_threshold."""
    ok = x > zeta_threshold
    return torch.where(ok, safe_where(ok, x) ** p, torch.full_like(x, zeta_threshold**p))


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

    def finish(self, e: Tensor) -> Tensor:
        """Mask an energy density: exact zero (and zero gradient) at invalid points."""
        return torch.where(self.valid, e, torch.zeros_like(e))


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
        n = safe_where(valid, rho)
        n_up = 0.5 * n
        zero = torch.zeros_like(n)
        one = torch.ones_like(n)
        inp = SpinInputs(False, valid, n, n_up, n_up, zero, one, one)
        if needs_sigma:
            s = safe_where(valid, st_floor(sigma, sigma_floor), 0.0)
            inp.sigma = s
            inp.sigma_uu = inp.sigma_dd = 0.25 * s
        return inp

    valid = (rho[0] + rho[1]) >= thr
    n_up = safe_where(valid, st_floor(rho[0], thr), 0.5)
    n_dn = safe_where(valid, st_floor(rho[1], thr), 0.5)
    n = n_up + n_dn
    zeta = (n_up - n_dn) / n
    inp = SpinInputs(True, valid, n, n_up, n_dn, zeta, 2.0 * n_up / n, 2.0 * n_dn / n)
    if needs_sigma:
        suu = safe_where(valid, st_floor(sigma[0], sigma_floor), 0.0)
        sdd = safe_where(valid, st_floor(sigma[2], sigma_floor), 0.0)
        sud = safe_where(valid, sigma[1], 0.0)
        hi = (0.5 * (suu + sdd)).detach()
        st = sud - sud.detach()
        sud = torch.where(sud > hi, st + hi, torch.where(sud < -hi, st - hi, sud))
        inp.sigma_uu, inp.sigma_dd = suu, sdd
        inp.sigma = st_floor(suu + 2.0 * sud + sdd, 0.0)
    return inp
