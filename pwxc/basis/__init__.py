"""Discretisation: k-points, FFT grids and the plane-wave basis."""
from .kpoints import monkhorst_pack
from .fft_grid import FFTGrid, fft_size_for_cutoff
from .plane_wave_basis import PlaneWaveBasis

__all__ = ["monkhorst_pack", "FFTGrid", "fft_size_for_cutoff", "PlaneWaveBasis"]
