"""Linear response and implicit differentiation of the self-consistent field.

* :mod:`~pwxc.response.krylov` — matrix-free GMRES, MINRES and batched CG;
* :mod:`~pwxc.response.sternheimer` — independent-particle response χ0 (Sternheimer, metals included);
* :mod:`~pwxc.response.linear_response` — Hartree–XC kernel, dielectric equations, Tr(Γ H);
* :mod:`~pwxc.response.implicit` — the SCF fixed point as an autograd node
  (``pwxc.scf(basis, differentiable=True)``);
* :mod:`~pwxc.response.eos` — differentiable equation of state (E(a) fit and zero-stress implicit function).

See docs/differentiation.md.
"""
from .implicit import ImplicitSCF, differentiable_scf, make_differentiable
from .krylov import block_cg, gmres, minres

__all__ = ["ImplicitSCF", "make_differentiable", "differentiable_scf", "gmres", "minres", "block_cg"]
