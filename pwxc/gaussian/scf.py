"""Torch Kohn–Sham SCF on PySCF Gaussian integrals: :func:`scf`, :func:`energy`, :class:`WarmStart`.

Total energy per cell (Hartree), PySCF's decomposition::

    E = E_1 + E_H + E_xc + E_nn,     F = E - σS   (free energy with smearing; F = E without)

E_1 = (1/N_k) Σ_k Tr(h^k D^k) (kinetic + electron-nuclear / pseudopotential), E_H the GDF Hartree
energy, E_xc = Σ_g w_g e_xc(n, |∇n|²) with any pwxc functional, E_nn the Ewald ion-ion energy.

The SCF iterations run under ``torch.no_grad``: Fock build → DIIS extrapolation → diagonalisation →
occupations → new D, until |ΔF| < ``conv_tol`` and max|X†(FDS - SDF)X| < ``conv_tol_grad``. At the end the
energy is re-evaluated with autograd on at the converged D (held constant), so
``result.energy.backward()`` gives dF/dθ for the functional's parameters θ (Hellmann–Feynman: F is
stationary in D and the occupations at self-consistency).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import torch

from .integrals import build_integrals
from .kohn_sham import energy_terms, fock_and_energies
from .solver import (DIIS, SMEARINGS, commutator_error, diagonalize, make_density_matrix, occupations,
                     orthogonalizers)
from .system import build_cell


class GaussianSCFNotConverged(RuntimeError):
    """Raised by :func:`scf` with ``raise_on_failure=True`` when the SCF does not converge."""


@dataclass
class GaussianSCFResult:
    """Outcome of :func:`scf` (atomic units).

    Attributes:
        energy: free energy per cell F = E - σS, Hartree, 0-dim tensor with autograd history to the
            functional's parameters (E when there is no smearing).
        energies: dict (Hartree, floats): one_electron, hartree, xc, ion_ion, entropy (= -σS),
            total (E, PySCF's ``e_tot``) and free_energy (F, PySCF's ``e_free``).
        converged, n_iterations: SCF status.
        mo_energy: (nk, nmo) orbital energies (Hartree) of the last diagonalisation (a list if nmo
            differs between k-points because of linear-dependency removal).
        mo_coeff, mo_occ: lists per k of (nao, nmo) coefficients and (nmo,) occupations (0..2).
        fermi_level: μ (smearing) or highest occupied eigenvalue, Hartree (0-dim tensor).
        density_matrix: (nk, nao, nao) complex AO density matrices D^k (pass to ``dm0`` to warm-start).
        kpts: (nk, 3) k-points, Bohr^-1. cell: the PySCF cell. integrals: the GaussianIntegrals used.
        functional: the XC functional object. history: per-iteration dicts.
    """

    energy: torch.Tensor
    energies: dict
    converged: bool
    n_iterations: int
    mo_energy: object
    mo_coeff: list
    mo_occ: list
    fermi_level: torch.Tensor
    density_matrix: torch.Tensor
    kpts: object
    cell: object
    integrals: object
    functional: object
    history: list = field(default_factory=list)

    @property
    def e_tot(self) -> float:
        """E (without -σS), comparable to PySCF's ``mf.e_tot``."""
        return self.energies["total"]

    def __repr__(self):
        status = "converged" if self.converged else "NOT converged"
        return (f"GaussianSCFResult(energy={float(self.energy):.10f} Ha, fermi_level="
                f"{float(self.fermi_level):.6f} Ha, {status} in {self.n_iterations} iterations)")


def resolve_functional(xc):
    """``pwxc.xc.functional(xc)`` for names, or any object with ``is_gga`` and ``energy_density``."""
    if hasattr(xc, "energy_density") and hasattr(xc, "is_gga"):
        return xc
    from .. import xc as pwxc_xc

    return pwxc_xc.functional(xc)


def _check_smearing(smearing, temperature):
    if smearing is None and temperature is None:
        return None, None
    if smearing is None:
        smearing = "fermi"
    key = str(smearing).lower()
    if key not in SMEARINGS:
        raise ValueError(f"unknown smearing {smearing!r}; use one of {sorted(set(SMEARINGS.values()))}")
    if temperature is None or not float(temperature) > 0:
        raise ValueError(f"smearing {smearing!r} needs a positive temperature (σ, Hartree), got {temperature!r}")
    return SMEARINGS[key], float(temperature)


def _check_electrons(n_cell, nk):
    if (n_cell * nk) % 2:
        raise ValueError(f"restricted KS needs an even number of electrons per k-mesh: {n_cell} electrons "
                         f"per cell × {nk} k-points is odd; use an even number of k-points or a supercell")


