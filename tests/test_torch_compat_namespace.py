"""The module-level namespace a PyTorch script uses: `import tinygrad_course as torch` and its calls.

Functions, dtypes, devices, generators, creation and random functions and save/load, each checked
against torch 2.13 (the oracle) where the result is deterministic, and by its distribution or its
invariants where it is random (our generator is NumPy's, so the draws themselves differ from torch's).
"""
from __future__ import annotations

import inspect
import io
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course.checkpoint import CheckpointError

torch = pytest.importorskip("torch")


def pair(shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    a = np.abs(a) + 0.1 if positive else a
    return tg.tensor(a), torch.tensor(a)


def assert_same(out, ref, rtol=1e-10, atol=1e-12):
    if isinstance(ref, tuple):  # torch.return_types: values and indices
        for o, r in zip(out, ref):
            assert_same(o, r, rtol, atol)
        return
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=rtol, atol=atol)


# --- the functions made from Tensor methods ---------------------------------------------------
CALLS = [
    ("exp", (), {}), ("log", (), {}), ("sqrt", (), {}), ("abs", (), {}), ("tanh", (), {}), ("sigmoid", (), {}),
    ("relu", (), {}), ("sum", (), {}), ("sum", (1,), {}), ("sum", (), {"dim": 0, "keepdim": True}),
    ("mean", (), {"dim": (0, 2)}), ("var", (1,), {}), ("var", (), {"dim": 1, "correction": 0, "keepdim": True}),
    ("std", (), {"dim": 2}), ("argmax", (), {"dim": 1}), ("argmin", (2,), {"keepdim": True}),
    ("amax", (), {"dim": 1}), ("amin", (), {"dim": (0, 1), "keepdim": True}),
    ("softmax", (1,), {}), ("log_softmax", (), {"dim": -1}), ("logsumexp", (), {"dim": 2}),
    ("clamp", (), {"min": 0.5}), ("clamp", (0.3, 1.0), {}), ("clip", (), {"max": 0.7}),
    ("reshape", ((4, 6),), {}), ("reshape", (), {"shape": (-1,)}), ("flatten", (), {"start_dim": 1}),
    ("unsqueeze", (), {"dim": 1}), ("squeeze", (), {}), ("transpose", (0, 2), {}),
    ("permute", ((2, 0, 1),), {}), ("permute", (), {"dims": (1, 2, 0)}),
]


@pytest.mark.parametrize("name,args,kwargs", CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)])
def test_function_equals_torch(name, args, kwargs):
    x, tx = pair((2, 3, 4), positive=True)
    assert_same(getattr(tg, name)(x, *args, **kwargs), getattr(torch, name)(tx, *args, **kwargs))


def test_binary_functions_equal_torch():
    (a, ta), (b, tb) = pair((3, 4), 1), pair((3, 4), 2)
    for name in ("add", "sub", "mul", "div"):
        assert_same(getattr(tg, name)(a, b), getattr(torch, name)(ta, tb))
    assert_same(tg.pow(a.abs(), 1.5), torch.pow(ta.abs(), 1.5))
    assert_same(tg.matmul(a, b.T), torch.matmul(ta, tb.T))
    assert_same(tg.mm(a, b.T), torch.mm(ta, tb.T))
    (c, tc), (d, td) = pair((2, 3, 4), 3), pair((2, 4, 5), 4)
    assert_same(tg.bmm(c, d), torch.bmm(tc, td))


