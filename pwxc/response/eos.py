"""Differentiable equation of state: a₀(θ) and B₀(θ) as torch tensors with gradients to the XC parameters.

Two routes, both on a fixed plane-wave basis (the integer G-vector set of the input basis is kept while
the cell is scaled, the setting in which the analytic stress is the exact derivative of the energy):

(a) :func:`fit_eos` — E(a) scan. Each point's energy carries its exact gradient to θ (Hellmann–Feynman,
    result.energy), and the third-order Birch–Murnaghan form, which is the cubic polynomial
    E(V) = Σ_{p=0..3} c_p x^p in x = (V/V_ref)^{-2/3} (F. Birch, Phys. Rev. 71, 809 (1947)), is fitted by
    linear least squares (in a centred, scaled variable u = (x − x̄)/δ, E = Σ c_p u^p). The minimum
    u₀ = −c₁ / (c₂ + √(c₂² − 3c₁c₃)), x₀ = x̄ + δu₀, gives
        a₀ = a_ref x₀^{-1/2},   B₀ = V d²E/dV² = (4/9) x₀² E''(x₀) / V₀,  E''(x₀) = (2c₂ + 6c₃u₀)/δ².
    Everything is torch, so a₀ and B₀ are differentiable in θ.

(b) :func:`zero_pressure_lattice` — implicit-function theorem on zero stress, no scan. For the isotropic
    strain a → a(1+s) the pressure is p = −(1/3Ω) dE/ds; at the root p(a₀, θ) = 0
        da₀/dθ = −(∂p/∂θ)/(∂p/∂a) = −a₀ (d²E/ds dθ)/(d²E/ds²),     B₀ = (d²E/ds²)/(9Ω),
    with total (self-consistent) second derivatives of the SCF energy from one strain response:
        d²E/ds²  = ∂²E/∂s²|_P + Tr(∂_sH|_P δP_s),        d²E/ds dθ = ∂_θ[∂E/∂s|_P + Tr(H_θ δP_s)],
    where δP_s is the self-consistent density-matrix response to the strain (pwxc.response.linear_response)
    and ∂E/∂s|_P = Ω tr σ is the Hellmann–Feynman stress (pwxc.stress) evaluated with the θ graph on.
    The root a₀ itself is found by Newton/secant steps on the Hellmann–Feynman pressure; B₀ from this
    route is a number (its θ-gradient would need third derivatives), route (a) gives a differentiable B₀.
Units: Bohr, Hartree, Hartree/Bohr³ (× pwxc.units.HARTREE_PER_BOHR3_IN_GPA for GPa).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from ..crystal import Crystal
from ..energy import energy_terms
from ..model import Model
from ..solvers.scf import scf
from .implicit import xc_parameters
from .linear_response import HxcKernel, hamiltonian_trace, perturbation, scf_response
from .sternheimer import KSState


def _scaled_basis(basis, scale: float):
    """The basis with the lattice multiplied by `scale` (same integer G set, FFT grid and k-points)."""
    model = basis.model
    crystal = model.crystal
    new = Crystal(crystal.lattice.detach() * scale, crystal.positions, crystal.species)
    new_model = Model(new, xc=model.xc, pseudopotentials=model.pseudopotentials, smearing=model.smearing,
                      temperature=model.temperature, charge=model.charge, magnetic_moments=model.magnetic_moments,
                      dtype=model.dtype, device=model.device)
    return basis.with_model(new_model)


def _reference_constant(basis, lattice_constant):
    volume = float(torch.linalg.det(basis.model.crystal.lattice.detach()))
    return volume ** (1 / 3) if lattice_constant is None else float(lattice_constant), volume


@dataclass
class EOSFit:
    """Result of :func:`fit_eos`: a0 (Bohr), B0 (Ha/Bohr³), V0 (Bohr³), E0 (Ha) are 0-dim tensors with
    gradients to θ; energies (Ha, tensors) and volumes (Bohr³) of the scan."""

    a0: torch.Tensor
    b0: torch.Tensor
    v0: torch.Tensor
    e0: torch.Tensor
    energies: list
    volumes: list
    results: list = field(default_factory=list, repr=False)


def birch_murnaghan_fit(volumes, energies, v_ref: float):
    """Least-squares E = Σ_{p≤3} c_p u^p in u = (x − x̄)/δ, x = (V/V_ref)^{-2/3} (centred and scaled so that
    the fit is well conditioned; solved by QR). Returns (x₀, E(x₀), d²E/dx²(x₀)) at the minimum."""
    energies = torch.stack([torch.as_tensor(e) for e in energies])
    x = torch.tensor([(v / v_ref) ** (-2 / 3) for v in volumes], dtype=energies.dtype, device=energies.device)
    centre, half = float(x.mean()), float(x.max() - x.min()) / 2
    u = (x - centre) / half
    design = torch.stack([u**p for p in range(4)], -1)
    c = torch.linalg.lstsq(design, energies[:, None]).solution[:, 0]
    u0 = -c[1] / (c[2] + torch.sqrt(c[2] ** 2 - 3 * c[1] * c[3]))
    e0 = c[0] + c[1] * u0 + c[2] * u0**2 + c[3] * u0**3
    return centre + half * u0, e0, (2 * c[2] + 6 * c[3] * u0) / half**2


def fit_eos(basis, scales=(0.97, 0.985, 1.0, 1.015, 1.03), lattice_constant=None, **scf_kwargs) -> EOSFit:
    """E(a) scan on the fixed basis and a differentiable Birch–Murnaghan fit.

    Args:
        basis: PlaneWaveBasis of the reference cell (lattice L; the scan uses s·L for s in scales).
        scales: lattice scale factors of the scan (at least 4, around the minimum).
        lattice_constant: the reference cell's lattice constant a_ref (Bohr) in which a₀ is expressed
            (default Ω^{1/3}); a₀ = a_ref × (optimal scale).
        scf_kwargs: passed to pwxc.scf (e.g. tol, density_tol).
    Returns:
        EOSFit with a₀, B₀ differentiable in the XC parameters (one Hellmann–Feynman graph per point).
    """
    a_ref, v_ref = _reference_constant(basis, lattice_constant)
    energies, volumes, results, guess = [], [], [], scf_kwargs.pop("guess", None)
    for s in scales:
        result = scf(_scaled_basis(basis, s), guess=guess, **scf_kwargs)
        guess = result
        energies.append(result.energy)
        volumes.append(v_ref * s**3)
        results.append(result)
    x0, e0, curvature = birch_murnaghan_fit(volumes, energies, v_ref)
    v0 = v_ref * x0 ** (-1.5)
    b0 = (4 / 9) * x0**2 * curvature / v0
    return EOSFit(a_ref * x0 ** (-0.5), b0, v0, e0, energies, volumes, results)


@dataclass
class StrainDerivatives:
    """dE/ds (= Ω tr σ = −3Ωp), d²E/ds² (Ha) at one lattice, with the response ξ_s = δP/δs."""

    state: KSState
    result: object
    de_ds: float
    d2e_ds2: float
    xi: torch.Tensor
    stats: dict


def _strain_energy(state, result, s):
    lattice = state.lattice * (1 + s)
    return energy_terms(result.basis, state.psi, state.occupations, result.entropy_term, lattice=lattice,
                        positions=state.positions)["total"]


def strain_derivatives(result, tol: float = 1e-10) -> StrainDerivatives:
    """Self-consistent first and second derivatives of the SCF energy under isotropic strain a → a(1+s)."""
    state = KSState.from_result(result)
    kernel = HxcKernel(state)
    dhpsi = perturbation(state, d_lattice=state.lattice)          # ∂_sH|_P ψ, d lattice/ds = L
    response = scf_response(state, kernel, dhpsi, tol)
    with torch.enable_grad():
        s = torch.zeros((), dtype=state.lattice.dtype, device=state.lattice.device, requires_grad=True)
        (de,) = torch.autograd.grad(_strain_energy(state, result, s), s, create_graph=True)
        trace = hamiltonian_trace(state, response.xi, state.lattice * (1 + s))
        (d2e,) = torch.autograd.grad(de + trace, s)
    return StrainDerivatives(state, result, float(de.detach()), float(d2e), response.xi, dict(state.stats))


def _mixed_gradient(deriv: StrainDerivatives, params):
    """d²E/ds dθ_i for every parameter: one backward of ∂E/∂s|_P(θ) + Tr(H(θ) δP_s)."""
    state = deriv.state
    with torch.enable_grad():
        s = torch.zeros((), dtype=state.lattice.dtype, device=state.lattice.device, requires_grad=True)
        (de,) = torch.autograd.grad(_strain_energy(state, deriv.result, s), s, create_graph=True)
        total = de + hamiltonian_trace(state, deriv.xi)
        grads = torch.autograd.grad(total, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


class _Precomputed(torch.autograd.Function):
    """value(θ) with a known gradient: backward returns ḡ · ∂value/∂θ_i."""

    @staticmethod
    def forward(ctx, value, grads, *params):
        ctx.grads = grads
        return value.detach().clone()

    @staticmethod
    def backward(ctx, grad_out):
        return (None, None, *[grad_out * g for g in ctx.grads])


@dataclass
class ZeroPressure:
    """Result of :func:`zero_pressure_lattice`: a0 (Bohr, tensor with grad_fn to θ), b0 (Ha/Bohr³),
    pressure left at the last SCF (Ha/Bohr³), Newton history, and the last SCFResult."""

    a0: torch.Tensor
    b0: float
    pressure: float
    scale: float
    history: list
    result: object
    da0_dtheta: list


def zero_pressure_lattice(basis, lattice_constant=None, pressure_tol: float = 1e-10, max_steps: int = 10,
                          response_tol: float = 1e-10, **scf_kwargs) -> ZeroPressure:
    """Equilibrium lattice constant by zero pressure and its θ-gradient by the implicit-function theorem.

    Newton steps on the Hellmann–Feynman pressure, s ← s − p/(∂p/∂s), with the first slope
    ∂p/∂s = (dE/ds)/Ω − (d²E/ds²)/(3Ω) from one self-consistent strain response and secant slopes after
    that; at the converged lattice one more strain response gives d²E/ds² and, with one backward pass,
    d²E/ds dθ for all parameters θ at once.

    Args:
        basis: PlaneWaveBasis of a cubic (or isotropically scalable) cell near equilibrium.
        lattice_constant: a_ref of the input cell (Bohr) in which a₀ is expressed (default Ω^{1/3}).
        pressure_tol: stop when |p| < pressure_tol (Ha/Bohr³).
        response_tol: relative tolerance of the linear-response solves.
        scf_kwargs: passed to pwxc.scf.
    Returns:
        ZeroPressure; zp.a0.backward() (or any loss of it) reaches the XC parameters.
    """
    a_ref, v_ref = _reference_constant(basis, lattice_constant)
    scale, guess, history, deriv, slope = 1.0, scf_kwargs.pop("guess", None), [], None, None
    for step in range(max_steps + 1):
        result = scf(_scaled_basis(basis, scale), guess=guess, **scf_kwargs)
        guess = result
        volume = v_ref * scale**3
        if deriv is None:
            deriv = strain_derivatives(result, response_tol)
            pressure = -deriv.de_ds / (3 * volume)
            slope = deriv.de_ds / volume - deriv.d2e_ds2 / (3 * volume)        # dp/ds
        else:
            state = KSState.from_result(result)
            with torch.enable_grad():
                s = torch.zeros((), dtype=state.lattice.dtype, requires_grad=True)
                (de,) = torch.autograd.grad(_strain_energy(state, result, s), s)
            pressure_old, pressure = pressure, -float(de) / (3 * volume)
            slope = (pressure - pressure_old) / math.log(scale / history[-1]["scale"])   # secant
        history.append(dict(scale=scale, pressure=pressure))
        if abs(pressure) < pressure_tol or step == max_steps:
            break
        scale *= math.exp(-pressure / slope)                                     # Newton step in s
    if deriv.result is not result:
        deriv = strain_derivatives(result, response_tol)
    params = xc_parameters(basis.model.xc)
    dp_ds = deriv.de_ds / volume - deriv.d2e_ds2 / (3 * volume)        # d/ds of p = −(1/3Ω) dE/ds
    a_cur = a_ref * scale
    a0_value = a_cur * (1 - pressure / dp_ds)                           # last (tiny) Newton correction
    # implicit function: ds0/dθ = −(∂p/∂θ)/(∂p/∂s), ∂p/∂θ = −(1/3Ω) d²E/ds dθ, and da0 = a ds0
    grads = [a_cur * g / (3 * volume * dp_ds) for g in _mixed_gradient(deriv, params)]
    b0 = -dp_ds / 3                                                      # B = −V dp/dV, dV/V = 3 ds
    a0 = _Precomputed.apply(torch.tensor(a0_value, dtype=basis.dtype, device=basis.device), grads, *params)
    if not (abs(pressure) < pressure_tol):
        warnings.warn(f"zero_pressure_lattice: |p| = {abs(pressure):.2e} Ha/Bohr³ after {max_steps} steps",
                      RuntimeWarning)
    return ZeroPressure(a0, b0, pressure, scale, history, result, grads)
