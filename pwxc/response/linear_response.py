"""Self-consistent linear response: χ0, the Hartree–XC kernel, the dielectric equations and Tr(Γ H).

Notation (Euclidean products over the N grid points; all operators below are symmetric in it):

    χ0:  δV (Hartree, grid) ↦ δρ (Bohr⁻³, grid), independent-particle response (pwxc.response.sternheimer);
    K:   δρ ↦ δV_Hxc = V_H[δρ] + (N/Ω) ∂²E_xc/∂ρ∂ρ · δρ   (Hessian of the discrete E_xc by autograd);
    SCF response to a bare perturbation δH_ext (at fixed density matrix):
         (1 − χ0 K) δρ = ρ(χ[δH_ext])                      (forward, "dielectric" equation),
    adjoint of an output dL/dρ = ρ̄:
         (1 − K χ0) λ = ρ̄                                   (reverse, one solve per scalar loss).

Both are solved by GMRES; each iteration costs one χ0 application (one Sternheimer solve per occupied
band and k-point). References: S. Baroni et al., RMP 73, 515 (2001); M. F. Herbst, A. Levitt,
J. Comput. Phys. 459, 111127 (2022).

``hamiltonian_trace`` evaluates Tr(Γ H[P; lattice, positions, θ]) at a fixed density matrix P, which is
the scalar whose gradient maps a density-matrix adjoint Γ to lattice, positions and XC parameters (one
vector–Jacobian product), and whose derivative in a tangent direction gives δH_ext ψ (forward mode).
"""
from __future__ import annotations

import torch

from ..terms.hartree import hartree_potential_recip
from ..terms.local_pseudo import local_potential_recip
from ..terms.nonlocal_pseudo import projectors
from ..terms.xc import xc_energy
from .krylov import gmres
from .sternheimer import KSState, Response, apply_response, local_apply, pair_density


class HxcKernel:
    """K δρ = V_H[δρ] + f_xc δρ at the density of a KS state (Hartree, grid (1, n1, n2, n3)).

    The XC part is a Hessian–vector product of the discrete E_xc (so it is the exact derivative of the
    potential used by the SCF), obtained by double backward through a graph built once.
    """

    def __init__(self, state: KSState):
        self.state = state
        basis = state.basis
        self.scale = basis.fft.size / float(state.volume)
        with torch.enable_grad():
            self.leaf = state.density.detach().clone().requires_grad_(True)
            energy = xc_energy(basis, self.leaf, basis.model.xc, state.lattice, state.positions)
            (self.v_xc,) = torch.autograd.grad(energy, self.leaf, create_graph=True)

    def __call__(self, d_rho: torch.Tensor) -> torch.Tensor:
        basis, fft = self.state.basis, self.state.basis.fft
        v_h = fft.to_real(hartree_potential_recip(basis, fft.to_reciprocal(d_rho[0]), self.state.lattice)).real
        with torch.enable_grad():
            (k_xc,) = torch.autograd.grad(self.v_xc, self.leaf, grad_outputs=d_rho.detach(), retain_graph=True)
        return v_h[None] + self.scale * k_xc


def chi0(state: KSState, v: torch.Tensor, rtol: float) -> Response:
    """Independent-particle response to a local potential v (1, n1, n2, n3), Hartree."""
    return apply_response(state, local_apply(state, v[0]), rtol)


def solve_adjoint(state: KSState, kernel: HxcKernel, rhs: torch.Tensor, tol: float, restart: int = 40):
    """λ with (1 − K χ0) λ = rhs, by GMRES (Sternheimer solves to tol/10); returns (λ, KrylovInfo)."""
    def apply(lam):
        return lam - kernel(chi0(state, lam, 0.1 * tol).d_density)

    return gmres(apply, rhs, tol=tol, restart=restart)


def solve_forward(state: KSState, kernel: HxcKernel, rhs: torch.Tensor, tol: float, restart: int = 40):
    """δρ with (1 − χ0 K) δρ = rhs, by GMRES (Sternheimer solves to tol/10); returns (δρ, KrylovInfo)."""
    def apply(d_rho):
        return d_rho - chi0(state, kernel(d_rho), 0.1 * tol).d_density

    return gmres(apply, rhs, tol=tol, restart=restart)


