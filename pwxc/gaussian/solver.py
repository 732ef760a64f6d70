"""SCF building blocks of the Gaussian path (torch): diagonalisation, occupations, DIIS.

Conventions follow PySCF's restricted k-point KS (``pbc.dft.KRKS``) so that results agree number
for number: states of all k-points are pooled when occupations are assigned; each state holds up
to 2 electrons; the electron count is N_cell × N_k.

Smearing (σ = ``temperature`` in Hartree, x = (ε - μ)/σ), μ chosen so that Σ_{k,i} f_{ki} = N_cell N_k / 2:

* ``"fermi"``:    f = 1 / (e^x + 1) (0 for x ≥ 40, as PySCF),  S = -(2/N_k) Σ [f ln f + (1-f) ln(1-f)]
* ``"gaussian"``: f = ½ erfc(x),                               S =  (2/N_k) Σ e^{-x²} / (2√π)

S is the (dimensionless) entropy per cell; the free energy is F = E - σS (PySCF's ``e_free``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import erfc

SMEARINGS = {"fermi": "fermi", "fermi-dirac": "fermi", "fermi_dirac": "fermi", "fd": "fermi",
             "gaussian": "gaussian", "gauss": "gaussian"}


def orthogonalizers(ovlp: torch.Tensor, lindep: float = 1e-10):
    """Canonical orthogonalisation X^k = U s^{-1/2} (columns with overlap eigenvalue s > lindep kept),
    so that X^H S X = 1. Returns a list (one (nao, nmo_k) tensor per k) and the number dropped."""
    xs, dropped = [], 0
    for s_k in ovlp:
        s, u = torch.linalg.eigh(s_k)
        keep = s > lindep
        dropped += int((~keep).sum())
        xs.append(u[:, keep] / torch.sqrt(s[keep]).to(u.dtype))
    return xs, dropped


def diagonalize(fock: torch.Tensor, xs):
    """Solve F^k C = S^k C ε per k in the orthogonalised basis. Returns lists (ε_k, C_k)."""
    eps, coeffs = [], []
    for f_k, x in zip(fock, xs):
        fo = x.conj().T @ f_k @ x
        e, c = torch.linalg.eigh(0.5 * (fo + fo.conj().T))
        eps.append(e)
        coeffs.append(x @ c)
    return eps, coeffs


def make_density_matrix(coeffs, occs) -> torch.Tensor:
    """D^k = C^k diag(f^k) C^k†, stacked (nk, nao, nao)."""
    return torch.stack([(c * o.to(c.dtype)) @ c.conj().T for c, o in zip(coeffs, occs)])


def _occ(kind, mu, e, sigma):
    x = (e - mu) / sigma
    if kind == "fermi":
        out = np.zeros_like(e)
        m = x < 40
        out[m] = 1.0 / (np.exp(x[m]) + 1.0)
        return out
    return 0.5 * erfc(x)


def occupations(mo_energy, n_electrons_cell: int, smearing=None, sigma=None):
    """Occupations (list of (nmo_k,) tensors, values 0..2), Fermi level μ (Hartree) and entropy S per cell.

    Without smearing the N_cell N_k / 2 lowest pooled states are doubly occupied and μ is the highest
    occupied eigenvalue (PySCF's convention).
    """
    nk = len(mo_energy)
    sizes = [len(e) for e in mo_energy]
    e_all = np.concatenate([e.detach().cpu().numpy() for e in mo_energy])
    n_pairs = n_electrons_cell * nk / 2
    if n_pairs > len(e_all):
        raise ValueError(f"{n_electrons_cell} electrons per cell do not fit in {len(e_all) // nk} orbitals per k")
    if smearing is None:
        npair = int(round(n_pairs))
        order = np.argsort(e_all, kind="stable")
        f = np.zeros_like(e_all)
        f[order[:npair]] = 1.0
        mu, entropy = float(e_all[order[npair - 1]]), 0.0
    else:
        kind = SMEARINGS[smearing]

        def excess(m):
            return _occ(kind, m, e_all, sigma).sum() - n_pairs

        lo, hi = e_all.min() - 10.0, e_all.max() + 10.0
        mu = brentq(excess, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=1000)
        f = _occ(kind, mu, e_all, sigma)
        if kind == "fermi":
            g = f[(f > 0) & (f < 1)]
            entropy = -float((g * np.log(g) + (1 - g) * np.log(1 - g)).sum())
        else:
            entropy = float(np.exp(-((e_all - mu) / sigma) ** 2).sum() / (2 * math.sqrt(math.pi)))
        entropy = 2.0 * entropy / nk
    occ = torch.as_tensor(2.0 * f, dtype=torch.float64)
    return list(torch.split(occ, sizes)), float(mu), entropy


class DIIS:
    """Pulay's direct inversion in the iterative subspace on the Fock matrices.

    Error vector of a Fock/density pair: e = ⊕_k X^k† (F^k D^k S^k - S^k D^k F^k) X^k (zero at
    self-consistency). The extrapolated Fock matrix is Σ_i c_i F_i with c minimising |Σ_i c_i e_i|²
    subject to Σ_i c_i = 1.
    """

    def __init__(self, space: int = 8):
        self.space = int(space)
        self.focks, self.errors = [], []

    def push(self, fock: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        """Store (F, e) and return the extrapolated Fock matrix."""
        self.focks.append(fock)
        self.errors.append(error)
        if len(self.focks) > self.space:
            self.focks.pop(0)
            self.errors.pop(0)
        n = len(self.focks)
        if n == 1:
            return fock
        while n > 1:
            b = torch.empty((n + 1, n + 1), dtype=torch.float64)
            for i in range(n):
                for j in range(i, n):
                    b[i, j] = b[j, i] = torch.vdot(self.errors[i], self.errors[j]).real
            b[n, :n] = b[:n, n] = -1.0
            b[n, n] = 0.0
            rhs = torch.zeros(n + 1, dtype=torch.float64)
            rhs[n] = -1.0
            scale = b[:n, :n].diagonal().max().clamp_min(1e-300)
            b[:n, :n] /= scale
            try:
                c = torch.linalg.solve(b, rhs)[:n]
                if torch.isfinite(c).all():
                    break
            except RuntimeError:
                pass
            self.focks.pop(0)  # ill-conditioned subspace: drop the oldest vector and retry
            self.errors.pop(0)
            n -= 1
        if n == 1:
            return self.focks[0]
        return sum(ci.to(fock.dtype) * f for ci, f in zip(c, self.focks))


def commutator_error(fock, dm, ovlp, xs) -> torch.Tensor:
    """Concatenated X^† (F D S - S D F) X over k (the DIIS error / SCF gradient measure)."""
    parts = []
    for f, d, s, x in zip(fock, dm, ovlp, xs):
        fds = f @ d @ s
        parts.append((x.conj().T @ (fds - fds.conj().T) @ x).reshape(-1))
    return torch.cat(parts)
