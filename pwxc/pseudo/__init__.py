"""Pseudopotentials: GTH/HGH analytic form factors and the bundled parameter library."""
from .gth import GTHPseudopotential, parse_cp2k_gth
from .library import load_pseudopotential, resolve_pseudopotentials

__all__ = ["GTHPseudopotential", "parse_cp2k_gth", "load_pseudopotential", "resolve_pseudopotentials"]
