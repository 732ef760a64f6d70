"""PySCF side of the Gaussian-basis path: everything that is an integral, as torch tensors.

For a ``pyscf.pbc.gto.Cell`` and a Monkhorst-Pack k mesh (``cell.make_kpts(kgrid)``, k in Bohr^-1)
:func:`build_integrals` returns a :class:`GaussianIntegrals` holding, per k-point k:

* ``ovlp[k]``  S^k_pq = <φ^k_p|φ^k_q>, with Bloch sums φ^k_p(r) = Σ_T e^{ik·T} χ_p(r - T);
* ``hcore[k]`` h^k_pq = <φ^k_p| -½∇² + V_nuc |φ^k_q> (Hartree). V_nuc is the all-electron nuclear
  attraction or the GTH pseudopotential, computed exactly as ``KRKS.density_fit().get_hcore()``
  does (``GDF.get_nuc`` / ``GDF.get_pp``, G = 0 term handled consistently with J and ``e_nuc``);
* ``cderi[k]`` the Gaussian-density-fitting (GDF) 3-index tensor L^k_{P,pq} (Hartree^½), with the
  Coulomb metric folded in, so that (pk qk|rk' sk') ≈ Σ_P sign_P L^k_{P,pq} L^k'_{P,rs};
* the integration grid (coordinates in Bohr, weights w_g in Bohr³) and the Bloch AO values
  φ^k_p(r_g) and gradients ∇φ^k_p(r_g) (Bohr^-1) on it: ``ao[k, c, g, p]``, c = value, x, y, z;
* ``e_nuc``: ion-ion (Ewald) energy per cell, Hartree.

Grids: ``"becke"`` (PySCF's ``pbc.dft.gen_grid.BeckeGrids`` at ``grid_level``, atom-centred; this is
what ``KRKS(...).density_fit()`` uses, level 3) or ``"uniform"`` (``UniformGrids`` on ``mesh``,
default ``cell.mesh`` — for all-electron cells that mesh is enormous, so pass a smaller one).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ._deps import require
from .basis_sets import resolve_basis

#: refuse to hold more AO values than this in memory (bytes); pass max_memory_gb to change
DEFAULT_MAX_MEMORY_GB = 6.0


@dataclass
class GaussianIntegrals:
    """Integrals of one cell on one k mesh (all torch, complex128 unless noted; atomic units)."""

    cell: object
    kpts: np.ndarray  # (nk, 3) Bohr^-1
    ovlp: torch.Tensor  # (nk, nao, nao)
    hcore: torch.Tensor  # (nk, nao, nao) Hartree
    cderi: torch.Tensor  # (nk, naux, nao, nao)
    cderi_sign: torch.Tensor  # (naux,) float64, +1 (or -1 for the negative part in 2D)
    coords: np.ndarray  # (ng, 3) Bohr
    weights: torch.Tensor  # (ng,) float64 Bohr^3
    ao: torch.Tensor  # (nk, 1 or 4, ng, nao)
    e_nuc: float
    nelectron: int  # electrons per cell
    grid: str = "becke"
    info: dict = field(default_factory=dict)

    @property
    def nkpts(self) -> int:
        return len(self.kpts)

    @property
    def nao(self) -> int:
        return self.ovlp.shape[-1]

    @property
    def with_gradients(self) -> bool:
        return self.ao.shape[1] == 4

    def minao_guess(self) -> torch.Tensor:
        """PySCF's superposition-of-atomic-densities ('minao') guess, D^k identical for all k,
        rescaled so that (1/N_k) Σ_k Tr(D^k S^k) = N_electrons per cell (as PySCF's KSCF does)."""
        mol_hf = require("pyscf.scf.hf")
        dm = np.asarray(mol_hf.init_guess_by_minao(self.cell))
        dm = torch.as_tensor(np.repeat(dm[None], self.nkpts, axis=0), dtype=torch.complex128)
        ne = torch.einsum("kij,kji->", dm, self.ovlp).real / self.nkpts
        if abs(float(ne) - self.nelectron) > 0.01:
            dm = dm * (self.nelectron / ne)
        return dm


def make_kpts(cell, kgrid=None, kpts=None) -> np.ndarray:
    """k-points in Bohr^-1: explicit ``kpts`` or PySCF's Monkhorst-Pack mesh ``cell.make_kpts(kgrid)``
    (Γ-centred, exactly what the PySCF reference uses)."""
    if kpts is not None:
        return np.asarray(kpts, dtype=float).reshape(-1, 3)
    kgrid = (1, 1, 1) if kgrid is None else tuple(int(n) for n in kgrid)
    if len(kgrid) != 3 or min(kgrid) < 1:
        raise ValueError(f"kgrid must be three positive integers, got {kgrid!r}")
    return np.asarray(cell.make_kpts(kgrid))


def _df_object(cell, kpts, auxbasis):
    """The GDF object ``KRKS(cell, kpts).density_fit(auxbasis)`` would create, built J-only.
    ``auxbasis`` must already be resolved (:func:`~pwxc.gaussian.basis_sets.resolve_basis`)."""
    pdf = require("pyscf.pbc.df")
    mydf = pdf.GDF(cell, kpts)
    if auxbasis is not None:
        mydf.auxbasis = auxbasis
    mydf.build(j_only=True)
    return mydf


def _cderi_tensor(mydf, kpts, nao):
    """Stack GDF's ``sr_loop`` blocks for the (k, k) pairs into (nk, naux, nao, nao) + signs."""
    per_k, signs = [], None
    for kpt in kpts:
        blocks, sgn = [], []
        for LpqR, LpqI, sign in mydf.sr_loop(np.asarray((kpt, kpt)), compact=False):
            L = np.asarray(LpqR) + (1j * np.asarray(LpqI) if LpqI is not None else 0.0)
            blocks.append(L.reshape(-1, nao, nao))
            sgn.append(np.full(L.shape[0], float(sign)))
        per_k.append(np.concatenate(blocks))
        s = np.concatenate(sgn)
        if signs is not None and not np.array_equal(signs, s):
            raise RuntimeError("GDF returned different auxiliary blocks at different k-points")
        signs = s
    return (torch.as_tensor(np.stack(per_k), dtype=torch.complex128),
            torch.as_tensor(signs, dtype=torch.float64))


def make_grid(cell, grid="becke", grid_level=3, mesh=None):
    """Integration grid → (coords (ng, 3) Bohr, weights (ng,) Bohr^3) from PySCF."""
    gen_grid = require("pyscf.pbc.dft.gen_grid")
    if grid == "becke":
        g = gen_grid.BeckeGrids(cell)
        g.level = int(grid_level)
        g.verbose = 0
        g.build(with_non0tab=False)
    elif grid == "uniform":
        g = gen_grid.UniformGrids(cell)
        if mesh is not None:
            g.mesh = [int(n) for n in mesh]
    else:
        raise ValueError(f"grid must be 'becke' or 'uniform', got {grid!r}")
    return np.asarray(g.coords), np.asarray(g.weights)


def build_integrals(cell, kgrid=None, *, kpts=None, auxbasis=None, grid="becke", grid_level=3,
                    mesh=None, gradients=True, max_memory_gb=DEFAULT_MAX_MEMORY_GB) -> GaussianIntegrals:
    """Compute every PySCF-side quantity the torch SCF needs (see the module docstring).

    Args:
        cell: a built ``pyscf.pbc.gto.Cell``.
        kgrid / kpts: Monkhorst-Pack mesh (n1, n2, n3) or explicit k-points (Bohr^-1).
        auxbasis: GDF auxiliary basis (name or PySCF basis); None = PySCF's default choice.
        grid, grid_level, mesh: integration grid (see module docstring).
        gradients: also evaluate ∇φ (needed by GGAs).
        max_memory_gb: refuse grids whose AO table would exceed this.
    """
    numint = require("pyscf.pbc.dft.numint")
    kpts = make_kpts(cell, kgrid, kpts)
    nk, nao = len(kpts), cell.nao_nr()
    if auxbasis is not None:  # fail on unknown names before any expensive work
        elements = {cell.atom_pure_symbol(i) for i in range(cell.natm)}
        auxbasis = resolve_basis(auxbasis, elements, role="auxbasis")
    mesh_used = None
    if grid == "uniform":
        mesh_used = [int(n) for n in (mesh if mesh is not None else cell.mesh)]
        ng_est = int(np.prod(mesh_used))
        need = nk * (4 if gradients else 1) * ng_est * nao * 16 / 1e9
        if need > max_memory_gb:
            raise ValueError(f"uniform grid mesh {mesh_used} ({ng_est} points) needs {need:.1f} GB of AO "
                             f"values (> max_memory_gb={max_memory_gb}); all-electron cells need very fine "
                             f"meshes - use grid='becke' or pass a smaller mesh=(n1, n2, n3)")
    coords, weights = make_grid(cell, grid, grid_level, mesh_used)

    mydf = _df_object(cell, kpts, auxbasis)
    nuc = mydf.get_pp(kpts) if cell.pseudo else mydf.get_nuc(kpts)
    nuc = np.asarray(nuc).reshape(nk, nao, nao)
    if len(cell._ecpbas) > 0:
        ecp = require("pyscf.pbc.gto.ecp")
        nuc = nuc + np.asarray(ecp.ecp_int(cell, kpts)).reshape(nk, nao, nao)
    kin = np.asarray(cell.pbc_intor("int1e_kin", 1, 1, kpts)).reshape(nk, nao, nao)
    ovlp = np.asarray(cell.pbc_intor("int1e_ovlp", 1, 1, kpts)).reshape(nk, nao, nao)
    cderi, sign = _cderi_tensor(mydf, kpts, nao)

    deriv = 1 if gradients else 0
    ng = len(weights)
    ncomp = 4 if gradients else 1
    ao = torch.empty((nk, ncomp, ng, nao), dtype=torch.complex128)
    # all k-points per call (the lattice sum dominates the cost), grid blocks bound the memory
    block = max(256, int(2e8 / (16 * nk * ncomp * max(nao, 1))))
    for g0 in range(0, ng, block):
        g1 = min(ng, g0 + block)
        vals = numint.eval_ao_kpts(cell, coords[g0:g1], kpts, deriv=deriv)
        for k in range(nk):
            ao[k, :, g0:g1] = torch.as_tensor(np.asarray(vals[k]).reshape(ncomp, g1 - g0, nao))

    c128 = torch.complex128
    return GaussianIntegrals(
        cell=cell, kpts=kpts,
        ovlp=torch.as_tensor(ovlp, dtype=c128), hcore=torch.as_tensor(kin + nuc, dtype=c128),
        cderi=cderi, cderi_sign=sign, coords=coords,
        weights=torch.as_tensor(weights, dtype=torch.float64), ao=ao,
        e_nuc=float(cell.energy_nuc()), nelectron=int(cell.nelectron), grid=grid,
        info={"grid_level": grid_level if grid == "becke" else None, "mesh": mesh_used,
              "auxbasis": mydf.auxbasis, "naux": int(cderi.shape[1]), "ngrids": ng})
