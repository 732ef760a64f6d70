"""Stress-driven cell relaxation (isotropic or full cell, fractional positions fixed).

Stress σ = (1/Ω) ∂E/∂ε from :func:`pwxc.stress` (Ha/Bohr³, reported in GPa), P = -tr σ / 3.

Isotropic mode: find the volume where P(V) = P_target by a quasi-Newton iteration in ln V with the
bulk modulus B = -dP/d ln V::

    ln V_{k+1} = ln V_k + (P_k - P_target) / B_k,     |Δ ln V| ≤ 0.15,

starting from B_0 = 100 GPa and updating B_k by the secant of the last two steps (kept if it lies in
1..2000 GPa). Full mode: the lattice L (rows) is deformed as L ← L (1 + ε)ᵀ with the step split into
the isotropic and the deviatoric (traceless) parts of the stress residual Δσ = σ - σ_target
(σ_target = -P_target·1)::

    ε = -[ tr(Δσ)/3 · 1 / (3 B_k)  +  dev(Δσ) / M_k ],

where M estimates the deviatoric stiffness (c11 - c12 for tetragonal, 2 c44 for shear strain; start
M_0 = B_0, then the secant ⟨Δσ_dev, Δε_dev⟩ / ⟨Δε_dev, Δε_dev⟩ of the last two steps), with
max|ε| ≤ 0.05. For a pure pressure it reduces to the isotropic step.

The stress is the *fixed-basis* derivative (integer G set held fixed), while a lattice scan at
constant ecut changes the plane-wave set with volume: the two minima differ by the Pulay stress,
which vanishes as ecut converges (at ecut a few Ha below convergence it can be ~0.1–1 GPa).
"""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..units import ANGSTROM_IN_BOHR
from ._engine import crystal_of, fft_size_for, lattice_bohr, make_calculator, strained
from .defaults import choose_settings, load_structure
from .lattice_scan import reference_length
from .store import ResultsStore, point_key

MODES = ("isotropic", "full")


@dataclass
class RelaxResult:
    """Outcome of :func:`relax_cell`.

    Attributes:
        structure: relaxed pymatgen Structure. a0: lattice constant, Å (conventional cubic constant for
            cubic crystals). v0: volume, Å³ per cell. energy: Ha. pressure: GPa. stress: 3×3, GPa.
        converged: |P - P_target| (isotropic) or max |σ - σ_target| (full) below tol.
        steps: per-step dicts (volume_angstrom3, energy_ha, pressure_gpa, stress_gpa, lattice_angstrom).
        max_force: max |F| at the end, Ha/Bohr (positions are not relaxed).
    """

    structure: object
    a0: float
    v0: float
    energy: float
    pressure: float
    stress: np.ndarray
    converged: bool
    steps: list
    settings: dict
    defaults: dict
    mode: str
    max_force: float | None = None
    label: str = ""
    bulk_modulus_estimate: float | None = None
    messages: list = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.mode} cell relaxation of {self.label} (xc={self.settings.get('xc')}, "
                 f"ecut={self.settings.get('ecut')} Ha, k={'x'.join(map(str, self.settings['kgrid']))})",
                 f"{'step':>4} {'V (Å³)':>11} {'E (Ha)':>17} {'P (GPa)':>10} {'max|σ-σt| (GPa)':>16}"]
        for i, s in enumerate(self.steps):
            lines.append(f"{i:4d} {s['volume_angstrom3']:11.4f} {s['energy_ha']:17.8f} {s['pressure_gpa']:10.4f} "
                         f"{s['residual_gpa']:16.4f}{' (file)' if s.get('reused') else ''}")
        lines.append(f"{'converged' if self.converged else 'NOT converged'}: a0 = {self.a0:.4f} Å, "
                     f"V = {self.v0:.4f} Å³, P = {self.pressure:.4f} GPa"
                     + (f", max|F| = {self.max_force:.2e} Ha/Bohr" if self.max_force is not None else ""))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return dict(label=self.label, mode=self.mode, a0_angstrom=self.a0, v0_angstrom3=self.v0,
                    energy_ha=self.energy, pressure_gpa=self.pressure, stress_gpa=np.asarray(self.stress).tolist(),
                    converged=self.converged, max_force_ha_bohr=self.max_force,
                    lattice_angstrom=self.structure.lattice.matrix.tolist(), steps=self.steps,
                    settings=self.settings, defaults=self.defaults)


