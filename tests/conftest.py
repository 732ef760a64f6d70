"""Shared fixtures: reference cases and small crystals."""
import json
from pathlib import Path

import pytest
import torch

import pwxc
from pwxc.crystal import Crystal

DATA = Path(__file__).parent / "data"
#: QE 6.7 / ABINIT 9.6.2 reference energies at fixed settings (see data/README.md for provenance)
FIXED_SETTINGS = json.loads((DATA / "qe_abinit_fixed_settings.json").read_text())["entries"]
XC_NAMES = {"LDA-PZ": "lda_pz", "LDA-PW92": "lda", "PBE": "pbe"}

SI_LATTICE_BOHR = 5.131551291421 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)


def reference_basis(case_id: str, **model_kwargs):
    """Model and basis with exactly the settings of a fixed-settings reference entry."""
    entry = FIXED_SETTINGS[case_id]
    s = entry["structure"]
    crystal = Crystal.from_arrays(s["lattice_vectors_ang"], s["frac_positions"], s["species"], unit="angstrom")
    pseudos = {el: name.split()[1].lower() for el, name in entry["pseudopotentials"].items()}
    smearing = entry["smearing"]
    model = pwxc.Model(crystal, xc=XC_NAMES[entry["xc"]["name"]], pseudopotentials=pseudos,
                       smearing=None if smearing is None else smearing["kind"],
                       temperature=0.0 if smearing is None else smearing["width_ha"], **model_kwargs)
    return pwxc.PlaneWaveBasis(model, ecut=entry["ecut_ha"], kgrid=entry["kmesh"], kshift=entry["kshift"],
                               fft_size=entry["fft_grid"])


def silicon(positions=((0, 0, 0), (0.25, 0.25, 0.25)), lattice=None, xc="lda_pz", ecut=10.0, kgrid=(2, 2, 2),
            fft_size=(24, 24, 24), **kwargs):
    """Small, fast Si diamond basis (Bohr, GTH-PADE for LDA)."""
    lattice = SI_LATTICE_BOHR if lattice is None else lattice
    crystal = Crystal.from_arrays(lattice, positions, ["Si", "Si"])
    model = pwxc.Model(crystal, xc=xc, **kwargs)
    return pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=kgrid, fft_size=fft_size)


def aluminium(lattice=None, ecut=8.0, kgrid=(4, 4, 4), fft_size=None, xc="pbe", temperature=0.02):
    a = 3.826695402367
    lattice = a * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64) if lattice is None else lattice
    crystal = Crystal.from_arrays(lattice, [[0, 0, 0]], ["Al"])
    model = pwxc.Model(crystal, xc=xc, smearing="gaussian", temperature=temperature)
    return pwxc.PlaneWaveBasis(model, ecut=ecut, kgrid=kgrid, fft_size=fft_size)


def random_hermitian(nk: int, n: int, top: float) -> torch.Tensor:
    """(nk, n, n) complex Hermitian test matrices: diagonal spread evenly over [0, top] plus a random part of
    size 0.1 (drawn from torch's global generator, so seed it first)."""
    a = torch.randn(nk, n, n, dtype=torch.complex128) * 0.1
    diag = torch.diag_embed(torch.linspace(0, top, n, dtype=torch.float64).to(torch.complex128))
    return a + a.conj().transpose(-1, -2) + diag.expand(nk, n, n)
