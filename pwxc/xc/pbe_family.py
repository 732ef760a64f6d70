"""A trainable member of the PBE family: κ and μ of exchange, an r_s-dependent β of correlation.

    F_x(s) = 1 + κ − κ / (1 + μ s²/κ),            κ = 0.804 e^{min(v, 0)},  μ = μ_PBE e^w
    H(r_s, ζ, t) with β(r_s) = β_PBE e^{b} (1 + max(c₁, 0) r_s) / (1 + max(c₂, 0) r_s)

(PBE, Perdew, Burke & Ernzerhof, PRL 77, 3865 (1996); the r_s-dependent β has the form used by revTPSS,
Perdew et al., PRL 103, 026403 (2009)). All raw parameters zero is PBE exactly. PBE sits on the edge of
the allowed set (κ = 0.804 saturates Lieb–Oxford; c = 0): the clamps keep the bounds with a nonzero
gradient at the start, so a training run can leave PBE in the allowed direction.

Exact constraints kept for every value of the parameters (tests/test_pbe_family.py):
    uniform-gas limit   F_x(0) = 1 and H(t = 0) = 0 (LDA recovered for uniform densities);
    Lieb–Oxford         F_x ≤ 1 + κ ≤ 1.804 for all s (local bound used by PBE);
    F_x ≥ 1, monotone in s; e_c ≤ 0 (β > 0);
    spin scaling        E_x[n↑, n↓] = (E_x[2n↑] + E_x[2n↓])/2 (exchange per spin channel);
    uniform density scaling of exchange (F_x depends on s only).
Not kept: the second-order gradient expansion coefficients (μ and β are what is fitted; PBEsol is the
member with μ = 10/81, β = 0.046).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .functional import Functional
from .gga_pbe import BETA_PBE, KAPPA_PBE, MU_PBE, PBECorrelation, PBEExchange
from .hybrid import _Savable
from .lda import RS_FACTOR
from .neural import register_savable


class _Exchange(PBEExchange):
    def __init__(self, owner):
        super().__init__(name="gga_x_pbe_family")
        self._owner = [owner]            # a list, so the parent is not registered as a submodule

    def enhancement(self, s2, inp=None, spin=0):
        kappa, mu = self._owner[0].kappa, self._owner[0].mu
        y = (mu / kappa) * s2
        return 1.0 + kappa * (y / (1.0 + y))


class _Correlation(PBECorrelation):
    def __init__(self, owner):
        super().__init__(name="gga_c_pbe_family")
        self._owner = [owner]

    def correlation(self, inp):
        rs = RS_FACTOR / inp.n13
        self.beta = self._owner[0].beta(rs)     # per-point β(r_s), read by PBECorrelation.correlation
        try:
            return super().correlation(inp)
        finally:
            self.beta = BETA_PBE                # keep no graph on the module


class PBEFamilyXC(_Savable, Functional):
    """PBE-form exchange–correlation with trainable κ, μ, β(r_s) (see the module docstring).

    Args:
        v, w, b, c1, c2: raw parameters (0 = PBE). ``rs_beta``: train the r_s dependence of β (c₁, c₂);
        ``learn_kappa``: train κ (else fixed at 0.804).
    """

    is_gga = True

    def __init__(self, v: float = 0.0, w: float = 0.0, b: float = 0.0, c1: float = 0.0, c2: float = 0.0,
                 learn_kappa: bool = True, rs_beta: bool = True):
        super().__init__()
        f64 = dict(dtype=torch.float64)
        self.learn_kappa, self.rs_beta = bool(learn_kappa), bool(rs_beta)
        self.v = nn.Parameter(torch.tensor(float(v), **f64), requires_grad=self.learn_kappa)
        self.w = nn.Parameter(torch.tensor(float(w), **f64))
        self.b = nn.Parameter(torch.tensor(float(b), **f64))
        self.c1 = nn.Parameter(torch.tensor(float(c1), **f64), requires_grad=self.rs_beta)
        self.c2 = nn.Parameter(torch.tensor(float(c2), **f64), requires_grad=self.rs_beta)
        self.exchange = _Exchange(self)
        self.correlation = _Correlation(self)
        self.dens_threshold = 1e-15
        self.name = "pbe_family"

    @property
    def base_name(self) -> str:
        return "pbe"

    @property
    def kappa(self) -> Tensor:
        return KAPPA_PBE * torch.exp(torch.clamp(self.v, max=0.0))

    @property
    def mu(self) -> Tensor:
        return MU_PBE * torch.exp(self.w)

    def beta(self, rs) -> Tensor:
        """β(r_s) > 0 (r_s in Bohr)."""
        c1, c2 = torch.clamp(self.c1, min=0.0), torch.clamp(self.c2, min=0.0)
        return BETA_PBE * torch.exp(self.b) * (1.0 + c1 * rs) / (1.0 + c2 * rs)

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        return self.exchange.energy_density(rho, sigma) + self.correlation.energy_density(rho, sigma)

    def summary(self) -> dict:
        """The physical parameters: κ, μ, β at r_s = 0, 1, 2, 4 Bohr."""
        with torch.no_grad():
            rs = torch.tensor([0.0, 1.0, 2.0, 4.0], dtype=torch.float64)
            return {"kappa": float(self.kappa), "mu": float(self.mu),
                    "beta_rs": {str(int(r)): float(bb) for r, bb in zip(rs.tolist(), self.beta(rs))}}

    def get_config(self) -> dict:
        return {"v": float(self.v.detach()), "w": float(self.w.detach()), "b": float(self.b.detach()),
                "c1": float(self.c1.detach()), "c2": float(self.c2.detach()),
                "learn_kappa": self.learn_kappa, "rs_beta": self.rs_beta}

    @classmethod
    def from_config(cls, cfg: dict) -> "PBEFamilyXC":
        return cls(**cfg)

    def extra_repr(self) -> str:
        s = self.summary()
        return f"kappa={s['kappa']:.4f}, mu={s['mu']:.4f}, beta(rs=0,1,2,4)={list(s['beta_rs'].values())}"


register_savable(PBEFamilyXC)
