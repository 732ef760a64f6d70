"""Defaults for settings a user leaves out: cutoff, k-point grid, smearing; structure loading.

Every default chosen is returned with the reason, printed (stderr, unless ``quiet``) and stored with
the results, so a number can always be traced back to its settings.

* ``ecut``: the largest per-element recommended cutoff in ``pwxc/data/recommended_ecut.json``
  (made with :func:`pwxc.workflows.converge` at 1 meV/atom, see that file's ``method``).
* ``kgrid``: Monkhorst–Pack n_i = max(1, ceil(|b_i| / Δk)) with |b_i| the reciprocal lattice vector
  lengths (2π included, Bohr⁻¹) of the cell at the *start* of the workflow, and Δk = 0.20 Bohr⁻¹ for
  metals, 0.35 Bohr⁻¹ for insulators (Al fcc → 8×8×8, Si diamond → 4×4×4). Γ-centred.
* smearing: metals get Marzari–Vanderbilt cold smearing with σ = 0.01 Ha; insulators fixed
  occupations. Metal = the built-in metadata says so, or an odd number of valence electrons per cell,
  or every element is a metal (pymatgen ``Element.is_metal``).
"""
from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

import numpy as np

from ..units import ANGSTROM_IN_BOHR

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
RECOMMENDED_ECUT_FILE = DATA_DIR / "recommended_ecut.json"
#: k-point spacing Δk (Bohr⁻¹, 2π included) for metals and insulators
KSPACING_METAL = 0.20
KSPACING_INSULATOR = 0.35
DEFAULT_SMEARING = "marzari-vanderbilt"
DEFAULT_TEMPERATURE = 0.01          # Hartree
#: used (with a loud warning) for elements without a recommended cutoff
FALLBACK_ECUT = 40.0


@functools.lru_cache(maxsize=1)
def _recommended_table() -> dict:
    if not RECOMMENDED_ECUT_FILE.exists():
        return {}
    return json.loads(RECOMMENDED_ECUT_FILE.read_text())


def recommended_ecut(species, pseudopotentials="gth-pbe") -> tuple[float, str]:
    """max over elements of the recommended cutoff (Hartree), and a one-line explanation.

    Args:
        species: element symbols (duplicates allowed).
        pseudopotentials: family name ("gth-pbe", "gth-pade"; the LDA family falls back to the
            GTH-PBE table, whose projector radii are nearly identical; "pseudodojo-pbe": the PseudoDojo
            table's 'normal' hints) or a dict element -> name.
    """
    table = _recommended_table().get("families", {})
    values, parts, missing = [], [], []
    for el in dict.fromkeys(species):
        fam = pseudopotentials.get(el, "gth-pbe") if isinstance(pseudopotentials, dict) else pseudopotentials
        fam = str(getattr(fam, "name", fam)).lower()
        from ..pseudo.library import upf_family_name
        fam = upf_family_name(fam) or fam
        if fam in table:
            entry = table[fam].get(el)
        elif fam.startswith(("gth-pade", "gth-lda")):
            entry = table.get("gth-pbe", {}).get(el)            # LDA set: same projector radii
        else:                                                   # a variant such as gth-pbe-q19
            entry = table.get("gth-pbe", {}).get(el)
            if entry is None or entry.get("variant", "").lower() != fam:
                entry = None
        if entry is None:
            missing.append(el)
            values.append(FALLBACK_ECUT)
            parts.append(f"{el}: no recommendation, fallback {FALLBACK_ECUT:g}")
        else:
            values.append(float(entry["ecut_ha"]))
            flag = "" if entry.get("status") in ("converged", "pseudodojo-hint") else f" ({entry.get('status', 'partial')})"
            parts.append(f"{el}: {float(entry['ecut_ha']):g}{flag}")
    ecut = max(values)
    why = f"max of recommended cutoffs [{'; '.join(parts)}] Ha from {RECOMMENDED_ECUT_FILE.name}"
    if missing:
        why += f"; WARNING: no converged cutoff known for {', '.join(missing)}: run pwxc converge"
    return ecut, why


def kgrid_from_spacing(lattice_bohr, spacing: float) -> tuple[int, int, int]:
    """n_i = max(1, ceil(|b_i| / Δk - 1e-6)): Monkhorst–Pack grid for a k spacing Δk (Bohr⁻¹, 2π included)."""
    lattice = np.asarray(lattice_bohr, dtype=float)
    recip = 2 * np.pi * np.linalg.inv(lattice).T
    return tuple(max(1, math.ceil(float(np.linalg.norm(b)) / spacing - 1e-6)) for b in recip)


def valence_electrons(species, pseudopotentials="gth-pbe") -> float:
    """Valence electrons per cell with the given GTH pseudopotentials."""
    from ..pseudo import resolve_pseudopotentials
    pps = resolve_pseudopotentials(species, pseudopotentials)
    return float(sum(pps[s].z_ion for s in species))


def guess_metal(structure, pseudopotentials="gth-pbe", builtin=None) -> tuple[bool, str]:
    """Decide metal vs insulator without a calculation; returns (is_metal, reason)."""
    from pymatgen.core import Element

    if builtin is not None:
        return bool(builtin.metal), f"built-in metadata of {builtin.name} says {'metal' if builtin.metal else 'insulator'}"
    species = [site.specie.symbol for site in structure]
    n_el = valence_electrons(species, pseudopotentials)
    if abs(n_el / 2 - round(n_el / 2)) > 1e-8:
        return True, f"odd number of valence electrons per cell ({n_el:g})"
    if all(Element(el).is_metal for el in set(species)):
        return True, "all elements are metals"
    return False, ("contains non-metals and an even electron count: treated as an insulator "
                   "(pass smearing=... to override)")


