"""Crystal: lattice, atomic positions and species, in Bohr.

The lattice is a (3, 3) tensor whose *rows* are the lattice vectors a_1, a_2, a_3 (Bohr).
Positions are fractional coordinates (n_atoms, 3). Either may be a tensor that requires grad:
the energy functional recomputes everything geometric from them on every call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .units import ANGSTROM_IN_BOHR


@dataclass(frozen=True)
class Crystal:
    """A periodic arrangement of atoms.

    Attributes:
        lattice: (3, 3) rows are lattice vectors, Bohr.
        positions: (n_atoms, 3) fractional coordinates.
        species: element symbols, one per atom.
    """

    lattice: torch.Tensor
    positions: torch.Tensor
    species: tuple[str, ...]

    @staticmethod
    def from_arrays(lattice, positions, species: Sequence[str], *, cartesian: bool = False,
                    unit: str = "bohr", dtype=torch.float64, device=None) -> "Crystal":
        """Build a crystal from plain arrays.

        Args:
            lattice: (3, 3), rows are lattice vectors, in `unit` ("bohr" or "angstrom").
            positions: (n_atoms, 3), fractional unless `cartesian=True` (then in `unit`).
            species: element symbols.
        """
        if unit not in ("bohr", "angstrom"):
            raise ValueError(f"unit must be 'bohr' or 'angstrom', got {unit!r}")
        scale = ANGSTROM_IN_BOHR if unit == "angstrom" else 1.0
        # np.array copies: pymatgen hands out read-only arrays, which torch warns about
        lattice = lattice if torch.is_tensor(lattice) else np.array(lattice, dtype=np.float64)
        positions = positions if torch.is_tensor(positions) else np.array(positions, dtype=np.float64)
        lattice = torch.as_tensor(lattice, dtype=dtype, device=device) * scale
        positions = torch.as_tensor(positions, dtype=dtype, device=device)
        if lattice.shape != (3, 3):
            raise ValueError(f"lattice must have shape (3, 3), got {tuple(lattice.shape)}")
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise ValueError(f"positions must have shape (n_atoms, 3), got {tuple(positions.shape)}")
        if cartesian:
            positions = torch.linalg.solve(lattice.T, (positions * scale).T).T
        species = tuple(str(s) for s in species)
        if len(species) != positions.shape[0]:
            raise ValueError(f"{len(species)} species for {positions.shape[0]} positions")
        crystal = Crystal(lattice, positions, species)
        crystal.check()
        return crystal

    @staticmethod
    def from_pymatgen(structure, dtype=torch.float64, device=None) -> "Crystal":
        """Convert a pymatgen ``Structure`` (Å) to a Crystal (Bohr)."""
        if structure.is_ordered is False:
            raise ValueError("disordered pymatgen structures (partial occupancies) are not supported")
        species = [site.specie.symbol for site in structure]
        return Crystal.from_arrays(structure.lattice.matrix, structure.frac_coords, species,
                                   unit="angstrom", dtype=dtype, device=device)

    @property
    def n_atoms(self) -> int:
        return self.positions.shape[0]

    @property
    def volume(self) -> torch.Tensor:
        """Cell volume Ω = det(lattice), Bohr^3."""
        return torch.linalg.det(self.lattice)

    @property
    def cartesian_positions(self) -> torch.Tensor:
        """(n_atoms, 3) Cartesian positions, Bohr."""
        return self.positions @ self.lattice

    @property
    def reciprocal_lattice(self) -> torch.Tensor:
        """(3, 3) rows are b_i with a_i · b_j = 2π δ_ij, Bohr^-1."""
        return 2 * np.pi * torch.linalg.inv(self.lattice).T

    def check(self, min_distance: float = 0.5) -> None:
        """Raise ValueError for singular / left-handed lattices and overlapping atoms.

        Args:
            min_distance: smallest allowed interatomic distance (periodic images included), Bohr.
        """
        lattice = self.lattice.detach().cpu().double()
        if not torch.isfinite(lattice).all() or not torch.isfinite(self.positions.detach()).all():
            raise ValueError("lattice or positions contain non-finite values")
        det = torch.linalg.det(lattice).item()
        lengths = lattice.norm(dim=1)
        if abs(det) < 1e-8 * float(lengths.prod()) or float(lengths.min()) < 1e-6:
            raise ValueError(f"singular lattice (volume {det:.3g} Bohr^3): lattice vectors are linearly dependent")
        if det < 0:
            raise ValueError("left-handed lattice (negative determinant): swap two lattice vectors "
                             "or flip the sign of one")
        if self.n_atoms > 1:
            frac = self.positions.detach().cpu().double()
            diff = frac[:, None, :] - frac[None, :, :]
            diff = diff - torch.round(diff)
            shifts = torch.tensor([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)],
                                  dtype=torch.float64)
            cart = (diff[:, :, None, :] + shifts) @ lattice
            dist = cart.norm(dim=-1).amin(dim=-1)
            dist.fill_diagonal_(float("inf"))
            if float(dist.min()) < min_distance:
                i, j = divmod(int(dist.argmin()), self.n_atoms)
                raise ValueError(f"atoms {i} ({self.species[i]}) and {j} ({self.species[j]}) overlap: "
                                 f"distance {float(dist.min()):.4f} Bohr < {min_distance} Bohr")

    def to(self, dtype=None, device=None) -> "Crystal":
        return Crystal(self.lattice.to(dtype=dtype, device=device),
                       self.positions.to(dtype=dtype, device=device), self.species)
