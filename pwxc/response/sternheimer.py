"""Non-interacting (independent-particle) response of a converged Kohn–Sham state: Sternheimer equations.

For a Hermitian perturbation δH of the Hamiltonian (any operator: a local potential, a change of the
nonlocal projectors, a strain of the kinetic energy) the density matrix P = Σ_k w_k Σ_n f_nk |ψ_nk⟩⟨ψ_nk|,
f_n = g θ((ε_n − ε_F)/σ), changes, at fixed electron number, by (per k-point)

    δP = Σ_{n,m∈C} Λ_nm ⟨ψ_n|δH|ψ_m⟩ |ψ_n⟩⟨ψ_m|  −  δε_F Σ_{n∈C} f'_n |ψ_n⟩⟨ψ_n|
         + Σ_{n∈C} f_n (|δψ_n⟩⟨ψ_n| + |ψ_n⟩⟨δψ_n|),

    Λ_nm = (f_n − f_m)/(ε_n − ε_m)  (Λ_nn = f'_n = df/dε),     δε_F = Σ_nk w_k f'_nk δH_nn / Σ_nk w_k f'_nk,

where C is the set of computed bands (all bands with non-negligible occupation) and δψ_n ⊥ C solves the
Sternheimer equation projected on the complement Q = 1 − Σ_{m∈C} |ψ_m⟩⟨ψ_m|,

    Q (H − ε_n) Q δψ_n = −Q δH ψ_n,

which is positive definite because every eigenvalue of H on Q lies above ε_n. This is the metallic
formulation of S. de Gironcoli, PRB 51, 6773 (1995) written with explicit sums inside C as in
M. F. Herbst and A. Levitt, J. Phys.: Condens. Matter 32, 205901 (2020) / J. Comput. Phys. 459, 111127
(2022). For fixed occupations (insulators) f' = 0 and C = occupied bands: the standard DFPT equations.

Every density-matrix-like object is stored as per-band vectors ξ_nk with Γ = Σ_k w_k Herm Σ_n |ξ_nk⟩⟨ψ_nk|
(Herm X = (X + X†)/2); for δP: ξ_m = Σ_n G_nm ψ_n + 2 f_m δψ_m with G_nm = Λ_nm δH_nm − δ_nm f'_n δε_F.
Then its density is γ(r) = Σ_k w_k Σ_n Re[ψ*_nk(r) ξ_nk(r)] / Ω and Tr(Γ A) = Σ_k w_k Σ_n Re⟨ψ_nk|A|ξ_nk⟩.
Units: Hartree, Bohr.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch

from ..hamiltonian import Hamiltonian
from ..occupation import smearing_functions
from ..solvers.eigensolver import _norm, lobpcg, tpa_preconditioner
from ..solvers.scf import EMPTY_OCCUPATION
from ..terms.hartree import hartree_potential_recip
from ..terms.local_pseudo import local_potential_recip
from ..terms.nonlocal_pseudo import projectors
from ..terms.xc import xc_potential
from .krylov import block_cg

#: bands with occupation below this get no Sternheimer solve (their contribution is of this order)
OCCUPATION_CUTOFF = 1e-12
#: eigenvalue differences below this use f' at the midpoint for Λ_nm (avoids 0/0 cancellation), Hartree
DEGENERACY_TOL = 1e-6


@dataclass
class Response:
    """First-order change of the KS state: ξ (Γ = δP), δε_nk = ⟨ψ_nk|δH|ψ_nk⟩, δε_F, δρ (Bohr⁻³)."""

    xi: torch.Tensor
    d_eigenvalues: torch.Tensor
    d_fermi: torch.Tensor
    d_density: torch.Tensor


@dataclass
class KSState:
    """Frozen, detached copy of a converged KS state with what response calculations need.

    Attributes (all detached): psi (nk, nb, npw) computed bands C; psi_r their FFT boxes ifftn(box(c));
    eigenvalues, occupations, fprime = df/dε (Bohr⁰/Hartree) (nk, nb); fermi (Hartree); density ρ
    (1, n1, n2, n3); lattice, positions; ham (Hamiltonian at V_eff[ρ]); stats counts operator work.
    """

    basis: object
    psi: torch.Tensor
    psi_r: torch.Tensor
    eigenvalues: torch.Tensor
    occupations: torch.Tensor
    fprime: torch.Tensor
    lam: torch.Tensor
    fermi: torch.Tensor
    density: torch.Tensor
    lattice: torch.Tensor
    positions: torch.Tensor
    ham: object
    metal: bool
    stats: dict = field(default_factory=lambda: dict(h_applications=0, local_applications=0, chi0=0,
                                                     cg_iterations_max=0))

    @property
    def volume(self):
        return torch.linalg.det(self.lattice)

    @property
    def kweights(self):
        return self.basis.kweights

    @staticmethod
    def from_result(result) -> "KSState":
        basis = result.basis
        model = basis.model
        if model.n_spin != 1:
            raise NotImplementedError("linear response (Sternheimer, implicit gradients, strain response) is "
                                      "implemented for spin-unpolarised models only")
        with torch.no_grad():
            lattice = model.crystal.lattice.detach()
            positions = model.crystal.positions.detach()
            rho = result.density.detach()
            fft = basis.fft
            v_loc = fft.to_real(local_potential_recip(basis, lattice, positions)).real
            v_h = fft.to_real(hartree_potential_recip(basis, fft.to_reciprocal(rho[0]), lattice)).real
            v_eff = v_loc + v_h + xc_potential(basis, rho, model.xc)[1][0]
            ham = Hamiltonian(basis, v_eff, *projectors(basis, lattice, positions))
            psi = result.orbitals.detach()
            eps = result.eigenvalues.detach()
            occ = result.occupations.detach()
            if result.empty_band_tol is not None:
                psi, eps = _converge_empty_bands(ham, psi, eps, occ)
            psi_r = torch.fft.ifftn(basis.to_box(psi), dim=(-3, -2, -1))
            fermi = torch.as_tensor(result.fermi_level, dtype=basis.dtype).detach()
            metal = model.smearing is not None
            fprime = _fprime(model, eps, fermi) if metal else torch.zeros_like(eps)
            lam = _lambda_matrix(model, eps, occ, fermi, metal)
        return KSState(basis, psi, psi_r, eps, occ, fprime, lam, fermi, rho, lattice, positions, ham, metal)


def _converge_empty_bands(ham, psi, eps, occ):
    """Bring bands that the SCF converged loosely because they were empty (pwxc.scf's empty_band_tol)
    to the residual of the occupied ones: the response mixes occupied and empty bands (Λ_nm), and a
    loose empty band would limit its accuracy to that residual. Occupied bands are locked (not
    iterated); returns (psi, eigenvalues)."""
    kidx = torch.arange(psi.shape[0], device=psi.device)
    res = _norm(ham.apply(psi, kidx) - eps[..., None] * psi)
    occupied = occ >= EMPTY_OCCUPATION
    target = float(res[occupied].max()) if bool(occupied.any()) else 1e-8
    if bool((res[~occupied] <= target).all()):
        return psi, eps
    tol = torch.where(occupied, torch.full_like(res, float("inf")), torch.full_like(res, max(target, 1e-12)))
    out = lobpcg(ham.apply, psi, tpa_preconditioner(ham.kinetic, ham.basis.mask), psi.shape[1], tol=tol,
                 maxiter=100)
    if not out.converged:
        warnings.warn("converging the empty bands for the response did not reach the occupied bands' "
                      f"residual {target:.1e} Ha", RuntimeWarning)
    return out.vectors, out.eigenvalues


def _fprime(model, eps, fermi):
    """df/dε = g θ'(x)/σ at x = (ε − ε_F)/σ, by autograd of the smearing function (Hartree⁻¹)."""
    sigma = model.temperature
    with torch.enable_grad():
        x = ((eps - fermi) / sigma).detach().requires_grad_(True)
        occ, _ = smearing_functions(model.smearing, x)
        (d,) = torch.autograd.grad(occ.sum(), x)
    return 2.0 * d / sigma


def _lambda_matrix(model, eps, occ, fermi, metal):
    """Λ_nm = (f_n − f_m)/(ε_n − ε_m), with f' at the midpoint for |ε_n − ε_m| < DEGENERACY_TOL."""
    de = eps[:, :, None] - eps[:, None, :]
    df = occ[:, :, None] - occ[:, None, :]
    near = de.abs() < DEGENERACY_TOL
    lam = torch.where(near, torch.zeros_like(de), df / torch.where(near, torch.ones_like(de), de))
    if metal:
        mid = 0.5 * (eps[:, :, None] + eps[:, None, :])
        lam = torch.where(near, _fprime(model, mid, fermi), lam)
    return lam


def local_apply(state: KSState, v: torch.Tensor) -> torch.Tensor:
    """V ψ_nk for the computed bands and a real local potential v (n1, n2, n3) (Hartree) → (nk, nb, npw)."""
    state.stats["local_applications"] += state.psi.shape[0] * state.psi.shape[1]
    box = torch.fft.fftn(state.psi_r * v, dim=(-3, -2, -1))
    return state.basis.from_box(box)


def pair_density(state: KSState, xi: torch.Tensor) -> torch.Tensor:
    """γ̃(r) = Σ_k w_k Σ_n Re[φ*_nk(r) ξ_nk(r)], φ = N·ifftn(box(ψ)) (so γ̃/Ω is the density of Γ)."""
    n = state.basis.fft.size
    xi_r = torch.fft.ifftn(state.basis.to_box(xi), dim=(-3, -2, -1))
    w = state.kweights[:, None, None, None, None]
    return (n * n) * (w * (state.psi_r.conj() * xi_r).real).sum((0, 1))[None]


def project_out(state: KSState, v: torch.Tensor, kidx=None) -> torch.Tensor:
    """Q v = v − Σ_{m∈C} ψ_m ⟨ψ_m|v⟩ for blocks v (len(kidx), nb', npw)."""
    psi = state.psi if kidx is None else state.psi[kidx]
    return v - (v @ psi.conj().transpose(-1, -2)) @ psi


def sternheimer(state: KSState, dhpsi: torch.Tensor, rtol: float = 1e-11, maxiter: int = 500) -> torch.Tensor:
    """δψ_n ⊥ C solving Q(H − ε_n)Q δψ_n = −Q δH ψ_n for bands with f_n > OCCUPATION_CUTOFF (else 0).

    Preconditioned CG (Teter–Payne–Allan preconditioner, projected), all bands and k-points at once;
    stops when every residual is below rtol · max_n ‖Q δH ψ_n‖.
    """
    occupied = state.occupations > OCCUPATION_CUTOFF
    n_active = int(occupied.sum(-1).max())                  # occupied bands are the lowest ones at every k
    rhs = torch.where(occupied[:, :n_active, None], -project_out(state, dhpsi[:, :n_active]),
                      torch.zeros_like(dhpsi[:, :n_active]))
    scale = float(rhs.norm(dim=-1).max()) if n_active else 0.0
    if scale == 0:
        return torch.zeros_like(dhpsi)
    ham, eps, psi = state.ham, state.eigenvalues[:, :n_active], state.psi[:, :n_active]
    tpa = tpa_preconditioner(ham.kinetic, state.basis.mask)

    def apply(x, idx):
        return ham.apply(x, idx) - eps[idx][..., None] * x

    x, info = block_cg(apply, rhs, rtol * scale, precondition=lambda r, idx: tpa(r, psi[idx], idx),
                       project=lambda v, idx: project_out(state, v, idx), maxiter=maxiter)
    state.stats["h_applications"] += info.iterations
    state.stats["cg_iterations_max"] = max(state.stats["cg_iterations_max"], len(info.history) - 1)
    if not info.converged:
        warnings.warn(f"Sternheimer CG not converged: residual {info.residual:.2e} > {rtol * scale:.2e}",
                      RuntimeWarning)
    return torch.cat([x, torch.zeros_like(dhpsi[:, n_active:])], 1)


def apply_response(state: KSState, dhpsi: torch.Tensor, rtol: float = 1e-11) -> Response:
    """Independent-particle response δP to a perturbation given as δH ψ_nk (nk, nb, npw) for n ∈ C.

    Returns ξ (δP = Σ_k w_k Herm Σ_n |ξ_n⟩⟨ψ_n|), δε_nk = ⟨ψ_nk|δH|ψ_nk⟩ (first-order eigenvalue change,
    exact for non-degenerate bands; inside a degenerate group only the sum is meaningful), δε_F and
    δρ = density of δP (Bohr⁻³). The number of electrons is conserved: ∫δρ = 0.
    """
    psi, w = state.psi, state.kweights
    state.stats["chi0"] += 1
    m = psi.conj() @ dhpsi.transpose(-1, -2)                 # m[k, n, j] = ⟨ψ_n|δH ψ_j⟩
    m = 0.5 * (m + m.conj().transpose(-1, -2))
    d_eps = m.diagonal(dim1=-2, dim2=-1).real
    if state.metal:
        norm = (w[:, None] * state.fprime).sum()
        d_fermi = (w[:, None] * state.fprime * d_eps).sum() / norm
    else:
        d_fermi = torch.zeros((), dtype=d_eps.dtype, device=d_eps.device)
    g = state.lam.to(m.dtype) * m - torch.diag_embed((state.fprime * d_fermi).to(m.dtype))
    dpsi = sternheimer(state, dhpsi, rtol)
    xi = g.transpose(-1, -2) @ psi + 2 * state.occupations[..., None] * dpsi
    d_rho = pair_density(state, xi) / state.volume
    return Response(xi, d_eps, d_fermi, d_rho)
