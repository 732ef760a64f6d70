"""Norm-conserving pseudopotentials in the Unified Pseudopotential Format (UPF v2, and v1 where simple).

Written against the format description of Quantum ESPRESSO's UPF (v2: XML-like sections with
attributes; v1: sections with positional header lines). What is read, and the units of the file:

    PP_HEADER   element, z_valence, pseudo_type (NC only), functional, core_correction, l_max
    PP_R, PP_RAB          radial mesh r_i (Bohr) and dr/di
    PP_LOCAL              V_loc(r), Rydberg
    PP_BETA.j             r β_j(r) with its angular_momentum (l); PP_DIJ: D_ij, Rydberg
    PP_NLCC               partial core density ρ_c(r), Bohr⁻³ (nonlinear core correction)
    PP_RHOATOM            4π r² ρ_atom(r), Bohr⁻¹ (initial density guess)

Where the local potential is already −Z/r, the files are not exact: they are written on a mesh that
extends far beyond the generator's output grid (ONCVPSP rlmax = 3–6 Bohr), and out there r V/2 + Z is
interpolation noise of 1e-6–1e-5, rising to 2e-3 beyond 9.8 Bohr for Cu. Since the G = 0 term weighs it
with 4π r, that noise is a spurious pressure (Cu: 2 GPa when integrating to 10 Bohr, +0.5 % in a₀).
The radial integrals of V_loc and of the core density therefore stop at ``r_cut``: the family's value
(``rcut`` of the ``<El>.toml`` beside the file: 5.99 Bohr for the bundled PseudoDojo set, as
PseudoLibrary/DFTK use it), else 6 Bohr (the same mesh points). Quantum ESPRESSO stops at 10 Bohr:
pass ``r_cut=10`` to compare with it. The atomic density (initial guess only) uses the whole mesh.

The energies the file's projectors and D_ij define are in Rydberg, so pwxc uses h = D/2 (Hartree)
with the projectors as they are. Reciprocal-space form factors (Fourier convention of
:mod:`pwxc.pseudo.gth`: f(q) = ∫ f(r) e^{-iq·r} d³r) come from :class:`pwxc.pseudo.radial.RadialTransform`:

    local:  v(q) = 4π ∫ r² [V(r) + Z erf(r)/r] j_0(qr) dr − 4πZ e^{-q²/4}/q²   (long range analytic)
    β_j:    R_j(q) = 4π ∫ r² β_j(r) j_l(qr) dr
    core:   ρ_c(q) = 4π ∫ r² ρ_c(r) j_0(qr) dr
"""
from __future__ import annotations

import hashlib
import math
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import erf

from .radial import RadialTransform

_ATTR = re.compile(r'([A-Za-z_][\w.]*)\s*=\s*"([^"]*)"')
_NUMBER_FIX = re.compile(r"(?<=[0-9.])[dD](?=[+-]?\d)")


#: radial integrals of the local potential and the core density stop here (Bohr) unless the family's
#: metadata gives a radius; every norm-conserving local potential is -Z/r well inside it
R_INTEGRATION = 6.0


def _family_rcut(path: Path) -> float:
    """The ``rcut`` of the pseudopotential family's metadata file ``<stem>.toml`` beside the UPF file
    (PseudoDojo as collected by PseudoLibrary: 5.99 Bohr), else :data:`R_INTEGRATION` (6 Bohr)."""
    meta = path.with_suffix(".toml")
    if meta.is_file():
        match = re.search(r"^\s*rcut\s*=\s*([0-9.eE+-]+)", meta.read_text(), re.MULTILINE)
        if match:
            return float(match.group(1))
    return R_INTEGRATION


class UPFError(ValueError):
    """A UPF file that cannot be used: malformed, truncated, or of an unsupported kind."""


class PseudopotentialFunctionalWarning(UserWarning):
    """The XC functional of a calculation differs from the one its pseudopotentials were made with."""


def _numbers(text: str, where: str, path) -> np.ndarray:
    try:
        return np.array(_NUMBER_FIX.sub("E", text).split(), dtype=float)
    except ValueError as err:
        raise UPFError(f"{path}: non-numeric data in {where}: {err}") from None


