"""Gaussian-basis compatibility path: the reference paper's periodic STO-3G calculations.

PySCF (optional extra ``pip install pwxc[gaussian]``) supplies the cell, one-electron integrals per
k-point, GDF density fitting for the Coulomb term and the integration grid with AO values and
gradients; pwxc owns, in torch, the density, the XC energy and potential (any pwxc functional,
including neural ``HybridXC``), the Coulomb energy, occupations, DIIS and the SCF loop::

    import pwxc.gaussian as pg
    system = {'mol_desc': 'Al 0 0 0', 'lattice': '0 2.025 2.025; 2.025 0 2.025; 2.025 2.025 0',
              'basis': 'sto-3g', 'auxbasis': 'def2-sv(p)'}
    result = pg.scf(system, xc="pbe", kgrid=(2, 2, 2), smearing="fermi", temperature=0.01)
    result.energy.backward()      # reaches the functional's parameters (Hellmann-Feynman)

Defaults reproduce ``pyscf.pbc.dft.KRKS(cell, cell.make_kpts(kgrid)).density_fit(auxbasis=...)``
(Becke grids level 3, the same GDF), number for number. PySCF is imported lazily; without it the
functions raise ImportError naming the extra. See docs/gaussian.md.
"""
from .integrals import GaussianIntegrals, build_integrals
from .scf import GaussianSCFNotConverged, GaussianSCFResult, WarmStart, energy, resolve_functional, scf
from .system import build_cell, parse_lattice, parse_mol_desc, parse_system

__all__ = ["scf", "energy", "WarmStart", "GaussianSCFResult", "GaussianSCFNotConverged", "GaussianIntegrals",
           "resolve_functional", "build_cell", "build_integrals", "parse_system", "parse_mol_desc",
           "parse_lattice"]
