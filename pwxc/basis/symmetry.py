"""Space-group symmetry: irreducible k-points and symmetrisation of densities, forces and stress.

A symmetry operation maps fractional positions x → W x + t (W an integer 3×3 matrix, t a fractional
translation) and carries the crystal onto itself. Its consequences used here:

* k-points (fractional reciprocal coordinates κ) transform as κ → W^{-T} κ, and ε_n(W^{-T} κ) = ε_n(κ).
  With time reversal, κ → -κ as well. A Monkhorst–Pack mesh is reduced to one representative per
  orbit, weighted by the orbit size. Only operations that map the mesh onto itself are used, so the
  reduced calculation equals the full-mesh calculation (up to round-off), never a re-sampled one.
* The density is invariant: ρ(W x + t) = ρ(x). With ρ(x) = Σ_m ρ_m e^{2πi m·x} (m integer Miller
  indices) this reads ρ_m = ρ_{m'} e^{2πi m'·t} with m' = W^{-T} m. A density built from irreducible
  k-points only is made invariant by averaging that map over the group:
      ρ_sym,m = (1/N_ops) Σ_ops ρ_{W^{-T} m} e^{2πi (W^{-T} m)·t}.
* Forces and stress are covariant. Derivatives taken from an irreducible k-set are not (each k-point
  stands for its star), and are made so by the group average: for an op with Cartesian rotation
  S = Aᵀ W A^{-T} (A: lattice rows) that sends atom a to atom π(a),
      F_sym[π(a)] = (1/N_ops) Σ_ops S F[a],        σ_sym = (1/N_ops) Σ_ops S σ Sᵀ.
  Derivatives with respect to parameters that keep the symmetry (XC weights, isotropic strain) need
  no correction.

Operations come from spglib (a dependency of pymatgen).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch


class Symmetry:
    """The symmetry operations of a crystal that are compatible with a k-mesh and an FFT grid.

    Attributes:
        rotations: (n_ops, 3, 3) integer W (fractional, direct space).
        translations: (n_ops, 3) fractional t.
        permutations: (n_ops, n_atoms) atom index π(a) that op sends atom a to.
    """

    def __init__(self, rotations, translations, permutations):
        self.rotations = np.asarray(rotations, dtype=np.int64)
        self.translations = np.asarray(translations, dtype=np.float64)
        self.permutations = np.asarray(permutations, dtype=np.int64)

    @property
    def n_ops(self) -> int:
        return len(self.rotations)

    def subset(self, keep) -> "Symmetry":
        keep = np.asarray(keep, dtype=bool)
        return Symmetry(self.rotations[keep], self.translations[keep], self.permutations[keep])

    def __repr__(self):
        return f"Symmetry(n_ops={self.n_ops})"


def find_symmetry(crystal, symprec: float = 1e-5, magnetic_moments=None) -> Symmetry:
    """Space-group operations of `crystal` (spglib), symprec in Bohr. With collinear
    ``magnetic_moments`` (one per atom) atoms of one element but different moments count as different
    kinds, so only operations that keep the magnetic order are returned."""
    import spglib

    lattice = crystal.lattice.detach().cpu().numpy()
    positions = crystal.positions.detach().cpu().numpy()
    species = list(crystal.species)
    if magnetic_moments is not None:
        species = [f"{s}:{float(m):.6g}" for s, m in zip(species, magnetic_moments)]
    numbers = [sorted(set(species)).index(s) + 1 for s in species]
    with warnings.catch_warnings():      # spglib 2.x deprecation notice about its error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        ops = spglib.get_symmetry((lattice, positions, numbers), symprec=symprec)
    if ops is None:
        warnings.warn("spglib found no symmetry operations; using the identity only", RuntimeWarning)
        ops = {"rotations": np.eye(3, dtype=int)[None], "translations": np.zeros((1, 3))}
    rotations, translations = np.asarray(ops["rotations"]), np.asarray(ops["translations"])
    permutations, error = _atom_permutations(rotations, translations, lattice, positions, numbers)
    ok = error < max(10 * symprec, 1e-6)
    return Symmetry(rotations[ok], translations[ok], permutations[ok])


def _atom_permutations(rotations, translations, lattice, positions, numbers):
    """Atom π(a) closest to the image of atom a under each op, and the largest distance (Bohr) per op."""
    images = np.einsum("oij,aj->oai", rotations, positions) + translations[:, None, :]
    diff = images[:, :, None, :] - positions[None, None, :, :]          # (ops, a, b, 3)
    diff -= np.round(diff)
    dist = np.linalg.norm(diff @ lattice, axis=-1)
    same = np.asarray(numbers)[:, None] == np.asarray(numbers)[None, :]
    dist = np.where(same[None], dist, np.inf)
    return dist.argmin(-1), dist.min(-1).max(-1)


def check_symmetry(symmetry: Symmetry, crystal, tol: float = 1e-4) -> None:
    """Raise ValueError unless every operation maps `crystal` onto itself (within tol Bohr)."""
    lattice = crystal.lattice.detach().cpu().numpy()
    positions = crystal.positions.detach().cpu().numpy()
    species = list(crystal.species)
    numbers = [sorted(set(species)).index(s) + 1 for s in species]
    permutations, error = _atom_permutations(symmetry.rotations, symmetry.translations, lattice,
                                             positions, numbers)
    metric = lattice @ lattice.T
    w = symmetry.rotations.astype(np.float64)
    metric_error = np.abs(np.einsum("oji,jk,okl->oil", w, metric, w) - metric).max()
    if error.max() > tol or not np.array_equal(permutations, symmetry.permutations) \
            or metric_error > tol * np.abs(metric).max():
        raise ValueError("the crystal does not have the symmetry of this basis (a displacement or strain "
                         "broke it): build a new PlaneWaveBasis, or use symmetry=False")


def _mesh_index(kfrac, kgrid, kshift):
    """Integer mesh coordinates j of κ = (j + s)/n mod 1, and whether κ lies on the mesh."""
    n = np.asarray(kgrid, dtype=np.float64)
    j = kfrac * n - np.asarray(kshift)
    on_mesh = np.all(np.abs(j - np.round(j)) < 1e-6, axis=-1)
    j = np.round(j).astype(np.int64) % np.asarray(kgrid)
    return j, on_mesh


def irreducible_kpoints(kgrid, kshift, symmetry: Symmetry, time_reversal: bool = True):
    """Reduce a Monkhorst–Pack mesh by the operations that map it onto itself.

    Returns (kpoints (n_irr, 3) fractional in (-1/2, 1/2], weights (n_irr,) summing to 1, the Symmetry
    restricted to the mesh-compatible operations).
    """
    from .kpoints import _check_kgrid, fold, mesh

    kgrid, kshift = _check_kgrid(kgrid, kshift)
    k = mesh(kgrid, kshift)
    n1, n2, n3 = kgrid
    # κ → W^{-T} κ  (row vectors: κ @ W^{-1})
    w_inv = np.rint(np.linalg.inv(symmetry.rotations)).astype(np.int64)
    images = np.einsum("ki,oij->okj", k, w_inv)                     # (ops, nk, 3)
    signs = [1, -1] if time_reversal else [1]
    keep = np.ones(symmetry.n_ops, dtype=bool)
    index_rows = []
    for sign in signs:
        j, on_mesh = _mesh_index(sign * images, kgrid, kshift)
        keep &= on_mesh.all(axis=1)
        index_rows.append((j[..., 0] * n2 + j[..., 1]) * n3 + j[..., 2])  # (ops, nk)
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} of {symmetry.n_ops} symmetry operations do not map the "
                      f"k-mesh {kgrid} with shift {kshift} onto itself and are not used", RuntimeWarning)
    images_idx = np.concatenate([rows[keep] for rows in index_rows])  # every group element's image
    representative = images_idx.min(axis=0)                         # orbit label: smallest index
    reps, counts = np.unique(representative, return_counts=True)
    kirr = fold(k[reps])
    weights = counts / counts.sum()
    return (torch.tensor(kirr, dtype=torch.float64), torch.tensor(weights, dtype=torch.float64),
            symmetry.subset(keep))


def grid_compatible(symmetry: Symmetry, fft_shape) -> Symmetry:
    """Keep the operations whose Miller-index map m → W^{-T} m is well defined modulo the FFT grid."""
    n = np.asarray(fft_shape)
    w_inv = np.rint(np.linalg.inv(symmetry.rotations)).astype(np.int64)
    # row-vector map m' = m @ W^{-1}: m_i → m_i + n_i must change m'_j by a multiple of n_j
    ok = np.all((n[None, :, None] * w_inv) % n[None, None, :] == 0, axis=(1, 2))
    if not ok.all():
        warnings.warn(f"{int((~ok).sum())} symmetry operations are incompatible with the FFT grid "
                      f"{tuple(fft_shape)} and are not used", RuntimeWarning)
    return symmetry.subset(ok)


class DensitySymmetrizer:
    """ρ → (1/N_ops) Σ_ops ρ(W x + t) on an FFT grid, differentiable (gathers and phases only).

    A density built from orbitals of the sphere ½|k+G|² ≤ ecut has Fourier components only inside
    |G| ≤ 2√(2 ecut), so only those are averaged (the rest are zero). Source indices and phases are
    cached when they fit in CACHE_ENTRIES (one entry per sphere point and distinct rotation), else
    recomputed per call.
    """

    CACHE_ENTRIES = 2**22

    def __init__(self, symmetry: Symmetry, fft, lattice: torch.Tensor, gmax: float):
        self.n_ops = symmetry.n_ops
        self.shape = tuple(fft.shape)
        self.grid_size = fft.size
        device = fft.miller.device
        miller = fft.miller.reshape(-1, 3)                                    # (N, 3) integer
        recip = 2 * math.pi * torch.linalg.inv(lattice.detach().to(torch.float64)).T.to(device)
        g2 = ((miller.to(torch.float64) @ recip) ** 2).sum(-1)
        #: flat indices of the density sphere, the only non-zero components
        self.targets = torch.nonzero(g2 <= gmax**2 * (1 + 1e-8)).flatten()
        self._miller = miller[self.targets]
        # ops sharing a rotation W (pure translations in supercells, non-symmorphic partners) share the
        # source index W^{-T} m; their phases are summed once: Φ_W(m) = Σ_t e^{2πi (W^{-T} m)·t}
        groups = {}
        for w, t in zip(symmetry.rotations, symmetry.translations):
            groups.setdefault(w.tobytes(), (w, []))[1].append(t)
        self._groups = [(torch.tensor(np.rint(np.linalg.inv(w)), dtype=miller.dtype, device=device),
                         torch.tensor(np.array(ts), dtype=torch.float64, device=device))
                        for w, ts in groups.values()]
        self._shape_t = torch.tensor(self.shape, device=device)
        self._cache = None
        if len(self._groups) * len(self.targets) <= self.CACHE_ENTRIES:
            self._cache = [self._map(g) for g in range(len(self._groups))]

    def _map(self, group):
        """Flat source index W^{-T} m (wrapped) and summed phase Φ_W(m) for the sphere points."""
        w_inv, ts = self._groups[group]
        source = self._miller @ w_inv
        wrapped = source % self._shape_t
        index = (wrapped[:, 0] * self.shape[1] + wrapped[:, 1]) * self.shape[2] + wrapped[:, 2]
        if len(ts) == 1 and bool((ts == 0).all()):
            return index, None
        angle = 2 * math.pi * (source.to(torch.float64) @ ts.T)                 # (n_sphere, n_t)
        return index, torch.polar(torch.ones_like(angle), angle).sum(-1)

    def __call__(self, rho: torch.Tensor) -> torch.Tensor:
        """Symmetrise a real density (..., n1, n2, n3)."""
        if self.n_ops <= 1:
            return rho
        lead = rho.shape[:-3]
        rho_g = torch.fft.fftn(rho, dim=(-3, -2, -1)).reshape(*lead, -1)
        total = 0
        for group in range(len(self._groups)):
            index, phase = self._cache[group] if self._cache is not None else self._map(group)
            part = rho_g[..., index]
            total = total + (part if phase is None else part * phase.to(rho_g.dtype))
        full = torch.zeros_like(rho_g).index_copy(-1, self.targets, total / self.n_ops)
        return torch.fft.ifftn(full.reshape(*lead, *self.shape), dim=(-3, -2, -1)).real


def cartesian_rotations(symmetry: Symmetry, lattice: torch.Tensor) -> torch.Tensor:
    """(n_ops, 3, 3) Cartesian S = Aᵀ W A^{-T} (A: lattice rows, Bohr)."""
    w = torch.as_tensor(symmetry.rotations, dtype=lattice.dtype, device=lattice.device)
    return lattice.T @ w @ torch.linalg.inv(lattice.T)


def symmetrize_forces(forces: torch.Tensor, symmetry: Symmetry, lattice: torch.Tensor) -> torch.Tensor:
    """F_sym[π(a)] = (1/N_ops) Σ_ops S F[a]; forces (n_atoms, 3) Cartesian."""
    rotations = cartesian_rotations(symmetry, lattice)
    rotated = torch.einsum("oij,aj->oai", rotations, forces)                 # (ops, atoms, 3)
    perm = torch.as_tensor(symmetry.permutations, device=forces.device)
    out = torch.zeros_like(rotated).scatter_add(1, perm[..., None].expand_as(rotated), rotated)
    return out.mean(0)


def symmetrize_stress(sigma: torch.Tensor, symmetry: Symmetry, lattice: torch.Tensor) -> torch.Tensor:
    """σ_sym = (1/N_ops) Σ_ops S σ Sᵀ (Cartesian 3×3)."""
    rotations = cartesian_rotations(symmetry, lattice)
    return (rotations @ sigma @ rotations.transpose(-1, -2)).mean(0)