def _initial_dm(ints, dm0):
    if dm0 is None:
        return ints.minao_guess()
    if isinstance(dm0, GaussianSCFResult):
        dm0 = dm0.density_matrix
    dm0 = torch.as_tensor(dm0).detach().to(torch.complex128)
    if dm0.ndim == 2:
        dm0 = dm0.expand(ints.nkpts, -1, -1).clone()
    if tuple(dm0.shape) != (ints.nkpts, ints.nao, ints.nao):
        warnings.warn(f"dm0 has shape {tuple(dm0.shape)}, expected {(ints.nkpts, ints.nao, ints.nao)}; "
                      f"using the 'minao' guess instead", stacklevel=3)
        return ints.minao_guess()
    return dm0


def scf(system, xc="pbe", kgrid=(1, 1, 1), *, basis=None, auxbasis=None, pseudo=None, smearing=None,
        temperature=None, grid="becke", grid_level=3, mesh=None, kpts=None, dm0=None,
        conv_tol=1e-9, conv_tol_grad=None, max_iter=100, diis_space=8, lindep=1e-10,
        integrals=None, raise_on_failure=False, verbose=False) -> GaussianSCFResult:
    """Restricted Kohn–Sham SCF with Gaussian (PySCF) integrals and a pwxc functional in torch.

    Args:
        system: pymatgen ``Structure`` (Å), the reference paper's dict (Å, see
            :mod:`pwxc.gaussian.system`) or a ``pyscf.pbc.gto.Cell``.
        xc: functional name (``pwxc.xc.functional``) or a functional object (e.g. ``HybridXC``).
        kgrid: Monkhorst-Pack mesh (PySCF's ``cell.make_kpts(kgrid)``); or explicit ``kpts`` (Bohr^-1).
        basis: orbital basis (default: the dict's ``'basis'``, else the Cell's, else ``'sto-3g'``).
        auxbasis: GDF auxiliary basis (default: the dict's ``'auxbasis'``, else PySCF's default).
        pseudo: e.g. ``'gth-pbe'`` (use a matching GTH basis such as ``'gth-szv'``); None = all-electron.
        smearing, temperature: ``'fermi'`` (PySCF's ``smearing(method='fermi', sigma=temperature)``) or
            ``'gaussian'``; temperature σ in Hartree. Giving only ``temperature`` means Fermi-Dirac.
        grid, grid_level, mesh: ``'becke'`` atom-centred grid at ``grid_level`` (the default, as
            ``KRKS(...).density_fit()``), or ``'uniform'`` on ``mesh`` (default ``cell.mesh``).
        dm0: initial density matrix (nk, nao, nao), or a previous result (warm start); default
            PySCF's 'minao' guess.
        conv_tol, conv_tol_grad: convergence on |ΔF| (Hartree) and on max|X†(FDS-SDF)X|
            (default sqrt(conv_tol)).
        max_iter, diis_space, lindep: iteration cap, DIIS subspace size, overlap-eigenvalue cutoff.
        integrals: reuse a :class:`~pwxc.gaussian.integrals.GaussianIntegrals` (skips PySCF work).
        raise_on_failure: raise :class:`GaussianSCFNotConverged` instead of warning.
    """
    functional = resolve_functional(xc)
    smearing, sigma = _check_smearing(smearing, temperature)
    if integrals is None:
        cell, aux_from_input = build_cell(system, basis, pseudo)
        nk = len(kpts) if kpts is not None else math.prod(int(n) for n in kgrid)
        _check_electrons(cell.nelectron, nk)
        integrals = build_integrals(cell, kgrid, kpts=kpts,
                                    auxbasis=auxbasis if auxbasis is not None else aux_from_input,
                                    grid=grid, grid_level=grid_level, mesh=mesh,
                                    gradients=bool(functional.is_gga))
    ints = integrals
    if functional.is_gga and not ints.with_gradients:
        raise ValueError("the given integrals have no AO gradients but the functional is a GGA")
    nk, n_cell = ints.nkpts, ints.nelectron
    _check_electrons(n_cell, nk)
    conv_tol_grad = conv_tol ** 0.5 if conv_tol_grad is None else conv_tol_grad
    if max_iter < 2:
        raise ValueError(f"max_iter must be at least 2, got {max_iter}")

    history, converged, it = [], False, 0
    with torch.no_grad():
        xs, dropped = orthogonalizers(ints.ovlp, lindep)
        if dropped:
            warnings.warn(f"removed {dropped} near-linearly-dependent AO combinations (S eigenvalue < {lindep})",
                          stacklevel=2)
        dm = _initial_dm(ints, dm0)
        diis = DIIS(diis_space)
        entropy, diagonalized, f_old = 0.0, False, None  # entropy of the occupations that built dm
        for it in range(1, max_iter + 1):
            t0 = time.perf_counter()
            fock, terms = fock_and_energies(ints, functional, dm)
            e_tot = float(sum(terms.values())) + ints.e_nuc
            f_tot = e_tot - (sigma or 0.0) * entropy
            err = commutator_error(fock, dm, ints.ovlp, xs)
            err_max = float(err.abs().max())
            d_e = None if f_old is None else f_tot - f_old
            history.append({"iteration": it, "energy": f_tot, "delta_energy": d_e, "residual": err_max,
                            "seconds": time.perf_counter() - t0})
            if verbose:
                print(f"gaussian scf {it:3d}  F = {f_tot:.12f}  dF = {d_e if d_e is not None else 0:.2e}  "
                      f"|[F,D]| = {err_max:.2e}")
            if diagonalized and abs(d_e) < conv_tol and err_max < conv_tol_grad:
                converged = True
                break
            f_old = f_tot
            fock_bar = diis.push(fock, err)
            eps, coeffs = diagonalize(fock_bar, xs)
            occ, mu, entropy = occupations(eps, n_cell, smearing, sigma)
            dm_new = make_density_matrix(coeffs, occ)
            history[-1]["ddm"] = float((dm_new - dm).abs().max())
            dm, diagonalized = dm_new, True

    if not converged:
        msg = (f"Gaussian SCF did not converge in {max_iter} iterations "
               f"(last |dF| = {history[-1]['delta_energy']}, |[F,D]| = {history[-1]['residual']:.2e})")
        if raise_on_failure:
            raise GaussianSCFNotConverged(msg)
        warnings.warn(msg, stacklevel=2)

    with torch.no_grad():
        if not converged:  # dm changed after the last Fock build
            fock, _ = fock_and_energies(ints, functional, dm)
        # Extra cycle (as PySCF): diagonalise F(D) itself, not the DIIS extrapolation. Extrapolated Fock
        # matrices can carry a constant shift c·S (iterates with another electron count) and, with
        # smearing, slightly wrong eigenvalues -> occupations; the commutator [F, D] sees neither.
        eps, coeffs = diagonalize(fock, xs)
        occ, mu, entropy = occupations(eps, n_cell, smearing, sigma)
        dm_new = make_density_matrix(coeffs, occ)
        history[-1]["final_ddm"] = float((dm_new - dm).abs().max())
        dm = dm_new
    terms = energy_terms(ints, functional, dm)
    e_nn = torch.tensor(ints.e_nuc, dtype=torch.float64)
    e_total = terms["one_electron"] + terms["hartree"] + terms["xc"] + e_nn
    ts = (sigma or 0.0) * entropy
    energy = e_total - ts
    energies = {k: float(v.detach()) for k, v in terms.items()}
    energies.update(ion_ion=ints.e_nuc, entropy=-ts, total=float(e_total.detach()),
                    free_energy=float(energy.detach()))
    same = len({len(e) for e in eps}) == 1
    return GaussianSCFResult(
        energy=energy, energies=energies, converged=converged, n_iterations=it,
        mo_energy=torch.stack(eps) if same else eps, mo_coeff=coeffs, mo_occ=occ,
        fermi_level=torch.tensor(mu, dtype=torch.float64), density_matrix=dm, kpts=ints.kpts,
        cell=ints.cell, integrals=ints, functional=functional, history=history)


