"""Derived properties of a converged SCF: forces and stress (Hellmann–Feynman, by autograd)."""
from .forces import forces
from .stress import pressure, stress

__all__ = ["forces", "stress", "pressure"]
