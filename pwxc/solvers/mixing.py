"""Density mixing: Kerker preconditioning and Anderson (Pulay) acceleration.

Kerker: the residual R = ρ_out - ρ_in is scaled in reciprocal space by α G²/(G² + k₀²), which damps
the long-wavelength charge sloshing of metals (k₀ ~ Thomas–Fermi wave vector; k₀ = 0 gives simple
mixing with factor α). G. P. Kerker, PRB 23, 3082 (1981).

Anderson: x_{n+1} = x_n + f_n - Σ_j γ_j (Δx_j + Δf_j), γ = argmin ‖f_n - Σ_j γ_j Δf_j‖, where f = K R
is the preconditioned residual and Δ are differences of successive iterates (D. G. Anderson,
J. ACM 12, 547 (1965); P. Pulay, CPL 73, 393 (1980)). Works on flat tensors; knows nothing about DFT.
"""
from __future__ import annotations

import torch


class KerkerMixing:
    """Residual preconditioner α G²/(G² + k0²) (k0 in Bohr^-1; 0 means simple mixing)."""

    def __init__(self, alpha: float = 0.7, k0: float = 0.8):
        if not 0 < alpha <= 2:
            raise ValueError(f"mixing alpha must be in (0, 2], got {alpha}")
        self.alpha, self.k0 = alpha, k0

    def __call__(self, basis, residual: torch.Tensor) -> torch.Tensor:
        if self.k0 == 0:
            return self.alpha * residual
        g2 = (basis.gvectors(basis.model.crystal.lattice.detach()) ** 2).sum(-1)
        factor = self.alpha * g2 / (g2 + self.k0**2)
        res_g = torch.fft.fftn(residual, dim=(-3, -2, -1))
        return torch.fft.ifftn(res_g * factor, dim=(-3, -2, -1)).real


class AndersonAccelerator:
    """Anderson acceleration of the fixed-point map x ↦ x + f(x) with a history of `depth` steps.

    ``max_cond``: the oldest differences are dropped while the condition number of the residual
    differences ΔF exceeds it (None: keep all). Near-collinear differences otherwise give large,
    cancelling coefficients γ and a step that barely moves x: the iteration stagnates.
    """

    def __init__(self, depth: int = 10, max_cond: float | None = None):
        self.depth = depth
        self.max_cond = max_cond
        self.xs: list[torch.Tensor] = []
        self.fs: list[torch.Tensor] = []

    def reset(self):
        self.xs.clear()
        self.fs.clear()

    def __call__(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        xf, ff = x.reshape(-1), f.reshape(-1)
        self.xs.append(xf.clone())
        self.fs.append(ff.clone())
        if len(self.xs) > self.depth + 1:
            self.xs.pop(0)
            self.fs.pop(0)
        if len(self.xs) == 1:
            return (xf + ff).reshape(x.shape)
        dx = torch.stack([b - a for a, b in zip(self.xs[:-1], self.xs[1:])], 1)
        df = torch.stack([b - a for a, b in zip(self.fs[:-1], self.fs[1:])], 1)
        gram = df.T @ df
        if self.max_cond is not None:
            while gram.shape[0] > 1:
                ev = torch.linalg.eigvalsh(gram)          # cond(ΔF)² = λ_max/λ_min of the Gram matrix
                if float(ev[-1]) <= self.max_cond**2 * float(ev[0].clamp_min(0)):
                    break
                dx, df, gram = dx[:, 1:], df[:, 1:], gram[1:, 1:]
                self.xs.pop(0)
                self.fs.pop(0)
        # small Tikhonov term keeps the normal equations solvable when steps become collinear
        gram = gram + 1e-12 * torch.trace(gram) * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        gamma = torch.linalg.solve(gram, df.T @ ff)
        return (xf + ff - (dx + df) @ gamma).reshape(x.shape)
