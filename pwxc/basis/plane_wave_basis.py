"""PlaneWaveBasis: per-k plane-wave spheres ½|k+G|² ≤ ecut on a common FFT grid.

Orbitals are stored as coefficient tensors psi[k, n, p] (complex) over a padded list of plane waves
per k-point (`mask[k, p]` marks real entries), normalised Σ_p |psi|² = 1, meaning
ψ_nk(r) = Ω^{-1/2} Σ_G c_nk(G) e^{i(k+G)·r}.

Only integer data (Miller indices, FFT indices) and k-point fractional coordinates are cached here.
Everything Cartesian (|k+G|², reciprocal vectors) is recomputed from a lattice tensor on demand, so
strain derivatives are fixed-basis derivatives, as in other plane-wave codes.
"""
from __future__ import annotations

import math
import warnings

import torch

from .fft_grid import FFTGrid, fft_size_for_cutoff
from .kpoints import monkhorst_pack
from .symmetry import (DensitySymmetrizer, Symmetry, check_symmetry, find_symmetry, grid_compatible,
                       irreducible_kpoints)


def _check_kgrid(kgrid) -> tuple:
    """(n1, n2, n3) of positive integers; an int n means (n, n, n). No silent rounding of 2.5 to 2."""
    values = (kgrid,) * 3 if isinstance(kgrid, int) and not isinstance(kgrid, bool) else kgrid
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"kgrid must be three positive integers, got {kgrid!r}") from None
    out = []
    for n in values:
        try:
            value = float(n)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(n, bool) or type(n).__name__ in ("bool", "bool_") or not value.is_integer():
            raise ValueError(f"kgrid must be three positive integers, got {kgrid!r}")
        out.append(int(value))
    if len(out) != 3 or min(out) < 1:
        raise ValueError(f"kgrid must be three positive integers, got {kgrid!r}")
    return tuple(out)


