"""Structure input (pymatgen objects and files) and devices."""
import pytest
import torch
from pymatgen.core import Lattice, Structure

import pwxc
from pwxc.units import ANGSTROM_IN_BOHR


def _si_structure():
    return Structure(Lattice([[0, 2.7155, 2.7155], [2.7155, 0, 2.7155], [2.7155, 2.7155, 0]]), ["Si", "Si"],
                     [[0, 0, 0], [0.25, 0.25, 0.25]])


@pytest.mark.parametrize("fmt", ["cif", "poscar"])
def test_structure_files_round_trip(tmp_path, fmt):
    path = tmp_path / ("si.cif" if fmt == "cif" else "POSCAR")
    _si_structure().to(filename=str(path))
    structure = Structure.from_file(str(path))
    model = pwxc.Model(structure, xc="lda_pz")
    assert model.n_electrons == 8
    volume = structure.volume * ANGSTROM_IN_BOHR**3
    assert float(model.crystal.volume) == pytest.approx(volume, rel=1e-6)


def test_pymatgen_and_array_inputs_agree():
    s = _si_structure()
    from_pmg = pwxc.Model(s, xc="lda_pz")
    from_arrays = pwxc.Model(pwxc.Crystal.from_arrays(s.lattice.matrix, s.frac_coords, ["Si", "Si"],
                                                      unit="angstrom"), xc="lda_pz")
    assert torch.allclose(from_pmg.crystal.lattice, from_arrays.crystal.lattice)
    cart = pwxc.Crystal.from_arrays(s.lattice.matrix, s.cart_coords, ["Si", "Si"], cartesian=True, unit="angstrom")
    assert torch.allclose(cart.positions, from_pmg.crystal.positions)
    with pytest.raises(TypeError, match="pymatgen Structure"):
        pwxc.Model("Si2", xc="pbe")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    cpu = pwxc.scf(pwxc.PlaneWaveBasis(pwxc.Model(_si_structure(), xc="pbe"), ecut=10, kgrid=(2, 2, 2)))
    gpu_model = pwxc.Model(_si_structure(), xc="pbe", device="cuda")
    gpu = pwxc.scf(pwxc.PlaneWaveBasis(gpu_model, ecut=10, kgrid=(2, 2, 2)))
    assert gpu.density.device.type == "cuda"
    assert abs(float(gpu.energy) - float(cpu.energy)) < 1e-9
