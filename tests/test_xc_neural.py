"""pwxc.xc: numerical safety, autograd checks, and the neural-functional API."""

import json
import re
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

import pwxc.xc as xc
from pwxc.xc import io as xcio

BUILTIN = ["lda_x", "lda_c_pw", "lda_c_pw_mod", "lda_c_pz", "gga_x_pbe", "gga_c_pbe",
           "gga_x_pbe_sol", "gga_c_pbe_sol", "lda", "lda_pz", "pbe", "pbesol"]
D = torch.float64


def small_hybrid(**kw):
    torch.manual_seed(0)
    return xc.HybridXC(model=xc.MLP(hidden=(5, 4)), **kw)


def small_enhanced():
    torch.manual_seed(1)
    return xc.EnhancedXC(model=xc.MLP(hidden=(5,), features=("s",)))


ALL = {name: (lambda name=name: xc.functional(name)) for name in BUILTIN}
ALL["hybrid"] = small_hybrid
ALL["enhanced"] = small_enhanced
ALL["mlp"] = lambda: (torch.manual_seed(2), xc.MLP(hidden=(4,)))[1]


def interior(polarized, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    rho = 0.02 + 2.0 * torch.rand(n, generator=g, dtype=D)
    sig = rho ** (8 / 3) * 3.0 * torch.rand(n, generator=g, dtype=D)
    if not polarized:
        return rho, sig
    z = 1.6 * torch.rand(n, generator=g, dtype=D) - 0.8
    c = 2 * torch.rand(n, generator=g, dtype=D) - 1
    r = torch.stack([rho * (1 + z) / 2, rho * (1 - z) / 2])
    su, sd = sig * (1 + z) ** 2 / 4, sig * (1 - z) ** 2 / 4
    return r, torch.stack([su, c * (su * sd).sqrt(), sd])


def edge_points(polarized):
    """Zero, negative, below-threshold, sigma = 0, zeta = +-1, huge gradients."""
    r = torch.tensor([0.0, -1e-3, -1e-14, 1e-20, 5e-16, 2e-15, 1e-13, 1e-12, 1e-8, 0.3, 5.0, 1e3, 0.3, 1e-6], dtype=D)
    s = torch.tensor([0.0, 1e-6, 0.0, 1e-30, 0.0, 1e-25, 1e-20, 0.0, 1e-9, 0.0, 0.0, 1e5, 1e30, 1e20], dtype=D)
    if not polarized:
        return r, s
    rr = torch.cat([torch.stack([r, 0 * r]), torch.stack([0 * r, r]), torch.stack([r, -r / 3]),
                    torch.stack([r, r.flip(0)])], dim=1)
    ss = torch.cat([torch.stack([s, 0 * s, 0 * s]), torch.stack([0 * s, 0 * s, s]),
                    torch.stack([s, -s, s]), torch.stack([s, 0.1 * s, s.flip(0)])], dim=1)
    return rr, ss


# --------------------------------------------------------------- contract ---
def test_names_and_errors():
    names = xc.available_functionals()
    for n in BUILTIN:
        assert n in names
        f = xc.functional(n)
        assert isinstance(f, xc.Functional) and isinstance(f, torch.nn.Module)
        assert f.is_gga == ("pbe" in n)
    assert xc.functional("PBE").name == "pbe"
    with pytest.raises(ValueError, match="known: .*pbesol"):
        xc.functional("b3lyp_nope")
    with pytest.raises(ValueError, match="sigma"):
        xc.functional("pbe").energy_density(torch.ones(3, dtype=D))
    with pytest.raises(ValueError, match="shape"):
        xc.functional("lda").energy_density(torch.ones(3, 4, dtype=D))


@pytest.mark.parametrize("key", ["hybrid", "enhanced", "mlp", "pbe"])
def test_functional_returns_objects_unchanged(key):
    f = ALL[key]()
    assert xc.functional(f) is f
    with pytest.raises(TypeError):
        xc.functional(torch.nn.Linear(2, 2))


def test_duck_typed_functional_accepted():
    class Duck(torch.nn.Module):
        is_gga = False

        def energy_density(self, rho, sigma=None):
            return -rho

    d = Duck()
    assert xc.functional(d) is d


def test_default_dtype_untouched_and_dtype_follows_inputs():
    assert torch.get_default_dtype() == torch.float32
    for key in ["pbe", "lda", "hybrid", "enhanced"]:
        f = ALL[key]()  # float32 parameters
        for dt in (torch.float32, torch.float64):
            rho, sig = interior(False)
            e = f.energy_density(rho.to(dt), sig.to(dt))
            assert e.dtype == dt and e.shape == rho.shape and torch.isfinite(e).all()


@pytest.mark.parametrize("name", BUILTIN + ["hybrid", "enhanced"])
def test_unpolarized_equals_balanced_polarized(name):
    f = ALL[name]()
    rho, sig = interior(False, n=50)
    e1 = f.energy_density(rho, sig)
    e2 = f.energy_density(torch.stack([rho / 2, rho / 2]), torch.stack([sig / 4] * 3))
    torch.testing.assert_close(e1, e2, rtol=1e-13, atol=0)


def test_below_threshold_is_exact_zero():
    rho = torch.tensor([0.0, -1.0, 1e-16, 1e-3], dtype=D, requires_grad=True)
    sig = torch.tensor([1.0, 1.0, 1.0, 1e-6], dtype=D, requires_grad=True)
    for key in ["pbe", "lda", "hybrid", "enhanced"]:
        e = ALL[key]().energy_density(rho, sig)
        gr, gs = torch.autograd.grad(e.sum(), [rho, sig], allow_unused=True)
        assert torch.all(e[:3] == 0) and e[3] != 0
        assert torch.all(gr[:3] == 0) and (gs is None or torch.all(gs[:3] == 0))


# ---------------------------------------------------------- safety, grads ---
def _second_derivatives(f, rho, sig):
    """All per-point second derivatives (points are independent) and first derivatives."""
    rho = rho.clone().requires_grad_(True)
    sig = sig.clone().requires_grad_(True)
    e = f.energy_density(rho, sig if f.is_gga else None)
    ins = [rho, sig] if f.is_gga else [rho]
    g = torch.autograd.grad(e.sum(), ins, create_graph=True)
    out = [e, *g]
    for gi in g:
        for k in range(gi.shape[0] if gi.dim() == 2 else 1):
            comp = gi[k] if gi.dim() == 2 else gi
            h = torch.autograd.grad(comp.sum(), ins, retain_graph=True, allow_unused=True)
            out += [x for x in h if x is not None]
    return out


@pytest.mark.parametrize("polarized", [False, True], ids=["unpol", "pol"])
@pytest.mark.parametrize("key", list(ALL))
def test_finite_values_first_second_derivatives_at_edges(key, polarized):
    f = ALL[key]()
    if key in ("hybrid", "enhanced", "mlp"):
        f = f.double()
    rho, sig = edge_points(polarized)
    for t in _second_derivatives(f, rho, sig):
        assert torch.isfinite(t).all(), key


@pytest.mark.parametrize("polarized", [False, True], ids=["unpol", "pol"])
@pytest.mark.parametrize("key", list(ALL))
def test_gradcheck_density(key, polarized):
    f = ALL[key]().double()
    rho, sig = interior(polarized, n=4, seed=3)
    if f.is_gga:
        fn = lambda r, s: f.energy_density(r, s)  # noqa: E731
        args = (rho.requires_grad_(), sig.requires_grad_())
    else:
        fn = lambda r: f.energy_density(r)  # noqa: E731
        args = (rho.requires_grad_(),)
    assert torch.autograd.gradcheck(fn, args, eps=1e-7, atol=1e-8, rtol=1e-6)
    if key in ("lda", "pbe", "hybrid", "enhanced"):
        assert torch.autograd.gradgradcheck(fn, args, eps=1e-7, atol=1e-6, rtol=1e-4)


def test_sigma_zero_gives_true_vsigma():
    """At sigma = 0 vsigma is the true derivative (no clamp killing it).

    (Components separately: in "pbe" the x and c gradient terms cancel at
    sigma -> 0 by construction, mu = beta pi^2 / 3.)"""
    rho = torch.tensor([0.1, 1.0], dtype=D)
    for name in ["gga_x_pbe", "gga_c_pbe"]:
        f = xc.functional(name)
        _, _, vs0 = f.evaluate(rho, torch.zeros(2, dtype=D))
        _, _, vs1 = f.evaluate(rho, torch.full((2,), 1e-12, dtype=D))
        assert torch.all(vs0 != 0)
        torch.testing.assert_close(vs0, vs1, rtol=1e-8, atol=0)
    _, _, vs = xc.functional("pbe").evaluate(rho, torch.zeros(2, dtype=D))
    assert torch.all(vs.abs() < 1e-14)


@pytest.mark.parametrize("key", ["hybrid", "enhanced"])
def test_gradcheck_parameters(key):
    f = ALL[key]().double()
    rho, sig = interior(True, n=5, seed=4)
    names = [n for n, _ in f.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in f.named_parameters())

    def energy(*ps):
        return functional_call(f, dict(zip(names, ps)), (rho, sig)).sum()

    assert torch.autograd.gradcheck(energy, params, eps=1e-6, atol=1e-8, rtol=1e-5)
    # training step: finite gradients on every parameter
    e = f.energy_density(rho, sig).sum()
    e.backward()
    for n, p in f.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


# ------------------------------------------------------------ neural forms ---
@pytest.mark.parametrize("polarized", [False, True], ids=["unpol", "pol"])
def test_hybrid_a0_is_exactly_base(polarized):
    rho, sig = interior(polarized, n=200, seed=5)
    rho, sig = rho * 10 ** (4 * torch.rand(rho.shape[-1], dtype=D) - 3), sig
    for base in ["pbe", "lda", "pbesol"]:
        h = xc.HybridXC(base=base, model=xc.MLP(), a=0.0)
        ref = xc.functional(base)
        s = sig if ref.is_gga else None
        assert torch.equal(h.energy_density(rho, sig), ref.energy_density(rho, s))
        e1, v1, _ = h.evaluate(rho, sig)
        e2, v2, _ = ref.evaluate(rho, s)
        assert torch.equal(v1, v2)
    h = xc.HybridXC(model=xc.MLP(), a=0.0)
    h.energy_density(rho, sig).sum().backward()
    assert h.a.grad is not None and h.a.grad != 0  # a is still learnable from 0


def test_hybrid_defaults_and_docstring():
    h = xc.HybridXC()
    assert isinstance(h.a, torch.nn.Parameter) and isinstance(h.b, torch.nn.Parameter)
    assert float(h.a.detach()) == 0.01 and float(h.b.detach()) == 1.0
    first = xc.HybridXC.__doc__.strip().splitlines()[0]
    assert "MLP-corrected semilocal" in first and "not an exact-exchange hybrid" in first
    rho, sig = interior(False, n=100)
    e_pbe = xc.functional("pbe").energy_density(rho, sig)
    rel = ((h.energy_density(rho, sig) - e_pbe).abs() / e_pbe.abs()).max()
    assert rel < 0.1  # an untrained hybrid is close to PBE


def test_enhanced_constraints():
    # enhancement factor bounds for extreme tau and s
    s2 = torch.logspace(-8, 8, 400, dtype=D)
    for tau in (-1.0, -0.3, 0.0, 0.7, 1.0):
        F = xc.constrained_fx(s2, torch.full_like(s2, tau))
        assert torch.all(F >= 1.0) and torch.all(F <= 1.804)
    F0 = xc.constrained_fx(torch.zeros(3, dtype=D), torch.tensor([-1.0, 0.0, 1.0], dtype=D))
    assert torch.equal(F0, torch.ones(3, dtype=D))
    # an untrained (zero-last-layer) EnhancedXC is exactly PBE; a random one respects bounds
    rho, sig = interior(True, n=300, seed=6)
    assert torch.equal(xc.EnhancedXC().energy_density(rho, sig), xc.functional("pbe").energy_density(rho, sig))
    torch.manual_seed(0)
    f = xc.EnhancedXC(model=xc.MLP(hidden=(8,), features=("n", "s")))
    with torch.no_grad():
        f.model.layers[-1].bias.fill_(20.0)  # tau -> 1: push to the bound
    ex = f.energy_density(rho, sig) - xc.functional("gga_c_pbe").energy_density(rho, sig)
    ex_lda = xc.functional("lda_x").energy_density(rho)
    ratio = ex / ex_lda
    assert torch.all(ratio >= 1.0 - 1e-12) and torch.all(ratio <= 1.804)
    # uniform gas: s = 0 gives exactly LDA exchange whatever the network
    ex0 = f.energy_density(rho, 0 * sig) - xc.functional("gga_c_pbe").energy_density(rho, 0 * sig)
    torch.testing.assert_close(ex0, ex_lda, rtol=1e-14, atol=0)


def test_mlp_is_a_functional_and_fp32_params_with_fp64_inputs():
    assert xc.MLP(hidden=(8,)).layers[0].weight.dtype == torch.float64   # pwxc's default
    m = xc.MLP(hidden=(8,), dtype=torch.float32)
    rho, sig = interior(False, n=10)
    e = m.energy_density(rho, sig)
    assert e.dtype == D and m.layers[0].weight.dtype == torch.float32
    e.sum().backward()
    assert torch.isfinite(m.layers[0].weight.grad).all()
    assert not xc.MLP(features=("n", "zeta")).is_gga
    with pytest.raises(ValueError):
        xc.MLP(features=("tau",))


# ---------------------------------------------------------------- save/load ---
class ScaledLDA(xc.NeuralXC):
    """Custom user model used to test saving of user classes."""

    is_gga = False

    def __init__(self, c=0.5):
        super().__init__()
        self.c = torch.nn.Parameter(torch.tensor(float(c)))

    def forward(self, desc):
        return self.c.to(desc.n) * desc.n.pow(1 / 3)

    def get_config(self):
        return {"c": float(self.c.detach())}


@pytest.mark.parametrize("key", ["hybrid", "enhanced", "mlp", "custom", "hybrid64"])
def test_save_load_roundtrip(key, tmp_path):
    if key == "custom":
        f = xc.HybridXC(base="lda_pz", model=ScaledLDA(0.3), a=0.2)
    elif key == "hybrid64":
        f = small_hybrid(a=0.3).double()
    else:
        f = ALL[key]()
    with torch.no_grad():  # make it "trained"
        for p in f.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "f.pt"
    f.save(path, metadata={"trained_on": "test"})
    g = xc.load(path)
    assert type(g) is type(f)
    assert g.metadata["trained_on"] == "test" and g.metadata["pwxc_version"]
    for pol in (False, True):
        rho, sig = interior(pol, n=50, seed=7)
        assert torch.equal(g.energy_density(rho, sig), f.energy_density(rho, sig))
    for (n1, p1), (n2, p2) in zip(f.state_dict().items(), g.state_dict().items()):
        assert n1 == n2 and p1.dtype == p2.dtype and torch.equal(p1, p2)
    # one file, safe to read without pwxc's pickles, readable JSON header
    payload = torch.load(path, weights_only=True)
    head = json.loads(payload["header"])
    assert head["class"] == type(f).__name__ and "pwxc_version" in head


def test_builtin_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError):
        xc.save(xc.functional("pbe"), tmp_path / "x.pt")


