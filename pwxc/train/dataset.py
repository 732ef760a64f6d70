"""Training samples, plain-JSON datasets, and reference energies computed once by pwxc itself.

A :class:`Sample` is one structure (pymatgen ``Structure``, Å) with its targets and the calculation
settings at which the functional is evaluated on it::

    Sample(name="Si", structure=s, settings={"ecut": 6, "kgrid": (1, 1, 1), "fft_size": (15, 15, 15)},
           targets={"energy": -7.9},                          # total energy per cell, Ha
           # or {"lattice_constant": 5.431}                   # conventional a, Å (experiment)
           # or {"curve": [E_1, ..., E_m], "scales": [s_1, ..., s_m]}   # E(s·a), Ha
           lattice_constant=5.431)                            # a_ref of the given cell, Å

``settings`` keys: ecut (Ha), kgrid, fft_size (or None), smearing, temperature (Ha), pseudopotentials
(default "gth-pbe"; or a dict of per-element variants, e.g. {"Mg": "gth-pbe-q2"}, the other elements
keeping the family), symmetry (True: space-group k-point reduction, same energies), basis_mode
("fixed_basis" or "fixed_ecut", see :func:`build_basis`), scales (lattice scale factors of an E(a)
scan), tol (SCF energy tolerance, Ha), maxiter, magnetic_moments (starting moments, μ_B: a dict
element -> moment or one value per site; makes the sample spin-polarised, e.g. {"Ni": 1.0}).

Files (plain JSON, version-stamped): a dataset is ``{"format": "pwxc.train.dataset", "version": 1,
"samples": [...]}`` with structures as pymatgen ``as_dict()``; the reference cache is
``{"format": "pwxc.train.references", "version": 1, "entries": {key: {...}}}`` keyed by a SHA-256 of
(structure, settings, functional, quantity). Missing or corrupted files raise :class:`DatasetError`
naming the file. Every write goes to a temporary file that then replaces the target (atomic on POSIX),
so a crash never leaves a half-written file.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_write

log = logging.getLogger("pwxc.train")

DATASET_FORMAT = "pwxc.train.dataset"
REFERENCE_FORMAT = "pwxc.train.references"
VERSION = 1
DEFAULT_SCALES = (0.97, 0.985, 1.0, 1.015, 1.03)


class DatasetError(ValueError):
    """A dataset or reference file is missing, unreadable or malformed (the message names the file)."""


@dataclass
class Sample:
    """One training structure: name, pymatgen structure (Å), targets, settings, a_ref (Å), loss weight."""

    name: str
    structure: object
    targets: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    lattice_constant: float | None = None
    weight: float = 1.0

    def to_dict(self) -> dict:
        return {"name": self.name, "structure": self.structure.as_dict(), "targets": _plain(self.targets),
                "settings": _plain(self.settings), "lattice_constant": self.lattice_constant,
                "weight": float(self.weight)}

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        from pymatgen.core import Structure

        return cls(name=str(d["name"]), structure=Structure.from_dict(d["structure"]),
                   targets=dict(d.get("targets", {})), settings=dict(d.get("settings", {})),
                   lattice_constant=d.get("lattice_constant"), weight=float(d.get("weight", 1.0)))

    @property
    def scales(self) -> tuple:
        """Scale factors of this sample's E(a) scan (targets' own scales for a curve target)."""
        return tuple(self.targets.get("scales") or self.settings.get("scales") or DEFAULT_SCALES)

    def key(self, xc_name: str, quantity: str) -> str:
        """Cache key: SHA-256 of structure (positions rounded to 1e-8), settings, functional, quantity."""
        s = self.structure
        payload = {"lattice": [[round(x, 8) for x in row] for row in s.lattice.matrix.tolist()],
                   "species": [str(sp) for sp in s.species],
                   "frac": [[round(x, 8) for x in row] for row in s.frac_coords.tolist()],
                   "settings": _plain(self.settings), "xc": xc_name, "quantity": quantity}
        if quantity == "curve":
            payload["scales"] = list(self.scales)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _plain(obj):
    """JSON-safe copy (tuples → lists, numpy / torch scalars → float)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj


