"""GTH form factors against numerical radial Fourier transforms of the real-space formulas."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from pwxc.pseudo import load_pseudopotential
from pwxc.pseudo.library import FAMILY_FILES, _family


def _projector_r(pp, l, i, r):
    rl = pp.r_nl[l]
    return (math.sqrt(2) * r ** (l + 2 * (i - 1)) * math.exp(-r * r / (2 * rl * rl))
            / (rl ** (l + (4 * i - 1) / 2) * math.sqrt(math.gamma(l + (4 * i - 1) / 2))))


@pytest.mark.parametrize("element,name", [("Cu", "gth-pbe"), ("Cu", "gth-pbe-q19"), ("Si", "gth-pade"),
                                          ("Mg", "gth-pbe")])
def test_projector_form_factor_matches_quadrature(element, name):
    pp = load_pseudopotential(element, name)
    for l in range(pp.lmax + 1):
        for i in range(1, pp.n_projectors(l) + 1):
            for q in (0.0, 0.3, 1.1, 4.0):
                numeric = 4 * math.pi * integrate.quad(
                    lambda r: r * r * _projector_r(pp, l, i, r) * special.spherical_jn(l, q * r), 0, 40, limit=400)[0]
                analytic = float(pp.projector_form_factor(l, i, torch.tensor(q, dtype=torch.float64)))
                assert analytic == pytest.approx(numeric, rel=1e-9, abs=1e-11)


@pytest.mark.parametrize("element,name", [("Mg", "gth-pbe"), ("Al", "gth-pbe"), ("O", "gth-pbe"),
                                          ("Cu", "gth-pbe-q19")])
def test_local_form_factor_matches_quadrature(element, name):
    """v(q) + 4πZ/q² = 4π ∫ r² [V_loc(r) + Z/r] j0(qr) dr with GTH 1996 Eq. (1)."""
    pp = load_pseudopotential(element, name)
    c = list(pp.c_loc) + [0.0] * (4 - len(pp.c_loc))

    def short_range(r):
        x = r / pp.r_loc
        v = -pp.z_ion / r * math.erf(x / math.sqrt(2)) + math.exp(-x * x / 2) * (
            c[0] + c[1] * x**2 + c[2] * x**4 + c[3] * x**6)
        return v + pp.z_ion / r

    for q in (0.0, 0.5, 2.0, 6.0):
        numeric = 4 * math.pi * integrate.quad(lambda r: r * r * short_range(r) * special.spherical_jn(0, q * r),
                                               1e-12, 40, limit=400)[0]
        analytic = float(pp.local_form_factor(torch.tensor(q, dtype=torch.float64)))
        assert analytic == pytest.approx(numeric, rel=1e-8, abs=1e-9)
    assert float(pp.local_form_factor(torch.tensor(0.0, dtype=torch.float64))) == pytest.approx(pp.alpha_z, rel=1e-12)


def test_spherical_harmonics_sum_rule():
    from pwxc.terms.nonlocal_pseudo import real_spherical_harmonics
    u = torch.randn(50, 3, dtype=torch.float64)
    norm = u.norm(dim=-1)
    for l in range(4):
        y = real_spherical_harmonics(l, u, norm)
        assert torch.allclose((y**2).sum(0), torch.full_like(norm, (2 * l + 1) / (4 * math.pi)))
    # orthonormality on the sphere by Lebedev-free Monte Carlo would be noisy; check via a quadrature grid
    theta, wt = np.polynomial.legendre.leggauss(20)
    phi = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    ct, ph = np.meshgrid(theta, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    pts = torch.tensor(np.stack([st * np.cos(ph), st * np.sin(ph), ct], -1).reshape(-1, 3))
    w = torch.tensor((wt[:, None] * np.full(40, 2 * np.pi / 40)[None]).reshape(-1))
    ys = torch.cat([real_spherical_harmonics(l, pts, pts.norm(dim=-1)) for l in range(4)])
    gram = (ys * w) @ ys.T
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=1e-12)


def test_library_variants_and_every_entry_parses():
    assert load_pseudopotential("Cu", "gth-pbe").z_ion == 11
    assert load_pseudopotential("Cu", "gth-pbe-q19").z_ion == 19
    assert load_pseudopotential("Mg", "gth-pbe").z_ion == 10
    assert load_pseudopotential("Ni", "gth-pbe").z_ion == 18
    assert load_pseudopotential("Si", "gth-pade").z_ion == 4
    for family in ("gth-pbe", "gth-pade"):
        entries = _family(family)
        assert len(entries) > 80
        for element, variants in entries.items():
            for pp in variants:
                assert pp.z_ion > 0 and pp.r_loc > 0
    for element in ("Ca", "Cu", "Ag", "Pd", "Rh", "Al", "Ni", "Mg", "O", "F", "Si", "C"):
        load_pseudopotential(element, "gth-pbe")
        load_pseudopotential(element, "gth-pade")


def test_library_errors_name_the_problem():
    with pytest.raises(ValueError, match="q7"):
        load_pseudopotential("Cu", "gth-pbe-q7")
    with pytest.raises(ValueError, match="unknown pseudopotential family"):
        load_pseudopotential("Cu", "upf-sssp")
