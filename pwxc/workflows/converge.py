"""Convergence studies in the plane-wave cutoff or the k-point grid.

For values p_1 < p_2 < ... < p_n of one parameter (everything else fixed) the energy per atom
e_i = E_i / N_atoms is computed, with the maximum force |F| (Ha/Bohr) and the pressure (GPa). With
the last (most accurate) value as reference, Δ_i = e_i - e_n (meV/atom). The converged value is
the smallest p_i with |Δ_j| ≤ tol for every j ≥ i (j < n). The study has *reached* the tolerance
only when at least the two largest values agree within tol (|e_{n-1} - e_n| ≤ tol); otherwise
``converged_value`` is None and a warning is issued.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..units import HARTREE_IN_EV
from ._engine import fft_size_for, lattice_bohr, make_calculator
from .defaults import choose_settings, load_structure, recommended_ecut
from .store import ResultsStore, point_key

PARAMETERS = ("ecut", "kgrid")


@dataclass
class ConvergenceResult:
    """Outcome of :func:`converge`.

    Attributes:
        parameter: "ecut" (values in Ha) or "kgrid" (values are (n1, n2, n3)).
        values: the values, in increasing order. energies: total energies per cell, Ha.
        delta_mev: e_i - e_n per atom, meV (reference: last value).
        max_forces: max |F| per value, Ha/Bohr (None if not computed). pressures: GPa (or None).
        tol_mev: tolerance, meV/atom. converged_value: smallest value meeting it (None if not reached).
        settings, defaults: as in the lattice scan. n_atoms: atoms per cell.
    """

    parameter: str
    values: list
    energies: list
    delta_mev: list
    max_forces: list
    pressures: list
    tol_mev: float
    converged_value: object
    settings: dict
    defaults: dict
    n_atoms: int
    label: str = ""
    converged_flags: list = field(default_factory=list)
    reused: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return self.converged_value is not None

    def summary(self) -> str:
        unit = " (Ha)" if self.parameter == "ecut" else ""
        lines = [f"{self.parameter} convergence of {self.label} (xc={self.settings.get('xc')}, tol = "
                 f"{self.tol_mev:g} meV/atom)",
                 f"{self.parameter + unit:>12} {'E (Ha/cell)':>17} {'E-E_last (meV/atom)':>20} "
                 f"{'max|F| (Ha/Bohr)':>17} {'P (GPa)':>9} {'s':>7}"]
        for i, v in enumerate(self.values):
            vs = f"{v:g}" if self.parameter == "ecut" else "x".join(map(str, v))
            f = "-" if self.max_forces[i] is None else f"{self.max_forces[i]:.2e}"
            p = "-" if self.pressures[i] is None else f"{self.pressures[i]:.3f}"
            note = " (file)" if self.reused and self.reused[i] else ""
            lines.append(f"{vs:>12} {self.energies[i]:17.8f} {self.delta_mev[i]:20.3f} {f:>17} {p:>9} "
                         f"{self.seconds[i] if self.seconds else 0:7.1f}{note}")
        if self.reached:
            cv = f"{self.converged_value:g} Ha" if self.parameter == "ecut" else "x".join(map(str, self.converged_value))
            lines.append(f"smallest {self.parameter} within {self.tol_mev:g} meV/atom of the last value: {cv}")
        else:
            lines.append(f"tolerance {self.tol_mev:g} meV/atom NOT reached: extend the values")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return dict(label=self.label, parameter=self.parameter, values=self.values, energies_ha=self.energies,
                    delta_mev_per_atom=self.delta_mev, max_forces_ha_bohr=self.max_forces,
                    pressures_gpa=self.pressures, tol_mev_per_atom=self.tol_mev,
                    converged_value=self.converged_value, reached=self.reached, settings=self.settings,
                    defaults=self.defaults, n_atoms=self.n_atoms, scf_converged=self.converged_flags)


def converged_index(delta_mev, tol_mev) -> int | None:
    """Index of the smallest value whose own and all later differences are within tol; None if the
    two largest values already differ by more than tol (tolerance not reached)."""
    d = np.abs(np.asarray(delta_mev, dtype=float))
    if len(d) < 2 or d[-2] > tol_mev:
        return None
    i = len(d) - 1
    while i > 0 and d[i - 1] <= tol_mev:
        i -= 1
    return i


def _default_values(parameter, species, settings):
    if parameter == "ecut":
        rec, _ = recommended_ecut(species, settings["pseudopotentials"])
        return sorted({max(5.0, round(f * rec / 2.5) * 2.5) for f in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)})
    return [(n, n, n) for n in (2, 4, 6, 8, 10, 12)]


def converge(structure, parameter="ecut", values=None, tol=1e-3, xc="pbe", ecut=None, kgrid=None,
             forces=True, pressure=True, results_file=None, scf_tol=1e-8, progress=False, verbose=False,
             quiet=False, callback=None, scf_kwargs=None, symmetry=True, **model_kwargs) -> ConvergenceResult:
    """Energy, energy differences, forces and pressure against ecut or the k-grid.

    Args:
        structure: pymatgen Structure, pwxc.Crystal, built-in name or structure file.
        parameter: "ecut" or "kgrid".
        values: ecut values (Ha) or k-grids ((n1, n2, n3) or n for n×n×n); default: 0.5–2 × the
            recommended cutoff, or 2..12 per direction.
        tol: tolerance on the energy per atom, **eV/atom** (default 1e-3 = 1 meV/atom).
        xc, ecut, kgrid: the other settings (defaults as in lattice_scan).
        forces, pressure: compute max |F| (Ha/Bohr) and P (GPa) at each value.
        results_file: JSON-lines file for point-by-point saving and resume.
        symmetry: use the space group (irreducible k-points; same energies as the full mesh).
        **model_kwargs: passed to pwxc.Model.
    Returns:
        ConvergenceResult; warns (RuntimeWarning) if the tolerance is not reached.
    """
    if parameter not in PARAMETERS:
        raise ValueError(f"parameter must be one of {PARAMETERS}, got {parameter!r}")
    if not tol > 0:
        raise ValueError(f"tol (eV/atom) must be positive, got {tol}")
    struct, label, meta = load_structure(structure)
    species = [site.specie.symbol for site in struct]
    settings, defaults, extra = choose_settings(
        struct, xc=xc, ecut=ecut if parameter != "ecut" else 1.0, kgrid=kgrid if parameter != "kgrid" else (1, 1, 1),
        builtin=meta, model_kwargs=model_kwargs, quiet=True)
    if values is None:
        values = _default_values(parameter, species, settings)
        defaults["values"] = f"{values} (default {parameter} series)"
    if parameter == "ecut":
        values = sorted(float(v) for v in values)
        if min(values) <= 0:
            raise ValueError(f"ecut values must be positive (Ha), got {values}")
    else:
        values = [tuple(int(n) for n in ((v,) * 3 if np.isscalar(v) else v)) for v in values]
        if any(len(v) != 3 or min(v) < 1 for v in values):
            raise ValueError(f"k-grid values must be n or (n1, n2, n3) with n >= 1, got {values}")
        values = sorted(values, key=lambda v: (np.prod(v), v))
    if len(values) < 2:
        raise ValueError("a convergence study needs at least two values")
    # the settings of the fixed parameter: choose defaults now (printed)
    settings, fixed_defaults, extra = choose_settings(
        struct, xc=xc, ecut=ecut if parameter != "ecut" else values[-1],
        kgrid=kgrid if parameter != "kgrid" else values[-1], builtin=meta, model_kwargs=model_kwargs, quiet=quiet)
    defaults.update({k: v for k, v in fixed_defaults.items() if k != parameter})
    if not quiet and "values" in defaults:
        print(f"pwxc: values not given -> {defaults['values']}", file=sys.stderr, flush=True)
    settings["scf_tol"] = scf_tol
    calc = make_calculator(settings, extra, xc=None if isinstance(xc, str) else xc, scf_tol=scf_tol,
                           verbose=verbose, scf_kwargs=scf_kwargs, symmetry=symmetry)
    store = ResultsStore(results_file) if results_file else None
    from ._engine import crystal_of
    crystal = crystal_of(struct)
    n_atoms = len(species)
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=len(values), desc=f"{parameter} {label}", unit="pt", file=sys.stderr)
        except ImportError:
            bar = None
    rows, density = [], None
    try:
        for v in values:
            s = dict(settings)
            s[parameter] = float(v) if parameter == "ecut" else list(v)
            key = point_key(s, crystal.lattice.numpy(), crystal.positions.numpy(), crystal.species)
            rec = store.find(key) if store is not None else None
            if rec is not None and (not forces or rec.get("max_force_ha_bohr") is not None) \
                    and (not pressure or rec.get("pressure_gpa") is not None):
                rec = dict(rec, reused=True)
            else:
                fft = fft_size_for(s, lattice_bohr(struct))
                res = calc(struct, guess=density, fft_size=fft, pressure=pressure, forces=forces,
                           **{parameter: (float(v) if parameter == "ecut" else tuple(v))})
                density = res.density
                rec = dict(kind="convergence_point", key=key, parameter=parameter, value=s[parameter],
                           settings=s, **res.record())
                if store is not None:
                    store.append(rec)
                rec["reused"] = False
                if callback is not None:
                    callback(rec)
            rows.append(rec)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    energies = [float(r["energy_ha"]) for r in rows]
    delta = [(e - energies[-1]) / n_atoms * HARTREE_IN_EV * 1000 for e in energies]
    tol_mev = tol * 1000
    idx = converged_index(delta, tol_mev)
    result = ConvergenceResult(parameter=parameter, values=values, energies=energies, delta_mev=delta,
                               max_forces=[r.get("max_force_ha_bohr") for r in rows],
                               pressures=[r.get("pressure_gpa") for r in rows], tol_mev=tol_mev,
                               converged_value=None if idx is None else values[idx], settings=settings,
                               defaults=defaults, n_atoms=n_atoms, label=label,
                               converged_flags=[bool(r.get("converged", True)) for r in rows],
                               reused=[r["reused"] for r in rows], seconds=[float(r.get("seconds", 0)) for r in rows])
    if idx is None:
        warnings.warn(f"{parameter} convergence of {label}: the two largest values differ by "
                      f"{abs(delta[-2]):.3f} meV/atom > tol = {tol_mev:g} meV/atom; extend the values",
                      RuntimeWarning)
    return result
