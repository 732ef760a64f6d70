"""Neural exchange-correlation models: the :class:`NeuralXC` base class and :class:`MLP`.

A ``NeuralXC`` maps a :class:`~pwxc.xc.Descriptors` bundle on N grid points
to an energy per particle eps_theta (Hartree), shape (N,).  It is itself a
:class:`~pwxc.xc.Functional` -- a purely neural one, E_xc = int n eps_theta --
so it can be passed as ``xc=`` directly; more usually it is wrapped in
:class:`~pwxc.xc.HybridXC` or :class:`~pwxc.xc.EnhancedXC`.

Subclasses of NeuralXC register themselves by class name so that
:func:`pwxc.xc.load` can rebuild them from the JSON header of a saved file;
they should implement :meth:`NeuralXC.get_config` (constructor kwargs).
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .descriptors import Descriptors
from .functional import Functional

__all__ = ["NeuralXC", "MLP", "SAVABLE_CLASSES", "FEATURES", "register_savable"]

#: "module.QualName" (and, first come first served, the bare class name) -> class,
#: for rebuilding saved objects; filled by NeuralXC.__init_subclass__ / register_savable
SAVABLE_CLASSES: Dict[str, type] = {}


def register_savable(cls: type) -> type:
    """Make ``cls`` loadable by :func:`pwxc.xc.load` (done automatically for NeuralXC subclasses)."""
    SAVABLE_CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls
    SAVABLE_CLASSES.setdefault(cls.__name__, cls)
    return cls

_ACTIVATIONS = {
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


def _feat_n(d: Descriptors) -> Tensor:
    return torch.log1p(d.n.pow(1.0 / 3.0))


def _feat_s(d: Descriptors) -> Tensor:
    s2 = d.s2
    return s2 / (1.0 + s2)


def _feat_zeta(d: Descriptors) -> Tensor:
    return d.zeta * d.zeta


#: input transforms of :class:`MLP`: name -> (function of Descriptors, needs sigma)
FEATURES = {
    "n": (_feat_n, False),  # log(1 + n^(1/3)): ~0 in vacuum, ~0.7 at n = 1, ~2.4 at n = 1e3
    "s": (_feat_s, True),  # s^2 / (1 + s^2) in [0, 1): smooth and even in grad n
    "zeta": (_feat_zeta, False),  # zeta^2: spin-flip symmetric
}


class NeuralXC(Functional):
    """Base class of neural XC models: ``forward(desc) -> eps`` per particle (Hartree), shape (N,).

    As a Functional, ``energy_density(rho, sigma) = n * forward(Descriptors(rho, sigma))``
    with exact zeros below ``dens_threshold``.  Set ``is_gga = False`` in a
    subclass that never looks at gradients.  Implement ``get_config()`` (a
    JSON-serializable dict of constructor kwargs) to make the model savable.
    """

    name = "neural"
    is_gga = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_savable(cls)

    def forward(self, desc: Descriptors) -> Tensor:  # type: ignore[override]
        """Energy per particle eps(desc) in Hartree, shape (N,)."""
        raise NotImplementedError

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        desc = Descriptors.from_rho(rho, sigma if self.is_gga else None, self.dens_threshold)
        return desc.finish(desc.n * self(desc))

    def get_config(self) -> dict:
        """Constructor kwargs (JSON-serializable) used by :func:`pwxc.xc.save`."""
        return {}

    def save(self, path, metadata: Optional[dict] = None) -> None:
        """Write weights + JSON header to one file; reload with :func:`pwxc.xc.load`."""
        from .io import save

        save(self, path, metadata)


class MLP(NeuralXC):
    """Multilayer perceptron eps_theta(x) [Hartree] on well-scaled local descriptors.

    Inputs (``features``, any subset, in this order):

    * "n":    x_n = ln(1 + n^(1/3))                 (density, Bohr^-3)
    * "s":    x_s = s^2 / (1 + s^2)                 (reduced gradient; smooth at grad n = 0)
    * "zeta": x_z = zeta^2                          (spin-flip symmetric)

    Hidden layers use a smooth activation (default SiLU) so that second
    derivatives exist; the output layer is linear.  ``zero_last=True``
    initializes the output layer to zero (eps_theta = 0 at start). Weights are
    float64 unless ``dtype`` says otherwise.  The
    computation runs in the dtype/device of the inputs (parameters are cast
    on the fly, gradients flow back to them).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (32, 32),
        activation: Union[str, nn.Module] = "silu",
        features: Sequence[str] = ("n", "s", "zeta"),
        zero_last: bool = False,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        features = tuple(features)
        unknown = [f for f in features if f not in FEATURES]
        if unknown or not features:
            raise ValueError(f"unknown MLP features {unknown}; choose from {list(FEATURES)}")
        self.features = features
        self.hidden = tuple(int(h) for h in hidden)
        if isinstance(activation, str):
            if activation.lower() not in _ACTIVATIONS:
                raise ValueError(f"unknown activation {activation!r}; known: {list(_ACTIVATIONS)}")
            self.activation_name = activation.lower()
            self.act = _ACTIVATIONS[self.activation_name]()
        else:
            self.activation_name = type(activation).__name__
            self.act = activation
            if isinstance(activation, (nn.ReLU, nn.LeakyReLU)):
                warnings.warn("piecewise-linear activations have zero/undefined second derivatives")
        self.zero_last = bool(zero_last)
        sizes = (len(features),) + self.hidden + (1,)
        # float64 weights by default, like the rest of pwxc: float32 weights would round every
        # update (and every finite-difference step) at 1e-7 relative
        self.layers = nn.ModuleList(nn.Linear(a, b, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:]))
        if zero_last:
            nn.init.zeros_(self.layers[-1].weight)
            nn.init.zeros_(self.layers[-1].bias)
        self.is_gga = any(FEATURES[f][1] for f in features)
        self.name = "mlp"

    def inputs(self, desc: Descriptors) -> Tensor:
        """Feature matrix (N, len(features))."""
        return torch.stack([FEATURES[f][0](desc) for f in self.features], dim=-1)

    def forward(self, desc: Descriptors) -> Tensor:  # type: ignore[override]
        x = self.inputs(desc)
        for i, lin in enumerate(self.layers):
            x = F.linear(x, lin.weight.to(x), lin.bias.to(x))
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x.squeeze(-1)

    def get_config(self) -> dict:
        if self.activation_name not in _ACTIVATIONS:
            if not hasattr(nn, self.activation_name):
                raise ValueError(f"activation {self.activation_name} cannot be saved")
        return {
            "hidden": list(self.hidden),
            "activation": self.activation_name,
            "features": list(self.features),
            "zero_last": self.zero_last,
        }

    @classmethod
    def from_config(cls, cfg: dict) -> "MLP":
        cfg = dict(cfg)
        act = cfg.get("activation", "silu")
        if act not in _ACTIVATIONS:
            cfg["activation"] = getattr(nn, act)()
        return cls(**cfg)

    def extra_repr(self) -> str:
        return f"features={self.features}, hidden={self.hidden}, activation={self.activation_name!r}"

