"""Reference E(a) scans with cached densities: what non-self-consistent (NSC) training needs.

For every material and lattice scale s_j the PBE ground state is computed once (constant-cutoff scan,
warm started from the neighbouring scale) and stored:

    <workdir>/<material>/s<scale>.json   energies (Ha), convergence, magnetisation, settings, code
    <workdir>/<material>/s<scale>.npz    the XC functional's inputs at that state: ρ = ρ_val + ρ_core
                                         (per spin) and σ in libxc layout, and the volume element Ω/N

so that any functional θ has the NSC energy (the error is second order in the density change):

    E_θ(s_j) = E_PBE(s_j) − E_xc^PBE[ρ_j] + E_xc^θ[ρ_j],   E_xc^f[ρ] = (Ω/N) Σ_r e_f(ρ(r), σ(r)).

Both files are written atomically, the .npz first, so a point counts as done only when its .json
exists. A point whose files cannot be read, or whose recorded settings differ from the rule now in
force, raises :class:`ReferenceCacheError` naming the file — it is never silently recomputed over.

Parallel: :func:`generate` takes ``rank``/``world_size`` (from ``torch.distributed`` under torchrun)
and gives each rank a cost-balanced share of the materials; ranks write disjoint folders.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write
from ..units import ANGSTROM_IN_BOHR

log = logging.getLogger("pwxc.train")

#: scales of a_start (the published PBE lattice constant) at which references are computed
SCALES = (0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03)
SCF_TOL = 1e-8
FORMAT = 1


class ReferenceCacheError(RuntimeError):
    """A reference-cache file is unreadable or was made with other settings; the message names it."""


@dataclass
class ReferencePoint:
    """One cached state. energy: free energy (Ha/cell); e_xc_pbe: E_xc^PBE of the stored (ρ, σ) (Ha);
    rho (N,) or (2, N) Bohr⁻³ incl. core; sigma (N,) or (3, N) Bohr⁻⁸; weight = Ω/N (Bohr³)."""

    material: str
    scale: float
    a_angstrom: float
    energy: float
    e_xc_pbe: float
    rho: torch.Tensor
    sigma: torch.Tensor
    weight: float
    converged: bool
    magnetization: float


def settings_key(settings: dict) -> str:
    """Stable hash of a settings dict (what makes two cached points comparable)."""
    text = json.dumps(settings, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _point_paths(workdir: Path, material: str, scale: float):
    folder = Path(workdir) / material
    return folder / f"s{scale:.4f}.json", folder / f"s{scale:.4f}.npz"


def read_point(workdir, material: str, scale: float, key: str | None = None):
    """The cached point, or None when it was not computed yet; ReferenceCacheError if broken/other settings."""
    meta_path, data_path = _point_paths(Path(workdir), material, scale)
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
        energy, e_xc = float(meta["energy_ha"]), float(meta["e_xc_pbe_ha"])
        if not (math.isfinite(energy) and math.isfinite(e_xc)):
            raise ValueError("non-finite energy")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ReferenceCacheError(f"reference cache file {meta_path} is unreadable ({err}); move it away "
                                  "to recompute that point") from None
    if key is not None and meta.get("settings_key") != key:
        raise ReferenceCacheError(f"reference cache file {meta_path} was made with other settings "
                                  f"({meta.get('settings')}); use another workdir or remove it")
    try:
        with np.load(data_path) as data:
            rho, sigma, weight = data["rho"], data["sigma"], float(data["weight"])
        if not (np.all(np.isfinite(rho)) and np.all(np.isfinite(sigma))):
            raise ValueError("non-finite density")
    except (OSError, ValueError, KeyError) as err:
        raise ReferenceCacheError(f"reference cache file {data_path} is unreadable ({err}); move it and "
                                  f"{meta_path.name} away to recompute that point") from None
    return ReferencePoint(material=material, scale=scale, a_angstrom=float(meta["a_angstrom"]), energy=energy,
                          e_xc_pbe=e_xc, rho=torch.from_numpy(rho), sigma=torch.from_numpy(sigma),
                          weight=weight, converged=bool(meta["converged"]),
                          magnetization=float(meta.get("magnetization", 0.0)))


def _write_point(workdir: Path, material: str, scale: float, meta: dict, rho, sigma, weight):
    meta_path, data_path = _point_paths(workdir, material, scale)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    if data_path.exists() and not meta_path.exists():
        log.warning("%s: density file without its .json (an interrupted write); replacing it", data_path)

    def write_npz(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, rho=rho, sigma=sigma, weight=np.float64(weight))

    atomic_write(data_path, write_npz)
    text = json.dumps(meta, indent=1)
    atomic_write(meta_path, lambda tmp: Path(tmp).write_text(text))


def material_settings(solid, rule=None) -> dict:
    """JSON-able settings of a material from the settings rule (default pwxc.train.sol58.settings)."""
    from ..pseudo import load_pseudopotential
    from . import sol58
    s = (rule or sol58.settings)(solid)
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}
    # the files themselves (and how they are integrated) are part of what a cached energy means
    ids = {}
    for el in dict.fromkeys(solid.species):
        pp = load_pseudopotential(el, out["pseudopotentials"])
        ids[el] = f"{getattr(pp, 'sha256', pp.name)[:16]} r_cut={getattr(pp, 'r_cut', None)}"
    out["pseudopotential_ids"] = ids
    return out


def compute_material(solid, workdir, scales=SCALES, rule=None, xc="pbe", retries: int = 1,
                     progress=None) -> list:
    """PBE reference points of one material (cached ones are read, missing ones computed); list of
    ReferencePoint in scale order. A point whose SCF does not converge is retried once with a longer,
    more damped SCF, then recorded with converged False (callers skip such materials)."""
    import pwxc
    from ..basis.fft_grid import fft_size_for_cutoff
    from ..terms.xc import xc_inputs
    from ..workflows._engine import crystal_of

    workdir = Path(workdir)
    settings = material_settings(solid, rule)
    settings.update(xc=xc, scales=list(scales), a_start_angstrom=solid.a_pbe_published, scf_tol=SCF_TOL)
    key = settings_key(settings)
    model_kw = {k: settings[k] for k in ("pseudopotentials", "smearing", "temperature", "magnetic_moments")
                if k in settings}
    a_start = solid.a_pbe_published
    largest = solid.structure(a_start * max(scales)).lattice.matrix * ANGSTROM_IN_BOHR
    fft = fft_size_for_cutoff(torch.as_tensor(largest), 2 * math.sqrt(2 * settings["ecut"]))
    points, previous = {}, None
    # centre out, so every SCF starts from its neighbour's density
    order = sorted(scales, key=lambda s: (abs(s - 1.0), s))
    for scale in order:
        cached = read_point(workdir, solid.name, scale, key)
        if cached is not None:
            points[scale] = cached
            continue
        structure = solid.structure(a_start * scale)
        model = pwxc.Model(crystal_of(structure), xc=xc, **model_kw)
        basis = pwxc.PlaneWaveBasis(model, ecut=settings["ecut"], kgrid=tuple(settings["kgrid"]), fft_size=fft,
                                    symmetry=True)
        t0 = time.time()
        guess = previous if previous is not None and previous.basis.fft.shape == basis.fft.shape else None
        result = None
        for attempt in range(retries + 1):
            kw = dict(tol=SCF_TOL, maxiter=100) if attempt == 0 else dict(tol=SCF_TOL, maxiter=250, anderson_depth=5)
            try:
                result = pwxc.scf(basis, guess=guess, **kw)
            except (FloatingPointError, RuntimeError) as err:
                log.warning("%s s=%.3f: SCF failed (%s)%s", solid.name, scale, err,
                            "; retrying" if attempt < retries else "")
                result = None
                continue
            if result.converged:
                break
            log.warning("%s s=%.3f: SCF not converged in %d steps%s", solid.name, scale, result.n_iterations,
                        "; retrying" if attempt < retries else "")
            guess = None
        if result is None:
            raise RuntimeError(f"{solid.name} at scale {scale}: SCF failed {retries + 1} times")
        with torch.no_grad():
            rho, sigma = xc_inputs(basis, result.density.detach(), gga=True)
            weight = float(model.crystal.volume) / basis.fft.size
            e_xc = float(pwxc.xc.functional("pbe").energy_density(rho, sigma).sum()) * weight
        meta = dict(format=FORMAT, material=solid.name, scale=scale, a_angstrom=a_start * scale,
                    energy_ha=float(result.energy), e_xc_pbe_ha=e_xc,
                    energies_ha={k: float(v) for k, v in result.energies.items()},
                    converged=bool(result.converged), n_iterations=int(result.n_iterations),
                    magnetization=float(result.magnetization), fermi_level_ha=float(result.fermi_level),
                    seconds=round(time.time() - t0, 2), fft_size=list(basis.fft.shape),
                    n_kpoints=int(basis.n_kpoints), settings=settings, settings_key=key, code=_code_version())
        _write_point(workdir, solid.name, scale, meta, rho.numpy(), sigma.numpy(), weight)
        points[scale] = read_point(workdir, solid.name, scale, key)
        previous = result
        if progress is not None:
            progress(solid.name, scale, meta)
    return [points[s] for s in scales]


def _code_version() -> str:
    try:
        from importlib.metadata import version
        return f"pwxc {version('pwxc')}"
    except Exception:       # not installed (source tree)
        return "pwxc (source)"


def cost_estimate(solid, rule=None) -> float:
    """Rough seconds for one SCF (the design notes' cost model: ∝ Ω ecut^1.5 N_k N_el, ×2 with spin)."""
    from ..pseudo import load_pseudopotential
    s = material_settings(solid, rule)
    structure = solid.structure()
    n_el = sum(load_pseudopotential(site.specie.symbol, s["pseudopotentials"]).z_ion for site in structure)
    n_k = np.prod(s["kgrid"]) / 24 + 3        # ~ irreducible share of a cubic mesh
    spin = 2 if "magnetic_moments" in s else 1
    return 1.7e-5 * structure.volume * s["ecut"] ** 1.5 * n_k * n_el * spin


def partition(solids, world_size: int, rule=None) -> list:
    """Cost-balanced assignment (largest first to the least-loaded rank): list of name lists per rank.
    Deterministic, so every rank computes the same partition without talking to the others."""
    loads = [0.0] * world_size
    shares = [[] for _ in range(world_size)]
    for solid in sorted(solids, key=lambda s: (-cost_estimate(s, rule), s.name)):
        r = min(range(world_size), key=lambda i: (loads[i], i))
        loads[r] += cost_estimate(solid, rule)
        shares[r].append(solid.name)
    return shares


def generate(solids, workdir, rank: int = 0, world_size: int = 1, scales=SCALES, rule=None,
             on_failure="skip", progress=None) -> dict:
    """Compute (or read) the references of this rank's share of ``solids``; returns name -> points or
    the failure reason (a string) for materials whose SCF failed (logged, skipped). ``progress``: see
    :func:`compute_material`."""
    names = set(partition(list(solids), world_size, rule)[rank])
    out = {}
    # cheapest first: the most materials are done soonest if a run is cut short
    for solid in sorted(solids, key=lambda s: cost_estimate(s, rule)):
        if solid.name not in names:
            continue
        t0 = time.time()
        try:
            out[solid.name] = compute_material(solid, workdir, scales, rule, progress=progress)
            log.info("rank %d: %s done (%.0f s)", rank, solid.name, time.time() - t0)
        except ReferenceCacheError:
            raise
        except (RuntimeError, ValueError) as err:
            if on_failure != "skip":
                raise
            log.warning("rank %d: %s skipped: %s", rank, solid.name, err)
            out[solid.name] = str(err)
    return out


def load_references(solids, workdir, scales=SCALES, rule=None) -> dict:
    """name -> list of ReferencePoint for every material whose points are all cached (others omitted)."""
    out = {}
    for solid in solids:
        settings = material_settings(solid, rule)
        settings.update(xc="pbe", scales=list(scales), a_start_angstrom=solid.a_pbe_published, scf_tol=SCF_TOL)
        key = settings_key(settings)
        points = [read_point(workdir, solid.name, s, key) for s in scales]
        if all(p is not None for p in points):
            out[solid.name] = points
    return out


def distributed_context():
    """(rank, world_size) from an initialised torch.distributed group, else from torchrun's environment
    (initialising a gloo group), else (0, 1)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        dist.init_process_group("gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