def load_structure(spec):
    """(pymatgen Structure, label, builtin metadata or None) from a Structure, a pwxc.Crystal,
    a built-in name (``pwxc.structures.known_structures()``) or a structure file (CIF, POSCAR, ...)."""
    from pymatgen.core import Lattice, Structure

    from .. import structures
    from ..crystal import Crystal
    from ..units import BOHR_IN_ANGSTROM

    if isinstance(spec, Structure):
        return spec, spec.composition.reduced_formula, None
    if isinstance(spec, Crystal):
        lattice = spec.lattice.detach().cpu().numpy() * BOHR_IN_ANGSTROM
        s = Structure(Lattice(lattice), list(spec.species), spec.positions.detach().cpu().numpy())
        return s, s.composition.reduced_formula, None
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if structures.is_builtin(str(spec)) and not path.is_file():
            meta = structures.lookup(str(spec))
            return structures.builtin_structure(meta.name), meta.name, meta
        if path.is_file():
            try:
                s = Structure.from_file(str(path))
            except Exception as err:       # pymatgen raises many types for unreadable files
                raise ValueError(f"could not read a structure from {path}: {err}") from err
            return s, path.stem, None
        raise ValueError(f"{str(spec)!r} is neither a structure file nor a built-in structure; "
                         f"built-ins: {', '.join(structures.known_structures())}")
    raise TypeError(f"structure must be a pymatgen Structure, a pwxc.Crystal, a built-in name or a file path, "
                    f"got {type(spec).__name__}")


def choose_settings(structure, *, xc="pbe", ecut=None, kgrid=None, kshift=(0, 0, 0), builtin=None,
                    engine="planewave", model_kwargs=None, quiet=False):
    """Fill in ecut, kgrid and smearing; returns (settings dict, defaults dict name -> reason).

    ``settings`` holds everything that determines an energy (used in result-file keys):
    engine, xc, pseudopotentials, ecut (Ha), kgrid, kshift, smearing, temperature (Ha) and any
    further model keywords. Reasons for each default are printed unless ``quiet``.
    """
    model_kwargs = dict(model_kwargs or {})
    defaults = {}
    xc_name = xc if isinstance(xc, str) else getattr(xc, "name", type(xc).__name__)
    if engine == "planewave":
        pseudo = model_kwargs.pop("pseudopotentials", None)
        if pseudo is None:
            pseudo = "gth-pade" if str(xc_name).lower().startswith("lda") else "gth-pbe"
            defaults["pseudopotentials"] = f"{pseudo} (default family for xc={xc_name})"
    else:
        pseudo = model_kwargs.pop("pseudo", None)
    species = [site.specie.symbol for site in structure]
    lattice_bohr = structure.lattice.matrix * ANGSTROM_IN_BOHR
    smearing = model_kwargs.pop("smearing", "unset")
    temperature = model_kwargs.pop("temperature", None)
    if smearing == "unset" and temperature:
        smearing = DEFAULT_SMEARING if engine == "planewave" else "fermi"
        defaults["smearing"] = f"{smearing} (a smearing width was given)"
    if smearing == "unset":
        metal, why = guess_metal(structure, pseudo if engine == "planewave" and pseudo else "gth-pbe", builtin)
        if metal:
            smearing = DEFAULT_SMEARING if engine == "planewave" else "fermi"
            temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
            defaults["smearing"] = f"{smearing}, width {temperature:g} Ha ({why})"
        else:
            smearing, temperature = None, 0.0 if temperature is None else temperature
            defaults["smearing"] = f"none, fixed occupations ({why})"
    elif smearing is not None and temperature is None:
        temperature = DEFAULT_TEMPERATURE
        defaults["temperature"] = f"{DEFAULT_TEMPERATURE:g} Ha (default smearing width)"
    if smearing is None and temperature:
        raise ValueError("temperature given but smearing=None: choose a smearing (e.g. smearing='gaussian')")
    if smearing is None and temperature is None:
        temperature = 0.0
    if engine == "planewave" and ecut is None:
        ecut, why = recommended_ecut(species, pseudo)
        defaults["ecut"] = f"{ecut:g} Ha ({why})"
    if kgrid is None:
        spacing = KSPACING_METAL if smearing else KSPACING_INSULATOR
        kgrid = kgrid_from_spacing(lattice_bohr, spacing)
        defaults["kgrid"] = (f"{'x'.join(map(str, kgrid))} (k spacing {spacing:g} Bohr^-1, "
                             f"{'metal' if smearing else 'insulator'} rule)")
    elif isinstance(kgrid, int):
        kgrid = (kgrid,) * 3
    settings = dict(engine=engine, xc=xc_name, kgrid=[int(n) for n in kgrid],
                    kshift=[float(s) for s in kshift], smearing=smearing, temperature=float(temperature))
    if engine == "planewave":
        settings.update(ecut=float(ecut), pseudopotentials=pseudo)
    else:
        settings.update(basis=model_kwargs.pop("basis", None), pseudo=pseudo)
    settings["extra"] = {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                         for k, v in sorted(model_kwargs.items())}
    if not quiet:
        for name, why in defaults.items():
            print(f"pwxc: {name} not given -> {why}", file=sys.stderr, flush=True)
    return settings, defaults, model_kwargs
