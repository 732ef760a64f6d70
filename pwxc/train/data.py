"""Shipped training data: the reference paper's Appendix A.6 lattice constants and the train/val/test split.

The reference paper (Singh, Barsainyan & Ramsundar, Appendix A.6) lists nine "lattice constants" (Å).
:data:`PAPER_TABLE` keeps them verbatim. What the numbers are (see also :mod:`pwxc.structures`, which
owns the built-in crystals and gives the evidence):

* Cu 3.615, Ca 5.58, Ag 4.09, Pd 3.89, Rh 3.80, Al 4.05, Ni 3.52: the *conventional cubic* constant a
  of the fcc metal (the primitive cell used in calculations has vectors a/2 (0,1,1), ...).
* CaF₂ 3.900: the length a/√2 of a *primitive* fcc vector of the Materials Project's PBE-relaxed
  fluorite cell (a = 5.515 Å), not an experimental value and not the cubic constant.
* MgO 2.661: no length of rocksalt MgO (rocksalt: a = 4.212 Å, a/√2 = 2.978 Å, a/2 = 2.106 Å); it
  matches the cubic constant of the CsCl-type (B2) polymorph.

Training targets (:data:`TARGET_A`) are therefore conventional cubic constants of the *built-in*
structures: the paper's value for the fcc metals, and the experimental conventional constants of
rocksalt MgO (4.212 Å) and fluorite CaF₂ (5.463 Å) for the two compounds. Ni is ferromagnetic in
nature; the training samples are spin-unpolarised, so their Ni is non-magnetic Ni (a systematic error
of the model, not of the functional; ``pwxc.Model(..., magnetic_moments=[...])`` gives ferromagnetic Ni).

Split (a choice made here; the paper listed Al, Ni and Ca in its training table as well — that leak is
not repeated): test (held out, never seen in training or early stopping) = Al, Ni, Ca; validation (early
stopping only) = Pd, CaF₂; training = Cu, Ag, Rh, MgO.
"""
from __future__ import annotations

#: The reference paper's Appendix A.6 table, Å, verbatim (MgO and CaF2 are not rocksalt/fluorite cubic
#: constants; see the module docstring).
PAPER_TABLE = {"Cu": 3.615, "Ca": 5.58, "Ag": 4.09, "Pd": 3.89, "Rh": 3.80, "Al": 4.05, "Ni": 3.52,
               "MgO": 2.661, "CaF2": 3.900}

#: What each paper entry measures.
PAPER_MEANING = {
    **{m: "conventional cubic constant of fcc " + m for m in ("Cu", "Ca", "Ag", "Pd", "Rh", "Al", "Ni")},
    "MgO": "cubic constant of CsCl-type (B2) MgO, not rocksalt (rocksalt experimental a = 4.212 Å)",
    "CaF2": "primitive fcc vector a/√2 of the Materials Project PBE fluorite cell (a = 5.515 Å); "
            "experimental conventional a = 5.463 Å",
}

#: Experimental conventional cubic lattice constants used as training targets, Å.
TARGET_A = {"Cu": 3.615, "Ca": 5.58, "Ag": 4.09, "Pd": 3.89, "Rh": 3.80, "Al": 4.05, "Ni": 3.52,
            "MgO": 4.212, "CaF2": 5.463}

TRAIN = ("Cu", "Ag", "Rh", "MgO")
VALIDATION = ("Pd", "CaF2")
TEST = ("Al", "Ni", "Ca")
SPLIT = {"train": TRAIN, "validation": VALIDATION, "test": TEST}


def split_of(material: str) -> str:
    """'train', 'validation' or 'test' for one of the nine materials (KeyError otherwise)."""
    for name, members in SPLIT.items():
        if material in members:
            return name
    raise KeyError(f"{material!r} is not one of the paper's materials {sorted(TARGET_A)}")


def paper_samples(split: str = "train", settings: dict | None = None, primitive: bool = True):
    """Samples with experimental lattice-constant targets for one split of the paper's materials.

    Args:
        split: "train", "validation", "test" or "all".
        settings: calculation settings shared by the samples (see :class:`pwxc.train.Sample`);
            default small settings (ecut 20 Ha, k 4×4×4, gaussian smearing 0.01 Ha for metals).
            These defaults are far from converged: for real training pick converged settings
            per material (pwxc.workflows.converge).
        primitive: use primitive cells (1 atom for fcc metals).
    Returns:
        list of :class:`pwxc.train.Sample`, each with ``targets = {"lattice_constant": a (Å)}`` and
        the structure built at the experimental a (the E(a) scan is around it).
    """
    from ..structures import builtin_structure, lookup
    from .dataset import Sample

    names = sum(SPLIT.values(), ()) if split == "all" else SPLIT[split]
    out = []
    for name in names:
        meta = lookup(name)
        s = dict(ecut=20.0, kgrid=(4, 4, 4))
        if meta.metal:
            s.update(smearing="gaussian", temperature=0.01)
        s.update(settings or {})
        structure = builtin_structure(name, a=TARGET_A[name], cell="primitive" if primitive else "conventional")
        out.append(Sample(name=name, structure=structure, targets={"lattice_constant": TARGET_A[name]},
                          settings=s, lattice_constant=TARGET_A[name]))
    return out
