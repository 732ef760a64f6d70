"""Implicit differentiation of the SCF fixed point: density, eigenvalues and Fermi level with a grad_fn.

The converged SCF defines the outputs y = (ρ, ε_nk, ε_F) as implicit functions of the parameters
x = (θ of the XC functional, atomic positions, lattice). Linearising the fixed point P = f(H[P; x])
(pwxc.response.sternheimer, pwxc.response.linear_response) gives, for an output adjoint
(ρ̄, ε̄, ε̄_F) = (∂L/∂ρ, ∂L/∂ε, ∂L/∂ε_F):

    1. fold ε̄_F into ε̄ (metals: δε_F = Σ w_k f'_nk δε_nk / Σ w_k f'_nk; insulators: ε_F is the HOMO);
    2. Γ₀ = Σ_nk ε̄_nk |ψ_nk⟩⟨ψ_nk|  (δε_nk = ⟨ψ_nk|δH|ψ_nk⟩) and its density dual d = (Ω/N) ρ(Γ₀);
    3. one adjoint (transposed dielectric) solve  (1 − K χ0) λ = ρ̄ + K d            [GMRES];
    4. Γ = Γ₀ + χ[(N/Ω) λ]   (one more χ0 application, keeping the orbital response);
    5. one vector–Jacobian product of x ↦ Tr(Γ H[P; x]) (+ Σ_j ρ̄_j ρ_P,j(lattice), the explicit lattice
       dependence of the density at fixed P), which gives ∂L/∂θ, ∂L/∂positions, ∂L/∂lattice together.

Step 4 uses the symmetry of the response, Tr(A χ[B]) = Tr(B χ[A]). Nothing of the SCF iterations is
kept: the backward needs the converged orbitals, eigenvalues and density only, so its memory does not
depend on the number of SCF iterations. Cost: (n_GMRES + 2) χ0 applications, each a Sternheimer solve
for every occupied band and k-point (see docs/differentiation.md). Degenerate eigenvalues: only
symmetric functions of a degenerate group (its sum or mean) have well-defined derivatives; the
gradient returned for ε_nk uses ⟨ψ_nk|δH|ψ_nk⟩, which is exact for non-degenerate bands and for ε̄
constant over each degenerate group.
"""
from __future__ import annotations

import warnings

import torch
from torch.autograd.function import once_differentiable

from .linear_response import HxcKernel, chi0, hamiltonian_trace, solve_adjoint
from .sternheimer import KSState, pair_density


class ImplicitSCF:
    """Backward machinery of one converged SCF result (holds the KS state, not the iterations).

    Args:
        result: converged SCFResult.
        tol: relative residual of the adjoint GMRES solve; the Sternheimer solves use tol/10 relative
            to their right-hand side. The gradient error is about tol times its magnitude (the
            accuracy knob; 1e-10 is tight, 1e-6 is enough for training).
        restart: GMRES restart length (memory: restart + 1 density-sized vectors).
    """

    def __init__(self, result, tol: float = 1e-10, restart: int = 40):
        self.state = KSState.from_result(result)
        self.tol, self.restart = tol, restart
        self.params = xc_parameters(result.basis.model.xc)
        self.n_occ = int(round(result.basis.model.n_electrons / 2))
        self.history = []

    def fold_adjoints(self, eps_bar, fermi_bar):
        """ε̄ including the Fermi-level adjoint (nk, nb)."""
        state = self.state
        eps_bar = torch.zeros_like(state.eigenvalues) if eps_bar is None else eps_bar.clone()
        if fermi_bar is None or float(fermi_bar) == 0:
            return eps_bar
        if state.metal:
            weight = state.kweights[:, None] * state.fprime
            return eps_bar + fermi_bar * weight / weight.sum()
        homo = state.eigenvalues[:, self.n_occ - 1]
        k = int(torch.argmax(homo))
        bump = torch.zeros_like(eps_bar)
        bump[k, self.n_occ - 1] = 1.0
        return eps_bar + fermi_bar * bump

    def adjoint(self, rho_bar, eps_bar=None, fermi_bar=None):
        """Γ (as per-band vectors ξ) such that dL = Tr(Γ δH_ext) for the outputs' adjoints."""
        state = self.state
        basis = state.basis
        n = basis.fft.size
        volume = float(state.volume)
        eps_bar = self.fold_adjoints(eps_bar, fermi_bar)
        xi0 = (eps_bar / state.kweights[:, None])[..., None].to(state.psi.dtype) * state.psi
        rho_bar = torch.zeros_like(state.density) if rho_bar is None else rho_bar.to(state.density)
        kernel = HxcKernel(state)
        rhs = rho_bar
        if bool(eps_bar.ne(0).any()):
            rhs = rhs + kernel(pair_density(state, xi0) / n)
        lam, info = solve_adjoint(state, kernel, rhs, self.tol, self.restart)
        self.history.append(dict(gmres_iterations=info.iterations, residual=info.residual,
                                 converged=info.converged))
        if not info.converged:
            warnings.warn(f"adjoint GMRES not converged: residual {info.residual:.2e}", RuntimeWarning)
        response = chi0(state, lam * (n / volume), 0.1 * self.tol)
        return xi0 + response.xi

    def vjp(self, rho_bar, eps_bar, fermi_bar, need_lattice=True, need_positions=True):
        """(∂L/∂lattice, ∂L/∂positions, [∂L/∂θ_i]) for the output adjoints (None where not needed)."""
        state = self.state
        xi = self.adjoint(rho_bar, eps_bar, fermi_bar)
        with torch.enable_grad():
            lattice = state.lattice.clone().requires_grad_(need_lattice)
            positions = state.positions.clone().requires_grad_(need_positions)
            trace = hamiltonian_trace(state, xi, lattice, positions,
                                      density_bar=rho_bar if need_lattice and rho_bar is not None else None)
            inputs = ([lattice] if need_lattice else []) + ([positions] if need_positions else []) + self.params
            grads = list(torch.autograd.grad(trace, inputs, allow_unused=True)) if inputs else []
        g_lat = grads.pop(0) if need_lattice else None
        g_pos = grads.pop(0) if need_positions else None
        return g_lat, g_pos, grads


