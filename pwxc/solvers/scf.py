"""Self-consistent field loop: density mixing with Kerker + Anderson, LOBPCG diagonalisation.

The loop runs under torch.no_grad(); once converged, the energy functional is evaluated once more
with autograd on, at the converged orbitals and occupations (see pwxc.energy), so that gradients with
respect to positions, lattice and XC parameters come from the converged state, never from iterations.
"""
from __future__ import annotations

import logging
import math
import time
import warnings

import torch

from ..density import compute_density, initial_density, magnetic_moment
from ..energy import energy_terms, ion_charges
from ..hamiltonian import Hamiltonian
from ..occupation import fixed_occupations, smeared_occupations
from ..result import SCFResult
from ..terms.ewald import ewald_energy
from ..terms.hartree import hartree_energy, hartree_potential_recip
from ..terms.local_pseudo import local_potential_recip
from ..terms.nonlocal_pseudo import projectors
from ..terms.core_correction import core_density
from ..terms.xc import xc_potential
from .eigensolver import lobpcg, tpa_preconditioner
from .initial_guess import start_orbitals
from .mixing import AndersonAccelerator, KerkerMixing

log = logging.getLogger("pwxc")


class SCFNotConvergedError(RuntimeError):
    """Raised by :func:`scf` with ``raise_on_failure=True`` when the SCF does not converge."""


def default_n_bands(model) -> int:
    """Bands to compute: the occupied ones for insulators; for smearing max(1.2 N/2, N/2 + 4) (as QE),
    with N/2 the electrons of the majority spin channel, (N + Σ|μ_I|)/2, when spin-polarised."""
    half = model.n_electrons / 2
    if model.magnetic_moments is not None:
        half += float(model.magnetic_moments.abs().sum()) / 2
    if model.smearing is None:
        return int(round(half))
    return max(int(math.ceil(1.2 * half)), int(math.ceil(half)) + 4)


#: the buffer bands (beyond n_bands; never returned, only a warm start) are converged to
#: BUFFER_TOL_FACTOR · diag_tol instead of diag_tol
BUFFER_TOL_FACTOR = 10.0
#: the Anderson history is restarted when the density residual grows by more than this factor in one
#: step after the second (Si8 with symmetry: 17 → 12 steps; Cu 14 → 13; Al, Ni, Ca, Ag, MgO, Si2 unchanged)
ANDERSON_RESET_FACTOR = 1.5
#: ... but only a history of at least this many steps: right after a restart the short history is what
#: stabilises a stiff system (Cu with a 2×2×2 k-mesh, d bands at the Fermi level): restarting again on
#: the next growth left plain Kerker steps, which diverged (100 steps without convergence; 18 without
#: the restart rule, 18 with this guard)
ANDERSON_RESET_MIN_HISTORY = 3
#: the oldest Anderson differences are dropped while cond(ΔF) exceeds this. SCF steps (tol 1e-7 Ha)
#: with no limit / 1e4: Ni 40 Ha k2 37 / 26, Cu 40 Ha k2 21 / 19, Cu 40 Ha k4 12 / 10, Ni k4 13 / 12,
#: Rh 60 Ha k2 18 / 17; Si8, Al (benchmarks), Rh, Pd, Ca, MgO, CaF2 and all nine paper materials at
#: k 1 and 3: equal within ±1 step. 1e2 helps the hard metals more (Ni 16) but costs Al one step.
ANDERSON_MAX_COND = 1e4
#: a band whose occupation is below this (electrons) at a k-point counts as empty there
EMPTY_OCCUPATION = 1e-12


def _row_tolerances(diag_tol, n_k, n_bands, n_total, occ=None, empty_band_tol=None, dtype=torch.float64,
                    device=None):
    """(n_k, n_total) residual tolerances of a diagonalisation: diag_tol for the n_bands requested bands,
    BUFFER_TOL_FACTOR · diag_tol for the buffer bands beyond them. With the occupations of the last step
    and an empty_band_tol, bands empty there get max(diag_tol, empty_band_tol) and the buffer bands at
    least empty_band_tol."""
    tol = torch.full((n_k, n_total), diag_tol, dtype=dtype, device=device)
    tol[:, n_bands:] = BUFFER_TOL_FACTOR * diag_tol
    if occ is not None and empty_band_tol is not None:
        tol[:, :n_bands].masked_fill_(occ < EMPTY_OCCUPATION, max(diag_tol, empty_band_tol))
        tol[:, n_bands:] = max(BUFFER_TOL_FACTOR * diag_tol, empty_band_tol)
    return tol


