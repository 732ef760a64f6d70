"""λ-ramp of the network term: E_xc^λ = E_base + λ (E_θ − E_base), λ: 0 → 1 over the first epochs.

For a :class:`pwxc.xc.HybridXC` with b = 1 this is exactly E_xc = E_PBE + λ·E_NN, E_NN = a ∫ n ε_θ dr.
Neural functionals converge worse than PBE when the network term is large; ramping λ in lets the SCF
of every structure follow the functional continuously from the base functional.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from ..xc import Functional, functional as get_functional


class RampedXC(Functional):
    """Energy density e^λ = e_base + λ (e_θ − e_base), Ha/Bohr³; λ = 1 is the wrapped functional.

    ``xc``: the trainable functional (its parameters stay its own, so gradients reach them);
    ``lam``: the ramp factor λ ∈ [0, 1]; ``base``: the base functional (default ``xc.base_name``).
    """

    def __init__(self, xc: Functional, lam: float, base: Optional[Functional] = None):
        super().__init__()
        if not 0.0 <= float(lam) <= 1.0:
            raise ValueError(f"λ must lie in [0, 1], got {lam}")
        self.xc = xc
        self.base = get_functional(base if base is not None else xc.base_name)
        self.lam = float(lam)
        self.is_gga = bool(xc.is_gga or self.base.is_gga)
        self.dens_threshold = xc.dens_threshold
        self.name = f"ramp({self.lam:g}, {xc.name})"

    @property
    def base_name(self) -> str:
        return self.xc.base_name

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        e_full = self.xc.energy_density(rho, sigma if self.xc.is_gga else None)
        e_base = self.base.energy_density(rho, sigma if self.base.is_gga else None).to(e_full)
        return e_base + self.lam * (e_full - e_base)


def ramp_lambda(epoch: int, ramp_epochs: int) -> float:
    """Linear ramp λ = min(1, (epoch + 1)/ramp_epochs) for 0-based ``epoch``; 1 when ramp_epochs ≤ 0."""
    if ramp_epochs <= 0:
        return 1.0
    return min(1.0, (epoch + 1) / ramp_epochs)


def ramped(xc: Functional, lam: float) -> Functional:
    """``xc`` itself for λ = 1, else a :class:`RampedXC`."""
    return xc if lam >= 1.0 else RampedXC(xc, lam)
