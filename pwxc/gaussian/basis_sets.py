"""Basis-set and pseudopotential names → what PySCF's ``Cell`` accepts.

Resolution order for a basis *name* (orbital or auxiliary):

1. names PySCF ships (``sto-3g``, ``def2-svp``, ``gth-szv``, ``6-31g``, ...) are passed to PySCF as
   the name itself, after checking that every element of the cell is covered;
2. other names (the reference paper's auxiliary basis ``def2-sv(p)`` is one) are read from the
   offline data of the ``basis-set-exchange`` package (it ships its basis files; nothing is
   downloaded) and converted to PySCF's internal format
   ``[[l, (exponent, c_1, c_2, ...), ...], ...]`` per element;
3. anything else is a ValueError that quotes the name.

A basis that is already a dict / list (PySCF's own format) is passed through unchanged.
Exponents are in Bohr^-2, as in every Gaussian basis file.
"""
from __future__ import annotations

from typing import Iterable

from ._deps import require


def _pyscf_ships(name: str) -> bool:
    """True if PySCF knows ``name`` without asking basis-set-exchange."""
    B = require("pyscf.gto.basis")
    key = B._format_basis_name(name)
    tables = [B.ALIAS, B.GTH_ALIAS, getattr(B, "USER_BASIS_ALIAS", {}), getattr(B, "USER_GTH_ALIAS", {})]
    return any(key in t for t in tables) or B._is_pople_basis(key)


def _bse_shells_to_pyscf(shells: list) -> list:
    """Convert basis-set-exchange ``electron_shells`` to PySCF's list of shells.

    A BSE shell has ``angular_momentum`` [l] (or [0, 1] for Pople SP shells), a list of primitive
    exponents and one coefficient column per contracted function (per l for SP shells). PySCF's
    shell is ``[l, (alpha_1, c_11, c_12, ...), (alpha_2, ...), ...]`` (general contraction allowed).
    """
    out = []
    for sh in shells:
        if not str(sh.get("function_type", "gto")).startswith("gto"):
            raise ValueError(f"unsupported basis-set-exchange function type {sh.get('function_type')!r}")
        ams = [int(l) for l in sh["angular_momentum"]]
        exps = [float(x) for x in sh["exponents"]]
        coefs = [[float(c) for c in col] for col in sh["coefficients"]]
        if len(ams) == 1:
            groups = [(ams[0], coefs)]
        elif len(ams) == len(coefs):  # SP-type: one coefficient column per angular momentum
            groups = [(l, [col]) for l, col in zip(ams, coefs)]
        else:
            raise ValueError(f"cannot interpret basis-set-exchange shell with angular momenta {ams} "
                             f"and {len(coefs)} coefficient columns")
        for l, cols in groups:
            prims = [(a, *[col[i] for col in cols]) for i, a in enumerate(exps)]
            out.append([l, *prims])
    return out


def from_basis_set_exchange(name: str, elements: Iterable[str]) -> dict:
    """Read basis ``name`` for ``elements`` from basis-set-exchange's offline data.

    Returns ``{symbol: pyscf_shells}``. Raises ValueError quoting ``name`` (and the element) when
    the basis or an element is unknown there.
    """
    bse = require("basis_set_exchange")
    elements = sorted(set(elements))
    try:
        data = bse.get_basis(name, elements=elements)
    except KeyError as exc:  # BSE raises KeyError for unknown basis names and elements
        msg = str(exc).strip("'\"")
        if "not found in basis" in msg:
            raise ValueError(f"basis {name!r} has no functions for one of the elements {elements}: {msg}") from None
        raise ValueError(f"unknown basis set name {name!r}: neither PySCF nor basis-set-exchange "
                         f"knows it ({msg})") from None
    out = {}
    for symbol in elements:
        z = str(require("pyscf.data.elements").charge(symbol))
        entry = data["elements"].get(z)
        if not entry or not entry.get("electron_shells"):
            raise ValueError(f"basis {name!r} has no functions for element {symbol!r}")
        out[symbol] = _bse_shells_to_pyscf(entry["electron_shells"])
    return out


def resolve_basis(basis, elements: Iterable[str], role: str = "basis"):
    """Turn a basis specification into something ``pyscf.pbc.gto.Cell`` accepts.

    Args:
        basis: a basis name (str), or a dict ``{symbol: name_or_shells}`` (values resolved one by
            one), or PySCF shells (passed through).
        elements: element symbols of the cell.
        role: "basis" or "auxbasis", used in error messages.

    Returns the name itself when PySCF ships it, otherwise ``{symbol: shells}``.
    Raises ValueError quoting the offending name for unknown names / uncovered elements.
    """
    elements = sorted(set(elements))
    if basis is None:
        return None
    if isinstance(basis, dict):
        return {el: (resolve_basis(spec, [el], role)[el] if isinstance(spec, str) else spec)
                for el, spec in basis.items()}
    if not isinstance(basis, str):
        return basis
    name = basis.strip()
    if not name:
        raise ValueError(f"empty {role} name {basis!r}")
    if _pyscf_ships(name):
        B = require("pyscf.gto.basis")
        missing = []
        for el in elements:
            try:
                B.load(name, el)
            except Exception:  # BasisNotFoundError, KeyError from the data files, ...
                missing.append(el)
        if missing:
            # PySCF's own files may lack an element that basis-set-exchange has.
            extra = from_basis_set_exchange(name, missing)
            return {**{el: name for el in elements if el not in missing}, **extra}
        return name
    return from_basis_set_exchange(name, elements)


def check_pseudo(pseudo, elements: Iterable[str]):
    """Validate a pseudopotential name (e.g. ``"gth-pbe"``) for every element.

    Returns ``pseudo`` unchanged (PySCF loads it); ValueError quoting the name otherwise.
    """
    if pseudo is None or not isinstance(pseudo, str):
        return pseudo
    B = require("pyscf.gto.basis")
    for el in sorted(set(elements)):
        try:
            B.load_pseudo(pseudo, el)
        except Exception:
            raise ValueError(f"unknown pseudopotential {pseudo!r} for element {el!r} "
                             f"(PySCF ships GTH sets such as 'gth-pbe', 'gth-lda')") from None
    return pseudo
