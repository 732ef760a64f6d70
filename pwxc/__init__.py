"""pwxc: differentiable plane-wave Kohn–Sham DFT in PyTorch.

    model = pwxc.Model(structure, xc="pbe", pseudopotentials="gth-pbe", smearing="gaussian", temperature=0.01)
    basis = pwxc.PlaneWaveBasis(model, ecut=30.0, kgrid=(4, 4, 4))
    result = pwxc.scf(basis, tol=1e-8)

Atomic units throughout (Hartree, Bohr); Å only for pymatgen structures.
"""
from . import response, xc
from .basis import PlaneWaveBasis
from .crystal import Crystal
from .model import Model
from .properties import forces, pressure, stress
from .result import SCFResult
from .solvers.mixing import KerkerMixing
from .solvers.scf import SCFNotConvergedError, scf

__version__ = "0.1.0"

__all__ = ["Crystal", "Model", "PlaneWaveBasis", "SCFResult", "KerkerMixing", "SCFNotConvergedError",
           "scf", "forces", "stress", "pressure", "xc", "response", "__version__"]