def scf_response(state: KSState, kernel: HxcKernel, dhpsi: torch.Tensor, tol: float = 1e-10) -> Response:
    """Self-consistent response to a bare perturbation given as δH_ext ψ_nk (nk, nb, npw).

    Solves (1 − χ0 K) δρ = χ0[δH_ext], then returns the response to δH_ext + K δρ (ξ, δε, δε_F, δρ).
    """
    bare = apply_response(state, dhpsi, 0.1 * tol)
    d_rho, info = solve_forward(state, kernel, bare.d_density, tol)
    state.stats["gmres_forward"] = info.iterations
    total = dhpsi + local_apply(state, kernel(d_rho)[0])
    return apply_response(state, total, 0.1 * tol)


def hamiltonian_trace(state: KSState, xi: torch.Tensor, lattice=None, positions=None, functional=None,
                      density_bar=None) -> torch.Tensor:
    """Tr(Γ H[P; lattice, positions, θ]) = Σ_k w_k Σ_n Re⟨ψ_nk| H |ξ_nk⟩ at the fixed density matrix P.

    H = ½|k+G|² + V_loc + V_H[ρ_P] + V_xc[ρ_P] + V_nl with ρ_P = ρ̃/Ω(lattice) (ρ̃ = Ω ρ fixed, the density
    of P in coefficient space, which is how a fixed-basis strain acts). Differentiable in lattice
    (Bohr), positions (fractional) and the parameters θ of the XC functional. With density_bar (grid)
    the direct term Σ_j ρ̄_j ρ_P,j(lattice) (the explicit lattice dependence of the density) is added.
    Hartree.
    """
    basis = state.basis
    lattice = state.lattice if lattice is None else lattice
    positions = state.positions if positions is None else positions
    functional = basis.model.xc if functional is None else functional
    n = basis.fft.size
    w = state.kweights
    volume = torch.linalg.det(lattice)
    kinetic = basis.kinetic(lattice)
    total = (w[:, None] * (kinetic[:, None, :] * (state.psi.conj() * xi)).sum(-1).real).sum()
    gamma = pair_density(state, xi)                                   # γ̃, Tr(Γ V) = Σ_j γ̃_j V_j / N
    gamma_g = torch.fft.fftn(gamma[0]) / n
    rho_tilde = state.density * float(state.volume)
    rho_g = torch.fft.fftn(rho_tilde[0]) / n
    v_loc = local_potential_recip(basis, lattice, positions)          # V(G); Σ_j γ̃_j V_j / N = Σ_G γ̃(G)* V(G)
    total = total + (gamma_g.conj() * v_loc).real.sum()
    v_h = hartree_potential_recip(basis, rho_g, lattice) / volume
    total = total + (gamma_g.conj() * v_h).real.sum()
    with torch.enable_grad():
        t = torch.zeros((), dtype=basis.dtype, device=basis.device, requires_grad=True)
        e_xc = xc_energy(basis, (rho_tilde + t * gamma) / volume, functional, lattice, positions)
        (tr_xc,) = torch.autograd.grad(e_xc, t, create_graph=True)   # Σ_j (γ̃_j/Ω) ∂E_xc/∂ρ_j
    total = total + tr_xc
    proj, coupling = projectors(basis, lattice, positions)
    if proj is not None:
        beta = torch.einsum("kap,knp->kna", proj.conj(), state.psi)
        beta_xi = torch.einsum("kap,knp->kna", proj.conj(), xi)
        e_nl = torch.einsum("kna,ab,knb->kn", beta.conj(), coupling.to(beta.dtype), beta_xi).real
        total = total + (w[:, None] * e_nl).sum()
    if density_bar is not None:
        total = total + (density_bar * rho_tilde).sum() / volume
    return total


def perturbation(state: KSState, d_lattice=None, d_positions=None) -> torch.Tensor:
    """δH_ext ψ_nk (nk, nb, npw) for a change (d_lattice Bohr, d_positions fractional) at fixed P.

    Obtained from hamiltonian_trace by a derivative along the tangent followed by a gradient with
    respect to ξ: ∂/∂ξ* of Σ_k w_k Re⟨δH ψ_nk|ξ_nk⟩ is w_k δH ψ_nk.
    """
    with torch.enable_grad():
        t = torch.zeros((), dtype=state.basis.dtype, device=state.basis.device, requires_grad=True)
        xi = torch.zeros_like(state.psi).requires_grad_(True)
        lattice = state.lattice + t * d_lattice if d_lattice is not None else state.lattice
        positions = state.positions + t * d_positions if d_positions is not None else state.positions
        trace = hamiltonian_trace(state, xi, lattice, positions)
        (d_trace,) = torch.autograd.grad(trace, t, create_graph=True)
        (grad_xi,) = torch.autograd.grad(d_trace, xi)
    return grad_xi / state.kweights[:, None, None]