class WarmStart:
    """Carries the last converged density matrix from one :func:`energy` call to the next.

    In a lattice scan the AO density matrix of the previous lattice constant (same atoms, basis and
    k-mesh) is a far better start than the atomic guess::

        ws = WarmStart()
        for a in lattice_constants:
            e = pwxc.gaussian.energy(structure_at(a), xc="pbe", basis="sto-3g", warm_start=ws)
    """

    def __init__(self, density_matrix=None):
        self.density_matrix = density_matrix
        self.last_result = None

    def update(self, result: GaussianSCFResult) -> None:
        """Keep ``result``'s density matrix if the SCF converged."""
        self.last_result = result
        if result.converged:
            self.density_matrix = result.density_matrix.detach()


def energy(system, xc="pbe", *, kgrid=(1, 1, 1), basis="sto-3g", auxbasis=None, pseudo=None,
           smearing=None, temperature=None, warm_start=None, return_result=False, **scf_kwargs):
    """Total (free) energy per cell in Hartree for one structure - the lattice-scan entry point.

    Args:
        system, xc, kgrid, basis, auxbasis, pseudo, smearing, temperature: as in :func:`scf`.
        warm_start: None, a density matrix / previous result (used as ``dm0``), or a
            :class:`WarmStart` object, which is read before and updated after the SCF.
        return_result: also return the :class:`GaussianSCFResult`.
        **scf_kwargs: passed to :func:`scf` (grid, grid_level, mesh, conv_tol, max_iter, ...).

    Returns ``result.energy`` (0-dim tensor with autograd history to the functional's parameters),
    or ``(energy, result)``. Check ``result.converged`` (also recorded in the WarmStart) in scans.
    """
    dm0 = warm_start.density_matrix if isinstance(warm_start, WarmStart) else warm_start
    if dm0 is not None and "dm0" in scf_kwargs:
        raise ValueError("give either warm_start or dm0, not both")
    if dm0 is not None:
        scf_kwargs["dm0"] = dm0
    result = scf(system, xc, kgrid, basis=basis, auxbasis=auxbasis, pseudo=pseudo, smearing=smearing,
                 temperature=temperature, **scf_kwargs)
    if isinstance(warm_start, WarmStart):
        warm_start.update(result)
    return (result.energy, result) if return_result else result.energy
