"""Descriptor bundle handed to neural functionals (:class:`~pwxc.xc.NeuralXC`).

On each grid point (atomic units):

* ``n``      total density n = n_up + n_dn [Bohr^-3]
* ``zeta``   spin polarization (n_up - n_dn) / n (0 when unpolarized)
* ``sigma``  |grad n|^2 [Bohr^-8] (None for density-only evaluation)
* ``s2``/``s``  reduced gradient s = |grad n| / (2 (3 pi^2)^(1/3) n^(4/3)) (PBE's s)
* ``rs``     Wigner-Seitz radius (3 / (4 pi n))^(1/3) [Bohr]
* spin-resolved ``n_up``, ``n_dn``, ``sigma_uu``, ``sigma_dd``
* ``tau``    reserved for meta-GGA models (kinetic energy density), None for now

Points with total density below the threshold carry safe placeholder values
(n = 1, sigma = 0) and ``valid`` = False; their energy is masked to exactly 0.
The same straight-through floors as the semilocal functionals apply (see
:mod:`pwxc.xc.inputs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from .inputs import SpinInputs, prepare

__all__ = ["Descriptors"]

S2_FAC = 1.0 / (4.0 * (3.0 * math.pi**2) ** (2.0 / 3.0))  # s^2 = S2_FAC sigma / n^(8/3)


@dataclass
class Descriptors:
    """Local descriptors of a (spin) density on N grid points; see module docstring."""

    n: Tensor
    zeta: Tensor
    valid: Tensor
    sigma: Optional[Tensor] = None
    n_up: Optional[Tensor] = None
    n_dn: Optional[Tensor] = None
    sigma_uu: Optional[Tensor] = None
    sigma_dd: Optional[Tensor] = None
    tau: Optional[Tensor] = None
    polarized: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_inputs(cls, inp: SpinInputs) -> "Descriptors":
        """Build from thresholded :class:`~pwxc.xc.inputs.SpinInputs`."""
        return cls(
            n=inp.n, zeta=inp.zeta, valid=inp.valid, sigma=inp.sigma,
            n_up=inp.n_up, n_dn=inp.n_dn, sigma_uu=inp.sigma_uu, sigma_dd=inp.sigma_dd,
            polarized=inp.polarized,
        )

    @classmethod
    def from_rho(
        cls, rho: Tensor, sigma: Optional[Tensor] = None, dens_threshold: float = 1e-15
    ) -> "Descriptors":
        """Build from libxc-layout rho (N,)/(2, N) and sigma (N,)/(3, N) (sigma optional)."""
        return cls.from_inputs(prepare(rho, sigma, dens_threshold, needs_sigma=sigma is not None))

    @property
    def rs(self) -> Tensor:
        """Wigner-Seitz radius rs = (3 / (4 pi n))^(1/3) [Bohr]."""
        return (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0) * self.n.pow(-1.0 / 3.0)

    @property
    def s2(self) -> Tensor:
        """s^2 = sigma / (4 (3 pi^2)^(2/3) n^(8/3)); zeros when sigma is None.  Smooth in sigma."""
        if "s2" not in self._cache:
            if self.sigma is None:
                self._cache["s2"] = torch.zeros_like(self.n)
            else:
                self._cache["s2"] = S2_FAC * self.sigma / self.n.pow(8.0 / 3.0)
        return self._cache["s2"]

    @property
    def s(self) -> Tensor:
        """Reduced gradient s = sqrt(s2) (derivative set to 0 at s = 0 instead of inf).

        Prefer functions of ``s2`` in models: they are smooth at sigma = 0.
        """
        s2 = self.s2
        pos = s2 > 0
        return torch.where(pos, torch.where(pos, s2, torch.ones_like(s2)).sqrt(), torch.zeros_like(s2))

    def finish(self, e: Tensor) -> Tensor:
        """Mask an energy density to exactly zero at below-threshold points."""
        return torch.where(self.valid, e, torch.zeros_like(e))

    def spin_channel(self, spin: int) -> "Descriptors":
        """Descriptors of the spin-scaled density 2 n_s (zeta = 0, sigma = 4 sigma_ss).

        This is the density entering exact exchange spin scaling
        E_x[n_up, n_dn] = (E_x[2 n_up] + E_x[2 n_dn]) / 2; its s equals s_s.
        """
        n_s = self.n_up if spin == 0 else self.n_dn
        sig_s = self.sigma_uu if spin == 0 else self.sigma_dd
        return Descriptors(
            n=2.0 * n_s, zeta=torch.zeros_like(n_s), valid=self.valid,
            sigma=None if sig_s is None else 4.0 * sig_s,
            n_up=n_s, n_dn=n_s, sigma_uu=sig_s, sigma_dd=sig_s, polarized=False,
        )