def write_json_atomic(path, obj) -> None:
    """Write JSON to ``path`` via a temporary file in the same folder, fsync, then os.replace."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1)))


def read_json(path, fmt: str) -> dict:
    """Read a pwxc.train JSON file of format ``fmt``; DatasetError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{fmt} file not found: {path}")
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"corrupted {fmt} file {path}: not valid JSON ({err}); delete it to recompute "
                           "(references) or restore it from a copy (datasets)") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise DatasetError(f"{path} is not a {fmt} file (format field {data.get('format') if isinstance(data, dict) else None!r})")
    if int(data.get("version", 0)) > VERSION:
        raise DatasetError(f"{path} has version {data.get('version')}; this pwxc reads up to {VERSION}")
    return data


def save_dataset(samples, path) -> None:
    """Write samples to ``path`` as plain JSON (atomic)."""
    write_json_atomic(path, {"format": DATASET_FORMAT, "version": VERSION,
                             "samples": [s.to_dict() for s in samples]})


def load_dataset(path) -> list:
    """Read samples written by :func:`save_dataset`; DatasetError naming the file (and sample) if malformed."""
    data = read_json(path, DATASET_FORMAT)
    out = []
    for i, d in enumerate(data.get("samples", [])):
        try:
            out.append(Sample.from_dict(d))
        except Exception as err:  # noqa: BLE001 - report any malformed entry with its position
            raise DatasetError(f"malformed sample #{i} in {path}: {type(err).__name__}: {err}") from None
    return out


def _pseudopotentials(sample: Sample):
    """settings["pseudopotentials"]: a family name (default "gth-pbe") or a dict element → variant; elements
    missing from the dict get settings.get("pseudo_family", "gth-pbe") (e.g. {"Mg": "gth-pbe-q2"} only
    changes Mg)."""
    st = sample.settings
    pp = st.get("pseudopotentials", "gth-pbe")
    if isinstance(pp, dict):
        family = st.get("pseudo_family", "gth-pbe")
        pp = {el: pp.get(el, family) for el in dict.fromkeys(str(sp.symbol) for sp in sample.structure.species)}
    return pp


def build_basis(sample: Sample, xc, scale: float = 1.0):
    """Model and PlaneWaveBasis of ``sample`` with functional ``xc``; lattice multiplied by ``scale``.

    ``settings["basis_mode"]``:

    * ``"fixed_basis"`` (default): all scales share the integer G-vector set and FFT grid of the scale-1
      basis (fixed-basis E(a), as in pwxc.response.eos), so that E(s) is smooth in s. At an unconverged
      cutoff this biases a₀ low: compressing the cell raises the effective cutoff of the fixed set (Cu q11
      at 30 Ha puts the minimum 18 % below experiment).
    * ``"fixed_ecut"``: every scale gets its own G set at the same ``ecut`` (the usual constant-cutoff
      E(a), as pwxc.workflows.lattice_scan), on one FFT grid — the one the largest scale needs — so that
      densities still transfer between scales and epochs. Much smaller Pulay error at low cutoffs; E(s)
      has tiny steps where plane waves enter the sphere.
    """
    import pwxc
    from ..crystal import Crystal

    st = sample.settings
    kw = dict(xc=xc, pseudopotentials=_pseudopotentials(sample))
    if st.get("smearing"):
        kw.update(smearing=st["smearing"], temperature=float(st.get("temperature", 0.01)))
    moments = st.get("magnetic_moments")
    if moments is not None:      # {element: μ_B} or one value per site: a spin-polarised sample
        species = [site.specie.symbol for site in sample.structure]
        if isinstance(moments, dict) and set(moments) - set(species):
            raise ValueError(f"sample {sample.name!r}: magnetic_moments names elements not in the structure: "
                             f"{sorted(set(moments) - set(species))}")
        kw["magnetic_moments"] = ([float(moments.get(e, 0.0)) for e in species] if isinstance(moments, dict)
                                  else [float(m) for m in moments])
    model = pwxc.Model(sample.structure, **kw)
    fft = st.get("fft_size")
    ecut, kgrid = float(st["ecut"]), tuple(st.get("kgrid", (1, 1, 1)))
    symmetry = bool(st.get("symmetry", False))
    mode = st.get("basis_mode", "fixed_basis")
    if mode not in ("fixed_basis", "fixed_ecut"):
        raise ValueError(f"basis_mode must be 'fixed_basis' or 'fixed_ecut', got {mode!r}")

    def scaled_model(s):
        c = model.crystal
        kw2 = dict(kw)
        kw2["pseudopotentials"] = model.pseudopotentials
        return pwxc.Model(Crystal(c.lattice.detach() * s, c.positions, c.species), **kw2)

    if mode == "fixed_ecut":
        if not fft:
            from ..basis.fft_grid import fft_size_for_cutoff

            big = model.crystal.lattice.detach() * max(max(sample.scales), 1.0)
            fft = fft_size_for_cutoff(big, 2 * (2 * ecut) ** 0.5)
        m = model if scale == 1.0 else scaled_model(scale)
        return pwxc.PlaneWaveBasis(m, ecut=ecut, kgrid=kgrid, fft_size=tuple(fft), symmetry=symmetry)
    basis = pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=kgrid, fft_size=tuple(fft) if fft else None,
                                symmetry=symmetry)
    if scale != 1.0:
        basis = basis.with_model(scaled_model(scale))
    return basis