def relax_cell(structure, mode="isotropic", xc="pbe", ecut=None, kgrid=None, target_pressure=0.0, tol=0.05,
               max_steps=20, bulk_modulus=100.0, results_file=None, scf_tol=1e-8, verbose=False, quiet=False,
               scf_kwargs=None, symmetry=True, **model_kwargs) -> RelaxResult:
    """Relax the cell under the stress until the pressure (or stress) reaches the target.

    Args:
        structure: pymatgen Structure, pwxc.Crystal, built-in name or structure file.
        mode: "isotropic" (scale only) or "full" (all six strain components); positions fixed.
        xc, ecut, kgrid, **model_kwargs: as in :func:`lattice_scan` (the k-grid is fixed at its
            starting value).
        target_pressure: GPa. tol: GPa, on |P - P_target| (isotropic) or max|σ - σ_target| (full).
        max_steps: SCF calculations allowed. bulk_modulus: initial estimate B_0, GPa.
        results_file: JSON-lines file (steps are saved; a rerun reuses identical geometries).
        symmetry: use the space group (irreducible k-points; forces and stress symmetrised).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not (tol > 0 and max_steps >= 1 and bulk_modulus > 0):
        raise ValueError("tol and bulk_modulus must be positive and max_steps >= 1")
    struct, label, meta = load_structure(structure)
    settings, defaults, extra = choose_settings(struct, xc=xc, ecut=ecut, kgrid=kgrid, builtin=meta,
                                                model_kwargs=model_kwargs, quiet=quiet)
    if settings["engine"] != "planewave":
        raise ValueError("relax_cell needs the plane-wave engine (stress)")
    settings["scf_tol"] = scf_tol
    calc = make_calculator(settings, extra, xc=None if isinstance(xc, str) else xc, scf_tol=scf_tol,
                           verbose=verbose, scf_kwargs=scf_kwargs, symmetry=symmetry)
    store = ResultsStore(results_file) if results_file else None
    say = (lambda msg: None) if quiet else (lambda msg: print(f"pwxc: {msg}", file=sys.stderr, flush=True))
    lattice = struct.lattice.matrix.copy()         # Å, rows
    b_est = m_est = float(bulk_modulus)
    steps, density, converged, prev = [], None, False, None
    # FFT grid fixed for cells up to 15 % larger in volume (density warm start across steps)
    fft = fft_size_for(settings, lattice_bohr(struct) * 1.05)
    for it in range(max_steps):
        current = strained(struct, lattice)
        crystal = crystal_of(current)
        key = point_key(settings, crystal.lattice.numpy(), crystal.positions.numpy(), crystal.species)
        rec = store.find(key) if store is not None else None
        if rec is not None and rec.get("stress_gpa") is not None:
            rec = dict(rec, reused=True)
        else:
            needed = fft_size_for(settings, lattice * ANGSTROM_IN_BOHR)
            if any(n > m for n, m in zip(needed, fft)):
                fft = fft_size_for(settings, lattice * ANGSTROM_IN_BOHR * 1.05)
            res = calc(current, guess=density, fft_size=fft, pressure=True)
            density = res.density
            rec = dict(kind="relax_step", key=key, lattice_angstrom=lattice.tolist(), settings=settings,
                       **res.record())
            if store is not None:
                store.append(rec)
            rec["reused"] = False
        sigma = np.asarray(rec["stress_gpa"])
        p = float(rec["pressure_gpa"])
        volume = float(abs(np.linalg.det(lattice)))
        if mode == "isotropic":
            residual = abs(p - target_pressure)
        else:
            residual = float(np.abs(sigma + target_pressure * np.eye(3)).max())
        steps.append(dict(volume_angstrom3=volume, energy_ha=float(rec["energy_ha"]), pressure_gpa=p,
                          stress_gpa=sigma.tolist(), residual_gpa=residual, lattice_angstrom=lattice.tolist(),
                          converged_scf=bool(rec.get("converged", True)), reused=rec["reused"]))
        say(f"relax step {it}: V = {volume:.4f} Å³, P = {p:.4f} GPa, residual {residual:.4f} GPa")
        dev_sigma = sigma - np.trace(sigma) / 3 * np.eye(3)
        if prev is not None:
            dlnv = math.log(volume / prev[0])
            if abs(dlnv) > 1e-8:
                b_sec = -(p - prev[1]) / dlnv
                if 1.0 < b_sec < 2000.0:
                    b_est = b_sec
            d_eps = prev[3] - np.trace(prev[3]) / 3 * np.eye(3)
            if np.abs(d_eps).max() > 1e-7:
                m_sec = float(np.sum((dev_sigma - prev[2]) * d_eps) / np.sum(d_eps * d_eps))
                if 1.0 < m_sec < 2000.0:
                    m_est = m_sec
        if residual < tol:
            converged = True
            break
        if mode == "isotropic":
            dlnv = max(-0.15, min(0.15, (p - target_pressure) / b_est))
            eps = (math.exp(dlnv / 3) - 1) * np.eye(3)
        else:
            iso = (p - target_pressure) / (3 * b_est)          # -tr(Δσ)/3 = P - P_target
            eps = iso * np.eye(3) - dev_sigma / m_est
            eps = 0.5 * (eps + eps.T)
            if np.abs(eps).max() > 0.05:
                eps *= 0.05 / np.abs(eps).max()
        prev = (volume, p, dev_sigma, eps)
        lattice = lattice @ (np.eye(3) + eps).T
    final = strained(struct, np.array(steps[-1]["lattice_angstrom"]))
    max_force = None
    if density is not None and not steps[-1]["reused"]:
        import pwxc
        max_force = float(pwxc.forces(res.scf).detach().norm(dim=1).max())
    a_ref, _ = reference_length(final)
    messages = []
    if not converged:
        messages.append(f"cell relaxation not converged in {max_steps} steps (residual {steps[-1]['residual_gpa']:.3g} GPa)")
        warnings.warn(messages[-1], RuntimeWarning)
    return RelaxResult(structure=final, a0=a_ref, v0=steps[-1]["volume_angstrom3"], energy=steps[-1]["energy_ha"],
                       pressure=steps[-1]["pressure_gpa"], stress=np.array(steps[-1]["stress_gpa"]),
                       converged=converged, steps=steps, settings=settings, defaults=defaults, mode=mode,
                       max_force=max_force, label=label, bulk_modulus_estimate=b_est, messages=messages)


__all__ = ["relax_cell", "RelaxResult"]