def _next_diag_tol(residual_norm, history, density_tol, diag_tol_min):
    """Residual tolerance of the next diagonalisation: 5 % of the density residual it will be compared
    with. Near convergence (residual within 100× of density_tol) the next residual is predicted from
    the last contraction rate, so that the final check (diag_tol ≤ 10 % of the residual of that step)
    passes in the step that meets the density and energy criteria instead of one or two steps later."""
    target = residual_norm
    if residual_norm < 100 * density_tol:
        target = _predicted_residual(residual_norm, history)
    return min(1e-2, max(diag_tol_min, 0.05 * target))


def _predicted_residual(residual_norm, history):
    """Density residual expected at the next step from the last contraction rate (clamped to
    [0.05, 1]); the current residual when there is no history."""
    if len(history) < 2:
        return residual_norm
    rate = residual_norm / max(history[-2]["residual"], 1e-300)
    return residual_norm * min(1.0, max(rate, 0.05))


#: spin-polarised SCF: the magnetisation is mixed by damped plain mixing (Anderson on the total density
#: only) until it changes by less than this (μ_B per cell) in a step; then Anderson takes both. A secant
#: method like Anderson converges to any fixed point, also to the unstable non-magnetic one: started at
#: once on both channels it turned ferromagnetic Ni (QE: 0.47 μ_B at 30 Ha, k 4³) non-magnetic for
#: starts of 0.6 and 1.0 μ_B; with this rule every start tried (0.3–2 μ_B) and every lattice scale of
#: 0.97–1.03 (0.29–0.70 μ_B, as QE) ends ferromagnetic, in 22–40 steps.
MAGNETIZATION_SETTLED = 0.005
#: ... in this many consecutive steps (one is not enough: decaying from an overshooting start, the
#: moment passes through its own output value on the way)
MAGNETIZATION_SETTLED_STEPS = 3


def _precondition(mixing, basis, residual):
    """Preconditioned residual. Spin-polarised: the preconditioner (Kerker) acts on the total-density
    residual; the magnetisation residual gets the plain factor α, since Kerker's G²/(G² + k₀²) would
    never change the total moment (G = 0)."""
    if residual.shape[0] == 1:
        return mixing(basis, residual)
    total = mixing(basis, residual.sum(0, keepdim=True))[0]
    return _spin_densities(total, mixing.alpha * (residual[0] - residual[1]))


def _spin_densities(total, moment):
    """(up, down) = ((n + m)/2, (n − m)/2) from total and magnetisation densities."""
    return torch.stack([(total + moment) / 2, (total - moment) / 2])


def _guess_density(basis, guess):
    if guess is None:
        return initial_density(basis)
    rho = guess.density.detach() if hasattr(guess, "density") else torch.as_tensor(guess)
    if tuple(rho.shape[-3:]) != basis.fft.shape:
        warnings.warn(f"guess density grid {tuple(rho.shape[-3:])} differs from the FFT grid "
                      f"{basis.fft.shape}; starting from atomic densities instead")
        return initial_density(basis)
    n_spin = basis.model.n_spin
    rho = rho.to(dtype=basis.dtype, device=basis.device).reshape(-1, *basis.fft.shape).clamp_min(0)
    if rho.shape[0] != n_spin:
        warnings.warn(f"guess density has {rho.shape[0]} spin component(s), the model {n_spin}; starting from "
                      "atomic densities instead")
        return initial_density(basis)
    volume = float(basis.model.crystal.volume.detach())
    return rho * basis.model.n_electrons / (float(rho.sum()) * volume / basis.fft.size)


def _guess_orbitals(basis, guess, n_total):
    """Orbitals of a previous result on the same plane-wave sets (e.g. another XC functional), or None."""
    old = getattr(guess, "orbitals_all", None)
    shape = (basis.n_kpoints, n_total, basis.mask.shape[1])
    if old is None or old.shape != ((2,) + shape if basis.model.n_spin == 2 else shape):
        return None
    if not torch.equal(guess.basis.miller, basis.miller):
        return None
    return old.clone()


