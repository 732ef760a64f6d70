"""PBE and PBEsol generalized-gradient exchange and correlation.

References: J. P. Perdew, K. Burke, M. Ernzerhof, Phys. Rev. Lett. 77, 3865
(1996) [PBE]; J. P. Perdew et al., Phys. Rev. Lett. 100, 136406 (2008)
[PBEsol: mu = 10/81, beta = 0.046].  Atomic units throughout (Hartree, Bohr).

Exchange (PBE Eq. 14, applied per spin channel through the exact spin scaling
E_x[n_up, n_dn] = (E_x[2 n_up] + E_x[2 n_dn]) / 2):

    e_x = sum_s -(3/4)(6/pi)^(1/3) n_s^(4/3) F_x(s_s),
    F_x(s) = 1 + kappa - kappa / (1 + mu s^2 / kappa),
    s_s^2 = sigma_ss / (4 (6 pi^2)^(2/3) n_s^(8/3)).

Correlation (PBE Eqs. 3, 7, 8):

    e_c = n [eps_c^PW92(rs, zeta) + H(rs, zeta, t)],
    H = gamma phi^3 ln(1 + beta/gamma t^2 (1 + A t^2) / (1 + A t^2 + A^2 t^4)),
    A = beta/gamma / (exp(-eps_c^PW92 / (gamma phi^3)) - 1),
    phi = ((1+z)^(2/3) + (1-z)^(2/3)) / 2,  t^2 = pi sigma / (16 phi^2 k_F n^2),
    k_F = (3 pi^2 n)^(1/3),  gamma = (1 - ln 2) / pi^2.

PW92 enters with the PBE-routine digits (libxc LDA_C_PW_MOD), as in libxc's
GGA_C_PBE.  The sum eps_c + H is evaluated in the algebraically identical,
cancellation-free form

    eps_c + H = gamma phi^3 ln(1 - (1 - exp(-x)) / (1 + y + y^2)),
    x = -eps_c^PW92 / (gamma phi^3),  y = A t^2,

which stays accurate where H -> -eps_c (large t).  Neither form takes a
square root of sigma, so everything is smooth at sigma = 0.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .functional import Functional
from .inputs import SpinInputs, opz_pow, prepare
from .lda import PW92_MOD, RS_FACTOR, lda_x_spin, pw92_eps

__all__ = ["PBEExchange", "PBECorrelation", "pbe_fx", "MU_PBE", "BETA_PBE", "KAPPA_PBE"]

BETA_PBE = 0.06672455060314922  # PBE's beta (from the gradient expansion of correlation)
MU_PBE = BETA_PBE * math.pi**2 / 3.0  # 0.2195149727645171
KAPPA_PBE = 0.804
MU_GE = 10.0 / 81.0  # PBEsol exchange
BETA_PBESOL = 0.046
GAMMA_PBE = (1.0 - math.log(2.0)) / math.pi**2

X2S2 = 1.0 / (4.0 * (6.0 * math.pi**2) ** (2.0 / 3.0))  # s_s^2 = X2S2 sigma_ss / n_s^(8/3)
T2_FAC = math.pi / (16.0 * (3.0 * math.pi**2) ** (1.0 / 3.0))  # t^2 phi^2 n^(7/3) / sigma


def pbe_fx(s2: Tensor, kappa: float = KAPPA_PBE, mu: float = MU_PBE) -> Tensor:
    """PBE enhancement factor F_x = 1 + kappa y / (1 + y), y = mu s^2 / kappa (PBE Eq. 14)."""
    y = (mu / kappa) * s2
    return 1.0 + kappa * (y / (1.0 + y))


def spin_s2(sigma_ss: Tensor, n_s: Tensor, n_s13: Optional[Tensor] = None) -> Tensor:
    """Reduced gradient squared of one spin channel, s^2 = sigma_ss / (4 (6 pi^2)^(2/3) n_s^(8/3))."""
    if n_s13 is None:
        n_s13 = n_s.pow(1.0 / 3.0)
    n43 = n_s * n_s13
    return X2S2 * sigma_ss / (n43 * n43)


class PBEExchange(Functional):
    """PBE-type GGA exchange (libxc GGA_X_PBE; GGA_X_PBE_SOL with mu = 10/81).

    e_x = sum_s e_x^LDA(n_s) F_x(s_s) [Ha/Bohr^3]; F_x = 1 + kappa - kappa/(1 + mu s^2/kappa).
    Perdew, Burke, Ernzerhof, PRL 77, 3865 (1996); PBEsol: PRL 100, 136406 (2008).
    A spin channel with n_s <= dens_threshold contributes zero (as libxc).
    """

    is_gga = True

    def __init__(
        self,
        kappa: float = KAPPA_PBE,
        mu: float = MU_PBE,
        name: str = "gga_x_pbe",
        dens_threshold: float = 1e-15,
    ):
        super().__init__()
        self.kappa, self.mu, self.name = float(kappa), float(mu), name
        self.dens_threshold = float(dens_threshold)

    def enhancement(self, s2: Tensor, inp: Optional[SpinInputs] = None, spin: int = 0) -> Tensor:
        """F_x(s^2) of one spin channel; subclasses (constrained neural forms) override."""
        return pbe_fx(s2, self.kappa, self.mu)

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        inp = prepare(rho, sigma, self.dens_threshold, needs_sigma=True)
        return inp.finish(self.exchange(inp))

    def exchange(self, inp: SpinInputs) -> Tensor:
        """Exchange energy density from prepared inputs (unmasked)."""
        thr = self.dens_threshold
        if not inp.polarized:
            c = inp.spin13(0)
            s2 = spin_s2(inp.sigma_uu, inp.n_up, c)
            e = 2.0 * lda_x_spin(inp.n_up, c) * self.enhancement(s2, inp, 0)
            return torch.where(inp.n_up > thr, e, 0.0)
        total = None
        for spin, (n_s, sig_s) in enumerate(((inp.n_up, inp.sigma_uu), (inp.n_dn, inp.sigma_dd))):
            c = inp.spin13(spin)
            e = lda_x_spin(n_s, c) * self.enhancement(spin_s2(sig_s, n_s, c), inp, spin)
            e = torch.where(n_s > thr, e, 0.0)
            total = e if total is None else total + e
        return total


class PBECorrelation(Functional):
    """PBE-type GGA correlation (libxc GGA_C_PBE; GGA_C_PBE_SOL with beta = 0.046).

    e_c = n (eps_c^PW92(rs, zeta) + H(rs, zeta, t)) [Ha/Bohr^3], PBE Eqs. (3), (7), (8);
    see the module docstring for the formula and its cancellation-free form.
    Default density threshold 1e-12 as libxc's GGA_C_PBE.
    """

    is_gga = True

    def __init__(
        self,
        beta: float = BETA_PBE,
        gamma: float = GAMMA_PBE,
        name: str = "gga_c_pbe",
        dens_threshold: float = 1e-12,
    ):
        super().__init__()
        self.beta, self.gamma, self.name = float(beta), float(gamma), name
        self.dens_threshold = float(dens_threshold)

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        inp = prepare(rho, sigma, self.dens_threshold, needs_sigma=True)
        return inp.finish(self.correlation(inp))

    def correlation(self, inp: SpinInputs) -> Tensor:
        """Correlation energy density from prepared inputs (unmasked)."""
        n, n13 = inp.n, inp.n13
        rs = RS_FACTOR / n13
        t2 = T2_FAC * inp.sigma / (n * n * n13)  # t^2 phi^2
        if inp.polarized:
            eps = pw92_eps(rs, PW92_MOD, inp.zeta, inp.opz, inp.omz, inp.opz13, inp.omz13)
            phi = 0.5 * (opz_pow(inp.opz, 2.0 / 3.0, inp.opz13) + opz_pow(inp.omz, 2.0 / 3.0, inp.omz13))
            phi2 = phi * phi
            gphi3 = self.gamma * phi2 * phi
            t2 = t2 / phi2
        else:
            eps = pw92_eps(rs, PW92_MOD)
            gphi3 = self.gamma
        x = -eps / gphi3  # > 0
        y = ((self.beta / self.gamma) / torch.expm1(x)) * t2  # A t^2
        # 1 / (1 + y + y^2); for y -> inf it underflows to 0 with finite derivatives
        w = 1.0 / (1.0 + y * (1.0 + y))
        return n * gphi3 * torch.log1p(torch.expm1(-x) * w)
