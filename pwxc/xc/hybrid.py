"""Drop-in neural functionals built on a semilocal base: HybridXC and EnhancedXC.

``HybridXC`` (additive, unconstrained)::

    E_xc = b * E_xc^base[n] + a * int n(r) eps_theta(desc(r)) dr

``EnhancedXC`` (constrained exchange enhancement)::

    E_xc = sum_s int e_x^LDA(n_s) F_x^theta(s_s) dr + E_c^base[n]
    F_x^theta = 1 + u (1 + tau (1 - u / kappa)),   u = F_x^base(s) - 1 = kappa y / (1 + y),
    y = mu s^2 / kappa,  tau = tanh(eps_theta(desc of 2 n_s)) in (-1, 1)

Equivalently F_x^theta = F_x^base * m with m = 1 + tau u (kappa - u) / (kappa F_x^base),
i.e. the network multiplies the PBE(sol) enhancement factor by m, where m -> 1
as s -> 0 and 1 + u^2/kappa <= F_x^theta <= 1 + u (2 - u/kappa) < 1 + kappa.

Constraints kept *by construction* (see docs/xc.md):

================================  ==========  ===========
constraint                        HybridXC    EnhancedXC
================================  ==========  ===========
a = 0 / tau = 0 reproduces base   yes         yes
spin-flip symmetry                yes         yes
uniform electron gas (s -> 0)     no          yes (F_x = 1, base correlation)
Lieb-Oxford local bound F_x<=1.804 no         yes (kappa = 0.804)
F_x >= 1 (E_x <= E_x^LDA locally) no          yes
exact exchange spin scaling       no          yes
uniform coordinate scaling of E_x no          yes if the model sees only s (default)
small-s gradient expansion (mu)   no          no (effective mu = mu (1 + tau(s=0)))
================================  ==========  ===========
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from .descriptors import Descriptors
from .functional import Functional
from .gga_pbe import BETA_PBE, BETA_PBESOL, KAPPA_PBE, MU_GE, MU_PBE, PBECorrelation, spin_s2
from .inputs import prepare
from .lda import lda_x_spin
from .neural import MLP, NeuralXC, register_savable
from .registry import functional

__all__ = ["HybridXC", "EnhancedXC", "constrained_fx"]

#: default mixing weight of the network term in HybridXC
DEFAULT_A = 0.01


class _Savable:
    def save(self, path, metadata: Optional[dict] = None) -> None:
        """Write weights + JSON header to one file; reload with :func:`pwxc.xc.load`."""
        from .io import save

        save(self, path, metadata)


class HybridXC(_Savable, Functional):
    """MLP-corrected semilocal functional (not an exact-exchange hybrid): E_xc = b E_base + a int n eps_theta.

    ``base``: a functional or name (default "pbe"); ``model``: a
    :class:`~pwxc.xc.NeuralXC` returning eps_theta per particle in Hartree
    (default ``MLP()``: inputs n, s, zeta; 32-32 SiLU).  ``a`` and ``b`` are
    trainable ``nn.Parameter`` scalars (float64); defaults a = 0.01, b = 1, so
    an untrained hybrid is PBE plus a ~1% perturbation, and a = 0 gives the
    base functional *exactly* (bit for bit).  ``learn_weights=False`` keeps a
    and b fixed (buffers).  Energy density in Ha/Bohr^3:

        e_xc = b e_base(rho, sigma) + a n eps_theta(n, zeta, s)

    It keeps no physical constraint by construction beyond spin-flip
    symmetry; use :class:`EnhancedXC` for the constrained form.
    """

    def __init__(
        self,
        base: Union[str, Functional] = "pbe",
        model: Optional[NeuralXC] = None,
        a: float = DEFAULT_A,
        b: float = 1.0,
        learn_weights: bool = True,
    ):
        super().__init__()
        self.base = functional(base)
        self.model = MLP() if model is None else model
        if not isinstance(self.model, NeuralXC):
            raise TypeError("model must be a pwxc.xc.NeuralXC (e.g. pwxc.xc.MLP)")
        self.learn_weights = bool(learn_weights)
        for key, val in (("a", a), ("b", b)):
            t = torch.tensor(float(val), dtype=torch.float64)
            if learn_weights:
                setattr(self, key, nn.Parameter(t))
            else:
                self.register_buffer(key, t)
        self.is_gga = bool(self.base.is_gga or self.model.is_gga)
        self.dens_threshold = self.model.dens_threshold
        self.name = f"hybrid({self.base.name})"

    @property
    def base_name(self) -> str:
        return self.base.base_name

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        e_base = self.base.energy_density(rho, sigma if self.base.is_gga else None)
        desc = Descriptors.from_rho(rho, sigma if self.model.is_gga else None, self.model.dens_threshold)
        e_nn = desc.finish(desc.n * self.model(desc))
        return self.b.to(e_base) * e_base + self.a.to(e_base) * e_nn.to(e_base)

    def get_config(self) -> dict:
        from .io import spec

        return {
            "base": spec(self.base),
            "model": spec(self.model),
            "a": float(self.a.detach()),
            "b": float(self.b.detach()),
            "learn_weights": self.learn_weights,
        }

    @classmethod
    def from_config(cls, cfg: dict) -> "HybridXC":
        from .io import build

        cfg = dict(cfg)
        cfg["base"] = build(cfg["base"])
        cfg["model"] = build(cfg["model"])
        return cls(**cfg)

    def extra_repr(self) -> str:
        return f"a={float(self.a.detach()):.6g}, b={float(self.b.detach()):.6g}"


def constrained_fx(s2: Tensor, tau: Tensor, kappa: float = KAPPA_PBE, mu: float = MU_PBE) -> Tensor:
    """Constrained enhancement factor F = 1 + u (1 + tau (1 - u/kappa)), u = kappa y/(1+y), y = mu s^2/kappa.

    For |tau| <= 1: F(s=0) = 1 and 1 <= F < 1 + kappa (Lieb-Oxford with kappa = 0.804).
    tau = 0 gives the PBE form (Perdew, Burke, Ernzerhof, PRL 77, 3865 (1996), Eq. 14).
    """
    y = (mu / kappa) * s2
    r = y / (1.0 + y)  # u / kappa
    u = kappa * r
    return 1.0 + u * (1.0 + tau * (1.0 - r))


_BASES = {
    "pbe": (KAPPA_PBE, MU_PBE, BETA_PBE),
    "pbesol": (KAPPA_PBE, MU_GE, BETA_PBESOL),
}


class EnhancedXC(_Savable, Functional):
    """Constrained neural functional: the network multiplies the PBE(sol) exchange enhancement factor.

    E_xc = sum_s int e_x^LDA(n_s) F_x^theta dr + E_c^base, with
    F_x^theta = 1 + u (1 + tau (1 - u/kappa)), u = F_x^base(s_s) - 1,
    tau = tanh(model(descriptors of the spin-scaled density 2 n_s)).
    Keeps the uniform-gas limit (F_x -> 1 as s -> 0), the local Lieb-Oxford
    bound F_x <= 1 + kappa = 1.804, F_x >= 1, exact spin scaling of exchange
    and -- with the default model, which sees only s -- uniform coordinate
    scaling of exchange; correlation is the base (PBE or PBEsol) correlation.
    Energies in Ha/Bohr^3.  The default model ``MLP(features=("s",),
    zero_last=True)`` starts at exactly the base functional.
    References: PBE, PRL 77, 3865 (1996); Lieb & Oxford, Int. J. Quantum
    Chem. 19, 427 (1981).
    """

    is_gga = True

    def __init__(self, base: str = "pbe", model: Optional[NeuralXC] = None):
        super().__init__()
        key = str(base).lower().replace("-", "").replace("_", "")
        if key not in _BASES:
            raise ValueError(f"EnhancedXC base must be one of {list(_BASES)}, not {base!r}")
        self._base_key = key
        self.kappa, self.mu, beta = _BASES[key]
        self.model = MLP(features=("s",), zero_last=True) if model is None else model
        if not isinstance(self.model, NeuralXC):
            raise TypeError("model must be a pwxc.xc.NeuralXC (e.g. pwxc.xc.MLP)")
        self.correlation = PBECorrelation(beta=beta, name=f"gga_c_{key}")
        self.dens_threshold = 1e-15
        self.name = f"enhanced({key})"

    @property
    def base_name(self) -> str:
        return self._base_key

    def enhancement(self, desc: Descriptors, spin: int) -> Tensor:
        """F_x^theta of spin channel ``spin`` from the full descriptor bundle."""
        d = desc.spin_channel(spin)
        tau = torch.tanh(self.model(d).to(d.n))
        s2 = spin_s2(d.sigma_uu, d.n_up)  # = d.s2, computed as in PBEExchange
        return constrained_fx(s2, tau, self.kappa, self.mu)

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        inp = prepare(rho, sigma, self.dens_threshold, needs_sigma=True)
        desc = Descriptors.from_inputs(inp)
        thr = self.dens_threshold
        channels = [(0, inp.n_up, 2.0)] if not inp.polarized else [(0, inp.n_up, 1.0), (1, inp.n_dn, 1.0)]
        ex = None
        for spin, n_s, mult in channels:
            e = mult * lda_x_spin(n_s) * self.enhancement(desc, spin)
            e = torch.where(n_s > thr, e, 0.0)
            ex = e if ex is None else ex + e
        return inp.finish(ex) + self.correlation.energy_density(rho, sigma)

    def get_config(self) -> dict:
        from .io import spec

        return {"base": self._base_key, "model": spec(self.model)}

    @classmethod
    def from_config(cls, cfg: dict) -> "EnhancedXC":
        from .io import build

        return cls(base=cfg["base"], model=build(cfg["model"]))


register_savable(HybridXC)
register_savable(EnhancedXC)
