"""Block LOBPCG eigensolver, batched over k-points, with the Teter–Payne–Allan preconditioner.

Knows nothing about DFT: it takes a callable apply(X, kidx) for blocks X (n_k, m, n) of row vectors and
finds the m lowest eigenpairs per k. Rayleigh–Ritz on span[X, W, P] is done after an orthonormalisation
by eigen-decomposition of the overlap: near-linearly-dependent directions (which break Cholesky-based
LOBPCG in practice) are dropped by shifting them to the top of the spectrum, batch-wise.

References: A. V. Knyazev, SIAM J. Sci. Comput. 23, 517 (2001); M. P. Teter, M. C. Payne,
D. C. Allan, Phys. Rev. B 40, 12255 (1989).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

_DROP_SHIFT = 1e8   # pushes dropped (null) directions above every physical eigenvalue


#: k-blocks per complex inner-product matmul: torch materialises conj(a) before a batched complex
#: matmul; in chunks that copy stays in cache (the whole-batch version was 2× slower for 260 k-points)
_INNER_CHUNK = 16


def _inner(a, b):
    """(n_k, ma, mb) matrix of ⟨a_i|b_j⟩ for row-vector blocks."""
    if not a.is_complex() or a.shape[0] <= _INNER_CHUNK:
        return a.conj() @ b.transpose(-1, -2)
    return torch.cat([a[s:s + _INNER_CHUNK].conj() @ b[s:s + _INNER_CHUNK].transpose(-1, -2)
                      for s in range(0, a.shape[0], _INNER_CHUNK)])


def _norm(a):
    """Euclidean norm over the last axis of a complex block (torch's complex norm is ~10× slower)."""
    if a.is_complex():
        return torch.view_as_real(a).square().sum((-1, -2)).sqrt()
    return a.square().sum(-1).sqrt()


def _combine(c, v):
    """Σ_i c[k, i, j] v[k, i, :] → (n_k, mc, n)."""
    return c.transpose(-1, -2) @ v


def rayleigh_ritz(v, hv, drop_tol: float = 1e-9):
    """Eigenvalues (ascending) and coefficient matrix C of H restricted to span(v).

    Returns (e (n_k, m), C (n_k, m, m)); directions that are numerically dependent get e ≈ 1e8.
    drop_tol: overlap eigenvalues below drop_tol · (largest) count as dependent. Rounding errors in the
    projected H grow like ε/drop_tol in the kept directions; 1e-11 let a k-block whose other bands were
    locked drift below the lowest eigenvalue after ~45 iterations (tests/test_solver_start.py).
    The overlap is orthonormalised by Cholesky when every k-block is well conditioned, and by an
    eigen-decomposition that drops the dependent directions otherwise.
    """
    s = _inner(v, v)
    s = 0.5 * (s + s.conj().transpose(-1, -2))
    h = _inner(v, hv)
    h = 0.5 * (h + h.conj().transpose(-1, -2))
    chol, info = torch.linalg.cholesky_ex(s)
    if not bool(info.any()):
        eye = torch.eye(s.shape[-1], dtype=s.dtype, device=s.device).expand_as(s)
        linv = torch.linalg.solve_triangular(chol, eye, upper=False)
        # κ(S) ≤ tr(S)·‖L⁻¹‖²_F (λ_min ≥ 1/‖L⁻¹‖²_F): use Cholesky only where that bound is safe
        trace = torch.diagonal(s, dim1=-2, dim2=-1).real.sum(-1)
        if bool((trace * _norm(linv).square().sum(-1) < 1 / drop_tol).all()):
            t = linv.conj().transpose(-1, -2)
            e, c = torch.linalg.eigh(t.conj().transpose(-1, -2) @ h @ t)
            return e, t @ c
    sval, svec = torch.linalg.eigh(s)
    keep = sval > drop_tol * sval[..., -1:]
    scale = torch.where(keep, 1 / torch.sqrt(torch.where(keep, sval, torch.ones_like(sval))),
                        torch.zeros_like(sval))
    t = svec * scale[..., None, :].to(svec.dtype)
    ht = t.conj().transpose(-1, -2) @ h @ t
    ht = ht + torch.diag_embed((~keep).to(ht.dtype) * _DROP_SHIFT)
    e, c = torch.linalg.eigh(ht)
    return e, t @ c


def tpa_preconditioner(kinetic, mask):
    """Teter–Payne–Allan preconditioner factory: R ↦ K R with x = ½|k+G|² / T_n (T_n band kinetic energy),
    K(x) = (27 + 18x + 12x² + 8x³) / (27 + 18x + 12x² + 8x³ + 16x⁴)."""
    def apply(r, x, kidx):
        kin = kinetic[kidx][:, None, :]
        x2 = torch.view_as_real(x).square().sum(-1) if x.is_complex() else x.square()
        t_band = (kin * x2).sum(-1, keepdim=True).clamp_min(0.1)
        y = kin / t_band
        num = y * 8
        num.add_(12).mul_(y).add_(18).mul_(y).add_(27)
        den = y.square_().square_().mul_(16).add_(num)
        return r * num.div_(den).mul_(mask[kidx][:, None, :])
    return apply


@dataclass
class EigenResult:
    eigenvalues: torch.Tensor      # (n_k, m) Hartree
    vectors: torch.Tensor          # (n_k, m, n)
    residual_norms: torch.Tensor   # (n_k, m)
    n_iterations: int
    converged: bool


def _accepts_rows(apply) -> bool:
    try:
        return "rows" in inspect.signature(apply).parameters
    except (TypeError, ValueError):
        return False


def lobpcg(apply, x0, precondition, n_converge: int, tol, maxiter: int = 100,
           lock: bool = True) -> EigenResult:
    """Lowest eigenpairs of the Hermitian operators H_k, one per k-point.

    Args:
        apply: callable (X (n_a, m, n), kidx (n_a,)) -> H X for the k-points kidx; if it takes a
            ``rows`` keyword (bool (n_a, m)), rows marked False are zero in X and may be skipped.
        x0: (n_k, m, n) start vectors (any, linearly independent per k).
        precondition: callable (R, X, kidx) -> preconditioned residual.
        n_converge: the first n_converge bands must reach ‖HX - λX‖ < tol; the rest are a buffer (locked
            below their own tolerance, they never decide convergence).
        tol: residual norm tolerance (Hartree): a number, or a tensor (n_k, m) of per-band tolerances
            (e.g. looser for bands known to be empty).
        lock: soft locking: bands whose residual is already below tol get no new search direction
            (no H application) in that iteration; they stay in the Rayleigh–Ritz space and are
            unlocked again if their residual grows back above tol.
    """
    n_k, m, _ = x0.shape
    all_k = torch.arange(n_k, device=x0.device)
    skip_rows = lock and _accepts_rows(apply)
    tol = torch.as_tensor(tol, dtype=x0.real.dtype, device=x0.device).expand(n_k, m).clone()
    hx0 = apply(x0, all_k)
    e, c = rayleigh_ritz(x0, hx0)
    x, hx, lam = _combine(c[..., :m], x0), _combine(c[..., :m], hx0), e[..., :m]
    p = hp = None
    res = None
    for iteration in range(1, maxiter + 1):
        r = hx - lam[..., None] * x
        res = _norm(r)
        open_rows = res >= tol
        active = open_rows[:, :n_converge].any(-1)
        if not active.any():
            return EigenResult(lam, x, res, iteration - 1, True)
        every = bool(active.all())
        if every:
            kidx, xa, hxa, ra = all_k, x, hx, r
        else:
            kidx, xa, hxa, ra = all_k[active], x[active], hx[active], r[active]
        w = precondition(ra, xa, kidx)
        rows = None
        if lock:
            rows = open_rows if every else open_rows[active]
            w = w * rows[..., None]
        w = w - _combine(_inner(xa, w), xa)                 # project out the current block
        w = w / _norm(w)[..., None].clamp_min(1e-300)
        hw = apply(w, kidx, rows=rows) if skip_rows else apply(w, kidx)
        blocks, hblocks = [xa, w], [hxa, hw]
        if p is not None:
            pa, hpa = (p, hp) if every else (p[active], hp[active])
            norm = _norm(pa)[..., None].clamp_min(1e-300)
            blocks.append(pa / norm)
            hblocks.append(hpa / norm)
        v, hv = torch.cat(blocks, 1), torch.cat(hblocks, 1)
        e, c = rayleigh_ritz(v, hv)
        c = c[..., :m]
        # the new search direction: the part of the update outside the old block; X_new = X c_X + P_new
        p_new, hp_new = _combine(c[:, m:], v[:, m:]), _combine(c[:, m:], hv[:, m:])
        x_new, hx_new = _combine(c[:, :m], xa).add_(p_new), _combine(c[:, :m], hxa).add_(hp_new)
        if every:
            x, hx, lam, p, hp = x_new, hx_new, e[..., :m], p_new, hp_new
            continue
        x, hx, lam = x.clone(), hx.clone(), lam.clone()
        x[active], hx[active], lam[active] = x_new, hx_new, e[..., :m]
        if p is None:
            p, hp = torch.zeros_like(x), torch.zeros_like(x)
        else:
            p, hp = p.clone(), hp.clone()
        p[active], hp[active] = p_new, hp_new
    r = hx - lam[..., None] * x
    res = _norm(r)
    return EigenResult(lam, x, res, maxiter, bool((res[:, :n_converge] < tol[:, :n_converge]).all()))