def test_shipped_functionals_lookup(tmp_path, monkeypatch):
    monkeypatch.setattr(xcio, "DATA_DIR", tmp_path)
    assert xc.available() == []
    with pytest.raises(FileNotFoundError, match="shipped"):
        xc.load("my_trained")
    f = small_hybrid()
    f.save(tmp_path / "my_trained.pt")
    assert xc.available() == ["my_trained"]
    assert "my_trained" in xc.available_functionals()
    rho, sig = interior(False)
    for g in (xc.load("my_trained"), xc.functional("my_trained")):
        assert torch.equal(g.energy_density(rho, sig), f.energy_density(rho, sig))


def test_docs_example_runs(tmp_path, monkeypatch, capsys):
    doc = Path(__file__).resolve().parents[1] / "docs" / "xc.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    example = next(b for b in blocks if "class MyXC" in b)
    assert len(example.strip().splitlines()) <= 30
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/xc.md", "exec"), {"__name__": "docs_example"})
    assert "E_xc =" in capsys.readouterr().out
    assert (tmp_path / "my_xc.pt").is_file()


def test_user_class_named_like_builtin_does_not_shadow(tmp_path):
    class MLP(xc.NeuralXC):  # a user class reusing a built-in name
        def forward(self, desc):
            return 0 * desc.n

    assert xc.MLP is not MLP
    f = small_hybrid()
    f.save(tmp_path / "h.pt")
    g = xc.load(tmp_path / "h.pt")
    assert type(g.model) is xc.MLP


def test_base_name():
    assert xc.functional("lda").base_name == "lda"
    assert xc.HybridXC(base="lda_pz").base_name == "lda_pz"
    assert xc.EnhancedXC(base="pbesol").base_name == "pbesol"