def test_function_gradients_equal_torch():
    a = np.random.default_rng(5).standard_normal((3, 4))
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    tg.sum(tg.log_softmax(x, dim=1) * tg.tanh(x), dim=0).sum().backward()
    torch.sum(torch.log_softmax(tx, dim=1) * torch.tanh(tx), dim=0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_reductions_with_any_dim_equal_torch(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    x, tx = pair(tuple(shape), seed=len(shape))
    for name in ("sum", "mean", "amax", "argmax", "logsumexp"):
        assert_same(getattr(tg, name)(x, dim, keepdim=keepdim), getattr(torch, name)(tx, dim, keepdim=keepdim))


def test_max_and_min_take_the_three_forms_of_torch():
    x, tx = pair((3, 5))
    assert_same(tg.max(x), torch.max(tx))
    assert_same(tg.min(x), torch.min(tx))
    values, indices = tg.max(x, 1)
    ref = torch.max(tx, 1)
    assert_same(values, ref.values)
    assert_same(indices, ref.indices)
    assert_same(tg.min(x, dim=0, keepdim=True)[0], torch.min(tx, dim=0, keepdim=True)[0])
    assert_same(tg.max(x, axis=1, keepdims=True)[1], torch.max(tx, axis=1, keepdims=True)[1])
    with pytest.raises(TypeError, match="keepdim=True needs dim"):
        tg.max(x, keepdim=True)
    y, ty = pair((3, 5), 9)
    if hasattr(tg.Tensor, "maximum"):  # the elementwise form, once the Tensor method exists
        assert_same(tg.max(x, y), torch.max(tx, ty))
    else:
        with pytest.raises(TypeError, match=r"elementwise maximum\) is not supported yet.*input >= other"):
            tg.max(x, y)
    if hasattr(tg.Tensor, "minimum"):
        assert_same(tg.min(x, y), torch.min(tx, ty))
    else:
        with pytest.raises(TypeError, match=r"elementwise minimum\) is not supported yet.*input <= other"):
            tg.min(x, y)


def test_arguments_reach_the_method_under_its_own_names(monkeypatch):
    from tinygrad_course.functions import _from_method, _method_keywords

    def numpy_names(self, axis=None, keepdims=False):
        return axis, keepdims

    def unnamed(self, o):
        return o

    assert _method_keywords(numpy_names, ["dim", "keepdim"]) == {"dim": "axis", "keepdim": "keepdims"}
    assert _method_keywords(unnamed, ["other"]) == {"other": "o"}
    monkeypatch.setattr(tg.Tensor, "probe", lambda self, k, dim=-1: (k, dim), raising=False)
    probe = _from_method("probe", (("k", None), ("dim", -1), ("largest", True)))
    assert probe(tg.ones(1), 3, dim=0) == (3, 0)
    with pytest.raises(TypeError, match="largest= is not supported yet"):
        probe(tg.ones(1), 3, largest=False)


def test_stacking_and_products_equal_torch():
    (a, ta), (b, tb) = pair((2, 3), 1), pair((2, 3), 2)
    (u, tu), (v, tv) = pair((3,), 3), pair((3,), 4)
    for name in ("hstack", "vstack"):
        assert_same(getattr(tg, name)([a, b]), getattr(torch, name)([ta, tb]))
        assert_same(getattr(tg, name)((u, v)), getattr(torch, name)((tu, tv)))
    assert_same(tg.mv(a, u), torch.mv(ta, tu))
    with pytest.raises(ValueError, match="2-D and 1-D"):
        tg.mv(a, a)
    with pytest.raises(TypeError, match="list or tuple of Tensors"):
        tg.vstack([a, ta])
    with pytest.raises(ValueError, match="at least one tensor"):
        tg.hstack([])


def test_numpy_spellings_are_accepted_as_torch_accepts_them():
    x, tx = pair((2, 3))
    assert_same(tg.sum(x, axis=1, keepdims=True), torch.sum(tx, axis=1, keepdims=True))
    assert_same(tg.cat([x, x], axis=1), torch.cat([tx, tx], axis=1))
    assert_same(tg.stack([x, x], axis=2), torch.stack([tx, tx], axis=2))
    with pytest.raises(TypeError, match="not both"):
        tg.sum(x, dim=0, axis=1)


def test_cat_stack_where_with_torch_names():
    (a, ta), (b, tb) = pair((2, 3), 1), pair((2, 3), 2)
    for name in ("cat", "concat", "concatenate"):
        assert_same(getattr(tg, name)([a, b], dim=1), getattr(torch, name)([ta, tb], dim=1))
    assert_same(tg.stack((a, b), dim=-1), torch.stack((ta, tb), dim=-1))
    assert_same(tg.cat(t for t in (a, b)), torch.cat([ta, tb]))  # any iterable
    assert_same(tg.where(a > 0, a, b), torch.where(ta > 0, ta, tb))
    for bad in (a, 5, [a, 1.0]):
        with pytest.raises(TypeError, match="list or tuple of Tensors"):
            tg.cat(bad)
    with pytest.raises(TypeError, match=r"where\(condition\) alone"):
        tg.where(a > 0)


def test_functions_have_torch_signatures():
    assert list(inspect.signature(tg.sum).parameters) == ["input", "dim", "keepdim"]
    assert list(inspect.signature(tg.softmax).parameters) == ["input", "dim"]
    var = inspect.signature(tg.var).parameters
    assert var["correction"].kind is inspect.Parameter.KEYWORD_ONLY  # torch.var(x, 0, True) is not keepdim
    assert "input.sum" in tg.sum.__doc__


def test_bad_calls_name_the_argument():
    with pytest.raises(TypeError, match=r"exp\(\): argument 'input' must be a Tensor, not list"):
        tg.exp([1.0])
    x, _ = pair((2, 2))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'dims'.*sum\(input, dim=None"):
        tg.sum(x, dims=0)
    with pytest.raises(TypeError, match="missing a required argument: 'dim'"):
        tg.softmax(x)
    with pytest.raises(ValueError, match="2-D"):
        tg.mm(x, x.unsqueeze(0))
    with pytest.raises(ValueError, match="batch sizes differ"):
        tg.bmm(tg.zeros(2, 2, 2), tg.zeros(3, 2, 2))


def test_everything_in_all_exists():
    missing = [name for name in tg.__all__ if not hasattr(tg, name)]
    assert missing == []
    assert {"max", "exp", "sum", "randint", "device", "save", "float32", "Generator"} <= set(tg.__all__)


def test_names_we_lack_say_what_to_use():
    with pytest.raises(AttributeError, match="use float32"):
        tg.half  # noqa: B018
    with pytest.raises(AttributeError, match="no mixed precision"):
        tg.autocast  # noqa: B018
    with pytest.raises(AttributeError) as e:
        tg.randint_with_a_typo  # noqa: B018
    assert "randn" not in str(e.value) and "not supported" in str(e.value)  # no guess at a similar name
    assert not hasattr(tg, "__wrapped__")


def test_submodules_not_imported_yet_are_attributes_too():
    import subprocess
    import sys
    code = "import tinygrad_course as tg; print(tg.metrics.__name__, tg.plots.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["tinygrad_course.metrics", "tinygrad_course.plots"]


def test_inference_mode_is_no_grad():
    x = tg.ones(2, requires_grad=True)
    with tg.inference_mode():
        assert not (x * 2).requires_grad
    with tg.inference_mode(False):
        assert (x * 2).requires_grad

    @tg.inference_mode
    def bare(t):
        return t * 2

    @tg.inference_mode()
    def called(t):
        return t * 2

    assert not bare(x).requires_grad and not called(x).requires_grad and (x * 2).requires_grad


def test_a_function_whose_method_is_missing_says_so():
    from tinygrad_course.functions import MISSING_METHODS
    for name in MISSING_METHODS:
        with pytest.raises(AttributeError, match=rf"Tensor has no \.{name}\(\)"):
            getattr(tg, name)


# --- dtypes -----------------------------------------------------------------------------------
def test_dtype_aliases_are_numpy_dtypes_with_torch_names():
    assert tg.float is tg.float32 and tg.float32 == np.float32 and tg.float32 == "float32"
    assert tg.double is tg.float64 and tg.long is tg.int64 and tg.bool == np.bool_
    assert tg.tensor([1, 2], dtype=tg.float).dtype == tg.float32
    assert tg.tensor([1.5], dtype=tg.long).dtype == torch.tensor([1.5]).long().numpy().dtype
    assert tg.ones(2).astype(tg.double).dtype == np.float64
    assert tg.zeros(2, dtype=tg.bool).dtype == torch.zeros(2, dtype=torch.bool).numpy().dtype
    assert (tg.arange(3) > 0).dtype == tg.bool
    assert isinstance(tg.ones(1).dtype, tg.dtype) and isinstance(tg.long, tg.dtype)
    for ours, theirs in ((tg.float32, torch.float32), (tg.float64, torch.float64)):
        info, ref = tg.finfo(ours), torch.finfo(theirs)
        assert (info.eps, info.max, info.min, info.tiny, info.bits) == (ref.eps, ref.max, ref.min, ref.tiny, ref.bits)
    assert tg.iinfo(tg.int64).max == torch.iinfo(torch.int64).max
    assert tg.iinfo(tg.long).min == torch.iinfo(torch.long).min


# --- devices ----------------------------------------------------------------------------------
def test_device_is_the_canonical_device_name():
    cpu = tg.device("cpu")
    assert cpu == "cpu" and cpu.type == "cpu" and cpu.index is None and repr(cpu) == "device(type='cpu')"
    cuda = tg.device("cuda:0")
    assert cuda == "cuda" and cuda.index == 0 and repr(cuda) == repr(torch.device("cuda:0"))
    assert tg.device("cuda", 0) == cuda and tg.device(cuda) == "cuda" and tg.device(cuda).index == 0
    assert tg.ones(2).to(cpu).device == cpu and tg.ones(2, device=cpu).device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        tg.device("tpu")
    with pytest.raises(ValueError, match="already has an index"):
        tg.device("cuda:0", 0)


def test_cuda_questions(monkeypatch):
    device = tg.device("cuda" if tg.cuda.is_available() else "cpu")  # the line every script has
    assert device in ("cpu", "cuda")
    assert tg.cuda.device_count() == (1 if tg.cuda.is_available() else 0)
    if not tg.cuda.is_available():
        with pytest.raises(RuntimeError):
            tg.cuda.current_device()
    with pytest.raises(AttributeError, match="no mixed precision"):
        tg.cuda.amp  # noqa: B018
    with pytest.raises(AttributeError, match="is_available, device_count"):
        tg.cuda.get_device_capability  # noqa: B018
    monkeypatch.setenv("TINYGRAD_COURSE_CUDA_EMULATE", "1")
    assert tg.cuda.is_available() and tg.cuda.device_count() == 1 and tg.cuda.current_device() == 0
    tg.cuda.synchronize()


def test_backends_lines_of_scripts_run(monkeypatch):
    monkeypatch.setattr(tg.backends.cudnn, "benchmark", True)  # torch.backends.cudnn.benchmark = True
    monkeypatch.setattr(tg.backends.cudnn, "deterministic", True)
    assert tg.backends.cudnn.benchmark and not tg.backends.cudnn.is_available()
    device = "cuda" if tg.cuda.is_available() else "mps" if tg.backends.mps.is_available() else "cpu"
    assert device in ("cpu", "cuda")


def test_cuda_manual_seed_seeds_the_one_generator():
    tg.cuda.manual_seed_all(3)
    a = tg.rand(4)
    tg.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), tg.rand(4).numpy())


# --- generators and random functions ------------------------------------------------------------
RANDOM_CALLS = {
    "randint": lambda g: tg.randint(0, 10, (50,), generator=g),
    "randint_like": lambda g: tg.randint_like(tg.zeros(50), 3, 8, generator=g),
    "rand_like": lambda g: tg.rand_like(tg.zeros(50), generator=g),
    "randn_like": lambda g: tg.randn_like(tg.zeros(50), generator=g),
    "randperm": lambda g: tg.randperm(50, generator=g),
    "normal": lambda g: tg.normal(2.0, 3.0, (50,), generator=g),
    "normal_tensor": lambda g: tg.normal(tg.zeros(50), 1.0, generator=g),
    "bernoulli": lambda g: tg.bernoulli(tg.full((50,), 0.5), generator=g),
    "multinomial": lambda g: tg.multinomial(tg.ones(50), 10, generator=g),
    "multinomial_replacement": lambda g: tg.multinomial(tg.ones(50), 10, True, generator=g),
}


@pytest.mark.parametrize("name", sorted(RANDOM_CALLS))
def test_random_functions_follow_manual_seed_and_generators(name):
    draw = RANDOM_CALLS[name]
    tg.manual_seed(7)
    first = draw(None).numpy()
    tg.manual_seed(7)
    np.testing.assert_array_equal(draw(None).numpy(), first)
    assert not np.array_equal(draw(None).numpy(), first)  # the global generator moved on
    g = tg.Generator().manual_seed(7)
    from_g = draw(g).numpy()
    tg.manual_seed(123)  # a generator of its own ignores the global seed
    np.testing.assert_array_equal(draw(tg.Generator().manual_seed(7)).numpy(), from_g)
    assert g.initial_seed() == 7


def test_rng_state_can_be_saved_and_restored(tmp_path):
    tg.manual_seed(4)
    tg.save({"rng": tg.get_rng_state()}, tmp_path / "rng.pt")
    first = tg.rand(5).numpy()
    tg.set_rng_state(tg.load(tmp_path / "rng.pt")["rng"])
    np.testing.assert_array_equal(tg.rand(5).numpy(), first)
    g = tg.Generator().manual_seed(1)
    state = g.get_state()
    first = tg.randperm(10, generator=g).tolist()
    assert tg.randperm(10, generator=g.set_state(state)).tolist() == first
    with pytest.raises(ValueError, match="not a state from get_rng_state"):
        tg.set_rng_state({"bit_generator": "nonsense"})
    with pytest.raises(ValueError, match="Generator.set_state"):
        g.set_state(3)


def test_generator_errors():
    with pytest.raises(TypeError, match="seed must be an int"):
        tg.Generator().manual_seed(1.5)
    with pytest.raises(TypeError, match="tinygrad_course.Generator"):
        tg.rand_like(tg.zeros(2), generator=np.random.default_rng(0))


def test_randint_takes_torch_forms():
    for ours, theirs in [(tg.randint(10, (3,)), torch.randint(10, (3,))),
                         (tg.randint(3, 10, (2, 2)), torch.randint(3, 10, (2, 2))),
                         (tg.randint(3, 10, size=(2, 2)), torch.randint(3, 10, size=(2, 2))),
                         (tg.randint(10, size=(4,)), torch.randint(10, size=(4,))),
                         (tg.randint(low=2, high=5, size=(3,)), torch.randint(low=2, high=5, size=(3,))),
                         (tg.randint(0, 2, (3,), dtype=tg.float), torch.randint(0, 2, (3,), dtype=torch.float))]:
        assert ours.shape == tuple(theirs.shape) and ours.dtype == theirs.numpy().dtype
    tg.manual_seed(0)
    values = tg.randint(3, 6, (2000,)).numpy()
    assert set(np.unique(values)) == {3, 4, 5}
    with pytest.raises(ValueError, match="low must be less than high"):
        tg.randint(5, 3, (2,))
    with pytest.raises(TypeError, match="needs high and size"):
        tg.randint(5)
    with pytest.raises(TypeError, match="both by position"):
        tg.randint(5, (2,), high=4)


def test_creation_functions_equal_torch():
    for steps in (1, 5, 7):
        assert_same(tg.linspace(-1, 2, steps), torch.linspace(-1, 2, steps), rtol=1e-6, atol=1e-6)
    ours, theirs = tg.linspace(0, 10, 5, dtype=tg.long), torch.linspace(0, 10, 5, dtype=torch.long)
    assert ours.dtype == np.int64 and ours.tolist() == theirs.tolist()
    assert_same(tg.eye(3), torch.eye(3))
    assert_same(tg.eye(2, 4, dtype=tg.float64), torch.eye(2, 4, dtype=torch.float64))
    assert tg.empty(2, 3).shape == (2, 3) and tg.empty((2, 3)).dtype == np.float32
    x = tg.tensor([[1, 2], [3, 4]])
    assert_same(tg.full_like(x, 7), torch.full_like(torch.tensor([[1, 2], [3, 4]]), 7))
    assert tg.full_like(x, 2.7).tolist() == torch.full_like(torch.tensor([[1, 2], [3, 4]]), 2.7).tolist()
    assert tg.empty_like(x).shape == (2, 2) and tg.empty_like(x).dtype == np.int64
    assert tg.rand_like(tg.zeros(3, dtype=tg.double)).dtype == np.float64
    r = tg.rand_like(tg.zeros(1000)).numpy()
    assert r.min() >= 0 and r.max() < 1
    assert tg.randint_like(x, 5).dtype == np.int64 and tg.randint_like(x, 5).numpy().max() < 5
    with pytest.raises(TypeError, match="float32 or float64"):
        tg.rand_like(x)
    with pytest.raises(ValueError, match="size must be non-negative ints"):
        tg.empty(-1)
    with pytest.raises(ValueError, match="steps must be non-negative ints"):
        tg.linspace(0, 1, 2.5)


def test_randperm_and_normal():
    p = tg.randperm(20)
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(20))
    assert tg.randperm(0).shape == (0,)
    tg.manual_seed(1)
    s = tg.normal(2.0, 3.0, (20000,)).numpy()
    assert s.dtype == np.float32 and abs(s.mean() - 2) < 0.1 and abs(s.std() - 3) < 0.1
    mean, std = tg.zeros(2, 1, dtype=tg.float64), tg.ones(3, dtype=tg.float64)
    ref = torch.normal(torch.zeros(2, 1, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    out = tg.normal(mean, std)
    assert out.shape == tuple(ref.shape) and out.dtype == np.float64
    assert tg.normal(tg.full((3,), 5.0), 0.0).tolist() == [5.0, 5.0, 5.0]
    with pytest.raises(TypeError, match="needs size"):
        tg.normal(0.0, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        tg.normal(tg.zeros(2), tg.full((2,), -1.0))


def test_bernoulli():
    tg.manual_seed(2)
    probabilities = tg.tensor([0.0, 0.2, 1.0], dtype=tg.float64).expand(20000, 3)
    draws = tg.bernoulli(probabilities)
    assert draws.dtype == np.float64 and set(np.unique(draws.numpy())) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.numpy().mean(axis=0), [0.0, 0.2, 1.0], atol=0.015)
    assert tg.bernoulli(tg.zeros(4), p=1.0).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        tg.bernoulli(tg.tensor([0.5, float("nan")]))
    with pytest.raises(TypeError, match="float32 or float64"):
        tg.bernoulli(tg.tensor([0, 1]))


def test_multinomial():
    tg.manual_seed(0)
    weights = tg.tensor([1.0, 2.0, 0.0, 7.0])
    draws = tg.multinomial(weights, 20000, replacement=True).numpy()
    assert draws.dtype == np.int64
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 20000, [0.1, 0.2, 0.0, 0.7], atol=0.015)
    rows = tg.multinomial(tg.tensor([[1.0, 1.0, 1.0], [0.0, 5.0, 1.0]]), 3)
    assert rows.shape == (2, 3) and all(sorted(r) == [0, 1, 2] for r in rows.tolist())
    assert rows.tolist()[1][2] == 0  # the zero weight comes last
    ours, theirs = tg.multinomial(tg.tensor([1.0, 0.0, 0.0]), 2), torch.multinomial(torch.tensor([1.0, 0, 0]), 2)
    assert ours.tolist()[0] == theirs.tolist()[0] == 0
    with pytest.raises(ValueError, match="non-negative"):
        tg.multinomial(tg.tensor([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="positive sum"):
        tg.multinomial(tg.tensor([0.0, 0.0]), 1)
    with pytest.raises(ValueError, match="replacement=True"):
        tg.multinomial(tg.tensor([1.0, 1.0]), 3)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        tg.multinomial(tg.ones(1, 1, 2), 1)
    with pytest.raises(ValueError, match="num_samples must be"):
        tg.multinomial(tg.ones(2), 1.5)


# --- save and load ------------------------------------------------------------------------------
def trained_pair(seed):
    tg.manual_seed(seed)
    model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.ReLU(), tg.nn.Linear(4, 2))
    optimizer = tg.optim.Adam(model.parameters(), lr=0.01)
    model(tg.randn(5, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_save_load_round_trip_of_a_training_checkpoint(tmp_path):
    model, optimizer = trained_pair(0)
    weights = tg.randn(3, requires_grad=True)
    path = tmp_path / "ckpt.pt"
    tg.save({"epoch": 4, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "loss": 0.25,
             "history": [1.5, 0.5], "pair": (1, "a", None), "flags": {1: True, "x": None}, "w": weights,
             "scalar": np.float32(2.5)}, path)
    loaded = tg.load(path, map_location=tg.device("cpu"), weights_only=True)
    assert loaded["epoch"] == 4 and loaded["loss"] == 0.25 and loaded["history"] == [1.5, 0.5]
    assert loaded["pair"] == (1, "a", None) and loaded["flags"] == {1: True, "x": None}
    assert isinstance(loaded["w"], tg.Tensor) and loaded["w"].requires_grad and loaded["w"].device == "cpu"
    np.testing.assert_array_equal(loaded["w"].detach().numpy(), weights.detach().numpy())
    assert loaded["scalar"] == np.float32(2.5) and isinstance(loaded["scalar"], np.float32)
    fresh_model, fresh_optimizer = trained_pair(1)
    fresh_model.load_state_dict(loaded["model"])
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    x = tg.randn(2, 3)
    np.testing.assert_array_equal(fresh_model(x).detach().numpy(), model(x).detach().numpy())
    assert fresh_optimizer.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    for (k, a), (_, b) in zip(fresh_optimizer.state_dict()["state"].items(), optimizer.state_dict()["state"].items()):
        assert a.keys() == b.keys()


PLAIN = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                  st.text(max_size=5))
KEYS = st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.none())


@given(st.recursive(PLAIN, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.lists(inner, max_size=3).map(tuple),
                                                    st.dictionaries(KEYS, inner, max_size=3)), max_leaves=12))
def test_save_load_round_trips_nested_python_data(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("save") / "obj.pt"
    tg.save(obj, path)
    loaded = tg.load(path)
    assert loaded == obj and repr(loaded) == repr(obj)  # repr: tuples stay tuples, 1 stays 1 (not True)


def test_load_takes_torchs_map_location_forms(tmp_path):
    path = tmp_path / "ckpt.pt"
    tg.save({"w": tg.ones(2, requires_grad=True)}, path)
    seen = []
    for map_location in (None, "cpu", tg.device("cpu"), {"cuda:0": "cpu"}, {"cpu": "cpu"},
                         lambda storage, location: seen.append(location) or storage,
                         lambda storage, location: "cpu"):
        w = tg.load(path, map_location=map_location)["w"]
        assert w.device == "cpu" and w.requires_grad and w.is_leaf and w.tolist() == [1.0, 1.0]
    assert seen == ["cpu"]  # the location the tensor was saved from, as torch names it


def test_load_moves_tensors_between_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_COURSE_CUDA_EMULATE", "1")  # "cuda" runs on the CPU
    path = tmp_path / "ckpt.pt"
    tg.save({"gpu": tg.ones(2, device="cuda"), "cpu": tg.zeros(1)}, path)
    assert {k: t.device for k, t in tg.load(path).items()} == {"gpu": "cuda", "cpu": "cpu"}
    assert {k: t.device for k, t in tg.load(path, map_location="cuda").items()} == {"gpu": "cuda", "cpu": "cuda"}
    moved = tg.load(path, map_location={"cuda:0": "cpu"})
    assert {k: t.device for k, t in moved.items()} == {"gpu": "cpu", "cpu": "cpu"}
    assert moved["gpu"].tolist() == [1.0, 1.0]


def test_save_refuses_what_needs_pickle_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    tg.save({"a": tg.ones(2)}, path)
    before = path.read_bytes()
    model = tg.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"obj\['model'\] is a Linear, which would need pickle.*state_dict"):
        tg.save({"epoch": 1, "model": model}, path)
    with pytest.raises(TypeError, match=r"obj\['f'\]\[0\] is a function"):
        tg.save({"f": [lambda: 0]}, path)
    with pytest.raises(TypeError, match="keys must be strings"):
        tg.save({(1, 2): 3}, path)
    with pytest.raises(TypeError, match="dtype object"):
        tg.save({"o": np.array([None])}, path)
    loop = []
    loop.append(loop)
    with pytest.raises(TypeError, match="contains itself"):
        tg.save(loop, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary files left


def test_load_checks_what_it_reads(tmp_path):
    path = tmp_path / "ckpt.pt"
    tg.save(tg.ones(2), path)
    with pytest.raises(TypeError, match="map_location must be a device name, a dict or a function"):
        tg.load(path, map_location=0)
    with pytest.raises(TypeError, match=r"map_location function failed \(AttributeError"):
        tg.load(path, map_location=lambda storage, location: storage.cuda())
    with pytest.raises(FileNotFoundError):
        tg.load(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="file objects such as io.BytesIO"):
        tg.load(io.BytesIO())
    with pytest.raises(TypeError, match="must be a path"):
        tg.save({}, io.BytesIO())
    tg.checkpoint.save(path, {"a": np.ones(2)})
    with pytest.raises(CheckpointError, match="not written by tinygrad_course.save"):
        tg.load(path)
    for structure in ({"tensor": "9", "requires_grad": False, "device": "cpu"}, {"evil": 1},
                      {"tensor": "0", "requires_grad": False, "device": "tpu"}, {"dict": [[1]]}):
        tg.checkpoint.save(path, {"0": np.ones(2)}, {"tinygrad_course.save": structure})
        with pytest.raises(CheckpointError, match=os.path.basename(path)):
            tg.load(path)


def test_a_pytorch_script_runs_with_the_import_changed(tmp_path):
    torch_ = tg  # what `import tinygrad_course as torch` gives the script below
    torch_.manual_seed(0)
    device = torch_.device("cuda" if torch_.cuda.is_available() else "cpu")
    model = torch_.nn.Sequential(torch_.nn.Linear(4, 8), torch_.nn.ReLU(), torch_.nn.Linear(8, 3)).to(device)
    optimizer = torch_.optim.SGD(model.parameters(), lr=0.1)
    x = torch_.randn(32, 4).to(device)
    y = torch_.randint(0, 3, (32,)).to(device)
    for _ in range(3):
        optimizer.zero_grad()
        outputs = model(x)
        loss = torch_.nn.functional.cross_entropy(outputs, y)
        loss.backward()
        optimizer.step()
    _, predicted = torch_.max(outputs, 1)
    correct = (predicted == y).sum().item()
    assert 0 <= correct <= 32
    probabilities = torch_.softmax(outputs, dim=1)
    np.testing.assert_allclose(torch_.sum(probabilities, dim=1).detach().numpy(), 1.0, rtol=1e-5)
    torch_.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                 "loss": loss.item()}, tmp_path / "model.pth")
    checkpoint = torch_.load(tmp_path / "model.pth", map_location=device)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    assert checkpoint["loss"] == loss.item()


