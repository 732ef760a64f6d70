"""Differentiable equation of state (pwxc.response.eos): da₀/dθ against finite differences of re-found a₀.

fcc Al (one atom, Gaussian smearing σ = 0.03 Ha, ecut 6 Ha, 3×3×3 k) with a small HybridXC (a = 0.5).
Both routes are checked along one random direction v of θ with central differences (h = 1e-3):
(a) a₀ of the Birch–Murnaghan fit, re-fitted from re-converged scans at θ ± h v;
(b) a₀ from the implicit-function theorem on zero pressure, against roots of the Hellmann–Feynman
    pressure at θ ± h v found by an independent secant search (pwxc.pressure). Acceptance: 1e-4 relative.
"""
import math

import pytest
import torch

import pwxc
from pwxc.crystal import Crystal
from pwxc.response.eos import fit_eos, zero_pressure_lattice

TIGHT = dict(tol=1e-12, density_tol=1e-9)
A_REF = 7.45                                   # conventional lattice constant of the input cell, Bohr
SCALES = (0.99, 0.995, 1.0, 1.005, 1.01)
H = 1e-3
FCC = 0.5 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    xc = pwxc.xc.HybridXC(base="pbe", model=pwxc.xc.MLP(hidden=(8,)), a=0.5)
    model = pwxc.Model(Crystal.from_arrays(A_REF * FCC, [[0, 0, 0]], ["Al"]), xc=xc, smearing="gaussian",
                       temperature=0.03)
    basis = pwxc.PlaneWaveBasis(model, ecut=6, kgrid=(3, 3, 3))
    gen = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in xc.parameters()]
    return xc, basis, v


def directional(xc, a0, v):
    grads = torch.autograd.grad(a0, list(xc.parameters()), retain_graph=True)
    return float(sum((g * d).sum() for g, d in zip(grads, v)))


def central_difference(xc, v, f):
    values = []
    for h in (H, -H):
        with torch.no_grad():
            for p, d in zip(xc.parameters(), v):
                p.add_(h * d)
        try:
            values.append(f())
        finally:
            with torch.no_grad():
                for p, d in zip(xc.parameters(), v):
                    p.sub_(h * d)
    return (values[0] - values[1]) / (2 * H)


@pytest.fixture(scope="module")
def fitted(case):
    xc, basis, v = case
    return fit_eos(basis, scales=SCALES, lattice_constant=A_REF, **TIGHT)


@pytest.fixture(scope="module")
def zero_pressure(case):
    xc, basis, v = case
    return zero_pressure_lattice(basis, lattice_constant=A_REF, pressure_tol=1e-11, **TIGHT)


def test_fit_da0_dtheta_matches_refitted_lattice_constants(case, fitted):
    xc, basis, v = case
    assert SCALES[0] < float(fitted.a0.detach()) / A_REF < SCALES[-1]
    analytic = directional(xc, fitted.a0, v)
    fd = central_difference(xc, v, lambda: float(fit_eos(basis, scales=SCALES, lattice_constant=A_REF,
                                                         **TIGHT).a0.detach()))
    assert analytic == pytest.approx(fd, rel=1e-4)
    assert float(fitted.b0.detach()) > 0 and fitted.b0.grad_fn is not None


def _pressure_root(basis, scale, guess):
    """Scale at which the Hellmann–Feynman pressure vanishes, by secant steps (independent of eos.py)."""
    from pwxc.response.eos import _scaled_basis

    def pressure(s):
        nonlocal guess
        guess = pwxc.scf(_scaled_basis(basis, s), guess=guess, **TIGHT)
        return float(pwxc.pressure(guess))

    s0, s1 = scale, scale * (1 + 2e-4)
    p0, p1 = pressure(s0), pressure(s1)
    for _ in range(8):
        s0, s1, p0 = s1, s1 - p1 * (s1 - s0) / (p1 - p0), p1
        p1 = pressure(s1)
        if abs(p1) < 1e-11:
            break
    return s1


def test_zero_pressure_da0_dtheta_matches_finite_differences(case, zero_pressure):
    xc, basis, v = case
    zp = zero_pressure
    assert abs(zp.pressure) < 1e-11
    assert zp.history[0]["scale"] == 1.0 and len(zp.history) <= 8
    analytic = directional(xc, zp.a0, v)
    fd = central_difference(xc, v, lambda: A_REF * _pressure_root(basis, zp.scale, zp.result))
    assert analytic == pytest.approx(fd, rel=1e-4)


def test_fit_and_zero_pressure_agree(fitted, zero_pressure):
    """Same fixed-basis E(V): the fit's a₀ and B₀ agree with the zero-pressure ones to the fit's accuracy."""
    assert float(fitted.a0.detach()) == pytest.approx(float(zero_pressure.a0.detach()), rel=1e-6)
    assert float(fitted.b0.detach()) == pytest.approx(zero_pressure.b0, rel=2e-3)
    assert math.isfinite(zero_pressure.b0) and zero_pressure.b0 > 0
