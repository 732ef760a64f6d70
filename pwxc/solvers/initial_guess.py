"""Start orbitals for the first diagonalisation of an SCF.

With several bands above the occupied ones (metals with smearing), the start is the exact solution
of the Kohn–Sham Hamiltonian restricted to the n_sub plane waves of lowest kinetic energy at each
k-point, plus a small random part; otherwise random vectors (see :func:`start_orbitals` for why).
The subspace problem is dense (n_sub × n_sub):

    H_GG' = ½|k+G|² δ_GG' + V̂_eff(G − G') + Σ_ij p_i(k+G) D_ij p_j(k+G')*,

whose lowest eigenvectors, embedded in the full sphere, are the start vectors of LOBPCG. For the
low-lying states of a solid these few plane waves carry most of the weight, so the first iterative
diagonalisation needs about half the iterations it needs from random vectors (Al fcc 8×8×8: 4
instead of 8 LOBPCG iterations at the first step's tolerance). V̂_eff(G − G') is read from the FFT of
V_eff on the density grid with the same wrap-around as the Hamiltonian's FFT application, so the
small matrix is exactly a block of the operator LOBPCG works with.
"""
from __future__ import annotations

import torch

#: plane waves of the start subspace per requested band (at least _MIN_SUBSPACE)
SUBSPACE_PER_BAND = 6
_MIN_SUBSPACE = 40
#: matrix entries built at once (k-points are processed in chunks below this)
_CHUNK_ENTRIES = 2**22


def random_orbitals(basis, n_bands: int, seed: int) -> torch.Tensor:
    """(n_k, n_bands, npw_max) random coefficients damped by (1 + ½|k+G|²)⁻², zero on padding."""
    gen = torch.Generator().manual_seed(seed)
    shape = (basis.n_kpoints, n_bands, basis.mask.shape[1])
    re = torch.randn(shape, generator=gen, dtype=torch.float64)
    im = torch.randn(shape, generator=gen, dtype=torch.float64)
    psi = torch.complex(re, im).to(device=basis.device)
    kinetic = basis.kinetic(basis.model.crystal.lattice.detach())
    return psi * basis.mask[:, None, :] / (1 + kinetic[:, None, :]) ** 2


def subspace_orbitals(ham, n_bands: int, n_sub: int | None = None) -> torch.Tensor | None:
    """(n_k, n_bands, npw_max) lowest eigenvectors of ``ham`` (a pwxc.hamiltonian.Hamiltonian) within
    the n_sub lowest-kinetic-energy plane waves of each k-point, or None when some k-point has fewer
    than 2·n_bands plane waves (the subspace would not be a useful start)."""
    basis = ham.basis
    npw_min = int(basis.n_planewaves.min())
    if n_sub is None:
        n_sub = max(_MIN_SUBSPACE, SUBSPACE_PER_BAND * n_bands)
    n_sub = min(n_sub, npw_min)
    if n_sub < 2 * n_bands:
        return None
    _, sel = torch.topk(ham.kinetic.masked_fill(~basis.mask, float("inf")), n_sub, dim=1, largest=False)
    psi = None
    step = max(1, _CHUNK_ENTRIES // (n_sub * n_sub))
    for start in range(0, basis.n_kpoints, step):
        ks = torch.arange(start, min(start + step, basis.n_kpoints), device=basis.device)
        h = subspace_hamiltonian(ham, ks, sel[ks])
        _, vec = torch.linalg.eigh(h)
        if psi is None:
            psi = torch.zeros(basis.n_kpoints, n_bands, basis.mask.shape[1], dtype=h.dtype, device=basis.device)
        psi[ks] = torch.zeros_like(psi[ks]).scatter_(2, sel[ks][:, None, :].expand(-1, n_bands, -1),
                                                     vec[..., :n_bands].transpose(-1, -2).contiguous())
    return psi


def subspace_hamiltonian(ham, kidx: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """(len(kidx), n_sub, n_sub) Hermitian matrix ⟨k+G_i|H|k+G_j⟩ (Hartree) for the plane-wave positions
    sel (len(kidx), n_sub) of each k-point's sphere: the block of ``ham`` on those plane waves."""
    basis = ham.basis
    kinetic = ham.kinetic[kidx]
    cdtype = torch.complex128 if kinetic.dtype == torch.float64 else torch.complex64
    v_hat = (torch.fft.fftn(ham.v_eff.to(cdtype)) / basis.fft.size).reshape(-1)
    miller = torch.gather(basis.miller[kidx], 1, sel[..., None].expand(-1, -1, 3))
    h = v_hat[basis.fft.flat_index(miller[:, :, None, :] - miller[:, None, :, :])]
    h = h + torch.diag_embed(torch.gather(kinetic, 1, sel).to(cdtype))
    if ham.proj is not None:
        p = torch.gather(ham.proj[kidx], 2, sel[:, None, :].expand(-1, ham.proj.shape[1], -1))
        h = h + torch.einsum("kai,ab,kbj->kij", p, ham.coupling, p.conj())
    return 0.5 * (h + h.conj().transpose(-1, -2))


#: weight of the random admixture in the subspace start vectors (relative to the normalised vector)
RANDOM_ADMIXTURE = 0.1
#: the subspace start is used only with at least this many bands above the occupied ones
MIN_SPARE_BANDS = 4


def start_orbitals(ham, n_bands: int, n_occupied: int, seed: int) -> torch.Tensor:
    """Start vectors of the first diagonalisation (n_bands of them; n_occupied bands hold electrons).

    Subspace eigenvectors (plus a 10 % random admixture) when at least MIN_SPARE_BANDS computed bands
    lie above the occupied ones, random vectors otherwise. LOBPCG cannot leave the invariant subspaces
    its start block spans, and at the loose tolerance of the first SCF steps it settles on whatever
    states the start offers: if the truncated-basis problem orders a poorly represented occupied state
    above the computed bands, the SCF first converges to an excited configuration (seen for Si8 with
    only 2 spare bands: 6 steps at an energy 0.02 Ha too high, then a slow recovery). With several
    spare bands, as for metals with smearing, such a state is still among the start vectors."""
    rand = random_orbitals(ham.basis, n_bands, seed)
    sub = subspace_orbitals(ham, n_bands) if n_bands - n_occupied >= MIN_SPARE_BANDS else None
    if sub is None:
        return rand
    norm = torch.view_as_real(rand).square().sum((-1, -2)).sqrt()[..., None]
    return sub + RANDOM_ADMIXTURE * rand / norm