def xc_parameters(functional):
    """Parameters θ of the XC functional that require grad (empty for fixed functionals)."""
    if not hasattr(functional, "parameters"):
        return []
    return [p for p in functional.parameters() if p.requires_grad]


class _SCFFixedPoint(torch.autograd.Function):
    """(lattice, positions, *θ) ↦ (ρ, ε, ε_F) of the converged SCF, with the implicit backward."""

    @staticmethod
    def forward(ctx, implicit, result, lattice, positions, *params):
        ctx.implicit = implicit
        fermi = torch.as_tensor(result.fermi_level, dtype=result.density.dtype).detach()
        return result.density.detach().clone(), result.eigenvalues.detach().clone(), fermi.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, rho_bar, eps_bar, fermi_bar):
        implicit = ctx.implicit
        need = ctx.needs_input_grad
        g_lat, g_pos, g_par = implicit.vjp(rho_bar, eps_bar, fermi_bar, need_lattice=need[2],
                                           need_positions=need[3])
        if g_par and len(g_par) != len(need) - 4:
            raise RuntimeError("XC parameters changed between the SCF and the backward pass")
        return (None, None, g_lat, g_pos, *[g if n else None for g, n in zip(g_par, need[4:])])


def make_differentiable(result, tol: float = 1e-10, restart: int = 40):
    """Attach the implicit backward to a converged SCFResult (in place) and return it.

    After this, result.density (1, n1, n2, n3), result.eigenvalues (nk, nb) and result.fermi_level carry
    a grad_fn to the XC parameters θ, the atomic positions and the lattice, whichever require grad.
    Each backward pass costs one adjoint linear-response solve (see :class:`ImplicitSCF`);
    result.implicit.history and result.implicit.state.stats record its work.
    """
    crystal = result.basis.model.crystal
    if getattr(result.basis, "symmetry", None) is not None:
        # the linear response of an irreducible k-set to a symmetry-breaking perturbation (a
        # displacement, a shear) is not that of the full mesh; not implemented
        raise NotImplementedError("implicit differentiation (differentiable=True) needs the full k-mesh: "
                                  "build the PlaneWaveBasis with symmetry=False")
    if not result.converged:
        warnings.warn("make_differentiable on a non-converged SCF: the implicit gradients are those of the "
                      "fixed point, accurate only to about the SCF residual", RuntimeWarning)
    implicit = ImplicitSCF(result, tol=tol, restart=restart)
    lattice, positions = crystal.lattice, crystal.positions
    if not (lattice.requires_grad or positions.requires_grad or implicit.params):
        return result
    density, eigenvalues, fermi = _SCFFixedPoint.apply(implicit, result, lattice, positions, *implicit.params)
    result.density, result.eigenvalues, result.fermi_level = density, eigenvalues, fermi
    result.implicit = implicit
    return result


def differentiable_scf(basis, tol: float = 1e-8, response_tol: float = 1e-10, **kwargs):
    """pwxc.scf(basis, ...) followed by :func:`make_differentiable` (same as scf(differentiable=True))."""
    from ..solvers.scf import scf

    return make_differentiable(scf(basis, tol=tol, **kwargs), tol=response_tol)
