"""FFT grid: size rule, Miller indices of the grid and real <-> reciprocal transforms.

Conventions: a periodic function f(r) = Σ_G f(G) e^{iG·r} is stored on the grid r_j = Σ_i (j_i/n_i) a_i.
Its Fourier coefficients are f(G) = fftn(f(r_j)) / N (N = n1 n2 n3), and f(r_j) = N · ifftn(f(G)).
"""
from __future__ import annotations

import math

import torch


def _is_fast(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def fft_size_for_cutoff(lattice: torch.Tensor, gmax: float) -> tuple[int, int, int]:
    """Smallest 2·3·5-smooth grid that holds every G with |G| ≤ gmax without aliasing.

    A G = Σ m_i b_i has |m_i| = |G·a_i|/2π ≤ gmax |a_i| / 2π, so n_i ≥ 2 floor(gmax |a_i| / 2π) + 1.
    """
    sizes = []
    for length in lattice.detach().norm(dim=1).tolist():
        n = 2 * math.floor(gmax * length / (2 * math.pi) + 1e-8) + 1
        while not _is_fast(n):
            n += 1
        sizes.append(n)
    return tuple(sizes)


class FFTGrid:
    """A real-space grid of shape (n1, n2, n3) and its integer reciprocal vectors (Miller indices)."""

    def __init__(self, shape, device=None):
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 3 or any(n < 1 for n in self.shape):
            raise ValueError(f"FFT grid shape must be three positive integers, got {shape!r}")
        self.size = math.prod(self.shape)
        freqs = [torch.fft.fftfreq(n, d=1.0 / n, device=device).round().long() for n in self.shape]
        m = torch.stack(torch.meshgrid(*freqs, indexing="ij"), dim=-1)
        #: (n1, n2, n3, 3) Miller indices of each reciprocal grid point.
        self.miller = m
        # Nyquist planes of even grids have no ±G partner; derivatives zero them for real output.
        nyq = torch.zeros(self.shape, dtype=torch.bool, device=device)
        for axis, n in enumerate(self.shape):
            if n % 2 == 0:
                idx = [slice(None)] * 3
                idx[axis] = n // 2
                nyq[tuple(idx)] = True
        self.nyquist = nyq

    def flat_index(self, miller: torch.Tensor) -> torch.Tensor:
        """Flat index into the (n1, n2, n3) box of integer vectors `miller` (..., 3), wrapped mod n."""
        n1, n2, n3 = self.shape
        m = miller % torch.tensor(self.shape, device=miller.device)
        return (m[..., 0] * n2 + m[..., 1]) * n3 + m[..., 2]

    def to_reciprocal(self, f_real: torch.Tensor) -> torch.Tensor:
        """Fourier coefficients f(G) of values on the grid (last three dims)."""
        return torch.fft.fftn(f_real, dim=(-3, -2, -1)) / self.size

    def to_real(self, f_recip: torch.Tensor) -> torch.Tensor:
        """Values on the grid of Σ_G f(G) e^{iG·r} (complex; take .real for real functions)."""
        return torch.fft.ifftn(f_recip, dim=(-3, -2, -1)) * self.size
