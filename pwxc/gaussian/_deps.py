"""Lazy access to the optional dependencies of :mod:`pwxc.gaussian`.

PySCF and basis-set-exchange are the optional extra ``pwxc[gaussian]``. Nothing in pwxc imports
them at module level; the functions below import them on first use and turn a missing package
into an ImportError that names the extra to install.
"""
from __future__ import annotations

import importlib

_HINT = "pwxc.gaussian needs the optional extra: pip install pwxc[gaussian]  (PySCF and basis-set-exchange)"


def require(module: str):
    """Import and return ``module`` (e.g. ``"pyscf.pbc.gto"``); ImportError naming the extra if missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"{_HINT}; importing {module!r} failed: {exc}") from exc


def have_pyscf() -> bool:
    """True when PySCF can be imported (tests use this to skip with a reason)."""
    try:
        importlib.import_module("pyscf.pbc.gto")
    except ImportError:
        return False
    return True
