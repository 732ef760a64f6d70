"""The bundled GTH parameter library (top-level ``pseudopotentials/`` folder).

Families: "gth-pbe" (GTH_PBE.dat) and "gth-pade" (GTH_PADE.dat, the LDA set). A family name picks,
per element, the entry that the data file marks with the bare family name (e.g. Cu q11, Mg q10);
a full name such as "gth-pbe-q19" picks that valence variant.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Mapping

from .gth import GTHPseudopotential, parse_cp2k_gth

FAMILY_FILES = {"gth-pbe": "GTH_PBE.dat", "gth-pade": "GTH_PADE.dat", "gth-lda": "GTH_PADE.dat"}


def pseudopotential_dir() -> Path:
    """Folder with the data files: $PWXC_PSEUDO_DIR, else the repository's ``pseudopotentials/``."""
    env = os.environ.get("PWXC_PSEUDO_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "pseudopotentials"


@functools.lru_cache(maxsize=None)
def _family(family: str) -> dict[str, list[GTHPseudopotential]]:
    path = pseudopotential_dir() / FAMILY_FILES[family]
    if not path.exists():
        raise FileNotFoundError(f"pseudopotential data file {path} not found (set PWXC_PSEUDO_DIR)")
    return parse_cp2k_gth(path.read_text())


def load_pseudopotential(element: str, name: str) -> GTHPseudopotential:
    """Find the GTH parameters of `element` for `name` ("gth-pbe", "gth-pbe-q19", "gth-pade", ...)."""
    key = name.lower()
    family = next((f for f in sorted(FAMILY_FILES, key=len, reverse=True) if key.startswith(f)), None)
    if family is None:
        raise ValueError(f"unknown pseudopotential family {name!r}; known: {sorted(FAMILY_FILES)}")
    candidates = _family(family).get(element)
    if not candidates:
        raise ValueError(f"element {element} has no pseudopotential in the {family!r} set")
    wanted = key.upper().replace("GTH-LDA", "GTH-PADE") if family == "gth-lda" else key.upper()
    bare = family.upper().replace("GTH-LDA", "GTH-PADE")
    for pp in candidates:
        names = [n.upper() for n in pp.aliases]
        if wanted == bare and bare in names:
            return pp
        if wanted != bare and wanted in names:
            return pp
    variants = ", ".join(pp.name for pp in candidates)
    raise ValueError(f"no {name!r} pseudopotential for {element}; available variants: {variants}")


def resolve_pseudopotentials(species, pseudopotentials) -> dict[str, GTHPseudopotential]:
    """Map each element in `species` to its GTH parameters.

    Args:
        pseudopotentials: a family name for all elements, or a dict element -> name or
            GTHPseudopotential (elements missing from the dict raise).
    """
    result = {}
    for element in dict.fromkeys(species):
        if isinstance(pseudopotentials, Mapping) and element not in pseudopotentials:
            raise ValueError(f"no pseudopotential given for element {element}")
        spec = pseudopotentials[element] if isinstance(pseudopotentials, Mapping) else pseudopotentials
        result[element] = spec if isinstance(spec, GTHPseudopotential) else load_pseudopotential(element, spec)
    return result
