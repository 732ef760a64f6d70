"""Matrix-free Krylov solvers on torch tensors: restarted GMRES, MINRES and batched block CG.

These know nothing about DFT: operators are callables on tensors, inner products are Euclidean
(⟨u, v⟩ = Σ conj(u) v), and real or complex tensors of any shape are accepted.

References:
    Y. Saad and M. H. Schultz, SIAM J. Sci. Stat. Comput. 7, 856 (1986) (GMRES);
    C. C. Paige and M. A. Saunders, SIAM J. Numer. Anal. 12, 617 (1975) (MINRES);
    M. R. Hestenes and E. Stiefel, J. Res. Natl. Bur. Stand. 49, 409 (1952) (CG).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class KrylovInfo:
    """Convergence record: iterations (operator applications), final relative residual, history."""

    iterations: int = 0
    residual: float = float("nan")
    converged: bool = False
    history: list = field(default_factory=list)


def _dot(u, v):
    return (u.conj() * v).sum()


def gmres(apply, b: torch.Tensor, x0: torch.Tensor | None = None, tol: float = 1e-10, restart: int = 40,
          maxiter: int = 400, precondition=None) -> tuple[torch.Tensor, KrylovInfo]:
    """Solve A x = b with restarted GMRES(m), optionally right-preconditioned (A M⁻¹ y = b, x = M⁻¹ y).

    Arnoldi with modified Gram–Schmidt and one re-orthogonalisation pass; the small least-squares
    problem min ‖β e₁ − H̄ y‖ is solved directly at every step (m ≤ restart is small).

    Args:
        apply: callable x ↦ A x (same shape as b).
        b: right-hand side (any shape, real or complex).
        tol: stop when ‖b − A x‖ ≤ tol ‖b‖.
        restart: Krylov dimension m before a restart (memory: m + 1 vectors of b's size).
        maxiter: total number of operator applications allowed.
        precondition: optional callable v ↦ M⁻¹ v.
    Returns:
        (x, KrylovInfo).
    """
    info = KrylovInfo()
    b_norm = float(b.norm())
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    if b_norm == 0:
        info.residual, info.converged = 0.0, True
        return x, info
    m_inv = precondition if precondition is not None else (lambda v: v)
    while info.iterations < maxiter:
        r = b - apply(x) if (x0 is not None or info.iterations > 0) else b.clone()
        beta = float(r.norm())
        info.residual = beta / b_norm
        if info.residual <= tol:
            info.converged = True
            return x, info
        basis = [r / beta]
        hess = torch.zeros(restart + 1, restart, dtype=b.dtype, device=b.device)
        y = None
        for j in range(restart):
            w = apply(m_inv(basis[j]))
            info.iterations += 1
            for _ in range(2):                       # MGS + one re-orthogonalisation pass
                for i in range(j + 1):
                    h = _dot(basis[i], w)
                    hess[i, j] += h
                    w = w - h * basis[i]
            h_next = float(w.norm())
            hess[j + 1, j] = h_next
            rhs = torch.zeros(j + 2, dtype=hess.dtype, device=b.device)
            rhs[0] = beta
            y = torch.linalg.lstsq(hess[:j + 2, :j + 1], rhs[:, None]).solution[:, 0]
            res = float((rhs - hess[:j + 2, :j + 1] @ y).norm()) / b_norm
            info.history.append(res)
            if res <= tol or h_next <= 1e-300 * beta or info.iterations >= maxiter:
                break
            basis.append(w / h_next)
        update = sum(y[i].to(b.dtype) * basis[i] for i in range(len(y)))
        x = x + m_inv(update)
        x0 = x
    r = b - apply(x)
    info.residual = float(r.norm()) / b_norm
    info.converged = info.residual <= tol
    return x, info


def minres(apply, b: torch.Tensor, tol: float = 1e-10, maxiter: int = 400) -> tuple[torch.Tensor, KrylovInfo]:
    """Solve A x = b for Hermitian (possibly indefinite) A by MINRES (Lanczos + Givens rotations).

    Needs three Lanczos vectors of memory whatever the iteration count. Stops when the recursively
    updated residual ‖b − A x‖ ≤ tol ‖b‖.
    """
    info = KrylovInfo()
    b_norm = float(b.norm())
    x = torch.zeros_like(b)
    if b_norm == 0:
        info.residual, info.converged = 0.0, True
        return x, info
    v_old, v = torch.zeros_like(b), b / b_norm
    beta, eta = 0.0, b_norm
    c_old = c = 1.0
    s_old = s = 0.0
    w_old2, w_old = torch.zeros_like(b), torch.zeros_like(b)
    for _ in range(maxiter):
        av = apply(v)
        info.iterations += 1
        alpha = float(_dot(v, av).real)
        v_new = av - alpha * v - beta * v_old
        beta_new = float(v_new.norm())
        # apply the two previous rotations to the new column (beta, alpha, beta_new)
        eps = s_old * beta
        delta_bar = c_old * beta
        delta = c * delta_bar + s * alpha
        gamma_bar = -s * delta_bar + c * alpha
        gamma = math.hypot(gamma_bar, beta_new)
        if gamma == 0:
            break
        c_new, s_new = gamma_bar / gamma, beta_new / gamma
        w = (v - eps * w_old2 - delta * w_old) / gamma
        x = x + c_new * eta * w
        eta = -s_new * eta
        info.residual = abs(eta) / b_norm
        info.history.append(info.residual)
        if info.residual <= tol or beta_new == 0:
            break
        v_old, v = v, v_new / beta_new
        beta = beta_new
        w_old2, w_old = w_old, w
        c_old, s_old, c, s = c, s, c_new, s_new
    info.converged = info.residual <= tol
    return x, info


def block_cg(apply, b: torch.Tensor, tol, precondition=None, project=None, maxiter: int = 500
             ) -> tuple[torch.Tensor, KrylovInfo]:
    """Independent preconditioned CG solves A_k x_kj = b_kj for all rows of b (n_blocks, m, n).

    Each block k has its own Hermitian positive-definite operator and each row j its own scalar
    recursion (it may also have its own shift inside A). Blocks whose rows are all converged stop
    costing operator applications.

    Args:
        apply: callable (X (n_active, m, n), idx (n_active,)) ↦ A X for the blocks idx.
        b: right-hand sides (n_blocks, m, n).
        tol: absolute residual tolerance per row, float or tensor broadcastable to (n_blocks, m).
        precondition: callable (R, idx) ↦ M⁻¹ R (Hermitian positive definite), or None.
        project: callable (V, idx) ↦ Q V onto the subspace where A is positive definite, or None.
    Returns:
        (x, KrylovInfo) with iterations = number of row-vector operator applications.
    """
    n_blocks = b.shape[0]
    idx_all = torch.arange(n_blocks, device=b.device)
    tol = torch.as_tensor(tol, dtype=torch.float64, device=b.device).expand(b.shape[:2])
    prec = precondition if precondition is not None else (lambda r, idx: r)
    proj = project if project is not None else (lambda v, idx: v)
    info = KrylovInfo()
    x = torch.zeros_like(b)
    r = proj(b, idx_all)
    z = proj(prec(r, idx_all), idx_all)
    p = z
    rz = (r.conj() * z).sum(-1).real
    for _ in range(maxiter):
        r_norm = r.norm(dim=-1)
        active_rows = r_norm > tol
        info.history.append(float(r_norm.max()))
        if not active_rows.any():
            info.converged = True
            break
        blocks = active_rows.any(-1)
        idx = idx_all[blocks]
        pa = p[blocks]
        ap = proj(apply(pa, idx), idx)
        info.iterations += pa.shape[0] * pa.shape[1]
        pap = (pa.conj() * ap).sum(-1).real
        alpha = torch.where(active_rows[blocks] & (pap > 0), rz[blocks] / torch.where(pap > 0, pap, 1.0), 0.0)
        x = x.index_add(0, idx, alpha[..., None] * pa)
        r_new = r[blocks] - alpha[..., None] * ap
        z_new = proj(prec(r_new, idx), idx)
        rz_new = (r_new.conj() * z_new).sum(-1).real
        beta = torch.where(rz[blocks] != 0, rz_new / torch.where(rz[blocks] != 0, rz[blocks], 1.0), 0.0)
        r, p, rz = r.clone(), p.clone(), rz.clone()
        r[blocks], rz[blocks] = r_new, rz_new
        p[blocks] = z_new + beta[..., None] * pa
    info.residual = float(r.norm(dim=-1).max())
    info.converged = bool((r.norm(dim=-1) <= tol).all())
    return x, info
