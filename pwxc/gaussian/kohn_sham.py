"""The Kohn–Sham energy terms and Fock matrices of the Gaussian path, in torch.

Notation (atomic units): N_k k-points with equal weights 1/N_k; density matrices D^k (nao × nao,
Hermitian, occupations 0..2 included); AO values φ^k_p(r_g) and gradients on grid points r_g with
weights w_g. Every Fock matrix returned here is F^k = N_k ∂E/∂D^k{}^T, i.e. the usual
F^k_pq = <φ^k_p| v |φ^k_q>, so that E changes by (1/N_k) Σ_k Tr(F^k δD^k).

* density      n(r) = (1/N_k) Σ_k Σ_pq φ^k_p(r) D^k_pq φ^k_q(r)*                         (Bohr^-3)
               ∇n(r) = (2/N_k) Σ_k Re Σ_pq ∇φ^k_p(r) D^k_pq φ^k_q(r)*
* one-electron E_1 = (1/N_k) Σ_k Tr(h^k D^k)
* Coulomb      ρ_P = (1/N_k) Σ_k Σ_pq L^k_{P,pq} D^k_qp,   J^k_pq = Σ_P s_P ρ_P L^k_{P,pq},
               E_H = ½ Σ_P s_P ρ_P²                      (GDF, same contraction as PySCF's get_j_kpts)
* XC           E_xc = Σ_g w_g e_xc(n_g, σ_g),  σ = |∇n|²; e_xc from ``functional.energy_density``.
               With v_n = ∂e/∂n and v_σ = ∂e/∂σ (torch autograd, weights included):
               F^k_xc = A^H B + B^H A,  A = φ^k,  B = ½ w v_n A + Σ_x 2 w v_σ ∂_x n ∂_x φ^k.
"""
from __future__ import annotations

import torch


def density_on_grid(ints, dm: torch.Tensor, gradients: bool):
    """Electron density n (ng,) and, if ``gradients``, ∇n (3, ng) on the grid (Bohr^-3, Bohr^-4)."""
    nk = ints.nkpts
    rho = torch.zeros(ints.ao.shape[2], dtype=torch.float64)
    grad = torch.zeros((3, ints.ao.shape[2]), dtype=torch.float64) if gradients else None
    for k in range(nk):
        a = ints.ao[k, 0]
        ca = a.conj()
        rho = rho + ((a @ dm[k]) * ca).sum(-1).real
        if gradients:
            for x in range(3):
                grad[x] = grad[x] + 2.0 * ((ints.ao[k, 1 + x] @ dm[k]) * ca).sum(-1).real
    rho = rho / nk
    if gradients:
        grad = grad / nk
    return rho, grad


def xc_energy(functional, weights, rho, grad):
    """E_xc = Σ_g w_g e_xc(n_g, |∇n_g|²) (Hartree). Differentiable w.r.t. the functional's parameters."""
    if functional.is_gga:
        sigma = (grad * grad).sum(0)
        e = functional.energy_density(rho, sigma)
    else:
        e = functional.energy_density(rho)
    return (weights * e).sum()


def xc_energy_and_fock(ints, functional, dm: torch.Tensor):
    """(E_xc as a float tensor without graph, F_xc (nk, nao, nao)) at density matrix ``dm``.

    v_n and v_σ are obtained by autograd of Σ_g w_g e_xc(n_g, σ_g) w.r.t. n and σ.
    """
    gga = bool(functional.is_gga)
    if gga and not ints.with_gradients:
        raise ValueError("a GGA functional needs AO gradients; build the integrals with gradients=True")
    rho, grad = density_on_grid(ints, dm, gga)
    with torch.enable_grad():
        rho_t = rho.detach().requires_grad_(True)
        if gga:
            sigma_t = (grad * grad).sum(0).detach().requires_grad_(True)
            e = functional.energy_density(rho_t, sigma_t)
            exc = (ints.weights * e).sum()
            v_rho, v_sigma = torch.autograd.grad(exc, (rho_t, sigma_t))
        else:
            e = functional.energy_density(rho_t)
            exc = (ints.weights * e).sum()
            (v_rho,) = torch.autograd.grad(exc, (rho_t,))
            v_sigma = None
    fock = torch.empty_like(dm)
    for k in range(ints.nkpts):
        a = ints.ao[k, 0]
        b = (0.5 * v_rho).to(a.dtype)[:, None] * a
        if gga:
            for x in range(3):
                b = b + (2.0 * v_sigma * grad[x]).to(a.dtype)[:, None] * ints.ao[k, 1 + x]
        f = a.conj().T @ b
        fock[k] = f + f.conj().T
    return exc.detach(), fock


def coulomb(ints, dm: torch.Tensor):
    """(E_H, J (nk, nao, nao)) from the GDF 3-index tensors (Hartree)."""
    nk = ints.nkpts
    rho_aux = torch.einsum("kPpq,kqp->P", ints.cderi, dm).real / nk
    coef = (ints.cderi_sign * rho_aux).to(ints.cderi.dtype)
    vj = torch.einsum("P,kPpq->kpq", coef, ints.cderi)
    e_h = 0.5 * (ints.cderi_sign * rho_aux * rho_aux).sum()
    return e_h, vj


def one_electron(ints, dm: torch.Tensor):
    """E_1 = (1/N_k) Σ_k Tr(h^k D^k) (Hartree)."""
    return torch.einsum("kij,kji->", ints.hcore, dm).real / ints.nkpts


def fock_and_energies(ints, functional, dm: torch.Tensor):
    """Kohn–Sham Fock matrices F^k = h^k + J^k + V^k_xc and the energy terms at ``dm`` (no graph)."""
    e1 = one_electron(ints, dm)
    eh, vj = coulomb(ints, dm)
    exc, vxc = xc_energy_and_fock(ints, functional, dm)
    fock = ints.hcore + vj + vxc
    fock = 0.5 * (fock + fock.conj().transpose(-1, -2))
    return fock, {"one_electron": e1, "hartree": eh, "xc": exc}


def energy_terms(ints, functional, dm: torch.Tensor):
    """Energy terms at ``dm`` with the XC term carrying autograd history to the functional's
    parameters (``dm`` is treated as a constant: Hellmann–Feynman at a converged SCF)."""
    dm = dm.detach()
    gga = bool(functional.is_gga)
    with torch.no_grad():
        rho, grad = density_on_grid(ints, dm, gga)
        e1 = one_electron(ints, dm)
        eh, _ = coulomb(ints, dm)
    exc = xc_energy(functional, ints.weights, rho, grad)
    return {"one_electron": e1, "hartree": eh, "xc": exc}
