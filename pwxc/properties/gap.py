"""Kohn–Sham band gap from the eigenvalues of a converged SCF."""
from __future__ import annotations

import math

import torch


def band_gap(result, n_electrons: float) -> float:
    """Indirect Kohn–Sham gap (Hartree): lowest eigenvalue of band N+1 minus highest of band N over the
    k-points, N = n_electrons / 2 (spin-unpolarised) — or, spin-polarised, the conduction minimum over both
    channels minus the valence maximum, with each channel filled to its occupation sum. Negative for a
    semimetal with overlapping bands (α-Sn, InAs in PBE). The SCF must have computed at least one band
    above the valence bands (``pwxc.scf(..., n_bands=...)``), else ValueError.
    """
    eig = torch.as_tensor(result.eigenvalues).detach()
    if eig.dim() == 2:
        channels = [(eig, n_electrons / 2)]
    else:
        occ = torch.as_tensor(result.occupations).detach()
        weights = torch.as_tensor(result.kweights).detach() if hasattr(result, "kweights") else None
        channels = []
        for s in range(eig.shape[0]):
            n = float((occ[s] * weights[:, None]).sum()) / float(weights.sum()) if weights is not None \
                else float(occ[s].sum(-1).mean())
            channels.append((eig[s], n))
    vbm, cbm = -math.inf, math.inf
    for e, n in channels:
        n_val = int(round(n))
        if abs(n - n_val) > 1e-6:
            raise ValueError(f"{n:g} electrons per spin channel is not an integer number of bands: no gap")
        if e.shape[-1] <= n_val:
            raise ValueError(f"band_gap needs at least {n_val + 1} bands per k-point, the result has "
                             f"{e.shape[-1]}: rerun pwxc.scf with n_bands > {n_val}")
        if n_val > 0:
            vbm = max(vbm, float(e[:, n_val - 1].max()))
        cbm = min(cbm, float(e[:, n_val].min()))
    return cbm - vbm
