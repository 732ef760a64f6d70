"""Smearing functions, Fermi level and Monkhorst–Pack grids."""
import pytest
import torch

from pwxc.basis.kpoints import monkhorst_pack
from pwxc.occupation import SMEARINGS, fermi_level, smeared_occupations


@pytest.mark.parametrize("name", ["gaussian", "fermi-dirac", "methfessel-paxton", "marzari-vanderbilt"])
def test_entropy_is_consistent_with_occupation(name):
    """s'(x) = x θ'(x) makes F = E - σS variational in the occupations."""
    x = torch.linspace(-6, 6, 241, dtype=torch.float64, requires_grad=True)
    occ, s = SMEARINGS[name](x)
    (docc,) = torch.autograd.grad(occ.sum(), x)
    (ds,) = torch.autograd.grad(s.sum(), x)
    assert torch.allclose(ds, x * docc, atol=1e-14)
    occ, s = SMEARINGS[name](torch.tensor([-40.0, 40.0], dtype=torch.float64))
    assert torch.allclose(occ, torch.tensor([1.0, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(s, torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_fermi_level_counts_electrons():
    eig = torch.linspace(-0.3, 0.5, 40, dtype=torch.float64).reshape(4, 10)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    occ, ef, minus_ts = smeared_occupations(eig, w, 7.0, "gaussian", 0.01)
    assert float((w[:, None] * occ).sum()) == pytest.approx(7.0, abs=1e-12)
    assert float(minus_ts) <= 0
    with pytest.raises(ValueError, match="n_bands"):
        fermi_level(eig[:, :2], w, 7.0, "gaussian", 0.01)


def test_monkhorst_pack_time_reversal():
    k, w = monkhorst_pack((8, 8, 8))
    assert len(k) == 260 and float(w.sum()) == pytest.approx(1.0)
    k, w = monkhorst_pack((2, 2, 2))
    assert len(k) == 8                       # all points are their own -k
    k, w = monkhorst_pack((4, 4, 4), (0.5, 0.5, 0.5))
    assert len(k) == 32 and torch.allclose(w, torch.full_like(w, 1 / 32))
    k, w = monkhorst_pack((3, 3, 3), time_reversal=False)
    assert len(k) == 27
    # every reduced point's partner -k is in the full grid
    kfull, _ = monkhorst_pack((5, 4, 3), time_reversal=False)
    kred, wred = monkhorst_pack((5, 4, 3))
    assert float(wred.sum() * 60) == pytest.approx(60)
    assert len(kred) == 31


@pytest.mark.parametrize("kgrid,kshift", [((0, 1, 1), (0, 0, 0)), ((2, 2), (0, 0, 0)), ("abc", (0, 0, 0)),
                                          ((2, 2, 2), (0.5, 1.0, 0)), ((2, 2, -1), (0, 0, 0))])
def test_invalid_kgrid(kgrid, kshift):
    with pytest.raises(ValueError, match="kgrid|kshift"):
        monkhorst_pack(kgrid, kshift)
