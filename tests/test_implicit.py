"""Implicit differentiation of the SCF fixed point (pwxc.scf(..., differentiable=True)) against finite differences.

Every gradient is checked along one random direction v of the parameters θ of a small HybridXC (a = 0.5,
MLP 8 hidden units) and along one displacement of an atom: the directional derivative ⟨∂L/∂x, v⟩ from
one backward pass against Richardson-extrapolated central differences of re-converged SCFs,
D = (4 D(h) − D(2h))/3, with tight SCF tolerances. Acceptance: 1e-5 relative.
"""
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import pwxc
from pwxc.crystal import Crystal
from pwxc.response.krylov import block_cg, gmres, minres

from conftest import SI_LATTICE_BOHR

TIGHT = dict(tol=1e-12, density_tol=1e-9)
RTOL = 1e-5
AL_FCC = 3.826695402367 * torch.tensor([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float64)


def hybrid(seed=0):
    torch.manual_seed(seed)
    return pwxc.xc.HybridXC(base="pbe", model=pwxc.xc.MLP(hidden=(8,)), a=0.5)


def directions(xc, positions, atom, seed=1):
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in xc.parameters()]
    d_pos = torch.zeros_like(positions)
    d_pos[atom] = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    return v, d_pos


def shift_parameters(xc, v, h):
    with torch.no_grad():
        for p, d in zip(xc.parameters(), v):
            p.add_(h * d)


def richardson(f, h):
    """(4 D(h) − D(2h))/3 with D(h) = (f(h) − f(−h))/2h; f returns a tuple of outputs."""
    values = {s: torch.tensor(f(s), dtype=torch.float64) for s in (-2 * h, -h, h, 2 * h)}
    d1 = (values[h] - values[-h]) / (2 * h)
    d2 = (values[2 * h] - values[-2 * h]) / (4 * h)
    return (4 * d1 - d2) / 3


def finite_differences(make_basis, xc, positions, v, d_pos, outputs, guess, h_theta=1e-3, h_pos=2.5e-4):
    """Directional derivatives of each output(result) along θ → θ + h v and positions → positions + h d_pos."""
    def along_theta(h):
        shift_parameters(xc, v, h)
        try:
            result = pwxc.scf(make_basis(positions), guess=guess, **TIGHT)
        finally:
            shift_parameters(xc, v, -h)
        return [float(out(result)) for out in outputs]

    def along_positions(h):
        result = pwxc.scf(make_basis(positions + h * d_pos), guess=guess, **TIGHT)
        return [float(out(result)) for out in outputs]

    return richardson(along_theta, h_theta), richardson(along_positions, h_pos)


def analytic(result, output, xc, positions, v, d_pos):
    params = list(xc.parameters())
    grads = torch.autograd.grad(output(result), [positions] + params, retain_graph=True)
    theta = sum((g * d).sum() for g, d in zip(grads[1:], v))
    return float(theta), float((grads[0] * d_pos).sum())


# ---------------------------------------------------------------------------------------------- silicon
SI_POS = torch.tensor([[0.0, 0.0, 0.0], [0.27, 0.24, 0.25]], dtype=torch.float64)
GRID_POINT = (3, 5, 7)


def si_basis(xc, positions):
    crystal = Crystal.from_arrays(SI_LATTICE_BOHR, positions, ["Si", "Si"])
    return pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc=xc), ecut=8, kgrid=(1, 1, 1))


def si_density(result):
    return result.density[0][GRID_POINT]


def si_homo(result):
    return result.eigenvalues[0, 3]      # Γ only; HOMO of the displaced cell is non-degenerate


