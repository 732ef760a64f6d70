"""Base class of every exchange-correlation functional, and sums of functionals.

The plane-wave engine relies on exactly this contract::

    f.is_gga                              # True if the functional needs sigma
    f.energy_density(rho, sigma=None)     # -> Tensor (N,), Hartree / Bohr^3

with libxc's layout:

* ``rho``: shape (N,) spin-unpolarized, or (2, N) for (n_up, n_down)  [Bohr^-3]
* ``sigma``: shape (N,) = |grad n|^2, or (3, N) = (s_uu, s_ud, s_dd)  [Bohr^-8]

The returned value is the energy per unit volume, e_xc = n * eps_xc (Hartree
Bohr^-3); E_xc = sum(e_xc) * dV.  Potentials are autograd derivatives:
vrho = d sum(e_xc) / d rho, vsigma = d sum(e_xc) / d sigma (libxc's vrho and
vsigma).  All functionals are ``torch.nn.Module`` objects; dtype and device
follow the inputs.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = ["Functional", "SumFunctional"]


class Functional(nn.Module):
    """Abstract exchange-correlation functional (a ``torch.nn.Module``).

    Subclasses implement :meth:`energy_density`.  ``name`` is a label (the
    libxc-style name for the built-in ones) and ``is_gga`` says whether sigma
    is needed.  ``dens_threshold`` is the total density below which a grid
    point contributes exactly zero energy (and zero derivatives).
    """

    name: str = "functional"
    is_gga: bool = False
    dens_threshold: float = 1e-15

    @property
    def base_name(self) -> str:
        """Name of the underlying conventional functional ("pbe", "lda", ...), e.g. to pick
        matching pseudopotentials; neural functionals report their base."""
        return self.name

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        """Energy per unit volume e_xc(r) = n(r) eps_xc(r), shape (N,), Ha/Bohr^3."""
        raise NotImplementedError

    def forward(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        """Same as :meth:`energy_density`."""
        return self.energy_density(rho, sigma)

    def exc(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        """Energy per particle eps_xc (Hartree), libxc's ``zk``; zero where n = 0."""
        n = rho if rho.dim() == 1 else rho.sum(0)
        e = self.energy_density(rho, sigma)
        ok = n > 0
        return torch.where(ok, e / torch.where(ok, n, torch.ones_like(n)), torch.zeros_like(e))

    def evaluate(
        self, rho: Tensor, sigma: Optional[Tensor] = None, create_graph: bool = False
    ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """Energy density and its first derivatives by autograd.

        Returns ``(e, vrho, vsigma)`` with vrho = d e / d rho (same shape as
        rho) and vsigma = d e / d sigma (same shape as sigma, None for LDA).
        With ``create_graph=True`` the derivatives stay differentiable (for
        second derivatives or for training through the potential).
        """
        rho_ = rho.detach().requires_grad_(True) if not rho.requires_grad else rho
        sig_ = None
        if sigma is not None and self.is_gga:
            sig_ = sigma.detach().requires_grad_(True) if not sigma.requires_grad else sigma
        with torch.enable_grad():
            e = self.energy_density(rho_, sig_)
            inputs = [rho_] + ([sig_] if sig_ is not None else [])
            grads = torch.autograd.grad(e.sum(), inputs, create_graph=create_graph, allow_unused=True)
        vrho = grads[0] if grads[0] is not None else torch.zeros_like(rho)
        vsigma = None
        if sig_ is not None:
            vsigma = grads[1] if grads[1] is not None else torch.zeros_like(sigma)
        if not create_graph:
            e = e.detach()
        return e, vrho, vsigma

    # ---- algebra -------------------------------------------------------------
    def __add__(self, other: "Functional") -> "SumFunctional":
        if not isinstance(other, Functional):
            return NotImplemented
        return SumFunctional([self, other])

    def __mul__(self, c: float) -> "SumFunctional":
        if not isinstance(c, (int, float)):
            return NotImplemented
        return SumFunctional([self], weights=[float(c)])

    __rmul__ = __mul__

    def extra_repr(self) -> str:
        return f"name={self.name!r}, is_gga={self.is_gga}"


class SumFunctional(Functional):
    """Weighted sum of functionals, e_xc = sum_i w_i e_i (e.g. "pbe" = x + c).

    Each component keeps its own density thresholds, as libxc does for
    mixed functionals.
    """

    def __init__(
        self,
        components: Sequence[Functional],
        weights: Optional[Iterable[float]] = None,
        name: Optional[str] = None,
    ):
        super().__init__()
        self.components = nn.ModuleList(components)
        w = [1.0] * len(components) if weights is None else [float(x) for x in weights]
        if len(w) != len(components):
            raise ValueError("one weight per component is needed")
        self.weights = w
        self.is_gga = any(c.is_gga for c in components)
        self.dens_threshold = min(c.dens_threshold for c in components)
        if name is None:
            name = "+".join(
                (c.name if wi == 1.0 else f"{wi:g}*{c.name}") for c, wi in zip(components, w)
            )
        self.name = name

    def energy_density(self, rho: Tensor, sigma: Optional[Tensor] = None) -> Tensor:
        total = None
        for c, w in zip(self.components, self.weights):
            e = c.energy_density(rho, sigma if c.is_gga else None)
            e = e if w == 1.0 else w * e
            total = e if total is None else total + e
        return total