def _positive_finite(name, value, unit):
    """ValueError unless value is a real number, finite and > 0 (bools are not numbers here)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite positive number ({unit}), got {value!r}")


def scf(basis, tol: float = 1e-8, density_tol: float | None = None, maxiter: int = 100,
        n_bands: int | None = None, mixing: KerkerMixing | None = None, anderson_depth: int = 10,
        guess=None, verbose: bool = False, raise_on_failure: bool = False, seed: int = 0,
        differentiable: bool = False, empty_band_tol: float | None = 1e-4) -> SCFResult:
    """Solve the Kohn–Sham equations self-consistently.

    Args:
        basis: a :class:`pwxc.PlaneWaveBasis`.
        tol: convergence threshold on the change of the total energy between iterations, Hartree.
        density_tol: threshold on the density residual ‖ρ_out - ρ_in‖ = (∫ (ρ_out - ρ_in)² dr)^{1/2}
            (electrons·Bohr^{-3/2}); default √tol / 10.
        maxiter: maximum number of SCF iterations.
        n_bands: bands to compute (default: occupied bands; more with smearing).
        mixing: residual preconditioner; default Kerker (α = 0.7, k0 = 0.8 Bohr^-1) with smearing,
            simple mixing α = 0.7 without.
        guess: a previous SCFResult (or a density tensor) on the same FFT grid to start from.
        verbose: print one line per iteration (iteration, energy, ΔE, residual, seconds).
        raise_on_failure: raise SCFNotConvergedError instead of warning when not converged.
        seed: seed of the random start orbitals (pwxc.solvers.initial_guess.start_orbitals: all of the
            start without smearing, a 10 % admixture to the plane-wave-subspace start with it).
        differentiable: give result.density, result.eigenvalues and result.fermi_level a grad_fn to the XC
            parameters, positions and lattice by implicit differentiation of the converged fixed point
            (pwxc.response.make_differentiable; one linear-response solve per backward).
        empty_band_tol: residual-norm tolerance (Hartree) for bands that were empty (occupation below
            1e-12) at a k-point in the previous step. They do not enter the density or the energy; a
            Ritz value with residual r is within r of an eigenvalue and typically within r²/gap, so the
            default 1e-4 gives their eigenvalues to ~1e-7 Ha. QE converges empty bands loosely by
            default too (diago_full_acc). None converges every band to the SCF's tolerance (for band
            energies above the Fermi level to the last digit). Linear response (differentiable=True,
            pwxc.response) first converges such bands to the occupied bands' residual.
    Returns:
        SCFResult.
    """
    model = basis.model
    if not hasattr(basis, "fft_index"):
        raise TypeError(f"scf expects a PlaneWaveBasis, got {type(basis).__name__}")
    _positive_finite("tol", tol, "Hartree")
    if density_tol is not None:
        _positive_finite("density_tol", density_tol, "electrons·Bohr^-3/2")
    for name, value, low in (("maxiter", maxiter, 1), ("anderson_depth", anderson_depth, 0)):
        if isinstance(value, bool) or not hasattr(type(value), "__index__") or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if empty_band_tol is not None and not (math.isfinite(empty_band_tol) and empty_band_tol > 0):
        raise ValueError(f"empty_band_tol must be a positive residual (Hartree) or None, got {empty_band_tol!r}")
    if differentiable and model.n_spin == 2:
        raise NotImplementedError("differentiable=True (implicit differentiation) is not implemented for "
                                  "spin-polarised models; energies, forces and stress are")
    density_tol = math.sqrt(tol) / 10 if density_tol is None else density_tol
    n_bands = default_n_bands(model) if n_bands is None else int(n_bands)
    n_occ_min = int(math.ceil(model.n_electrons / 2 - 1e-9))
    if n_bands < n_occ_min:
        raise ValueError(f"n_bands = {n_bands} cannot hold {model.n_electrons:g} electrons")
    n_buffer = max(2, n_bands // 8)
    if int(basis.n_planewaves.min()) < n_bands + n_buffer:
        raise ValueError(f"ecut = {basis.ecut} Ha gives only {int(basis.n_planewaves.min())} plane waves at some "
                         f"k-point, fewer than the {n_bands + n_buffer} bands needed: raise ecut")
    if mixing is None:
        mixing = KerkerMixing(alpha=0.7, k0=0.8 if model.smearing else 0.0)
    anderson = AndersonAccelerator(anderson_depth, max_cond=ANDERSON_MAX_COND)
    crystal = model.crystal
    n_grid = basis.fft.size

    with torch.no_grad():
        lattice, positions = crystal.lattice.detach(), crystal.positions.detach()
        volume = float(torch.linalg.det(lattice))
        v_loc = basis.fft.to_real(local_potential_recip(basis, lattice, positions)).real
        proj = projectors(basis, lattice, positions)
        core = core_density(basis, lattice, positions)
        precondition = tpa_preconditioner(basis.kinetic(lattice), basis.mask)
        rho_in = _guess_density(basis, guess)
        n_total = n_bands + n_buffer
        n_spin = model.n_spin
        psi = _guess_orbitals(basis, guess, n_total)
        # internally one orbital block per spin channel (a single one when unpolarised)
        psi = [None] * n_spin if psi is None else (list(psi) if n_spin == 2 else [psi])
        occ = None          # occupations of the last step: bands empty there may be converged loosely

        history, energy_old, converged = [], None, False
        spin_anderson, settled_steps = False, 0
        residual_norm, diag_tol = None, 1e-2
        diag_tol_min = max(1e-12, 1e-3 * math.sqrt(tol))
        for iteration in range(1, maxiter + 1):
            t0 = time.perf_counter()
            rho_total = rho_in.sum(0)
            v_h = basis.fft.to_real(hartree_potential_recip(basis, basis.fft.to_reciprocal(rho_total), lattice)).real
            _, v_xc = xc_potential(basis, rho_in, model.xc, core=core)
            v_eff = v_loc + v_h + v_xc          # (n_spin, n1, n2, n3)
            if not torch.isfinite(v_eff).all():
                raise FloatingPointError(f"non-finite effective potential in SCF iteration {iteration} "
                                         "(check the XC functional and the input geometry)")
            eigs, tols, n_diag = [], [], 0
            for spin in range(n_spin):
                ham = Hamiltonian(basis, v_eff[spin], *proj)
                if psi[spin] is None:
                    psi[spin] = start_orbitals(ham, n_total, n_occ_min, seed + spin)
                row_tol = _row_tolerances(diag_tol, basis.n_kpoints, n_bands, n_total,
                                          occ[spin] if occ is not None and model.smearing is not None else None,
                                          empty_band_tol,
                                          dtype=basis.dtype, device=basis.device)
                eig = lobpcg(ham.apply, psi[spin], precondition, n_bands, tol=row_tol,
                             maxiter=200 if iteration == 1 else 50)
                psi[spin] = eig.vectors
                eigs.append(eig.eigenvalues[:, :n_bands])
                n_diag = max(n_diag, eig.n_iterations)
                tols.append(row_tol[:, :n_bands])
            eigenvalues = torch.stack(eigs)     # (n_spin, n_k, n_bands)
            if model.smearing is None:
                occ = fixed_occupations(eigenvalues[0], model.n_electrons)[None]
                n_occ = int(round(model.n_electrons / 2))
                fermi, minus_ts = float(eigenvalues[0, :, n_occ - 1].max()), 0.0
            else:
                # one Fermi level for both spin channels; each spin orbital holds 2 / n_spin electrons
                occ, fermi, minus_ts = smeared_occupations(eigenvalues.reshape(-1, n_bands),
                                                           basis.kweights.repeat(n_spin), model.n_electrons,
                                                           model.smearing, model.temperature,
                                                           spin_degeneracy=2.0 / n_spin)
                occ = occ.reshape(n_spin, basis.n_kpoints, n_bands)
            psi_occ = psi[0][None, :, :n_bands] if n_spin == 1 else torch.stack([p[:, :n_bands] for p in psi])
            # bands with exactly zero occupation at every k add nothing to the density: skip their FFTs
            nonzero = (occ != 0).reshape(-1, n_bands).any(0)
            n_dens = int(nonzero.nonzero().max()) + 1 if bool(nonzero.any()) else n_bands
            psi_arg, occ_arg = (psi_occ, occ) if n_spin == 2 else (psi_occ[0], occ[0])
            rho_out = compute_density(basis, psi_arg[..., :n_dens, :], occ_arg[..., :n_dens], lattice)
            terms = energy_terms(basis, psi_arg, occ_arg, minus_ts, lattice=lattice, positions=positions,
                                 rho=rho_out, proj=proj, core=core)
            energy = float(terms["total"])
            residual = rho_out - rho_in
            residual_norm = math.sqrt(float((residual**2).sum()) * volume / n_grid)
            if not math.isfinite(energy) or not math.isfinite(residual_norm):
                raise FloatingPointError(f"non-finite energy or density in SCF iteration {iteration}")
            delta = energy - energy_old if energy_old is not None else float("nan")
            seconds = time.perf_counter() - t0
            # Hartree energy of the residual: what QE's "estimated scf accuracy" measures (there in Ry, ×2)
            hartree_residual = float(hartree_energy(basis, basis.fft.to_reciprocal(residual.sum(0)), lattice))
            record = dict(iteration=iteration, energy=energy, delta_energy=delta, residual=residual_norm,
                          seconds=seconds, diag_iterations=n_diag, hartree_residual=hartree_residual)
            moment_text = ""
            if n_spin == 2:
                record["magnetization"] = magnetic_moment(rho_out, volume)
                moment_text = f"  M = {record['magnetization']: .4f}"
            history.append(record)
            line = (f"scf {iteration:3d}  E = {energy:.10f} Ha  dE = {delta: .2e}  "
                    f"|drho| = {residual_norm:.2e}{moment_text}  diag {n_diag:3d}  {seconds:.2f} s")
            log.info(line)
            if verbose:
                print(line, flush=True)
            # bands occupied now must have been converged to diag_tol (not the empty-band tolerance)
            tight = bool((torch.stack(tols)[occ >= EMPTY_OCCUPATION] <= diag_tol).all())
            if energy_old is not None and abs(delta) < tol and residual_norm < density_tol \
                    and diag_tol <= max(diag_tol_min, 0.1 * residual_norm) and tight:
                converged = True
                break
            energy_old = energy
            if len(history) > 2 and residual_norm > ANDERSON_RESET_FACTOR * history[-2]["residual"] \
                    and len(anderson.xs) >= ANDERSON_RESET_MIN_HISTORY:
                # the map has changed under the Anderson model (e.g. a state the eigensolver found late):
                # its old differences now mislead it; restart from this step. Not at step 2: from a guess
                # the first diagonalisation may do nothing, and its residual is then not a real one
                anderson.reset()
                log.info(f"scf {iteration:3d}  density residual grew {residual_norm / history[-2]['residual']:.1f}x:"
                         " Anderson history restarted")
            if n_spin == 2 and not spin_anderson:
                settled_steps = settled_steps + 1 if abs(record["magnetization"] - magnetic_moment(rho_in, volume)) \
                    < MAGNETIZATION_SETTLED else 0
                if settled_steps >= MAGNETIZATION_SETTLED_STEPS:
                    spin_anderson = True
                    anderson.reset()         # its history holds total densities only
            step = _precondition(mixing, basis, residual)
            if n_spin == 1 or spin_anderson:
                rho_in = anderson(rho_in, step)
            else:
                # Anderson on the total density only; the magnetisation by damped plain mixing, which
                # (unlike a secant method) is not drawn to the unstable non-magnetic fixed point
                total = anderson(rho_in.sum(0, keepdim=True), step.sum(0, keepdim=True))[0]
                rho_in = _spin_densities(total, (rho_in[0] - rho_in[1]) + (step[0] - step[1]))
            diag_tol = _next_diag_tol(residual_norm, history, density_tol, diag_tol_min)

    if not converged:
        message = (f"SCF not converged in {maxiter} iterations (last ΔE = {history[-1]['delta_energy']:.2e} Ha, "
                   f"density residual {residual_norm:.2e}). Try: more iterations (maxiter), a smaller mixing "
                   "alpha (mixing=pwxc.KerkerMixing(alpha=0.3)), smearing with a larger temperature for "
                   "metals, or more bands (n_bands).")
        if raise_on_failure:
            raise SCFNotConvergedError(message)
        warnings.warn(message, RuntimeWarning)
    if model.smearing is not None and float(occ[..., -1].max()) > 1e-6:
        warnings.warn(f"the highest computed band is occupied ({float(occ[..., -1].max()):.1e}): "
                      "increase n_bands", RuntimeWarning)

    # One evaluation with autograd on: exact first derivatives at the converged state.
    # Public shapes: (n_k, ...) unpolarised, (2, n_k, ...) spin-polarised.
    unstack = (lambda t: t) if n_spin == 2 else (lambda t: t[0])
    psi_occ, occ, eigenvalues = unstack(psi_occ.detach()), unstack(occ.detach()), unstack(eigenvalues.detach())
    with torch.enable_grad():
        terms = energy_terms(basis, psi_occ, occ, minus_ts)
    result = SCFResult(basis=basis, energy=terms["total"], energies=terms,
                       fermi_level=torch.tensor(fermi, dtype=basis.dtype), eigenvalues=eigenvalues,
                       occupations=occ, density=rho_out.detach(), orbitals=psi_occ, converged=converged,
                       n_iterations=iteration, entropy_term=float(minus_ts), history=history,
                       empty_band_tol=empty_band_tol if model.smearing is not None else None)
    result.orbitals_all = unstack(torch.stack([p.detach() for p in psi]))
    if differentiable:
        from ..response.implicit import make_differentiable
        result = make_differentiable(result)
    return result
