"""One energy evaluation for the workflows: plane waves (pwxc) or Gaussian orbitals (pwxc.gaussian).

A calculator is built from a ``settings`` dict (see :func:`pwxc.workflows.defaults.choose_settings`)
and called on a pymatgen ``Structure`` (Å); it returns a :class:`PointResult` in atomic units.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..units import ANGSTROM_IN_BOHR, HARTREE_PER_BOHR3_IN_GPA


@dataclass
class PointResult:
    """Energy (Ha) and SCF status of one geometry; pressure in GPa and max |force| in Ha/Bohr if asked."""

    energy: float
    converged: bool
    n_iterations: int
    seconds: float
    fermi_level: float | None = None
    pressure_gpa: float | None = None
    stress_gpa: list | None = None
    max_force: float | None = None
    fft_size: list | None = None
    density: object = field(default=None, repr=False)
    scf: object = field(default=None, repr=False)

    def record(self) -> dict:
        """The JSON-able part (for results files)."""
        return dict(energy_ha=self.energy, converged=self.converged, n_iterations=self.n_iterations,
                    seconds=round(self.seconds, 3), fermi_level_ha=self.fermi_level,
                    pressure_gpa=self.pressure_gpa, stress_gpa=self.stress_gpa, max_force_ha_bohr=self.max_force,
                    fft_size=self.fft_size)


def crystal_of(structure):
    """pwxc.Crystal (Bohr) of a pymatgen Structure (Å)."""
    from ..crystal import Crystal
    species = [site.specie.symbol for site in structure]
    return Crystal.from_arrays(np.array(structure.lattice.matrix), np.array(structure.frac_coords), species,
                               unit="angstrom")


def fft_size_for(settings: dict, lattice_bohr) -> tuple[int, int, int] | None:
    """FFT grid holding the density sphere |G| ≤ 2√(2 ecut) for this lattice (plane waves only)."""
    if settings.get("engine") != "planewave":
        return None
    from ..basis.fft_grid import fft_size_for_cutoff
    return fft_size_for_cutoff(torch.as_tensor(np.asarray(lattice_bohr), dtype=torch.float64),
                               2 * math.sqrt(2 * settings["ecut"]))


class _Calculator:
    """What every calculator keeps: settings, model keywords, functional, SCF tolerance and options."""

    def __init__(self, settings, model_kwargs=None, xc=None, scf_tol=1e-7, verbose=False, scf_kwargs=None):
        self.settings = settings
        self.model_kwargs = dict(model_kwargs or {})
        self.xc = settings["xc"] if xc is None else xc
        self.scf_tol = scf_tol
        self.verbose = verbose
        self.scf_kwargs = dict(scf_kwargs or {})


class PlaneWaveCalculator(_Calculator):
    """Energy of a structure with :func:`pwxc.scf` at fixed settings.

    Args:
        settings: dict with xc, pseudopotentials, ecut (Ha), kgrid, kshift, smearing, temperature (Ha).
        model_kwargs: further keywords for :class:`pwxc.Model` (e.g. charge).
        xc: the functional object when it is not a name (else settings["xc"] is used).
        scf_tol: SCF energy threshold, Ha. verbose: print the SCF log.
        scf_kwargs: further keywords of :func:`pwxc.scf` (maxiter, n_bands, mixing, ...).
        symmetry: irreducible k-points and symmetrised densities (same energies as the full mesh;
            not part of the settings key for that reason).
    """

    def __init__(self, settings, model_kwargs=None, xc=None, scf_tol=1e-7, verbose=False, scf_kwargs=None,
                 symmetry=True):
        super().__init__(settings, model_kwargs, xc, scf_tol, verbose, scf_kwargs)
        self.symmetry = symmetry

    def basis(self, structure, fft_size=None, ecut=None, kgrid=None):
        import pwxc
        s = self.settings
        model = pwxc.Model(crystal_of(structure), xc=self.xc, pseudopotentials=s["pseudopotentials"],
                           smearing=s["smearing"], temperature=s["temperature"] if s["smearing"] else 0.0,
                           **self.model_kwargs)
        return pwxc.PlaneWaveBasis(model, ecut=s["ecut"] if ecut is None else ecut,
                                   kgrid=s["kgrid"] if kgrid is None else kgrid, kshift=s["kshift"],
                                   fft_size=fft_size, symmetry=self.symmetry)

    def __call__(self, structure, guess=None, fft_size=None, pressure=False, forces=False,
                 ecut=None, kgrid=None) -> PointResult:
        import pwxc
        t0 = time.perf_counter()
        basis = self.basis(structure, fft_size=fft_size, ecut=ecut, kgrid=kgrid)
        if guess is not None and tuple(guess.shape[-3:]) != basis.fft.shape:
            guess = None
        if self.verbose:
            print(f"--- SCF: {basis}", flush=True)
        res = pwxc.scf(basis, tol=self.scf_tol, guess=guess, verbose=self.verbose, **self.scf_kwargs)
        out = PointResult(energy=float(res.energy), converged=bool(res.converged), n_iterations=res.n_iterations,
                          seconds=0.0, fermi_level=float(res.fermi_level), fft_size=list(basis.fft.shape),
                          density=res.density.detach(), scf=res)
        if pressure:
            sigma = pwxc.stress(res).detach().numpy() * HARTREE_PER_BOHR3_IN_GPA
            out.stress_gpa = sigma.tolist()
            out.pressure_gpa = float(-np.trace(sigma) / 3)
        if forces:
            out.max_force = float(pwxc.forces(res).detach().norm(dim=1).max())
        out.seconds = time.perf_counter() - t0
        return out


class GaussianCalculator(_Calculator):
    """Energy of a structure with :func:`pwxc.gaussian.energy` (reference paper's STO-3G path).

    The AO density matrix of the previous call warm-starts the next (same atoms, basis, k-mesh).
    """

    def __init__(self, settings, model_kwargs=None, xc=None, scf_tol=1e-7, verbose=False, scf_kwargs=None):
        try:
            from .. import gaussian
        except ImportError as err:     # pragma: no cover - optional extra
            raise ImportError("basis=<Gaussian basis> needs the Gaussian engine: pip install pwxc[gaussian]") from err
        self.gaussian = gaussian
        super().__init__(settings, model_kwargs, xc, scf_tol, verbose, scf_kwargs)
        self.warm = gaussian.WarmStart()

    def __call__(self, structure, guess=None, fft_size=None, pressure=False, forces=False,
                 ecut=None, kgrid=None) -> PointResult:
        if pressure or forces:
            raise NotImplementedError("pressure/forces are available with basis='planewave' only")
        s = self.settings
        t0 = time.perf_counter()
        energy, res = self.gaussian.energy(
            structure, xc=self.xc, kgrid=tuple(s["kgrid"] if kgrid is None else kgrid), basis=s["basis"],
            pseudo=s.get("pseudo"), smearing=s["smearing"], temperature=s["temperature"] if s["smearing"] else None,
            warm_start=self.warm, return_result=True, conv_tol=self.scf_tol, verbose=self.verbose,
            **self.model_kwargs, **self.scf_kwargs)
        return PointResult(energy=float(energy), converged=bool(res.converged), n_iterations=res.n_iterations,
                           seconds=time.perf_counter() - t0, fermi_level=float(res.fermi_level), scf=res)


def make_calculator(settings, model_kwargs=None, xc=None, scf_tol=1e-7, verbose=False, scf_kwargs=None,
                    symmetry=True):
    if settings["engine"] == "planewave":
        return PlaneWaveCalculator(settings, model_kwargs, xc=xc, scf_tol=scf_tol, verbose=verbose,
                                   scf_kwargs=scf_kwargs, symmetry=symmetry)
    return GaussianCalculator(settings, model_kwargs, xc=xc, scf_tol=scf_tol, verbose=verbose, scf_kwargs=scf_kwargs)


def scaled(structure, scale: float):
    """Copy of a pymatgen Structure with every lattice vector multiplied by `scale` (fractional positions kept)."""
    from pymatgen.core import Lattice, Structure
    return Structure(Lattice(structure.lattice.matrix * scale), structure.species, structure.frac_coords)


def strained(structure, lattice_angstrom):
    """Copy of a Structure with a new lattice (rows, Å) and the same fractional positions."""
    from pymatgen.core import Lattice, Structure
    return Structure(Lattice(np.asarray(lattice_angstrom, dtype=float)), structure.species, structure.frac_coords)


def lattice_bohr(structure) -> np.ndarray:
    return structure.lattice.matrix * ANGSTROM_IN_BOHR
