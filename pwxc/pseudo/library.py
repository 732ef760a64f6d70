"""The bundled pseudopotential library (top-level ``pseudopotentials/`` folder) and user files.

Families:
    "gth-pbe" (GTH_PBE.dat) and "gth-pade" (GTH_PADE.dat, the LDA set): a family name picks, per
        element, the entry that the data file marks with the bare family name (e.g. Cu q11, Mg q10);
        a full name such as "gth-pbe-q19" picks that valence variant.
    "pseudodojo-pbe": PseudoDojo norm-conserving, scalar-relativistic PBE v0.4.1 "standard" UPF files
        (ONCVPSP, 39 of 43 with a nonlinear core correction); van Setten et al., Comput. Phys. Commun.
        226, 39 (2018).
A user's own files: a path to a UPF file (per element) or to a folder holding ``<Element>.upf``.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Mapping

from .gth import GTHPseudopotential, parse_cp2k_gth
from .upf import UPFError, UPFPseudopotential

FAMILY_FILES = {"gth-pbe": "GTH_PBE.dat", "gth-pade": "GTH_PADE.dat", "gth-lda": "GTH_PADE.dat"}
#: UPF families: name -> folder of <Element>.upf files under pseudopotential_dir()
UPF_FAMILIES = {"pseudodojo-pbe": "pseudodojo-nc-sr-pbe-v0.4.1-standard"}
_UPF_ALIASES = {"pseudodojo": "pseudodojo-pbe", "pseudodojo-nc-sr-pbe-v0.4.1-standard": "pseudodojo-pbe",
                "pseudodojo-nc-pbe": "pseudodojo-pbe"}


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


def upf_family_name(name: str) -> str | None:
    """Canonical UPF family name for `name` ("pseudodojo" -> "pseudodojo-pbe"), None if not one."""
    key = str(name).lower()
    key = _UPF_ALIASES.get(key, key)
    return key if key in UPF_FAMILIES else None


@functools.lru_cache(maxsize=None)
def load_upf(path: str) -> UPFPseudopotential:
    """Read (once per process and file path) a UPF pseudopotential file."""
    return UPFPseudopotential(path)


def _upf_in_folder(folder: Path, element: str, label: str) -> UPFPseudopotential:
    for name in (f"{element}.upf", f"{element}.UPF", f"{element.lower()}.upf"):
        if (folder / name).is_file():
            return load_upf(str(folder / name))
    matches = sorted(folder.glob(f"{element}[._-]*.upf")) + sorted(folder.glob(f"{element}[._-]*.UPF"))
    if len(matches) == 1:
        return load_upf(str(matches[0]))
    available = sorted({p.name.split(".")[0].split("_")[0] for p in folder.glob("*.[uU][pP][fF]")})
    raise ValueError(f"element {element} has no pseudopotential in {label} ({folder}); "
                     f"available: {', '.join(available) or 'none'}")


def load_pseudopotential(element: str, name: str):
    """Find the pseudopotential of `element` for `name`: a GTH family or variant ("gth-pbe",
    "gth-pbe-q19", "gth-pade"), a UPF family ("pseudodojo-pbe"), a UPF file or a folder of UPF files."""
    upf_family = upf_family_name(name)
    if upf_family is not None:
        folder = pseudopotential_dir() / UPF_FAMILIES[upf_family]
        if not folder.is_dir():
            raise FileNotFoundError(f"pseudopotential folder {folder} not found (set PWXC_PSEUDO_DIR)")
        return _upf_in_folder(folder, element, f"the {upf_family!r} family")
    path = Path(str(name)).expanduser()
    if str(name).lower().endswith(".upf") or path.is_file() or path.is_dir():
        if path.is_dir():
            return _upf_in_folder(path, element, "the folder")
        if not path.is_file():
            raise FileNotFoundError(f"pseudopotential file {path} not found")
        pp = load_upf(str(path.resolve()))
        if pp.element != element:
            raise ValueError(f"pseudopotential file {path} is for element {pp.element}, not {element}")
        return pp
    key = name.lower()
    family = next((f for f in sorted(FAMILY_FILES, key=len, reverse=True) if key.startswith(f)), None)
    if family is None:
        raise ValueError(f"unknown pseudopotential family {name!r}; known: "
                         f"{sorted(FAMILY_FILES) + sorted(UPF_FAMILIES)}, or a path to a UPF file or folder")
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


def resolve_pseudopotentials(species, pseudopotentials) -> dict:
    """Map each element in `species` to its pseudopotential (GTH parameters or a UPF file).

    Args:
        pseudopotentials: a family name ("gth-pbe", "pseudodojo-pbe", ...) or a folder of UPF files
            for all elements, or a dict element -> family/variant name, UPF path or pseudopotential
            object (elements missing from the dict raise).
    """
    result = {}
    for element in dict.fromkeys(species):
        if isinstance(pseudopotentials, Mapping) and element not in pseudopotentials:
            raise ValueError(f"no pseudopotential given for element {element}")
        spec = pseudopotentials[element] if isinstance(pseudopotentials, Mapping) else pseudopotentials
        if isinstance(spec, (GTHPseudopotential, UPFPseudopotential)):
            if spec.element != element:
                raise ValueError(f"pseudopotential {spec!r} given for element {element}")
            result[element] = spec
        else:
            result[element] = load_pseudopotential(element, spec)
    return result
