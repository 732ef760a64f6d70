"""Bad input gets a clear exception naming the problem."""
import warnings

import pytest
import torch

import pwxc
from pwxc.crystal import Crystal

from conftest import SI_LATTICE_BOHR, silicon


def _si_crystal(positions=((0, 0, 0), (0.25, 0.25, 0.25)), lattice=None, species=("Si", "Si")):
    return Crystal.from_arrays(SI_LATTICE_BOHR if lattice is None else lattice, positions, species)


def test_missing_pseudopotential():
    with pytest.raises(ValueError, match="no pseudopotential given for element C"):
        pwxc.Model(_si_crystal(species=("Si", "C")), xc="pbe", pseudopotentials={"Si": "gth-pbe"})
    with pytest.raises(ValueError, match="Og has no pseudopotential"):
        pwxc.Model(_si_crystal(species=("Si", "Og")), xc="pbe")


def test_overlapping_atoms():
    with pytest.raises(ValueError, match="overlap"):
        _si_crystal(positions=((0, 0, 0), (0.001, 0, 0)))
    with pytest.raises(ValueError, match="overlap"):      # periodic image
        _si_crystal(positions=((0, 0, 0), (0.9999, 0, 0)))


def test_singular_and_left_handed_lattice():
    with pytest.raises(ValueError, match="singular"):
        _si_crystal(lattice=[[1.0, 0, 0], [2.0, 0, 0], [0, 0, 3.0]])
    with pytest.raises(ValueError, match="left-handed"):
        _si_crystal(lattice=SI_LATTICE_BOHR[[1, 0, 2]])
    with pytest.raises(ValueError, match="non-finite"):
        _si_crystal(positions=((0, 0, 0), (float("nan"), 0, 0)))


def test_bad_cutoffs_and_grids():
    model = pwxc.Model(_si_crystal(), xc="lda_pz")
    for ecut in (0, -5, float("nan"), "x"):
        with pytest.raises(ValueError, match="ecut"):
            pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=(1, 1, 1))
    with pytest.raises(ValueError, match="too small"):
        pwxc.PlaneWaveBasis(model, ecut=1e-3, kgrid=(2, 2, 2))
    with pytest.raises(ValueError, match="raise ecut"):
        pwxc.scf(pwxc.PlaneWaveBasis(model, ecut=0.2, kgrid=(1, 1, 1)))
    with pytest.raises(ValueError, match="kgrid"):
        pwxc.PlaneWaveBasis(model, ecut=5, kgrid=(0, 2, 2))
    with pytest.raises(ValueError, match="FFT grid"):
        pwxc.PlaneWaveBasis(model, ecut=10, kgrid=(1, 1, 1), fft_size=(8, 8, 8))


def test_odd_electrons_need_smearing_and_smearing_needs_temperature():
    al = Crystal.from_arrays(3.8 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]]), [[0, 0, 0]], ["Al"])
    with pytest.raises(ValueError, match="smearing"):
        pwxc.Model(al, xc="pbe")
    with pytest.raises(ValueError, match="temperature"):
        pwxc.Model(al, xc="pbe", smearing="gaussian")
    with pytest.raises(ValueError, match="unknown smearing"):
        pwxc.Model(al, xc="pbe", smearing="lorentz", temperature=0.01)
    with pytest.raises(ValueError, match="unknown|xc|functional"):
        pwxc.Model(al, xc="b3lyp-ish", smearing="gaussian", temperature=0.01)


class _NaNFunctional(torch.nn.Module):
    is_gga = False

    def energy_density(self, rho, sigma=None):
        return rho * float("nan")


def test_nonfinite_values_in_scf_raise():
    basis = silicon(xc=_NaNFunctional(), pseudopotentials="gth-pade", ecut=6, fft_size=(18, 18, 18))
    with pytest.raises(FloatingPointError, match="non-finite"):
        pwxc.scf(basis)


def test_unconverged_scf_warns_or_raises():
    basis = silicon(ecut=6, fft_size=(18, 18, 18))
    with pytest.warns(RuntimeWarning, match="not converged.*Try"):
        result = pwxc.scf(basis, maxiter=2)
    assert result.converged is False and result.n_iterations == 2
    with pytest.raises(pwxc.SCFNotConvergedError):
        pwxc.scf(basis, maxiter=2, raise_on_failure=True)


def test_bad_scf_tolerances():
    basis = silicon(ecut=6, fft_size=(18, 18, 18))
    with pytest.raises(ValueError, match="tol must be a finite positive number"):
        pwxc.scf(basis, tol=0.0)
    for bad in (0.0, -1e-4, float("nan")):
        with pytest.raises(ValueError, match="empty_band_tol"):
            pwxc.scf(basis, empty_band_tol=bad)


def test_settings_are_validated_not_coerced():
    """A k-grid of 2.5, ecut=True, maxiter 0 or -1, anderson_depth -1, tol nan/inf, density_tol -1 or
    nan: named ValueErrors before any work (no silent rounding, no IndexError from the SCF loop)."""
    import math
    import pwxc
    from pwxc.crystal import Crystal
    crystal = Crystal.from_arrays(5.13 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64),
                                  [[0, 0, 0], [0.25, 0.25, 0.25]], ["Si", "Si"])
    model = pwxc.Model(crystal, xc="lda_pz")
    for kgrid in ((2.5, 2.5, 2.5), (0, 1, 1), (True, 1, 1), (1, 1)):
        with pytest.raises(ValueError, match="kgrid must be three positive integers"):
            pwxc.PlaneWaveBasis(model, ecut=5, kgrid=kgrid)
    with pytest.raises(ValueError, match="ecut must be a positive number"):
        pwxc.PlaneWaveBasis(model, ecut=True)
    basis = pwxc.PlaneWaveBasis(model, ecut=5, kgrid=(1, 1, 1))
    for kw, match in ((dict(maxiter=0), "maxiter"), (dict(maxiter=-1), "maxiter"), (dict(maxiter=2.5), "maxiter"),
                      (dict(anderson_depth=-1), "anderson_depth"), (dict(tol=math.nan), "tol"),
                      (dict(tol=math.inf), "tol"), (dict(density_tol=-1.0), "density_tol"),
                      (dict(density_tol=math.nan), "density_tol")):
        with pytest.raises(ValueError, match=match):
            pwxc.scf(basis, **kw)


def test_model_numbers_are_finite():
    import math
    import pwxc
    from pwxc.crystal import Crystal
    al = Crystal.from_arrays(3.8 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64),
                             [[0, 0, 0]], ["Al"])
    for kw, match in ((dict(temperature=math.nan), "temperature must be a finite"),
                      (dict(temperature=math.inf), "temperature must be a finite"),
                      (dict(temperature=-0.01), "temperature"), (dict(charge=-math.inf), "charge must be a finite"),
                      (dict(magnetic_moments=1.0), "one value per atom")):
        kw.setdefault("temperature", 0.01)
        with pytest.raises(ValueError, match=match):
            pwxc.Model(al, smearing="gaussian", **kw)