class PlaneWaveBasis:
    """Plane-wave discretisation of a :class:`pwxc.Model`.

    Args:
        model: the Model.
        ecut: kinetic energy cutoff of the orbitals, Hartree.
        kgrid: Monkhorst–Pack grid (n1, n2, n3).
        kshift: offset per direction in units of one k-step (0: Γ-centred, 1/2: QE's "1 1 1").
        fft_size: optional (n1, n2, n3) FFT grid; default the smallest 2·3·5-smooth grid holding
            the density sphere |G| ≤ 2√(2 ecut).
        time_reversal: merge k and -k (default True).
        symmetry: reduce the k-mesh to irreducible points with the crystal's space group and
            symmetrise the density (``True``; or a :class:`pwxc.basis.symmetry.Symmetry`). The energy
            equals the full-mesh energy; forces and stress are symmetrised. Default False: position
            derivatives taken by hand through autograd are then always those of the full mesh.
        symprec: tolerance of the symmetry search, Bohr.
    """

    def __init__(self, model, ecut: float, kgrid=(1, 1, 1), kshift=(0.0, 0.0, 0.0), fft_size=None,
                 time_reversal: bool = True, symmetry=False, symprec: float = 1e-5):
        if isinstance(ecut, bool):
            raise ValueError(f"ecut must be a positive number (Hartree), got {ecut!r}")
        try:
            ecut = float(ecut)
        except (TypeError, ValueError):
            raise ValueError(f"ecut must be a positive number (Hartree), got {ecut!r}") from None
        if not math.isfinite(ecut) or ecut <= 0:
            raise ValueError(f"ecut must be a positive number (Hartree), got {ecut!r}")
        self.model = model
        self.ecut = ecut
        self.dtype = model.dtype
        self.device = model.device
        lattice = model.crystal.lattice.detach()
        self.kgrid = _check_kgrid(kgrid)
        gmax_rho = 2 * math.sqrt(2 * ecut)
        needed = fft_size_for_cutoff(lattice, gmax_rho)
        if fft_size is None:
            fft_size = needed
        elif any(n < m for n, m in zip(fft_size, needed)):
            warnings.warn(f"fft_size {tuple(fft_size)} is smaller than {needed}, the grid that holds the "
                          f"density sphere |G| ≤ 2√(2 ecut): products of orbitals alias and the energy is "
                          "not that of the full cutoff", RuntimeWarning)
        self.fft = FFTGrid(fft_size, device=self.device)
        self.symmetry, self.symmetrizer = None, None
        if not (isinstance(symmetry, (bool, Symmetry)) or symmetry is None):
            raise TypeError(f"symmetry must be True, False or a pwxc.basis.symmetry.Symmetry, got {symmetry!r}")
        if not (math.isfinite(symprec) and symprec > 0):
            raise ValueError(f"symprec must be a positive length (Bohr), got {symprec!r}")
        if symmetry is False or symmetry is None:
            kpoints, weights = monkhorst_pack(kgrid, kshift, time_reversal)
        else:
            ops = find_symmetry(model.crystal, symprec, model.magnetic_moments) if symmetry is True else symmetry
            ops = grid_compatible(ops, self.fft.shape)
            kpoints, weights, ops = irreducible_kpoints(kgrid, kshift, ops, time_reversal)
            self.symmetry = ops
            self.symmetrizer = DensitySymmetrizer(ops, self.fft, lattice, gmax_rho)
        self.kshift = tuple(float(s) for s in kshift)
        self.kpoints = kpoints.to(dtype=self.dtype, device=self.device)   # fractional
        self.kweights = weights.to(dtype=self.dtype, device=self.device)  # sum to 1
        self._build_spheres(lattice)

    # ------------------------------------------------------------------ setup
    def _build_spheres(self, lattice):
        recip = 2 * math.pi * torch.linalg.inv(lattice).T
        gmax = math.sqrt(2 * self.ecut)
        # candidate Miller indices: a box that holds every sphere |k+G| ≤ gmax for |k_i| ≤ 1/2
        bounds = [math.floor((gmax + float(recip.norm(dim=1).max())) * float(l) / (2 * math.pi)) + 1
                  for l in lattice.norm(dim=1).tolist()]
        ranges = [torch.arange(-b, b + 1, device=self.device) for b in bounds]
        cand = torch.stack(torch.meshgrid(*ranges, indexing="ij"), dim=-1).reshape(-1, 3)
        kg = (self.kpoints[:, None, :] + cand[None].to(self.dtype)) @ recip   # (nk, ncand, 3)
        inside = 0.5 * (kg**2).sum(-1) <= self.ecut
        npw = inside.sum(1)
        if int(npw.min()) == 0:
            raise ValueError(f"ecut = {self.ecut} Ha is too small: some k-point has no plane wave "
                             "inside the cutoff sphere")
        npw_max = int(npw.max())
        n_k = len(self.kpoints)
        # stable sort puts the inside entries first, in candidate order
        order = torch.argsort((~inside).to(torch.int8), dim=1, stable=True)[:, :npw_max]
        miller = cand[order]                                      # (nk, npw_max, 3)
        mask = torch.arange(npw_max, device=self.device)[None, :] < npw[:, None]
        miller = torch.where(mask[..., None], miller, torch.zeros_like(miller))
        for axis, n in enumerate(self.fft.shape):
            span = int(miller[..., axis].max() - miller[..., axis].min()) + 1
            if span > n:
                raise ValueError(f"FFT grid {self.fft.shape} too small for ecut = {self.ecut} Ha "
                                 f"(orbital sphere spans {span} points along axis {axis})")
        self.miller = miller
        self.mask = mask
        self.n_planewaves = npw
        idx = self.fft.flat_index(miller)
        #: flat FFT-box index per plane wave; padding points at the dummy slot N
        self.fft_index = torch.where(mask, idx, torch.full_like(idx, self.fft.size))
        #: same, with padding pointing at entry 0 (gathers multiply by the mask)
        self.gather_index = torch.where(mask, idx, torch.zeros_like(idx))
        # density-grid Miller indices as floats for G = m @ B
        self.grid_miller = self.fft.miller.reshape(-1, 3).to(self.dtype)
        g2 = ((self.grid_miller @ recip) ** 2).sum(-1).reshape(self.fft.shape)
        #: (n1, n2, n3) bool: the density sphere ½|G|² ≤ 4 ecut, an integer G-set fixed with the basis
        #: (like the orbital spheres), so that strain derivatives are fixed-basis derivatives
        self.density_mask = g2 <= 8 * self.ecut

    def with_model(self, model) -> "PlaneWaveBasis":
        """The same discretisation (k-points, integer G-vector sets, FFT grid) for another model,
        e.g. a strained or displaced crystal: the fixed-basis setting of analytic stress.

        With symmetry, the new crystal must keep every operation (isotropic scaling does; a
        displacement that breaks the symmetry raises ValueError)."""
        if self.symmetry is not None:
            check_symmetry(self.symmetry, model.crystal)
        new = object.__new__(PlaneWaveBasis)
        new.__dict__.update(self.__dict__)
        new.model, new.dtype, new.device = model, model.dtype, model.device
        return new

    # ------------------------------------------------------------------ geometry (live)
    @property
    def n_kpoints(self) -> int:
        return len(self.kpoints)

    def reciprocal_lattice(self, lattice=None) -> torch.Tensor:
        lattice = self.model.crystal.lattice if lattice is None else lattice
        return 2 * math.pi * torch.linalg.inv(lattice).T

    def kplusg(self, lattice=None) -> torch.Tensor:
        """(nk, npw_max, 3) Cartesian k+G, Bohr^-1 (padding entries hold k)."""
        recip = self.reciprocal_lattice(lattice)
        return (self.kpoints[:, None, :] + self.miller.to(self.dtype)) @ recip

    def kinetic(self, lattice=None) -> torch.Tensor:
        """(nk, npw_max) ½|k+G|², Hartree (zero on padding)."""
        return 0.5 * (self.kplusg(lattice) ** 2).sum(-1) * self.mask

    def gvectors(self, lattice=None) -> torch.Tensor:
        """(n1, n2, n3, 3) Cartesian G of the density grid, Bohr^-1."""
        return (self.grid_miller @ self.reciprocal_lattice(lattice)).reshape(*self.fft.shape, 3)

    # ------------------------------------------------------------------ sphere <-> box
    def to_box(self, psi: torch.Tensor, kidx=None) -> torch.Tensor:
        """Scatter coefficients psi (nk, nb, npw_max) into FFT boxes (nk, nb, n1, n2, n3).

        `kidx` selects the k-points psi belongs to (default: all)."""
        index = self.fft_index if kidx is None else self.fft_index[kidx]
        nk, nb, npw = psi.shape
        box = torch.zeros(nk, nb, self.fft.size + 1, dtype=psi.dtype, device=psi.device)
        box.scatter_(2, index[:, None, :].expand(nk, nb, npw), psi)
        return box[..., :-1].reshape(nk, nb, *self.fft.shape)

    def from_box(self, box: torch.Tensor, kidx=None) -> torch.Tensor:
        """Gather sphere coefficients from boxes (nk, nb, n1, n2, n3) → (nk, nb, npw_max), zero padding."""
        index = self.gather_index if kidx is None else self.gather_index[kidx]
        mask = self.mask if kidx is None else self.mask[kidx]
        nk, nb = box.shape[:2]
        flat = box.reshape(nk, nb, -1)
        return torch.gather(flat, 2, index[:, None, :].expand(nk, nb, index.shape[-1])) * mask[:, None, :]

    def __repr__(self):
        ops = "" if self.symmetry is None else f", symmetry_ops={self.symmetry.n_ops}"
        return (f"PlaneWaveBasis(ecut={self.ecut} Ha, kgrid={self.kgrid}, n_kpoints={self.n_kpoints}{ops}, "
                f"fft={self.fft.shape}, max_planewaves={int(self.n_planewaves.max())})")
