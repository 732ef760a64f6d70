"""Input systems → a PySCF ``pbc.gto.Cell`` (built in Bohr).

Accepted inputs:

* a pymatgen ``Structure`` (lattice and Cartesian positions in Å);
* the reference paper's system dict, exactly as printed there (Å)::

      {'mol_desc': 'C 0 0 0; C 2.324 1.342 0',      # "symbol x y z" per atom, ';' or newline separated
       'lattice': '4.64 0 0; 2.32 4 0; 0 0 37',      # three rows = lattice vectors a1; a2; a3
       'basis': 'sto-3g', 'auxbasis': 'def2-sv(p)'}

  optional keys: ``'pseudo'`` (e.g. ``'gth-pbe'``) and ``'unit'`` (``'angstrom'``, the default, or
  ``'bohr'``); ``mol_desc`` / ``lattice`` may also be given as lists (``[('C', (0, 0, 0)), ...]``,
  3x3 nested list);
* a ``pyscf.pbc.gto.Cell`` (used as is; ``basis`` / ``pseudo`` arguments, if given, replace its own).

Å are converted to Bohr here with pwxc's CODATA-2018 constant (1 Bohr = 0.529177210903 Å); everything
downstream is in atomic units. Malformed input raises ValueError quoting the offending text.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np

from ..units import ANGSTROM_IN_BOHR
from ._deps import require
from .basis_sets import check_pseudo, resolve_basis

_ALLOWED_KEYS = {"mol_desc", "lattice", "basis", "auxbasis", "pseudo", "unit"}
_SPLIT_ROWS = re.compile(r"[;\n]")


@dataclass
class ParsedSystem:
    """Atoms and lattice in Bohr, plus the basis choices found in the input (may be None)."""

    symbols: list
    coords: np.ndarray  # (n_atoms, 3) Cartesian, Bohr
    lattice: np.ndarray  # (3, 3) rows are lattice vectors, Bohr
    basis: object = None
    auxbasis: object = None
    pseudo: object = None


def _element(token: str, context: str) -> str:
    """Normalise an element symbol ('al' → 'Al'); ValueError quoting ``context`` if unknown."""
    elements = require("pyscf.data.elements")
    sym = token.strip()
    norm = sym[:1].upper() + sym[1:].lower()
    if norm not in elements.ELEMENTS[1:] or norm == "X":
        raise ValueError(f"unknown element symbol {sym!r} in mol_desc atom {context!r}")
    return norm


def _floats(tokens, description: str) -> list:
    """Convert tokens to finite floats; ValueError "malformed <description>: ..." otherwise."""
    try:
        vals = [float(t) for t in tokens]
    except (TypeError, ValueError):
        raise ValueError(f"malformed {description}: expected numbers") from None
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"malformed {description}: non-finite number")
    return vals


def parse_mol_desc(mol_desc) -> tuple:
    """Parse ``'Sym x y z; Sym x y z'`` → (symbols, (n, 3) array in the input unit).

    Atoms are separated by ';' or newlines; within an atom, whitespace or commas separate the
    symbol and the three Cartesian coordinates. Lists of ``(symbol, (x, y, z))`` are accepted too.
    """
    if isinstance(mol_desc, str):
        entries = [e.strip() for e in _SPLIT_ROWS.split(mol_desc)]
        entries = [e for e in entries if e]
        if not entries:
            raise ValueError(f"malformed mol_desc {mol_desc!r}: no atoms")
        symbols, coords = [], []
        for entry in entries:
            tokens = [t for t in re.split(r"[\s,]+", entry) if t]
            if len(tokens) != 4:
                raise ValueError(f"malformed mol_desc atom {entry!r} in {mol_desc!r}: expected "
                                 f"'symbol x y z' (4 fields), got {len(tokens)}")
            symbols.append(_element(tokens[0], entry))
            coords.append(_floats(tokens[1:], f"mol_desc atom {entry!r} in {mol_desc!r}"))
        return symbols, np.array(coords, dtype=float)
    try:
        items = list(mol_desc)
        symbols = [_element(str(s), repr((s, x))) for s, x in items]
        coords = np.array([_floats(list(x), f"mol_desc coordinates {(s, x)!r}") for s, x in items])
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValueError) and "mol_desc" in str(exc):
            raise
        raise ValueError(f"malformed mol_desc {mol_desc!r}: expected 'Sym x y z; ...' or "
                         f"[(symbol, (x, y, z)), ...]") from None
    if coords.shape != (len(symbols), 3):
        raise ValueError(f"malformed mol_desc {mol_desc!r}: need three coordinates per atom")
    return symbols, coords


def parse_lattice(lattice) -> np.ndarray:
    """Parse ``'a1x a1y a1z; a2x ...; a3x ...'`` (or a 3x3 nested list) → (3, 3) array, rows = vectors."""
    if isinstance(lattice, str):
        rows = [r.strip() for r in _SPLIT_ROWS.split(lattice) if r.strip()]
        if len(rows) != 3:
            raise ValueError(f"malformed lattice {lattice!r}: expected 3 rows 'x y z' separated by ';', "
                             f"got {len(rows)}")
        mat = []
        for row in rows:
            tokens = [t for t in re.split(r"[\s,]+", row) if t]
            if len(tokens) != 3:
                raise ValueError(f"malformed lattice row {row!r} in {lattice!r}: expected 3 numbers, "
                                 f"got {len(tokens)}")
            mat.append(_floats(tokens, f"lattice row {row!r} in {lattice!r}"))
        mat = np.array(mat)
    else:
        try:
            mat = np.array(lattice, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"malformed lattice {lattice!r}: expected a string or a 3x3 array") from None
        if mat.shape != (3, 3) or not np.all(np.isfinite(mat)):
            raise ValueError(f"malformed lattice {lattice!r}: expected a finite 3x3 array")
    if abs(np.linalg.det(mat)) < 1e-8:
        raise ValueError(f"lattice {lattice!r} is singular (zero cell volume)")
    return mat


def parse_system(system) -> ParsedSystem:
    """pymatgen Structure or the paper's dict → :class:`ParsedSystem` (Bohr)."""
    if isinstance(system, dict):
        unknown = set(system) - _ALLOWED_KEYS
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)} in system dict; allowed: {sorted(_ALLOWED_KEYS)}")
        if "mol_desc" not in system:
            raise ValueError(f"system dict has no 'mol_desc' (atoms): {system!r}")
        if system.get("lattice") is None:
            raise ValueError(f"system dict has no 'lattice' (3 lattice vectors, Å) - a periodic "
                             f"calculation needs one: {system!r}")
        unit = str(system.get("unit", "angstrom")).lower()
        if unit not in ("angstrom", "a", "ang", "bohr", "b", "au"):
            raise ValueError(f"unknown unit {system.get('unit')!r} in system dict (use 'angstrom' or 'bohr')")
        scale = ANGSTROM_IN_BOHR if unit in ("angstrom", "a", "ang") else 1.0
        symbols, coords = parse_mol_desc(system["mol_desc"])
        lattice = parse_lattice(system["lattice"])
        return ParsedSystem(symbols, coords * scale, lattice * scale, system.get("basis"),
                            system.get("auxbasis"), system.get("pseudo"))
    if hasattr(system, "lattice") and hasattr(system, "sites"):  # pymatgen Structure
        if not getattr(system, "is_ordered", True):
            raise ValueError(f"disordered structure (partial occupancies) is not supported: {system.formula}")
        symbols = [site.specie.symbol for site in system.sites]
        coords = np.array(system.cart_coords, dtype=float) * ANGSTROM_IN_BOHR
        lattice = np.array(system.lattice.matrix, dtype=float) * ANGSTROM_IN_BOHR
        return ParsedSystem(symbols, coords, lattice)
    raise TypeError(f"system must be a pymatgen Structure, the reference paper's dict or a "
                    f"pyscf.pbc.gto.Cell; got {type(system).__name__}")


