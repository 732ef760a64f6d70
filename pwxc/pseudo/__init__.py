"""Pseudopotentials: analytic GTH/HGH form factors, norm-conserving UPF files, the bundled library."""
from .gth import GTHPseudopotential, parse_cp2k_gth
from .library import load_pseudopotential, resolve_pseudopotentials
from .upf import PseudopotentialFunctionalWarning, UPFError, UPFPseudopotential

__all__ = ["GTHPseudopotential", "parse_cp2k_gth", "load_pseudopotential", "resolve_pseudopotentials",
           "UPFPseudopotential", "UPFError", "PseudopotentialFunctionalWarning"]
