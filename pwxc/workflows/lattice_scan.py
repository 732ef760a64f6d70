"""Lattice-constant scan with an auto-extending window and an equation-of-state fit.

The reference paper's Section 3.2 workflow: start from an estimate a_start, compute E at lattice
constants a_k = a_start (1 + k h), k = -m..m (isotropic scaling of the whole cell, fractional
positions fixed), take the minimum; if the lowest energy sits at an edge of the window, add points
beyond that edge (same spacing) and repeat until the minimum is bracketed. Finally fit E(V) with an
equation of state (third-order Birch–Murnaghan by default, :mod:`pwxc.workflows.eos`).

Lengths: the scan variable is the *scale* s of the input lattice (L → s L). It is reported as a
lattice constant a = s a_ref, where a_ref is the conventional cubic constant for cubic crystals
(pymatgen's SpacegroupAnalyzer conventional cell; the same for a primitive or conventional input)
and |a_1| of the input cell otherwise. Volumes are per input cell, Å³ in the result.
"""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..units import BOHR_IN_ANGSTROM, HARTREE_IN_EV
from ._engine import crystal_of, fft_size_for, lattice_bohr, make_calculator, scaled
from .defaults import choose_settings, load_structure
from .eos import EOSFit, fit_eos
from .store import ResultsStore, point_key

PLANEWAVE = "planewave"
#: warn when the rms EOS-fit residual exceeds this fraction of the fitted energy range
NOISE_FRACTION = 0.01


class NotBracketedError(RuntimeError):
    """The energy minimum was not bracketed after the allowed number of window extensions.

    ``points`` holds the computed ScanPoints (also in the results file, if one was given)."""

    def __init__(self, message, points=None):
        super().__init__(message)
        self.points = points or []


@dataclass
class ScanPoint:
    """One scan point. scale: factor on the input lattice; a: lattice constant, Å; volume: Å³ per
    input cell; energy: Hartree per input cell; reused: read from the results file, not computed;
    fitted: used in the equation-of-state fit."""

    scale: float
    a: float
    volume: float
    energy: float
    converged: bool = True
    n_iterations: int = 0
    seconds: float = 0.0
    pressure_gpa: float | None = None
    reused: bool = False
    key: str = ""
    fitted: bool = True


