"""Local density approximation: Slater exchange, PW92 and PZ81 correlation.

All energies in Hartree, densities in Bohr^-3, rs = (3 / (4 pi n))^(1/3) in Bohr.

* Slater (Dirac) exchange, spin-scaled:
      e_x = -(3/4) (6/pi)^(1/3) (n_up^(4/3) + n_dn^(4/3))
  (= -(3/4)(3/pi)^(1/3) n^(4/3) unpolarized).  libxc LDA_X.
* PW92 correlation: J. P. Perdew and Y. Wang, Phys. Rev. B 45, 13244 (1992),
  Eqs. (8)-(10) and Table I.  Two constant sets, both as in libxc:
  ``PW92`` (paper: A = 0.031091, 0.015545, 0.016887; f''(0) = 1.709921;
  libxc LDA_C_PW, and also Quantum ESPRESSO's 'PW' (pw / pw_spin use these
  numbers)) and ``PW92_MOD`` (more digits, A = 0.0310907, 0.01554535,
  0.0168869, f''(0) exact; as in the original PBE Fortran routine; libxc
  LDA_C_PW_MOD, used inside libxc's GGA_C_PBE).  They differ by ~1e-6
  relative.
* PZ81 correlation: J. P. Perdew and A. Zunger, Phys. Rev. B 23, 5048 (1981),
  Eqs. (C3), (C5) with the parameters of its Table XII, rs >= 1 / rs < 1
  branches, von Barth-Hedin interpolation in zeta.  libxc LDA_C_PZ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from .functional import Functional
from .inputs import SpinInputs, opz_pow, prepare

__all__ = [
    "SlaterExchange",
    "PW92Correlation",
    "PZ81Correlation",
    "PW92",
    "PW92_MOD",
    "lda_x_spin",
    "pw92_eps",
    "rs_from_n",
    "f_zeta",
]

RS_FACTOR = (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
X_SPIN = -0.75 * (6.0 / math.pi) ** (1.0 / 3.0)  # e_x,sigma = X_SPIN * n_sigma^(4/3)
FZ_DEN = 2.0 ** (4.0 / 3.0) - 2.0


def rs_from_n(n: Tensor) -> Tensor:
    """Wigner-Seitz radius rs = (3 / (4 pi n))^(1/3) [Bohr] (n > 0 required)."""
    return RS_FACTOR * n.pow(-1.0 / 3.0)


def lda_x_spin(n_s: Tensor, n_s13: Optional[Tensor] = None) -> Tensor:
    """Slater exchange energy density of one spin channel, -(3/4)(6/pi)^(1/3) n_s^(4/3).

    ``n_s13`` = n_s^(1/3) if already known."""
    if n_s13 is None:
        n_s13 = n_s.pow(1.0 / 3.0)
    return X_SPIN * (n_s * n_s13)


def f_zeta(opz: Tensor, omz: Tensor, opz13: Optional[Tensor] = None, omz13: Optional[Tensor] = None) -> Tensor:
    """Spin interpolation f(zeta) = ((1+z)^(4/3) + (1-z)^(4/3) - 2) / (2^(4/3) - 2) (PW92 Eq. 9).

    opz = 1 + zeta, omz = 1 - zeta; opz13 / omz13 their safe cube roots (optional)."""
    return (opz_pow(opz, 4.0 / 3.0, opz13) + opz_pow(omz, 4.0 / 3.0, omz13) - 2.0) / FZ_DEN


# --------------------------------------------------------------------- PW92 ---
@dataclass(frozen=True)
class PW92Params:
    """Parameters of G(rs; A, alpha1, beta1..4, p) of PW92 Eq. (10), for
    (eps_c(rs,0), eps_c(rs,1), -alpha_c(rs)) in that order, plus f''(0)."""

    A: Tuple[float, float, float]
    alpha1: Tuple[float, float, float]
    beta1: Tuple[float, float, float]
    beta2: Tuple[float, float, float]
    beta3: Tuple[float, float, float]
    beta4: Tuple[float, float, float]
    fz20: float


_ALPHA1 = (0.21370, 0.20548, 0.11125)
_B1 = (7.5957, 14.1189, 10.357)
_B2 = (3.5876, 6.1977, 3.6231)
_B3 = (1.6382, 3.3662, 0.88026)
_B4 = (0.49294, 0.62517, 0.49671)

PW92 = PW92Params((0.031091, 0.015545, 0.016887), _ALPHA1, _B1, _B2, _B3, _B4, 1.709921)
PW92_MOD = PW92Params(
    (0.0310907, 0.01554535, 0.0168869), _ALPHA1, _B1, _B2, _B3, _B4, 8.0 / (9.0 * FZ_DEN)
)


def pw92_G(rs: Tensor, srs: Tensor, k: int, par: PW92Params) -> Tensor:
    """PW92 Eq. (10) with p = 1:
    G = -2A (1 + alpha1 rs) ln[1 + 1 / (2A (b1 rs^1/2 + b2 rs + b3 rs^3/2 + b4 rs^2))]."""
    A = par.A[k]
    q = 2.0 * A * srs * (par.beta1[k] + srs * (par.beta2[k] + srs * (par.beta3[k] + srs * par.beta4[k])))
    return -2.0 * A * (1.0 + par.alpha1[k] * rs) * torch.log1p(1.0 / q)


def pw92_eps(
    rs: Tensor,
    par: PW92Params,
    zeta: Optional[Tensor] = None,
    opz: Optional[Tensor] = None,
    omz: Optional[Tensor] = None,
    opz13: Optional[Tensor] = None,
    omz13: Optional[Tensor] = None,
) -> Tensor:
    """PW92 correlation energy per particle eps_c(rs, zeta) [Ha], Eq. (8):

    eps_c = eps_c(rs,0) + alpha_c(rs) f(z)/f''(0) (1 - z^4) + [eps_c(rs,1) - eps_c(rs,0)] f(z) z^4.
    Unpolarized when ``zeta`` is None.
    """
    srs = rs.sqrt()
    ec0 = pw92_G(rs, srs, 0, par)
    if zeta is None:
        return ec0
    ec1 = pw92_G(rs, srs, 1, par)
    mac = pw92_G(rs, srs, 2, par)  # = -alpha_c(rs)
    fz = f_zeta(opz, omz, opz13, omz13)
    z2 = zeta * zeta
    z4 = z2 * z2
    return ec0 - mac * fz / par.fz20 * (1.0 - z4) + (ec1 - ec0) * fz * z4


class _LDA(Functional):
    is_gga = False

    def __init__(self, dens_threshold: float = 1e-15):
        super().__init__()
        self.dens_threshold = float(dens_threshold)

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        inp = prepare(rho, None, self.dens_threshold, needs_sigma=False)
        return inp.finish(self._e(inp))

    def _e(self, inp: SpinInputs) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class SlaterExchange(_LDA):
    """Slater exchange (libxc LDA_X): e_x = -(3/4)(6/pi)^(1/3) sum_s n_s^(4/3) [Ha/Bohr^3].

    Dirac, Proc. Camb. Phil. Soc. 26, 376 (1930); spin scaling
    E_x[n_up, n_dn] = (E_x[2 n_up] + E_x[2 n_dn]) / 2.  A spin channel with
    n_s <= dens_threshold contributes zero (as libxc).
    """

    name = "lda_x"

    def _e(self, inp: SpinInputs) -> Tensor:
        thr = self.dens_threshold
        if not inp.polarized:
            e = 2.0 * lda_x_spin(inp.n_up, inp.spin13(0))
            return torch.where(inp.n_up > thr, e, 0.0)
        eu = lda_x_spin(inp.n_up, inp.spin13(0))
        ed = lda_x_spin(inp.n_dn, inp.spin13(1))
        return torch.where(inp.n_up > thr, eu, 0.0) + torch.where(inp.n_dn > thr, ed, 0.0)


class PW92Correlation(_LDA):
    """Perdew-Wang 1992 LSDA correlation, e_c = n eps_c(rs, zeta) [Ha/Bohr^3].

    Perdew & Wang, Phys. Rev. B 45, 13244 (1992), Eqs. (8)-(10).
    ``modified=False`` -> libxc LDA_C_PW (paper constants, also QE 'pw');
    ``modified=True`` -> libxc LDA_C_PW_MOD (PBE-routine digits).
    """

    def __init__(self, modified: bool = False, dens_threshold: float = 1e-15):
        super().__init__(dens_threshold)
        self.params = PW92_MOD if modified else PW92
        self.name = "lda_c_pw_mod" if modified else "lda_c_pw"

    def _e(self, inp: SpinInputs) -> Tensor:
        rs = RS_FACTOR / inp.n13
        if inp.polarized:
            eps = pw92_eps(rs, self.params, inp.zeta, inp.opz, inp.omz, inp.opz13, inp.omz13)
        else:
            eps = pw92_eps(rs, self.params)
        return inp.n * eps


# --------------------------------------------------------------------- PZ81 ---
_PZ = {  # (unpolarized, fully polarized), Perdew & Zunger 1981, Table XII / Eq. (C3), (C5)
    "gamma": (-0.1423, -0.0843),
    "beta1": (1.0529, 1.3981),
    "beta2": (0.3334, 0.2611),
    "A": (0.0311, 0.01555),
    "B": (-0.048, -0.0269),
    "C": (0.0020, 0.0007),
    "D": (-0.0116, -0.0048),
}


def pz81_eps_limit(rs: Tensor, i: int) -> Tensor:
    """PZ81 eps_c for zeta = 0 (i = 0) or 1 (i = 1) [Ha]:
    gamma / (1 + beta1 sqrt(rs) + beta2 rs) for rs >= 1 (Eq. C3),
    A ln rs + B + C rs ln rs + D rs for rs < 1 (Eq. C5)."""
    p = {k: v[i] for k, v in _PZ.items()}
    low = p["gamma"] / (1.0 + p["beta1"] * rs.sqrt() + p["beta2"] * rs)
    lrs = torch.log(rs)
    high = p["A"] * lrs + p["B"] + p["C"] * rs * lrs + p["D"] * rs
    return torch.where(rs >= 1.0, low, high)


class PZ81Correlation(_LDA):
    """Perdew-Zunger 1981 correlation (Ceperley-Alder fit), libxc LDA_C_PZ.

    eps_c = eps_U(rs) + f(zeta) (eps_P(rs) - eps_U(rs)), Perdew & Zunger,
    Phys. Rev. B 23, 5048 (1981), Appendix C.  e_c = n eps_c [Ha/Bohr^3].
    """

    name = "lda_c_pz"

    def _e(self, inp: SpinInputs) -> Tensor:
        rs = RS_FACTOR / inp.n13
        eu = pz81_eps_limit(rs, 0)
        if not inp.polarized:
            return inp.n * eu
        ep = pz81_eps_limit(rs, 1)
        return inp.n * (eu + f_zeta(inp.opz, inp.omz, inp.opz13, inp.omz13) * (ep - eu))