def _run_reference(sample, xc, quantity, scf_kwargs):
    import pwxc

    kw = dict(tol=float(sample.settings.get("tol", 1e-8)), maxiter=int(sample.settings.get("maxiter", 100)))
    kw.update(scf_kwargs or {})
    scales = sample.scales if quantity == "curve" else (1.0,)
    energies, converged, guess = [], True, None
    for s in scales:
        r = pwxc.scf(build_basis(sample, xc, s), guess=guess, **kw)
        guess = r
        energies.append(float(r.energy.detach()))
        converged = converged and bool(r.converged)
    return energies, list(scales), converged


def reference_targets(samples, cache, xc: str = "pbe", quantity: str = "energy", scf_kwargs=None) -> list:
    """Samples with pwxc reference targets from a conventional functional, computed once and cached.

    For each sample, E = pwxc total free energy per cell (Ha) with functional ``xc`` at the sample's own
    settings (ecut, k-points, FFT grid, pseudopotentials, smearing) — the paper's Appendix A.1 setup with
    pwxc as the reference code. ``quantity="energy"`` sets targets["energy"]; ``"curve"`` sets
    targets["curve"] = [E(s·a) for s in sample.scales] and targets["scales"].

    ``cache``: JSON file; entries already there (same key) are reused, new ones are added and the file is
    rewritten atomically after every new entry, so an interrupted generation resumes where it stopped.
    A corrupted cache raises DatasetError naming the file (it is never silently overwritten).
    Unconverged reference SCFs raise DatasetError (a bad target must not enter training).
    """
    import pwxc

    if quantity not in ("energy", "curve"):
        raise ValueError(f"quantity must be 'energy' or 'curve', got {quantity!r}")
    cache = Path(cache)
    data = read_json(cache, REFERENCE_FORMAT) if cache.exists() else \
        {"format": REFERENCE_FORMAT, "version": VERSION, "entries": {}}
    entries = data.setdefault("entries", {})
    out = []
    for sample in samples:
        key = sample.key(xc, quantity)
        entry = entries.get(key)
        if entry is None:
            log.info("reference %s %s for %s", xc, quantity, sample.name)
            energies, scales, converged = _run_reference(sample, xc, quantity, scf_kwargs)
            if not converged:
                raise DatasetError(f"reference SCF ({xc}) for sample {sample.name!r} did not converge; "
                                   f"nothing written to {cache} for it")
            entry = {"name": sample.name, "xc": xc, "quantity": quantity, "energies": energies,
                     "scales": scales, "settings": _plain(sample.settings), "pwxc_version": pwxc.__version__}
            entries[key] = entry
            write_json_atomic(cache, data)
        try:
            energies = [float(e) for e in entry["energies"]]
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"malformed entry for {sample.name!r} in reference file {cache}") from None
        targets = dict(sample.targets)
        if quantity == "energy":
            targets["energy"] = energies[0]
        else:
            targets.update(curve=energies, scales=list(entry["scales"]))
        out.append(Sample(sample.name, sample.structure, targets, dict(sample.settings),
                          sample.lattice_constant, sample.weight))
    return out