@dataclass
class LatticeScanResult:
    """Outcome of :func:`lattice_scan`.

    Attributes:
        v0: equilibrium volume per input cell, Å³. scale0: equilibrium scale of the input lattice.
        a0: equilibrium lattice constant, Å (conventional cubic constant for cubic crystals; see
            ``a_definition``). b0: bulk modulus, GPa. b0_prime: dB/dP. e0: minimum energy, Ha per cell.
        residuals: fit residuals at the points, Ha. points: ScanPoints sorted by scale.
        structure: pymatgen Structure at the minimum. fit: the :class:`EOSFit` (atomic units).
        settings: everything that determined the energies; defaults: the settings chosen by default
            and why. n_extensions: window extensions made. label: a name for the structure.
    """

    v0: float
    scale0: float
    a0: float
    b0: float
    b0_prime: float
    e0: float
    residuals: np.ndarray
    points: list
    structure: object
    fit: EOSFit
    settings: dict
    defaults: dict
    a_definition: str
    a_ref: float
    label: str = ""
    n_extensions: int = 0
    results_file: str | None = None
    n_atoms: int = 1
    messages: list = field(default_factory=list)

    @property
    def n_computed(self) -> int:
        return sum(not p.reused for p in self.points)

    @property
    def n_reused(self) -> int:
        return sum(p.reused for p in self.points)

    @property
    def bracketed(self) -> bool:
        e = [p.energy for p in self.points]
        return 0 < int(np.argmin(e)) < len(e) - 1

    def energy_curve(self, n=200):
        """(a in Å, E in Ha) of the fitted equation of state over the range of the fitted points."""
        fitted = [p.a for p in self.points if p.fitted]
        a = np.linspace(min(fitted), max(fitted), n)
        v_bohr = (a / self.a0) ** 3 * self.v0 / BOHR_IN_ANGSTROM**3
        return a, self.fit.energy(v_bohr)

    def summary(self) -> str:
        """Human-readable table of the points and the fit."""
        lines = [f"Lattice scan of {self.label} ({self.settings.get('engine')}, xc={self.settings.get('xc')}, "
                 + (f"ecut={self.settings['ecut']:g} Ha, " if "ecut" in self.settings else
                    f"basis={self.settings.get('basis')}, ")
                 + f"k={'x'.join(map(str, self.settings['kgrid']))}, smearing={self.settings['smearing']}"
                 + (f" {self.settings['temperature']:g} Ha" if self.settings["smearing"] else "") + ")",
                 f"{'a (Å)':>10} {'V (Å³)':>11} {'E (Ha)':>17} {'E-Emin (meV/atom)':>18} {'iter':>5} {'s':>7}  note"]
        e_min = min(p.energy for p in self.points)
        for p in self.points:
            note = "file" if p.reused else ""
            note += "" if p.fitted else " not fitted"
            note += "" if p.converged else " NOT CONVERGED"
            lines.append(f"{p.a:10.4f} {p.volume:11.4f} {p.energy:17.8f} "
                         f"{(p.energy - e_min) * HARTREE_IN_EV * 1000 / self.n_atoms:18.3f} "
                         f"{p.n_iterations:5d} {p.seconds:7.1f}  {note}".rstrip())
        lines += [f"{self.fit.kind} fit: a0 = {self.a0:.4f} Å ({self.a_definition}), V0 = {self.v0:.4f} Å³/cell, "
                  f"B0 = {self.b0:.2f} GPa, B0' = {self.b0_prime:.2f}, "
                  f"rms residual = {self.fit.rms * HARTREE_IN_EV * 1000:.3f} meV",
                  f"points: {len(self.points)} ({self.n_computed} computed, {self.n_reused} from file), "
                  f"window extensions: {self.n_extensions}"]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return dict(label=self.label, a0_angstrom=self.a0, a_definition=self.a_definition, v0_angstrom3=self.v0,
                    scale0=self.scale0, b0_gpa=self.b0, b0_prime=self.b0_prime, e0_ha=self.e0,
                    eos=self.fit.kind, rms_residual_ha=self.fit.rms, residuals_ha=[float(r) for r in self.residuals],
                    n_extensions=self.n_extensions, settings=self.settings, defaults=self.defaults,
                    results_file=self.results_file,
                    points=[dict(a_angstrom=p.a, scale=p.scale, volume_angstrom3=p.volume, energy_ha=p.energy,
                                 converged=p.converged, n_iterations=p.n_iterations, seconds=p.seconds,
                                 pressure_gpa=p.pressure_gpa, reused=p.reused, fitted=p.fitted)
                            for p in self.points])


