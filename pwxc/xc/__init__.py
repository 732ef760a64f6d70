"""Exchange-correlation functionals in torch and the neural-functional API.

Contract used by the plane-wave engine::

    f = pwxc.xc.functional("pbe")        # or any Functional object (returned unchanged)
    f.is_gga                             # needs sigma?
    f.energy_density(rho, sigma=None)    # (N,) energy per volume, Ha / Bohr^3
    # rho (N,) or (2, N) = (n_up, n_dn); sigma (N,) or (3, N) = (s_uu, s_ud, s_dd)

Built-in functionals (libxc names): lda_x, lda_c_pw, lda_c_pw_mod, lda_c_pz,
gga_x_pbe, gga_c_pbe, gga_x_pbe_sol, gga_c_pbe_sol and the sums lda, lda_pz,
pbe, pbesol.  Neural API: NeuralXC, MLP, HybridXC, EnhancedXC, save/load.
See docs/xc.md.
"""

from .descriptors import Descriptors
from .functional import Functional, SumFunctional
from .gga_pbe import PBECorrelation, PBEExchange
from .hybrid import EnhancedXC, HybridXC, constrained_fx
from .io import available, load, save
from .lda import PW92Correlation, PZ81Correlation, SlaterExchange
from .neural import MLP, NeuralXC, register_savable
from .pbe_family import PBEFamilyXC
from .registry import available_functionals, functional, register_functional

__all__ = [
    "Functional",
    "SumFunctional",
    "functional",
    "available_functionals",
    "register_functional",
    "SlaterExchange",
    "PW92Correlation",
    "PZ81Correlation",
    "PBEExchange",
    "PBECorrelation",
    "Descriptors",
    "NeuralXC",
    "register_savable",
    "MLP",
    "HybridXC",
    "EnhancedXC",
    "PBEFamilyXC",
    "constrained_fx",
    "save",
    "load",
    "available",
]
