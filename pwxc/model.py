"""Model: the physics of a calculation (crystal, XC functional, pseudopotentials, smearing).

A Model knows nothing about discretisation (no ecut, no k-points): that is PlaneWaveBasis.
"""
from __future__ import annotations

import math

import torch

from .crystal import Crystal
from .occupation import SMEARINGS
from .pseudo import resolve_pseudopotentials
from . import xc as xc_module


def xc_family(functional) -> str:
    """'lda', 'pbe', 'pbesol' or the base name of a functional (neural ones: their base)."""
    name = str(getattr(functional, "base_name", getattr(functional, "name", ""))).lower()
    return "lda" if name.startswith("lda") else name


def _default_pseudopotentials(xc) -> str:
    name = xc.lower() if isinstance(xc, str) else getattr(xc, "base_name", "pbe")
    return "gth-pade" if str(name).startswith("lda") else "gth-pbe"


class Model:
    """Kohn–Sham model of a crystal.

    Args:
        structure: pymatgen ``Structure`` (Å) or a :class:`pwxc.Crystal` (Bohr).
        xc: functional name known to :func:`pwxc.xc.functional` ("lda", "lda_pz", "pbe", "pbesol", ...)
            or a functional object (e.g. :class:`pwxc.xc.HybridXC`).
        pseudopotentials: a family for all elements — GTH ("gth-pbe", "gth-pade") or norm-conserving
            UPF ("pseudodojo-pbe": PseudoDojo with nonlinear core corrections) — a folder of
            ``<Element>.upf`` files, or a dict element -> family, variant name or UPF file path
            (e.g. {"Cu": "gth-pbe-q19", "O": "my/O.upf"}). Default: "gth-pade" for LDA, else "gth-pbe".
            A UPF made for another functional than ``xc`` gives a PseudopotentialFunctionalWarning.
        smearing: None (fixed occupations, insulators), "gaussian", "fermi-dirac",
            "marzari-vanderbilt" (cold) or "methfessel-paxton".
        temperature: smearing width σ, Hartree (required > 0 with smearing).
        charge: extra electrons removed (+) or added (-) relative to the neutral cell.
        magnetic_moments: starting collinear magnetic moment of every atom (Bohr magnetons, one number
            per site, in site order). Giving them makes the calculation spin-polarised (two spin
            densities, n_spin = 2; needs smearing); None (default) is spin-unpolarised. The moments
            only set the start: the SCF finds the magnetisation (all zeros stays non-magnetic).
        dtype, device: floating dtype (default float64) and torch device for every tensor.
    """

    def __init__(self, structure, xc="pbe", pseudopotentials=None, smearing=None, temperature=0.0,
                 charge: float = 0.0, magnetic_moments=None, dtype=torch.float64, device=None):
        if isinstance(structure, Crystal):
            crystal = structure.to(dtype=dtype, device=device)
            crystal.check()
        elif hasattr(structure, "lattice") and hasattr(structure, "frac_coords"):
            crystal = Crystal.from_pymatgen(structure, dtype=dtype, device=device)
        else:
            raise TypeError("structure must be a pymatgen Structure or a pwxc.Crystal, "
                            f"got {type(structure).__name__}")
        self.crystal = crystal
        self.dtype = dtype
        self.device = crystal.lattice.device
        self.xc = xc_module.functional(xc)
        self.pseudopotentials = resolve_pseudopotentials(
            crystal.species, pseudopotentials if pseudopotentials is not None else _default_pseudopotentials(xc))
        family = xc_family(self.xc)
        for pp in self.pseudopotentials.values():
            if hasattr(pp, "check_functional"):
                pp.check_functional(family)
        for name, value in (("temperature", temperature), ("charge", charge)):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(value, bool) or not math.isfinite(number):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if float(temperature) < 0:
            raise ValueError(f"temperature (smearing width, Hartree) must be >= 0, got {temperature!r}")
        if smearing is not None:
            smearing = smearing.lower()
            if smearing not in SMEARINGS:
                raise ValueError(f"unknown smearing {smearing!r}; choose one of {sorted(SMEARINGS)} or None")
            if not temperature or float(temperature) <= 0:
                raise ValueError(f"smearing={smearing!r} needs temperature > 0 (Hartree), got {temperature!r}")
        elif temperature:
            raise ValueError("temperature given but smearing=None: choose a smearing "
                             "(e.g. smearing='gaussian')")
        self.smearing = smearing
        self.temperature = float(temperature)
        n_el = sum(self.pseudopotentials[s].z_ion for s in crystal.species) - charge
        if n_el <= 0:
            raise ValueError(f"cell has {n_el} valence electrons")
        self.n_electrons = float(n_el)
        self.charge = float(charge)
        if smearing is None and abs(n_el / 2 - round(n_el / 2)) > 1e-10:
            raise ValueError(f"{n_el:g} valence electrons cannot fill bands doubly with fixed occupations: "
                             "the system is (at least) metallic or spin-polarised; set smearing='gaussian' "
                             "(or another smearing) with a temperature")
        #: starting moments per atom (μ_B), a tensor, or None when spin-unpolarised
        self.magnetic_moments = None
        if magnetic_moments is not None:
            if not hasattr(magnetic_moments, "__len__"):
                raise ValueError("magnetic_moments needs one value per atom (a list), got the single value "
                                 f"{magnetic_moments!r}")
            moments = torch.as_tensor(magnetic_moments, dtype=dtype).reshape(-1)
            if len(moments) != len(crystal.species):
                raise ValueError(f"magnetic_moments needs one value per atom ({len(crystal.species)}), "
                                 f"got {len(moments)}")
            if not torch.isfinite(moments).all():
                raise ValueError("magnetic_moments must be finite")
            z = torch.tensor([self.pseudopotentials[s].z_ion for s in crystal.species], dtype=dtype)
            if bool((moments.abs() > z).any()):
                raise ValueError("a starting magnetic moment exceeds the valence charge of its atom")
            if smearing is None:
                raise ValueError("spin-polarised calculations (magnetic_moments) need smearing, e.g. "
                                 "smearing='gaussian' with a temperature")
            self.magnetic_moments = moments.to(self.device)
        #: number of spin components of the density: 1 unpolarised, 2 collinear (up, down)
        self.n_spin = 1 if self.magnetic_moments is None else 2

    @property
    def species(self):
        return self.crystal.species

    def __repr__(self):
        formula = "".join(self.crystal.species)
        return (f"Model({formula}, xc={getattr(self.xc, 'name', type(self.xc).__name__)}, "
                f"n_electrons={self.n_electrons:g}, smearing={self.smearing}, temperature={self.temperature} Ha"
                + ("" if self.n_spin == 1 else f", spin-polarised, start moments {self.magnetic_moments.tolist()} μ_B")
                + ")")