def reference_length(structure, symprec: float = 1e-3) -> tuple[float, str]:
    """(a_ref in Å, description): conventional cubic constant for cubic crystals, else |a_1|."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)      # spglib's error-handling notice
            sga = SpacegroupAnalyzer(structure, symprec=symprec)
            if sga.get_crystal_system() == "cubic":
                conv = sga.get_conventional_standard_structure()
                return float(conv.lattice.a), "conventional cubic lattice constant"
    except Exception:                  # spglib failures on odd inputs: fall back to |a1|
        pass
    return float(structure.lattice.abc[0]), "length of the first lattice vector of the input cell"


def _initial_scales(s_start, window, step, n_points, a_values, a_ref):
    if a_values is not None:
        scales = sorted({round(float(a) / a_ref, 12) for a in a_values})
        if len(scales) < 4 or min(scales) <= 0:
            raise ValueError("a_values needs at least 4 distinct positive lattice constants (Å)")
        return scales
    if not (0 < window < 0.5):
        raise ValueError(f"window is the relative half-width of the scan, 0 < window < 0.5; got {window}")
    if step is None:
        if n_points < 4:
            raise ValueError(f"n_points must be >= 4 for an equation-of-state fit, got {n_points}")
        step = 2 * window / (n_points - 1)
    if not (0 < step <= window):
        raise ValueError(f"step (relative, fraction of the start value) must be in (0, window], got {step}")
    m = max(2, int(round(window / step)))
    return [round(s_start * (1 + k * step), 12) for k in range(-m, m + 1)]


def lattice_scan(structure, xc="pbe", ecut=None, kgrid=None, start=None, window=0.05, step=None, n_points=7,
                 auto_extend=True, max_extensions=4, eos="birch_murnaghan", fit_points=None, results_file=None,
                 basis=PLANEWAVE, a_values=None, kshift=(0, 0, 0), fft_size=None, scf_tol=1e-7, pressure=False,
                 progress=False, verbose=False, quiet=False, callback=None, scf_kwargs=None,
                 symmetry=True, **model_kwargs) -> LatticeScanResult:
    """Scan E(a) under isotropic scaling, extend the window until the minimum is bracketed, fit an EOS.

    Args:
        structure: pymatgen Structure (Å), pwxc.Crystal, built-in name ("Al", "MgO", ...) or file path.
        xc: functional name or object. ecut: plane-wave cutoff, Ha (default: recommended per element).
        kgrid: Monkhorst–Pack grid (default: k-spacing rule, denser for metals); fixed for the scan.
        start: starting estimate of the lattice constant, Å, measured like ``a0`` (default: the input).
        window: relative half-width of the first window (0.05: a_start·(1 ± 5 %)).
        step: relative spacing of points (default 2·window/(n_points-1)). n_points: points per window.
        auto_extend: extend the window downhill while the minimum sits on an edge.
        max_extensions: cap on extensions; then NotBracketedError (points are kept in the file).
        eos: "birch_murnaghan" (default), "murnaghan" or "polynomial".
        fit_points: number of points around the minimum used in the fit (default: the points of the
            first window, n_points; after an extension the window is completed on the short side so
            the fit stays centred). With ``a_values`` the default is all points.
        results_file: JSON-lines file; each finished point is appended; points already in it (same
            settings and geometry) are reused, so rerunning an interrupted scan resumes it.
        basis: "planewave" (default) or a Gaussian basis name ("sto-3g", ... via pwxc.gaussian).
        a_values: explicit lattice constants (Å) instead of start/window/step (paper-style grids).
        kshift: Monkhorst–Pack shift. fft_size: FFT grid (n1, n2, n3) for every point, or a callable
            a (Å) -> grid (e.g. to use another code's grids); default: the smallest grid holding the
            density sphere of the largest cell of the scan, fixed so that densities can be reused.
        scf_tol: SCF energy tolerance, Ha. pressure: also compute the pressure (GPa) at each point.
        progress: tqdm progress bar. verbose: print the SCF log. quiet: do not print chosen defaults.
        callback: called with each newly computed ScanPoint after it is saved.
        scf_kwargs: extra keywords of pwxc.scf. symmetry: use the space group (irreducible k-points;
            isotropic scaling keeps it; the energies equal the full mesh's). **model_kwargs: passed to pwxc.Model (pseudopotentials,
            smearing, temperature, ...) or, for Gaussian bases, to pwxc.gaussian.energy.
    Returns:
        LatticeScanResult (a0 Å, v0 Å³ per input cell, b0 GPa, b0_prime, points, residuals, structure).
    """
    struct, label, meta = load_structure(structure)
    engine = PLANEWAVE if str(basis).lower() in ("planewave", "plane-wave", "pw") else "gaussian"
    if engine == "gaussian":
        if ecut is not None:
            raise ValueError("ecut applies to plane waves only; a Gaussian basis was requested "
                             f"(basis={basis!r})")
        model_kwargs["basis"] = basis
    a_ref, a_definition = reference_length(struct)
    n_atoms = len(struct)
    settings, defaults, extra = choose_settings(struct, xc=xc, ecut=ecut, kgrid=kgrid, kshift=kshift,
                                                builtin=meta, engine=engine, model_kwargs=model_kwargs,
                                                quiet=quiet)
    settings["scf_tol"] = scf_tol
    calc = make_calculator(settings, extra, xc=None if isinstance(xc, str) else xc, scf_tol=scf_tol,
                           verbose=verbose, scf_kwargs=scf_kwargs, symmetry=symmetry)
    s_start = 1.0 if start is None else float(start) / a_ref
    if not (s_start > 0 and math.isfinite(s_start)):
        raise ValueError(f"start must be a positive lattice constant in Å, got {start!r}")
    scales = _initial_scales(s_start, window, step, n_points, a_values, a_ref)
    n_extend = max(2, (len(scales) - 1) // 2)
    recenter = a_values is None
    half = (len(scales) - 1) // 2 if fit_points is None else (int(fit_points) - 1) // 2
    if half < 2:
        raise ValueError(f"fit_points must be >= 5 (4 EOS parameters + 1), got {fit_points}")
    n_recentre = 0
    store = ResultsStore(results_file) if results_file else None
    v_input_bohr = float(abs(np.linalg.det(lattice_bohr(struct))))
    say = (lambda msg: None) if quiet else (lambda msg: print(f"pwxc: {msg}", file=sys.stderr, flush=True))
    messages = []

    points: dict[float, ScanPoint] = {}
    densities: dict[float, object] = {}
    bar = _progress_bar(progress, len(scales), label)
    n_ext = 0
    try:
        while True:
            fft = fft_size_for(settings, lattice_bohr(struct) * max(scales)) if fft_size is None else fft_size
            todo = sorted((s for s in scales if s not in points), key=lambda s: abs(s - s_start))
            for s in todo:
                points[s] = _point(s, struct, settings, calc, store, fft, densities, pressure, a_ref,
                                   v_input_bohr, callback, bar)
            ordered = sorted(points)
            energies = [points[s].energy for s in ordered]
            i_min = int(np.argmin(energies))
            if 0 < i_min < len(ordered) - 1:
                # bracketed; give the minimum `half` points on each side for a centred fit
                below, above = half - i_min, half - (len(ordered) - 1 - i_min)
                if not recenter or (below <= 0 and above <= 0) or n_recentre >= 2:
                    break
                n_recentre += 1
                new = [round(ordered[0] - j * (ordered[1] - ordered[0]), 12) for j in range(1, below + 1)]
                new += [round(ordered[-1] + j * (ordered[-1] - ordered[-2]), 12) for j in range(1, above + 1)]
                msg = (f"minimum bracketed near a = {points[ordered[i_min]].a:.4f} Å; adding {len(new)} point(s) "
                       f"so that the fit window is centred on it")
                say(msg)
                messages.append(msg)
                scales = sorted(set(scales) | set(new))
                if bar is not None:
                    bar.total = len(scales)
                    bar.refresh()
                continue
            edge = "lower" if i_min == 0 else "upper"
            where = f"the lowest energy is at the {edge} edge of the window (a = {points[ordered[i_min]].a:.4f} Å)"
            if not auto_extend:
                msg = f"{where}; auto_extend=False, so the fit extrapolates: a0 is unreliable"
                warnings.warn(msg, RuntimeWarning)
                messages.append(msg)
                break
            if n_ext >= max_extensions:
                raise NotBracketedError(f"{where} after {n_ext} window extensions (max_extensions="
                                        f"{max_extensions}): the minimum was not bracketed. Check the start value "
                                        "and the settings, or raise max_extensions.",
                                        [points[s] for s in ordered])
            n_ext += 1
            if edge == "lower":
                h = ordered[1] - ordered[0]
                new = [round(ordered[0] - j * h, 12) for j in range(1, n_extend + 1)]
            else:
                h = ordered[-1] - ordered[-2]
                new = [round(ordered[-1] + j * h, 12) for j in range(1, n_extend + 1)]
            if min(new) <= 0.3 * s_start:
                raise NotBracketedError(f"{where}: extending further would shrink the cell below 30 % of the "
                                        "start; the energy keeps falling (check the structure and pseudopotentials)",
                                        [points[s] for s in ordered])
            msg = (f"{where}: extending the window {'down' if edge == 'lower' else 'up'}wards by {n_extend} points "
                   f"to a = {min(new + ordered) * a_ref:.4f} .. {max(new + ordered) * a_ref:.4f} Å "
                   f"(extension {n_ext}/{max_extensions})")
            say(msg)
            messages.append(msg)
            scales = sorted(set(scales) | set(new))
            if bar is not None:
                bar.total = len(scales)
                bar.refresh()
    except KeyboardInterrupt:
        saved = f"; finished points are in {results_file}: rerun the same command to resume" if store else ""
        print(f"pwxc: scan interrupted after {len(points)} points{saved}", file=sys.stderr, flush=True)
        raise
    finally:
        if bar is not None:
            bar.close()

    pts = [points[s] for s in sorted(points)]
    i_min = int(np.argmin([p.energy for p in pts]))
    if a_values is None or fit_points is not None:
        lo = max(0, min(i_min - half, len(pts) - (2 * half + 1)))
        for i, p in enumerate(pts):
            p.fitted = lo <= i < lo + 2 * half + 1
    fitted = [p for p in pts if p.fitted]
    if any(not p.converged for p in pts):
        msg = f"{sum(not p.converged for p in pts)} point(s) did not reach SCF convergence"
        warnings.warn(msg, RuntimeWarning)
        messages.append(msg)
    vols_bohr = np.array([p.scale**3 * v_input_bohr for p in fitted])
    fit = fit_eos(vols_bohr, [p.energy for p in fitted], eos)
    scale0 = (fit.v0 / v_input_bohr) ** (1 / 3)
    span = float(np.ptp(fit.energies))
    if span > 0 and fit.rms > NOISE_FRACTION * span:
        msg = (f"E(a) is not smooth: rms fit residual {fit.rms * HARTREE_IN_EV * 1000:.2f} meV is "
               f"{100 * fit.rms / span:.1f} % of the energy range; usually basis-set jumps from an unconverged "
               "ecut (hard pseudopotentials) or a coarse k-mesh for a metal: raise ecut / kgrid")
        warnings.warn(msg, RuntimeWarning)
        messages.append(msg)
    return LatticeScanResult(v0=fit.v0 * BOHR_IN_ANGSTROM**3, scale0=scale0, a0=scale0 * a_ref, b0=fit.b0,
                             b0_prime=fit.b0_prime, e0=fit.e0, residuals=fit.residuals,
                             points=pts, structure=scaled(struct, scale0), fit=fit, settings=settings,
                             defaults=defaults, a_definition=a_definition, a_ref=a_ref, label=label,
                             n_extensions=n_ext, results_file=str(results_file) if results_file else None,
                             n_atoms=n_atoms, messages=messages)


def _progress_bar(progress, total, label):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"scan {label}", unit="pt", file=sys.stderr, dynamic_ncols=True)


def _point(s, struct, settings, calc, store, fft, densities, want_pressure, a_ref, v_input_bohr, callback, bar):
    """Reuse the point from the results file or compute it (warm-started from the nearest density)."""
    structure = scaled(struct, s)
    crystal = crystal_of(structure)
    key = point_key(settings, crystal.lattice.numpy(), crystal.positions.numpy(), crystal.species)
    a, volume = s * a_ref, s**3 * v_input_bohr * BOHR_IN_ANGSTROM**3
    record = store.find(key) if store is not None else None
    if record is not None and (not want_pressure or record.get("pressure_gpa") is not None):
        point = ScanPoint(s, a, volume, float(record["energy_ha"]), bool(record.get("converged", True)),
                          int(record.get("n_iterations", 0)), float(record.get("seconds", 0.0)),
                          record.get("pressure_gpa"), reused=True, key=key)
    else:
        guess = densities[min(densities, key=lambda t: abs(t - s))] if densities else None
        res = calc(structure, guess=guess, fft_size=fft(a) if callable(fft) else fft, pressure=want_pressure)
        if res.density is not None:
            densities[s] = res.density
        point = ScanPoint(s, a, volume, res.energy, res.converged, res.n_iterations, res.seconds,
                          res.pressure_gpa, reused=False, key=key)
        if store is not None:
            store.append(dict(kind="lattice_scan_point", key=key, scale=s, a_angstrom=a, volume_angstrom3=volume,
                              species=list(crystal.species), settings=settings, **res.record()))
        if callback is not None:
            callback(point)
    if bar is not None:
        bar.set_postfix_str(f"a={a:.3f} Å E={point.energy:.6f} Ha")
        bar.update(1)
    return point
