"""SCFResult: what `pwxc.scf` returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class SCFResult:
    """Converged (or last) Kohn–Sham state.

    Attributes:
        basis: the PlaneWaveBasis.
        energy: total free energy F = E - σS, Hartree, 0-dim tensor. Carries autograd history to the
            lattice, positions and XC parameters when those require grad (Hellmann–Feynman).
        energies: dict of named terms (Hartree): kinetic, local, nonlocal, hartree, xc, ewald,
            psp_correction, entropy (-σS), and total.
        fermi_level: Fermi level (smearing) or highest occupied eigenvalue (fixed occupations), Hartree.
            Convention of Quantum ESPRESSO: the G = 0 part of the local pseudopotential is in the potential.
        eigenvalues: (n_k, n_bands) Kohn–Sham eigenvalues, Hartree; spin-polarised (2, n_k, n_bands)
            (up, down).
        occupations: (n_k, n_bands) occupation numbers in [0, 2]; spin-polarised (2, n_k, n_bands) in [0, 1].
        density: (n_spin, n1, n2, n3) electron density on the FFT grid, Bohr^-3 (spin: up, down).
        orbitals: (n_k, n_bands, npw_max) plane-wave coefficients (detached); spin (2, n_k, ...).
        converged, n_iterations: SCF status.
        history: per-iteration dicts (energy, delta_energy, residual, seconds).
        empty_band_tol: residual (Hartree) to which bands empty at a k-point were converged (smearing
            only; None: every band to the SCF's tolerance). See pwxc.scf.
    """

    basis: object
    energy: torch.Tensor
    energies: dict
    fermi_level: torch.Tensor
    eigenvalues: torch.Tensor
    occupations: torch.Tensor
    density: torch.Tensor
    orbitals: torch.Tensor
    converged: bool
    n_iterations: int
    entropy_term: float = 0.0
    history: list = field(default_factory=list)
    empty_band_tol: float | None = None

    @property
    def model(self):
        return self.basis.model

    @property
    def kweights(self):
        return self.basis.kweights

    @property
    def magnetization(self) -> float:
        """Total magnetic moment ∫ (n_up − n_down) dr per cell, Bohr magnetons (0 when unpolarised)."""
        from .density import magnetic_moment

        return magnetic_moment(self.density, float(self.model.crystal.volume.detach()))

    @property
    def absolute_magnetization(self) -> float:
        """∫ |n_up − n_down| dr per cell, Bohr magnetons (0 when unpolarised)."""
        from .density import magnetic_moment

        return magnetic_moment(self.density, float(self.model.crystal.volume.detach()), absolute=True)

    def __repr__(self):
        status = "converged" if self.converged else "NOT converged"
        return (f"SCFResult(energy={float(self.energy.detach()):.10f} Ha, "
                f"fermi_level={float(self.fermi_level.detach()):.6f} Ha, "
                f"{status} in {self.n_iterations} iterations)")