def _section(text: str, tag: str, path, required: bool = True):
    """(attributes dict, body text) of the first <tag ...>body</tag> (or <tag .../>), None when absent."""
    opening = re.search(rf"<{re.escape(tag)}\b([^>]*)>", text)
    if opening is None:
        if required:
            raise UPFError(f"{path}: section <{tag}> is missing (truncated or not a UPF file?)")
        return None
    inside = opening.group(1)
    attrs = dict(_ATTR.findall(inside))
    if inside.rstrip().endswith("/"):
        return attrs, ""
    close = text.find(f"</{tag}>", opening.end())
    if close < 0:
        raise UPFError(f"{path}: section <{tag}> is not closed (file truncated?)")
    return attrs, text[opening.end():close]


def _flag(value: str) -> bool:
    return value.strip().upper().startswith(("T", ".T"))


def _functional_family(name: str) -> str:
    """Coarse family of a UPF functional string: 'pbe', 'pbesol', 'lda' or the lowered string."""
    words = name.upper().replace("-", " ").split()
    joined = " ".join(words)
    if "PBESOL" in joined or "PSX" in words or "PSC" in words:
        return "pbesol"
    if "PBE" in words or ("PBX" in words and "PBC" in words):
        return "pbe"
    if joined in ("PZ", "LDA", "PW", "SLA PZ", "SLA PW") or (words[:1] == ["SLA"] and "NOGX" in words):
        return "lda"
    return name.strip().lower()