def test_torch_utils_data_names_are_ours():
    """`torch.utils.data.DataLoader` and `from torch.utils.data import ...` lines port by the import alone."""
    from tinygrad_course.utils.data import DataLoader, Dataset, TensorDataset, random_split  # noqa: F401
    assert tg.utils.data.DataLoader is tg.data.DataLoader is DataLoader
    assert tg.utils.data.TensorDataset is tg.data.TensorDataset


def test_rand_and_randn_take_a_generator():
    """rand/randn(generator=g) draw from g, leaving the global stream alone, and replay after g.manual_seed."""
    g = tg.Generator().manual_seed(3)
    tg.manual_seed(0)
    a = tg.rand(2, 3, generator=g).numpy()
    b = tg.randn(4, generator=g).numpy()
    after = tg.rand(2).numpy()
    tg.manual_seed(0)
    np.testing.assert_array_equal(after, tg.rand(2).numpy())  # the global stream did not move
    g.manual_seed(3)
    np.testing.assert_array_equal(a, tg.rand(2, 3, generator=g).numpy())
    np.testing.assert_array_equal(b, tg.randn(4, generator=g).numpy())
    with pytest.raises(TypeError, match="generator must be a tinygrad_course.Generator, got int"):
        tg.rand(2, generator=0)


@pytest.mark.parametrize("name, args", [
    ("conv2d", lambda lib, r: (r(1, 2, 5, 5), r(3, 2, 3, 3), r(3), 1, 1)),
    ("conv1d", lambda lib, r: (r(2, 2, 7), r(3, 2, 3), None, 2)),
    ("max_pool2d", lambda lib, r: (r(1, 2, 5, 5), 2, 2, 0, 1, True)),
    ("avg_pool1d", lambda lib, r: (r(1, 2, 7), 3, 2, 1)),
    ("selu", lambda lib, r: (r(4),)), ("celu", lambda lib, r: (r(4), 0.5)),
    ("threshold", lambda lib, r: (r(4), 0.1, 20.0)), ("hardshrink", lambda lib, r: (r(4), 0.3)),
    ("cosine_similarity", lambda lib, r: (r(3, 4), r(3, 4), 1)), ("prelu", lambda lib, r: (r(2, 3), r(3))),
])
def test_functional_ops_under_torchs_top_level_names(name, args):
    import torch

    def arrays(lib):
        rng = np.random.default_rng(0)
        return args(lib, lambda *s: lib.tensor(rng.standard_normal(s)))
    ours, theirs = getattr(tg, name)(*arrays(tg)), getattr(torch, name)(*arrays(torch))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)