@pytest.fixture(scope="module")
def silicon_case():
    xc = hybrid()
    positions = SI_POS.clone().requires_grad_(True)
    result = pwxc.scf(si_basis(xc, positions), differentiable=True, **TIGHT)
    eps = result.eigenvalues.detach()[0]
    assert float(eps[3] - eps[2]) > 1e-3                         # non-degenerate HOMO
    assert torch.equal(result.fermi_level.detach(), eps[3])
    v, d_pos = directions(xc, SI_POS, atom=1)
    fd = finite_differences(lambda p: si_basis(xc, p), xc, SI_POS, v, d_pos, [si_density, si_homo], result)
    return result, xc, positions, v, d_pos, fd


@pytest.mark.parametrize("index, output", [(0, si_density), (1, si_homo)], ids=["density", "homo"])
def test_silicon_density_and_homo_match_finite_differences(silicon_case, index, output):
    result, xc, positions, v, d_pos, (fd_theta, fd_pos) = silicon_case
    theta, pos = analytic(result, output, xc, positions, v, d_pos)
    assert theta == pytest.approx(float(fd_theta[index]), rel=RTOL)
    assert pos == pytest.approx(float(fd_pos[index]), rel=RTOL)
    assert result.implicit.history[-1]["converged"]


def test_fermi_level_of_aluminium_matches_finite_differences():
    """Smeared metal (Gaussian, σ = 0.03 Ha): occupation and Fermi-level response included.
    Two-atom cell (one atom displaced) so that the atomic-position derivative is not zero by symmetry."""
    xc = hybrid()
    lattice = torch.stack([AL_FCC[0], AL_FCC[1], 2 * AL_FCC[2]])
    pos0 = torch.tensor([[0.0, 0.0, 0.0], [0.02, -0.01, 0.51]], dtype=torch.float64)

    def make_basis(p):
        model = pwxc.Model(Crystal.from_arrays(lattice, p, ["Al", "Al"]), xc=xc, smearing="gaussian",
                           temperature=0.03)
        return pwxc.PlaneWaveBasis(model, ecut=6, kgrid=(3, 3, 2))

    positions = pos0.clone().requires_grad_(True)
    result = pwxc.scf(make_basis(positions), differentiable=True, **TIGHT)
    v, d_pos = directions(xc, pos0, atom=1)
    theta, pos = analytic(result, lambda r: r.fermi_level, xc, positions, v, d_pos)
    fd_theta, fd_pos = finite_differences(make_basis, xc, pos0, v, d_pos, [lambda r: r.fermi_level], result)
    assert theta == pytest.approx(float(fd_theta[0]), rel=RTOL)
    assert pos == pytest.approx(float(fd_pos[0]), rel=RTOL)


def test_lattice_gradient_of_fermi_level_matches_finite_differences():
    """Lattice tensors that require grad get fixed-basis (integer G set) derivatives, as for the stress."""
    xc = hybrid()
    zero = torch.zeros(1, 3, dtype=torch.float64)

    def model(lattice):
        return pwxc.Model(Crystal.from_arrays(lattice, zero, ["Al"]), xc=xc, smearing="gaussian", temperature=0.03)

    lattice = AL_FCC.clone().requires_grad_(True)
    basis = pwxc.PlaneWaveBasis(model(lattice), ecut=6, kgrid=(3, 3, 3))
    result = pwxc.scf(basis, differentiable=True, **TIGHT)
    d_lat = torch.tensor([[0.1, 0.3, -0.2], [0.05, 0.0, 0.2], [0.3, -0.1, 0.1]], dtype=torch.float64)
    (grad,) = torch.autograd.grad(result.fermi_level, lattice)
    fd = richardson(lambda h: [float(pwxc.scf(basis.with_model(model(AL_FCC + h * d_lat)), guess=result,
                                              **TIGHT).fermi_level)], 1e-3)
    assert float((grad * d_lat).sum()) == pytest.approx(float(fd[0]), rel=RTOL)


