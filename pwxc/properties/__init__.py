"""Derived properties of a converged SCF: forces and stress (Hellmann–Feynman, by autograd), band gap."""
from .forces import forces
from .gap import band_gap
from .stress import pressure, stress

__all__ = ["forces", "stress", "pressure", "band_gap"]
