"""Name -> functional lookup: ``pwxc.xc.functional("pbe")``.

Names follow libxc (lower case).  Sums: "lda" = lda_x + lda_c_pw (PW92 with
the paper's constants = libxc LDA_C_PW = Quantum ESPRESSO's 'pw'),
"lda_pz" = lda_x + lda_c_pz, "pbe" = gga_x_pbe + gga_c_pbe, "pbesol" =
gga_x_pbe_sol + gga_c_pbe_sol.  Names not built in are looked up among the
trained functionals shipped in ``pwxc/data/functionals`` (see :mod:`.io`).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Union

from torch import nn

from .functional import Functional, SumFunctional
from .gga_pbe import BETA_PBESOL, MU_GE, PBECorrelation, PBEExchange
from .lda import PW92Correlation, PZ81Correlation, SlaterExchange

__all__ = ["functional", "available_functionals", "register_functional"]

_FACTORIES: Dict[str, Callable[[], Functional]] = {}
_ALIASES: Dict[str, str] = {
    "slater": "lda_x",
    "pw92": "lda_c_pw",
    "pz81": "lda_c_pz",
    "lda_pw": "lda",
    "pz": "lda_pz",
    "pbe_sol": "pbesol",
}


def register_functional(name: str, factory: Callable[[], Functional]) -> None:
    """Make ``functional(name)`` return ``factory()``; name is case-insensitive."""
    _FACTORIES[name.lower()] = factory


def _sum(name: str, *parts: str) -> Callable[[], Functional]:
    return lambda: SumFunctional([_FACTORIES[p]() for p in parts], name=name)


register_functional("lda_x", SlaterExchange)
register_functional("lda_c_pw", lambda: PW92Correlation(modified=False))
register_functional("lda_c_pw_mod", lambda: PW92Correlation(modified=True))
register_functional("lda_c_pz", PZ81Correlation)
register_functional("gga_x_pbe", PBEExchange)
register_functional("gga_c_pbe", PBECorrelation)
register_functional("gga_x_pbe_sol", lambda: PBEExchange(mu=MU_GE, name="gga_x_pbe_sol"))
register_functional(
    "gga_c_pbe_sol", lambda: PBECorrelation(beta=BETA_PBESOL, name="gga_c_pbe_sol")
)
register_functional("lda", _sum("lda", "lda_x", "lda_c_pw"))
register_functional("lda_pz", _sum("lda_pz", "lda_x", "lda_c_pz"))
register_functional("pbe", _sum("pbe", "gga_x_pbe", "gga_c_pbe"))
register_functional("pbesol", _sum("pbesol", "gga_x_pbe_sol", "gga_c_pbe_sol"))


def available_functionals(include_trained: bool = True) -> List[str]:
    """Sorted names accepted by :func:`functional` (built-in, then shipped trained ones)."""
    names = sorted(_FACTORIES)
    if include_trained:
        from .io import available

        names += [n for n in available() if n not in _FACTORIES]
    return names


def functional(xc: Union[str, Functional, nn.Module]) -> Functional:
    """Return the functional for a name, or ``xc`` itself if it already is a Functional.

    Accepts libxc-style names (case-insensitive, see :func:`available_functionals`),
    the names of trained functionals shipped with pwxc, and any
    :class:`~pwxc.xc.Functional` instance (built-in, ``HybridXC``,
    ``EnhancedXC``, a ``NeuralXC`` model such as ``MLP``, or your own
    subclass), which is returned unchanged -- as is any duck-typed object with
    ``is_gga`` and ``energy_density``.  Unknown names raise ValueError.
    """
    if isinstance(xc, Functional) or (hasattr(xc, "energy_density") and hasattr(xc, "is_gga")):
        return xc
    if isinstance(xc, nn.Module):
        raise TypeError(
            f"{type(xc).__name__} is an nn.Module but not a pwxc.xc.Functional; wrap a "
            "network in pwxc.xc.HybridXC(model=...) or subclass pwxc.xc.NeuralXC"
        )
    if not isinstance(xc, str):
        raise TypeError(f"xc must be a name or a pwxc.xc.Functional, not {type(xc).__name__}")
    key = xc.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in _FACTORIES:
        return _FACTORIES[key]()
    from .io import available, load

    if key in available():
        return load(key)
    raise ValueError(
        f"unknown functional {xc!r}; known: {', '.join(available_functionals())}"
    )