# ---------------------------------------------------------------------------------------------- memory
class LiveTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storages created while active and still alive (every aten op is seen,
    including those run by the autograd engine; storages are released through weakref finalizers)."""

    def __init__(self):
        super().__init__()
        self.live, self.current, self.peak = {}, 0, 0

    def _release(self, key):
        entry = self.live.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self.current -= entry[0]
                del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key in self.live:
                    self.live[key][1] += 1
                else:
                    self.live[key] = [storage.nbytes(), 1]
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                weakref.finalize(t, self._release, key)
        return out


def test_backward_memory_does_not_grow_with_scf_iterations():
    """Peak memory of live tensors during the backward, tracked per allocation by a dispatch mode, is the
    same for an SCF of ~15 iterations and one of ~60 (slower mixing): nothing of the iterations is kept."""
    xc = hybrid()
    crystal = Crystal.from_arrays(SI_LATTICE_BOHR, SI_POS, ["Si", "Si"])
    basis = pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc=xc), ecut=6, kgrid=(1, 1, 1))
    peaks, iterations, grads = [], [], []
    for alpha, depth in [(0.7, 10), (0.03, 3)]:
        result = pwxc.scf(basis, tol=1e-10, mixing=pwxc.KerkerMixing(alpha=alpha, k0=0.0),
                          anderson_depth=depth, differentiable=True)
        loss = result.density[0][1, 2, 3] + result.fermi_level
        with LiveTensorMemory() as memory:
            grads.append(torch.autograd.grad(loss, list(xc.parameters()))[0])
        peaks.append(memory.peak)
        iterations.append(result.n_iterations)
    assert iterations[1] >= 3 * iterations[0]
    assert peaks[0] > 0
    assert abs(peaks[1] - peaks[0]) <= 0.02 * peaks[0]
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-10)


# ---------------------------------------------------------------------------------------------- API
def test_flag_gives_grad_fn_only_when_something_requires_grad():
    crystal = Crystal.from_arrays(SI_LATTICE_BOHR, SI_POS, ["Si", "Si"])
    plain = pwxc.scf(pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc="lda_pz"), ecut=6), differentiable=True)
    assert plain.density.grad_fn is None
    result = pwxc.scf(pwxc.PlaneWaveBasis(pwxc.Model(crystal, xc=hybrid()), ecut=6), differentiable=True)
    for out in (result.density, result.eigenvalues, result.fermi_level):
        assert out.grad_fn is not None
    assert result.density.shape == (1, *result.basis.fft.shape)
    # an output that does not depend on the SCF gives zero work and zero gradient
    (g,) = torch.autograd.grad(result.density.sum() * 0, [result.basis.model.xc.a])
    assert float(g) == 0


# ---------------------------------------------------------------------------------------------- Krylov
def _matrices(n=30, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    spd = a @ a.T + n * torch.eye(n, dtype=torch.float64)
    sym = a + a.T
    nonsym = a + 2 * n**0.5 * torch.eye(n, dtype=torch.float64)
    return spd, sym, nonsym, torch.randn(n, generator=gen, dtype=torch.float64)


def test_krylov_solvers():
    spd, sym, nonsym, b = _matrices()
    x, info = gmres(lambda v: nonsym @ v, b, tol=1e-12, restart=10)
    assert info.converged and torch.allclose(nonsym @ x, b, atol=1e-10)
    x, info = minres(lambda v: sym @ v, b, tol=1e-12, maxiter=200)
    assert info.converged and torch.allclose(sym @ x, b, atol=1e-9)
    rhs = torch.stack([b, 2 * b, -b])[None].to(torch.complex128)        # (1 block, 3 rows, n)
    shifts = torch.tensor([0.0, 1.0, 5.0], dtype=torch.float64)
    x, info = block_cg(lambda v, idx: v @ spd.to(v.dtype) + shifts[:, None] * v, rhs, 1e-12)
    for j in range(3):
        assert torch.allclose((spd + shifts[j] * torch.eye(len(b))).to(rhs.dtype) @ x[0, j], rhs[0, j], atol=1e-10)
