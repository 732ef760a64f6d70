"""pwxc.xc.PBEFamilyXC: PBE at zero parameters, and the exact constraints it keeps for any parameters."""
import pytest
import torch

import pwxc
from pwxc.xc.gga_pbe import X2S2
from pwxc.xc.lda import PW92Correlation, SlaterExchange

GEN = torch.Generator().manual_seed(0)


def random_inputs(n=2000, polarized=False):
    if polarized:
        rho = torch.rand(2, n, generator=GEN, dtype=torch.float64) * 3 + 1e-4
        g = torch.randn(3, 2, n, generator=GEN, dtype=torch.float64)
        sigma = torch.stack([(g[:, i] * g[:, j]).sum(0) for i, j in ((0, 0), (0, 1), (1, 1))])
        return rho, sigma
    return torch.rand(n, generator=GEN, dtype=torch.float64) * 3 + 1e-4, \
        torch.rand(n, generator=GEN, dtype=torch.float64) * 10


PARAMS = [dict(), dict(v=-0.4, w=-0.6, b=-0.3, c1=0.4, c2=0.7), dict(v=2.0, w=1.5, b=0.8, c1=1.0, c2=-0.1)]


@pytest.mark.parametrize("polarized", [False, True])
def test_zero_parameters_are_pbe(polarized):
    rho, sigma = random_inputs(polarized=polarized)
    diff = pwxc.xc.PBEFamilyXC().energy_density(rho, sigma) - pwxc.xc.functional("pbe").energy_density(rho, sigma)
    assert float(diff.abs().max()) < 1e-14


@pytest.mark.parametrize("params", PARAMS)
def test_enhancement_bounds_and_uniform_gas_limit(params):
    f = pwxc.xc.PBEFamilyXC(**params)
    s2 = torch.cat([torch.zeros(1, dtype=torch.float64), torch.logspace(-4, 4, 500, dtype=torch.float64)])
    fx = f.exchange.enhancement(s2)
    assert float(fx[0]) == 1.0                                   # F_x(0) = 1
    assert bool((fx >= 1).all()) and bool((fx <= 1.804 + 1e-15).all())   # Lieb–Oxford (local)
    assert bool((fx[1:] >= fx[:-1]).all())                      # monotone in s
    # σ = 0: exchange and correlation are the uniform-gas (LDA) values
    rho = torch.rand(100, generator=GEN, dtype=torch.float64) + 1e-3
    zero = torch.zeros_like(rho)
    lda = SlaterExchange().energy_density(rho) + PW92Correlation(modified=True).energy_density(rho)
    assert torch.allclose(f.energy_density(rho, zero), lda, rtol=1e-13, atol=0)


@pytest.mark.parametrize("params", PARAMS)
def test_correlation_nonpositive_and_exchange_spin_scaling(params):
    f = pwxc.xc.PBEFamilyXC(**params)
    rho, sigma = random_inputs(polarized=True)
    assert bool((f.correlation.energy_density(rho, sigma) <= 0).all())
    # E_x[n↑, n↓] = (E_x[2n↑] + E_x[2n↓]) / 2
    ex = f.exchange.energy_density(rho, sigma)
    up = f.exchange.energy_density(2 * rho[0], 4 * sigma[0])
    dn = f.exchange.energy_density(2 * rho[1], 4 * sigma[2])
    assert torch.allclose(ex, (up + dn) / 2, rtol=1e-13)


def test_parameters_get_gradients_and_save_load(tmp_path):
    f = pwxc.xc.PBEFamilyXC(**PARAMS[1])
    rho, sigma = random_inputs()
    f.energy_density(rho, sigma).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad) and p.grad != 0 for p in f.parameters())
    # at PBE (all zero) every parameter has a nonzero gradient: training can leave PBE
    g = pwxc.xc.PBEFamilyXC()
    g.energy_density(rho, sigma).sum().backward()
    assert all(p.grad != 0 for p in g.parameters())
    path = tmp_path / "f.pt"
    f.save(path)
    g = pwxc.xc.load(path)
    assert torch.equal(g.energy_density(rho, sigma), f.energy_density(rho, sigma))
    assert f.summary()["kappa"] == pytest.approx(0.804 * 2.718281828459045**-0.4)
    assert X2S2 > 0