def build_cell(system, basis=None, pseudo=None, *, precision: float | None = None, verbose: int = 0):
    """Return ``(cell, auxbasis_from_input)`` for any accepted ``system``.

    ``basis`` / ``pseudo`` override what the input carries; the orbital basis defaults to STO-3G.
    The cell is built in Bohr (``unit='B'``), with ``spin = 0`` (restricted Kohn-Sham; an odd
    electron count per cell is fine as long as n_electrons × n_k is even).
    """
    pgto = require("pyscf.pbc.gto")
    if isinstance(system, pgto.Cell):
        if basis is None and pseudo is None and precision is None:
            return system, None
        cell = system.copy()
        elements = {cell.atom_pure_symbol(i) for i in range(cell.natm)}
        if basis is not None:
            cell.basis = resolve_basis(basis, elements)
        if pseudo is not None:
            cell.pseudo = check_pseudo(pseudo, elements)
        if precision is not None:
            cell.precision = precision
        cell.build(False, False)
        return cell, None
    parsed = parse_system(system)
    elements = set(parsed.symbols)
    cell = pgto.Cell()
    cell.unit = "B"
    cell.atom = [(s, tuple(float(x) for x in xyz)) for s, xyz in zip(parsed.symbols, parsed.coords)]
    cell.a = parsed.lattice
    cell.basis = resolve_basis(basis if basis is not None else (parsed.basis or "sto-3g"), elements)
    pseudo = pseudo if pseudo is not None else parsed.pseudo
    if pseudo is not None:
        cell.pseudo = check_pseudo(pseudo, elements)
    if precision is not None:
        cell.precision = precision
    cell.verbose = verbose
    cell.spin = 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Electron number .* spin")
        cell.build(dump_input=False, parse_arg=False)
    return cell, parsed.auxbasis