class UPFPseudopotential:
    """A norm-conserving (Kleinman–Bylander form) pseudopotential read from a UPF file.

    Same interface as :class:`pwxc.pseudo.gth.GTHPseudopotential` (z_ion, local_form_factor,
    alpha_z, lmax, n_projectors, projector_form_factor, h), plus the partial core density.

    Attributes:
        element, z_ion (valence charge), functional (as written in the file), path, sha256.
        h: per l, the (n_l, n_l) coupling matrix D^l_ij in Hartree.
        has_core_correction: True when the file has a nonzero PP_NLCC.
    """

    def __init__(self, path, text: str | None = None, r_cut: float | None = None):
        path = Path(path)
        self.path = path
        #: radius (Bohr) where the radial integrals of V_loc and of the densities stop (see module doc)
        self.r_cut = float(r_cut) if r_cut is not None else _family_rcut(path)
        if not (math.isfinite(self.r_cut) and self.r_cut > 0):
            raise UPFError(f"{path}: r_cut must be a positive radius (Bohr), got {r_cut!r}")
        if text is None:
            try:
                raw = path.read_bytes()
            except OSError as err:
                raise UPFError(f"cannot read pseudopotential file {path}: {err}") from None
            self.sha256 = hashlib.sha256(raw).hexdigest()
            text = raw.decode("utf-8", errors="replace")
        else:
            self.sha256 = hashlib.sha256(text.encode()).hexdigest()
        if "<PP_HEADER" not in text:
            raise UPFError(f"{path}: no <PP_HEADER> section: not a UPF pseudopotential file")
        version2 = re.search(r"<UPF\s+version\s*=", text) is not None
        if version2 and "</UPF>" not in text:
            raise UPFError(f"{path}: no closing </UPF> tag: the file is truncated")
        data = _read_v2(text, path) if version2 else _read_v1(text, path)
        self._setup(data, path)

    # ------------------------------------------------------------------ parsing results
    def _setup(self, d: dict, path):
        self.element = d["element"].strip()
        self.name = path.name
        self.aliases = (path.name,)
        self.functional = d["functional"].strip()
        self.functional_family = _functional_family(self.functional)
        self.z_ion = float(d["z_valence"])
        if abs(self.z_ion - round(self.z_ion)) < 1e-8:
            self.z_ion = int(round(self.z_ion))
        r, rab = d["r"], d["rab"]
        n = len(r)
        for key in ("rab", "vloc"):
            if len(d[key]) != n:
                raise UPFError(f"{path}: {key} has {len(d[key])} points, the mesh {n} (file truncated?)")
        if not (np.all(np.isfinite(r)) and np.all(np.diff(r) > 0)):
            raise UPFError(f"{path}: the radial mesh PP_R is not increasing and finite")
        self.r, self.rab = r, rab
        # Integrals of the local potential and of the densities stop at r_cut (module docstring):
        # n = first point beyond r_cut, made odd for Simpson (QE's rule, with its r_cut = 10 Bohr).
        n_int = int(np.searchsorted(r, self.r_cut, side="right")) + 1
        n_int = min(n, 2 * ((n_int + 1) // 2) - 1)
        r, rab = r[:n_int], rab[:n_int]
        z = float(self.z_ion)
        # V(r) + Z erf(r)/r, Hartree: short ranged (erf(r)/r → 2/√π at r = 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            erf_over_r = np.where(r > 0, erf(r) / np.where(r > 0, r, 1.0), 2 / math.sqrt(math.pi))
        v_short = 0.5 * d["vloc"][:n_int] + z * erf_over_r
        self._local = RadialTransform(r, rab, r**2 * v_short, l=0)
        self._alpha_z = float(self._local.exact(np.zeros(1))[0][0]) + math.pi * z

        betas = d["betas"]
        dij = d["dij"]
        nb = len(betas)
        if dij.shape != (nb, nb):
            raise UPFError(f"{path}: PP_DIJ has shape {dij.shape}, expected ({nb}, {nb})")
        ls = [b["l"] for b in betas]
        for i in range(nb):
            for j in range(nb):
                if ls[i] != ls[j] and abs(dij[i, j]) > 1e-12:
                    raise UPFError(f"{path}: D_ij couples projectors of different l ({ls[i]}, {ls[j]})")
        self.lmax = max(ls) if ls else -1
        if self.lmax > 3:
            raise UPFError(f"{path}: projectors with l = {self.lmax} > 3 are not supported")
        self._projectors, h = [], []
        for l in range(self.lmax + 1):
            idx = [i for i in range(nb) if ls[i] == l]
            self._projectors.append([RadialTransform(self.r, self.rab, self.r * betas[i]["r_beta"], l=l)
                                     for i in idx])
            h.append(tuple(tuple(0.5 * float(dij[i, j]) for j in idx) for i in idx))
        self.h = tuple(h)

        core = d.get("nlcc")
        self.has_core_correction = core is not None and bool(np.any(core != 0))
        self._core = RadialTransform(r, rab, r**2 * core[:n_int], l=0) if self.has_core_correction else None
        rho_atom = d.get("rhoatom")
        self._atom = (RadialTransform(self.r, self.rab, rho_atom, l=0, prefactor=1.0)
                      if rho_atom is not None and np.any(rho_atom != 0) else None)

    # ------------------------------------------------------------------ interface
    def n_projectors(self, l: int) -> int:
        return len(self._projectors[l]) if 0 <= l <= self.lmax else 0

    def local_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """v_loc(q) + 4πZ/q² (Hartree·Bohr³), smooth at q = 0 where it equals :attr:`alpha_z`."""
        x = q**2 / 4
        small = x < 1e-8
        x_safe = torch.where(small, torch.ones_like(x), x)
        ratio = torch.where(small, 1 - x / 2, -torch.expm1(-x_safe) / x_safe)   # (1 - e^{-x})/x
        return self._local(q) + math.pi * self.z_ion * ratio

    def coulomb_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """Long-range part -4πZ/q² (Hartree·Bohr³); callers exclude q = 0."""
        return -4 * math.pi * self.z_ion / q**2

    @property
    def alpha_z(self) -> float:
        """lim_{q→0} [v_loc(q) + 4πZ/q²] = 4π ∫ r² (V(r) + Z/r) dr, Hartree·Bohr³."""
        return self._alpha_z

    def projector_form_factor(self, l: int, i: int, q: torch.Tensor) -> torch.Tensor:
        """R_li(q) = 4π ∫ r² β_li(r) j_l(qr) dr for the i-th (1-based) projector of channel l."""
        return self._projectors[l][i - 1](q)

    def core_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """ρ_c(q) = 4π ∫ r² ρ_c(r) j_0(qr) dr (electrons); zero without a core correction."""
        if self._core is None:
            return torch.zeros_like(q)
        return self._core(q)

    def atomic_density_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """Fourier transform of the neutral pseudo-atom's valence density (electrons; z_ion at q = 0),
        from PP_RHOATOM, else a Gaussian of width 1 Bohr."""
        if self._atom is None:
            return self.z_ion * torch.exp(-q**2 / 4)
        return self._atom(q)

    def check_functional(self, xc_family: str):
        """Warn (PseudopotentialFunctionalWarning) if the file was made for another functional."""
        if xc_family and self.functional_family != xc_family:
            warnings.warn(f"{self.path.name}: pseudopotential generated with {self.functional!r}, used with "
                          f"xc={xc_family!r}: the core and the valence see different functionals",
                          PseudopotentialFunctionalWarning, stacklevel=3)

    def __repr__(self):
        core = ", core correction" if self.has_core_correction else ""
        return (f"UPFPseudopotential({self.element}, {self.path.name}, Z={self.z_ion:g}, "
                f"{self.functional}{core})")


# ---------------------------------------------------------------------- UPF v2
def _read_v2(text: str, path) -> dict:
    header, _ = _section(text, "PP_HEADER", path)
    _check_kind(header.get("pseudo_type", ""), header, path)
    for key in ("element", "z_valence"):
        if key not in header:
            raise UPFError(f"{path}: PP_HEADER has no {key!r}")
    d = {"element": header["element"], "z_valence": header["z_valence"],
         "functional": header.get("functional", "")}
    try:
        float(d["z_valence"])
    except ValueError:
        raise UPFError(f"{path}: z_valence {d['z_valence']!r} is not a number") from None
    d["r"] = _numbers(_section(text, "PP_R", path)[1], "PP_R", path)
    d["rab"] = _numbers(_section(text, "PP_RAB", path)[1], "PP_RAB", path)
    d["vloc"] = _numbers(_section(text, "PP_LOCAL", path)[1], "PP_LOCAL", path)
    mesh = header.get("mesh_size")
    if mesh is not None and int(float(mesh)) != len(d["r"]):
        raise UPFError(f"{path}: PP_R has {len(d['r'])} points, PP_HEADER mesh_size says {mesh} (truncated?)")
    n_proj = int(float(header.get("number_of_proj", "0")))
    betas = []
    for j in range(1, n_proj + 1):
        attrs, body = _section(text, f"PP_BETA.{j}", path)
        values = _numbers(body, f"PP_BETA.{j}", path)
        if "angular_momentum" not in attrs:
            raise UPFError(f"{path}: PP_BETA.{j} has no angular_momentum")
        if len(values) != len(d["r"]):
            if len(values) > len(d["r"]) or len(values) == 0:
                raise UPFError(f"{path}: PP_BETA.{j} has {len(values)} points, the mesh {len(d['r'])}")
            values = np.concatenate([values, np.zeros(len(d["r"]) - len(values))])
        betas.append({"l": int(attrs["angular_momentum"]), "r_beta": values})
    d["betas"] = betas
    if n_proj:
        dij = _numbers(_section(text, "PP_DIJ", path)[1], "PP_DIJ", path)
        if len(dij) != n_proj**2:
            raise UPFError(f"{path}: PP_DIJ has {len(dij)} numbers, expected {n_proj**2}")
        d["dij"] = dij.reshape(n_proj, n_proj)
    else:
        d["dij"] = np.zeros((0, 0))
    if _flag(header.get("core_correction", "F")):
        d["nlcc"] = _sized(_numbers(_section(text, "PP_NLCC", path)[1], "PP_NLCC", path), d["r"], "PP_NLCC", path)
    rho = _section(text, "PP_RHOATOM", path, required=False)
    if rho is not None:
        d["rhoatom"] = _sized(_numbers(rho[1], "PP_RHOATOM", path), d["r"], "PP_RHOATOM", path)
    return d


def _sized(values, r, where, path):
    if len(values) != len(r):
        raise UPFError(f"{path}: {where} has {len(values)} points, the mesh {len(r)} (file truncated?)")
    return values


def _check_kind(pseudo_type: str, header: dict, path):
    kind = pseudo_type.strip().upper()
    if _flag(header.get("is_ultrasoft", "F")) or kind in ("US", "USPP"):
        raise UPFError(f"{path}: ultrasoft pseudopotentials are not supported (only norm-conserving)")
    if _flag(header.get("is_paw", "F")) or kind == "PAW":
        raise UPFError(f"{path}: PAW datasets are not supported (only norm-conserving)")
    if kind == "SL":
        raise UPFError(f"{path}: semilocal-only pseudopotentials are not supported "
                       "(need the separable Kleinman–Bylander form with PP_BETA projectors)")
    if _flag(header.get("has_so", "F")):
        raise UPFError(f"{path}: fully relativistic (spin–orbit) pseudopotentials are not supported")
    if kind not in ("NC", ""):
        raise UPFError(f"{path}: pseudopotential type {pseudo_type!r} is not supported (only NC)")


# ---------------------------------------------------------------------- UPF v1
def _read_v1(text: str, path) -> dict:
    """UPF v1: PP_HEADER lines are positional (version, element, type, nlcc, functional, Z, ...)."""
    _, head = _section(text, "PP_HEADER", path)
    lines = [ln.split() for ln in head.strip().splitlines() if ln.strip()]
    try:
        element, kind, nlcc = lines[1][0], lines[2][0], lines[3][0]
        functional = " ".join(w for w in lines[4] if not w.startswith(("Exch", "exch")))[:25]
        z_valence = lines[5][0]
        n_wfc, n_beta = int(lines[10][0]), int(lines[10][1])
    except (IndexError, ValueError):
        raise UPFError(f"{path}: malformed UPF v1 PP_HEADER") from None
    _check_kind(kind, {}, path)
    d = {"element": element, "z_valence": _NUMBER_FIX.sub("E", z_valence), "functional": functional}
    del n_wfc
    d["r"] = _numbers(_section(text, "PP_R", path)[1], "PP_R", path)
    d["rab"] = _numbers(_section(text, "PP_RAB", path)[1], "PP_RAB", path)
    d["vloc"] = _numbers(_section(text, "PP_LOCAL", path)[1], "PP_LOCAL", path)
    nonlocal_text = _section(text, "PP_NONLOCAL", path, required=n_beta > 0)
    betas = []
    if n_beta:
        body = nonlocal_text[1]
        for match in re.finditer(r"<PP_BETA>(.*?)</PP_BETA>", body, re.DOTALL):
            rows = match.group(1).strip().splitlines()
            try:
                l = int(rows[0].split()[1])
                kk = int(rows[1].split()[0])
            except (IndexError, ValueError):
                raise UPFError(f"{path}: malformed PP_BETA header in UPF v1") from None
            values = _numbers(" ".join(rows[2:]), "PP_BETA", path)[:kk]
            full = np.zeros(len(d["r"]))
            full[:len(values)] = values
            betas.append({"l": l, "r_beta": full})
        if len(betas) != n_beta:
            raise UPFError(f"{path}: {len(betas)} PP_BETA sections, header says {n_beta}")
        dij_rows = _section(body, "PP_DIJ", path)[1].strip().splitlines()
        dij = np.zeros((n_beta, n_beta))
        for row in dij_rows[1:]:
            i, j, value = row.split()[:3]
            dij[int(i) - 1, int(j) - 1] = dij[int(j) - 1, int(i) - 1] = float(_NUMBER_FIX.sub("E", value))
        d["dij"] = dij
    else:
        d["dij"] = np.zeros((0, 0))
    d["betas"] = betas
    if _flag(nlcc):
        d["nlcc"] = _sized(_numbers(_section(text, "PP_NLCC", path)[1], "PP_NLCC", path), d["r"], "PP_NLCC", path)
    rho = _section(text, "PP_RHOATOM", path, required=False)
    if rho is not None:
        d["rhoatom"] = _sized(_numbers(rho[1], "PP_RHOATOM", path), d["r"], "PP_RHOATOM", path)
    return d
