"""PyTorch habits that must carry over to tinygrad_course.nn: gradient clipping, Module.apply, factory
keyword arguments, channel dropout, adaptive pooling, and a clear refusal of raw NumPy input.

Comparisons with torch use the same float64 weights and inputs on both sides (rtol 1e-10, atol 1e-12,
as in test_nn.py), or float32 where the dtype itself is what is tested.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course import nn

RTOL, ATOL = 1e-10, 1e-12


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --- gradient clipping --------------------------------------------------------------------------
def grads_pair(torch, scale=1.0, dtype=np.float64):
    """Three parameters with gradients (one without), ours and torch's, equal values."""
    arrays = [rand(3, 4, seed=1) * scale, rand(5, seed=2) * scale, rand(2, 2, seed=3) * scale]
    ours, theirs = [], []
    for a in arrays:
        p = nn.Parameter(np.zeros(a.shape, dtype=dtype))
        p.grad = tg.tensor(a.astype(dtype))
        t = torch.zeros(a.shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
        t.grad = torch.from_numpy(a.astype(dtype))
        ours.append(p)
        theirs.append(t)
    ours.append(nn.Parameter(np.zeros(2, dtype=dtype)))  # no gradient: skipped
    theirs.append(torch.zeros(2, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True))
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ours, theirs = grads_pair(torch)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=float(norm_type))
    assert isinstance(total, tg.Tensor) and total.shape == ()
    assert_close(total.item(), t_total.item())
    for p, t in zip(ours[:3], theirs[:3]):
        assert_close(p.grad.data, t.grad.numpy())
    assert ours[3].grad is None


def test_clip_grad_norm_float32_generator_and_single_tensor_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = grads_pair(torch, scale=10.0, dtype=np.float32)
    total = nn.utils.clip_grad_norm_(iter(ours), 2.0)  # a generator, as model.parameters() is
    t_total = torch.nn.utils.clip_grad_norm_(iter(theirs), 2.0)
    assert total.dtype == np.float32
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=1e-6)
    for p, t in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-6, atol=1e-7)
    one = nn.Parameter(np.zeros(2))
    one.grad = tg.tensor(np.array([3.0, 4.0]))
    assert nn.utils.clip_grad_norm_(one, 1.0).item() == pytest.approx(5.0)
    assert_close(one.grad.data, [3.0 / (5 + 1e-6), 4.0 / (5 + 1e-6)])
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0).item() == 0.0  # no gradients at all


def test_clip_grad_norm_nonfinite_and_bad_arguments():
    p = nn.Parameter(np.zeros(2))
    p.grad = tg.tensor(np.array([1.0, math.inf]))
    with pytest.raises(RuntimeError, match="error_if_nonfinite=False"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert p.grad.data[1] == math.inf  # nothing was scaled before the error
    with pytest.warns(RuntimeWarning, match="invalid value"):  # inf * 0, as in torch: the gradient becomes NaN
        assert math.isinf(nn.utils.clip_grad_norm_([p], 1.0).item())
    assert math.isnan(p.grad.data[1])
    with pytest.raises(TypeError, match="parameters must be Tensors"):
        nn.utils.clip_grad_norm_([np.zeros(2)], 1.0)


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = grads_pair(torch)
    assert nn.utils.clip_grad_value_(ours, 0.7) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, t in zip(ours[:3], theirs[:3]):
        assert_close(p.grad.data, t.grad.numpy())
    assert np.abs(ours[0].grad.data).max() == 0.7
    with pytest.raises(ValueError, match="clip_value"):
        nn.utils.clip_grad_value_(ours, -1.0)


# --- Module.apply and raw NumPy input -----------------------------------------------------------
def test_apply_visits_children_before_parents_and_returns_self():
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    t_model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 1)))
    seen, t_seen = [], []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    t_model.apply(lambda m: t_seen.append(type(m).__name__))
    assert seen == t_seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]

    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)
    model.apply(init_weights)
    assert all((m.weight.data == 0.5).all() and (m.bias.data == 0).all() for m in (model[0], model[1][1]))


@pytest.mark.parametrize("module, args", [
    (nn.Linear(3, 2), (np.zeros((1, 3), dtype=np.float32),)),
    (nn.ReLU(), (np.zeros(3),)),
    (nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (np.zeros((1, 2, 2), dtype=np.float32),)),
    (nn.CrossEntropyLoss(), (tg.zeros(2, 3), np.array([0, 1]))),
    (nn.MSELoss(), (tg.zeros(2), np.zeros(2, dtype=np.float32))),
])
def test_modules_refuse_numpy_input_with_a_clear_message(module, args):
    with pytest.raises(TypeError, match=r"got a numpy\.ndarray.*tinygrad_course\.tensor\(\.\.\.\)"):
        module(*args)
    with pytest.raises(TypeError, match=type(module).__name__):
        module(*args)


def test_modules_still_take_tensors_scalars_and_keyword_arguments():
    class Scaled(nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale
    x = tg.tensor([1.0, 2.0])
    assert_close(Scaled()(x, scale=2.0).data, [2.0, 4.0])
    assert_close(Scaled()(x, np.float64(3.0)).data, [3.0, 6.0])  # a NumPy scalar is a number, not an array
    with pytest.raises(TypeError, match="numpy.ndarray"):
        Scaled()(x, scale=np.array([1.0, 2.0]))


# --- device= and dtype= as torch's factory keyword arguments ---------------------------------------
FACTORY_LAYERS = {
    "Linear": ((4, 3), {}),
    "Conv2d": ((2, 4, 3), dict(padding=1)),
    "ConvTranspose2d": ((2, 4, 3), dict(stride=2)),
    "BatchNorm1d": ((3,), {}),
    "BatchNorm2d": ((3,), dict(momentum=None)),
    "LayerNorm": (((2, 3),), {}),
    "PReLU": ((3,), {}),
    "Embedding": ((5, 3), dict(padding_idx=0)),
    "GroupNorm": ((2, 4), {}),
}


@pytest.mark.parametrize("name", list(FACTORY_LAYERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layers_take_device_and_dtype_like_torch(name, dtype):
    torch = pytest.importorskip("torch")
    args, options = FACTORY_LAYERS[name]
    tg.manual_seed(7)
    ours = getattr(nn, name)(*args, **options, device="cpu", dtype=getattr(tg, dtype))
    theirs = getattr(torch.nn, name)(*args, **options, device="cpu", dtype=getattr(torch, dtype))
    t_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(t_state)
    for key, value in ours.state_dict().items():
        assert value.dtype.name == str(t_state[key].dtype).replace("torch.", ""), key
    assert all(t.device == "cpu" for t in [*ours.parameters(), *ours.buffers()])
    tg.manual_seed(7)
    default = getattr(nn, name)(*args, **options, dtype=dtype)  # device= does not change the drawn weights
    for (key, a), b in zip(ours.state_dict().items(), default.state_dict().values()):
        assert np.array_equal(a, b), key


def test_factory_arguments_are_validated():
    with pytest.raises(TypeError, match="dtype must be float32 or float64.*'int64'"):
        nn.Linear(2, 2, dtype="int64")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.BatchNorm2d(2, dtype="not a dtype")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        nn.Conv2d(1, 1, 3, device="tpu")


def test_layers_built_on_cuda_hold_the_weights_a_seed_gives_on_cpu(cuda):
    tg.manual_seed(3)
    on_cpu = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    tg.manual_seed(3)
    on_gpu = nn.Sequential(nn.Conv2d(2, 3, 3, device=cuda), nn.BatchNorm2d(3, device="cuda:0"), nn.Flatten(),
                           nn.Linear(12, 2, device=cuda))
    assert all(t.device == "cuda" for t in [*on_gpu.parameters(), *on_gpu.buffers()])
    for (key, a), b in zip(on_cpu.state_dict().items(), on_gpu.state_dict().values()):
        assert np.array_equal(a, b), key


# --- Dropout2d ----------------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    drop = nn.Dropout2d(0.25)
    x = tg.tensor(rand(32, 16, 3, 4), requires_grad=True)
    y = drop(x)
    ratio = y.data / x.data
    per_channel = ratio.reshape(32, 16, -1)
    assert np.allclose(per_channel, per_channel[:, :, :1])  # one decision per (sample, channel)
    assert set(np.round(np.unique(per_channel), 12)) == {0.0, round(1 / 0.75, 12)}
    assert 0.15 < (per_channel[:, :, 0] == 0).mean() < 0.35
    g = rand(32, 16, 3, 4, seed=5)
    y.backward(g)
    assert_close(x.grad.data, g * ratio)  # the gradient goes through the same mask

    x3 = tg.ones(4, 8, 5)  # (N, C, L): whole rows, as torch's 3-D input
    rows = nn.Dropout2d(0.5)(x3).numpy()
    assert np.all((rows == 0).all(axis=2) | (rows == 2).all(axis=2))


def test_dropout2d_eval_extremes_seeding_and_bad_input():
    x = tg.randn(2, 3, 4, 4)
    drop = nn.Dropout2d(0.5).eval()
    assert drop(x) is x
    assert nn.Dropout2d(0.0)(x) is x
    assert np.array_equal(nn.Dropout2d(1.0)(x).data, np.zeros(x.shape, dtype=np.float32))
    tg.manual_seed(11)
    first = nn.Dropout2d(0.5)(x).data
    tg.manual_seed(11)
    assert np.array_equal(nn.Dropout2d(0.5)(x).data, first)
    with pytest.raises(ValueError, match=r"Dropout2d: expected input"):
        nn.Dropout2d()(tg.randn(3, 4))
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout2d(1.5)
    assert repr(nn.Dropout2d(0.3)) == "Dropout2d(p=0.3, inplace=False)"  # as torch prints it


# --- adaptive pooling -----------------------------------------------------------------------------------
@settings(max_examples=25)
@given(h=st.integers(1, 9), w=st.integers(1, 9), out_h=st.integers(1, 6), out_w=st.one_of(st.none(), st.integers(1, 6)),
       kind=st.sampled_from(["AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]))
def test_adaptive_pooling_matches_torch(h, w, out_h, out_w, kind):
    torch = pytest.importorskip("torch")
    size = (out_h, out_w)
    x = rand(2, 3, h, w, seed=h * 10 + w)
    ours, theirs = getattr(nn, kind)(size), getattr(torch.nn, kind)(size)
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*out.shape, seed=1)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy())


def test_adaptive_pooling_global_unbatched_and_validation():
    torch = pytest.importorskip("torch")
    x = rand(3, 5, 7)
    for kind in ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]:
        assert_close(getattr(nn, kind)(1)(tg.tensor(x)).data, getattr(torch.nn, kind)(1)(torch.from_numpy(x)).numpy())
        assert_close(getattr(nn, kind)((2, 3))(tg.tensor(x)).data,
                     getattr(torch.nn, kind)((2, 3))(torch.from_numpy(x)).numpy())
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    for bad in [0, (2,), (2, -1), 1.5, True]:
        with pytest.raises(ValueError, match="output_size"):
            nn.AdaptiveAvgPool2d(bad)
    with pytest.raises(ValueError, match="expected input"):
        nn.AdaptiveMaxPool2d(2)(tg.randn(4, 4))


# --- Embedding -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx):
    torch = pytest.importorskip("torch")
    ours = nn.Embedding(6, 4, padding_idx=padding_idx, dtype="float64")
    theirs = torch.nn.Embedding(6, 4, padding_idx=padding_idx).double()
    if padding_idx is not None:
        assert not ours.weight.data[padding_idx].any()  # the padding row starts at zero, as torch's
        with tg.no_grad():
            ours.weight[padding_idx] = 0.5  # a padding row that is not zero still reads as itself
    theirs.load_state_dict({"weight": torch.from_numpy(ours.weight.numpy(force=True).copy())})
    idx = np.array([[0, 2, 2, 5], [5, 1, 2, 3], [0, 0, 4, 5]])
    out, t_out = ours(tg.tensor(idx)), theirs(torch.from_numpy(idx))
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*out.shape, seed=4)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(ours.weight.grad.data, theirs.weight.grad.numpy())  # repeats add up; padding gets none
    assert repr(ours) == repr(theirs)


def test_embedding_from_pretrained_and_bad_indices():
    table = tg.tensor(rand(4, 2))
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and np.shares_memory(frozen.weight.data, table.data)
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    assert_close(frozen(tg.tensor(np.array([3, 0]))).data, table.data[[3, 0]])
    emb = nn.Embedding(4, 2)
    with pytest.raises(TypeError, match="integer Tensor"):
        emb(tg.tensor([1.0, 2.0]))
    with pytest.raises(IndexError, match=r"\[0, 4\).*from 0 to 4"):
        emb(tg.tensor(np.array([0, 4])))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        emb(np.array([0, 1]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


# --- PyTorch's constructor arguments ------------------------------------------------------------------
@pytest.mark.parametrize("kind, args, options", [
    ("MaxPool2d", (2,), dict(ceil_mode=True)),
    ("MaxPool2d", (3, 2, 1), dict(ceil_mode=True)),
    ("MaxPool2d", ((3, 2), (2, 3)), dict(ceil_mode=True)),
    ("MaxPool2d", (2, 2, 0, 1), {}),  # dilation 1 given positionally
    ("AvgPool2d", (2, 2, 0, False, False), {}),  # torch's positional order: ceil_mode before count_include_pad
    ("AvgPool2d", (3, 2, 1), dict(divisor_override=5)),
    ("AvgPool2d", (3, 2, 1), dict(count_include_pad=False, divisor_override=4)),
])
@pytest.mark.parametrize("size", [(7, 6), (8, 5)])
def test_pooling_constructor_arguments_match_torch(kind, args, options, size):
    torch = pytest.importorskip("torch")
    x = rand(2, 3, *size)
    ours, theirs = getattr(nn, kind)(*args, **options), getattr(torch.nn, kind)(*args, **options)
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*out.shape, seed=2)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("name, options", [("MaxPool2d", {}), ("MaxPool2d", {"ceil_mode": True}),
                                           ("MaxPool2d", {"dilation": 2, "return_indices": True}),
                                           ("AvgPool2d", {"ceil_mode": True, "divisor_override": 3}),
                                           ("MaxPool1d", {"ceil_mode": True})])
def test_pooling_layers_print_as_torchs(name, options):
    torch = pytest.importorskip("torch")
    assert repr(getattr(nn, name)(2, **options)) == repr(getattr(torch.nn, name)(2, **options))


def test_pooling_refuses_a_bad_divisor():
    with pytest.raises(ValueError, match="divisor_override"):
        nn.AvgPool2d(2, divisor_override=0)


@pytest.mark.parametrize("name, args", [("ReLU", (True,)), ("LeakyReLU", (0.2, True)), ("Dropout", (0.1, True)),
                                        ("Dropout2d", (0.1, True))])
def test_inplace_is_accepted_and_gives_torchs_values(name, args):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args).eval(), getattr(torch.nn, name)(*args).eval()
    assert repr(ours) == repr(theirs)
    x = rand(2, 3, 4, 4)
    xt = tg.tensor(x, requires_grad=True)
    out = ours(xt)
    assert_close(out.data, theirs(torch.from_numpy(x.copy())).numpy())
    out.sum().backward()  # out of place: the input and its gradient are untouched
    assert np.array_equal(xt.data, x)


def test_module_to_takes_a_dtype_first_like_torch():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert model.to(tg.float64) is model
    assert all(t.dtype == np.float64 for t in model.parameters())
    assert model[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    model.to("cpu", non_blocking=True).to(np.float32)
    assert all(t.dtype == np.float32 and t.device == "cpu" for t in model.parameters())
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        model.to("tpu")
    with pytest.raises(TypeError, match="float32 or float64"):
        model.to("int64")


# --- forward hooks and ModuleDict -------------------------------------------------------------------
def test_forward_hooks_record_replace_and_remove_like_torch():
    torch = pytest.importorskip("torch")

    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
    ours, theirs = build(tg), build(torch).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().astype(np.float64)) for k, v in ours.state_dict().items()})
    ours.double()
    x = rand(5, 3)
    seen, t_seen = {}, {}
    handles = [ours[1].register_forward_hook(lambda m, inp, out: seen.update(relu=(inp[0].data, out.data))),
               ours[2].register_forward_hook(lambda m, inp, out: out * 2.0),
               ours[0].register_forward_pre_hook(lambda m, inp: inp[0] + 1.0)]
    theirs[1].register_forward_hook(lambda m, inp, out: t_seen.update(relu=(inp[0].detach().numpy(),
                                                                            out.detach().numpy())))
    theirs[2].register_forward_hook(lambda m, inp, out: out * 2.0)
    theirs[0].register_forward_pre_hook(lambda m, inp: inp[0] + 1.0)
    out, t_out = ours(tg.tensor(x)), theirs(torch.from_numpy(x))
    assert_close(out.data, t_out.detach().numpy())
    assert_close(seen["relu"][0], t_seen["relu"][0])
    assert_close(seen["relu"][1], t_seen["relu"][1])
    for h in handles:
        h.remove()
    seen.clear()
    plain = ours(tg.tensor(x))
    assert not seen
    with ours.register_forward_hook(lambda m, inp, out: out * 0.0):
        assert not ours(tg.tensor(x)).data.any()
    assert_close(ours(tg.tensor(x)).data, plain.data)  # the context manager removed it
    with pytest.raises(TypeError, match="callable"):
        ours.register_forward_hook("not a function")


def test_module_dict_registers_like_torch():
    torch = pytest.importorskip("torch")

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "box": nn.Linear(4, 2)})
            self.heads["aux"] = nn.Linear(4, 1)

    class TorchHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = torch.nn.ModuleDict({"cls": torch.nn.Linear(4, 3), "box": torch.nn.Linear(4, 2)})
            self.heads["aux"] = torch.nn.Linear(4, 1)

    ours, theirs = Heads(), TorchHeads()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.heads) == list(ours.heads.keys()) == ["cls", "box", "aux"]
    assert "box" in ours.heads and len(ours.heads) == 3
    assert ours.heads.pop("box").out_features == 2
    assert [k for k, _ in ours.named_parameters()] == ["heads.cls.weight", "heads.cls.bias", "heads.aux.weight",
                                                     "heads.aux.bias"]
    with pytest.raises(KeyError, match="no module 'box'"):
        ours.heads["box"]
    with pytest.raises(TypeError, match="must be Modules"):
        ours.heads["x"] = "not a module"
    with pytest.raises(NotImplementedError, match="index it by name"):
        ours.heads(tg.zeros(1, 4))


# --- more initialisers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 2, 3, 3)])
def test_orthogonal_init_gives_orthonormal_rows_or_columns(shape):
    w = nn.Parameter(np.zeros(shape))
    assert nn.init.orthogonal_(w, gain=2.0) is w
    flat = w.data.reshape(shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    assert_close(gram, 4.0 * np.eye(len(gram)), atol=1e-12)
    tg.manual_seed(5)
    first = nn.init.orthogonal_(nn.Parameter(np.zeros(shape))).data
    tg.manual_seed(5)
    assert np.array_equal(nn.init.orthogonal_(nn.Parameter(np.zeros(shape))).data, first)


def test_trunc_normal_stays_in_bounds_with_torchs_distribution():
    torch = pytest.importorskip("torch")
    ours = nn.init.trunc_normal_(nn.Parameter(np.zeros(200_000)), mean=0.5, std=1.0, a=0.0, b=1.5).data
    torch.manual_seed(0)
    theirs = torch.nn.init.trunc_normal_(torch.zeros(200_000, dtype=torch.float64), 0.5, 1.0, 0.0, 1.5).numpy()
    assert ours.min() >= 0.0 and ours.max() <= 1.5
    assert abs(ours.mean() - theirs.mean()) < 0.01 and abs(ours.std() - theirs.std()) < 0.01
    with pytest.raises(ValueError, match="nearer the mean"):
        nn.init.trunc_normal_(nn.Parameter(np.zeros(3)), a=10.0, b=11.0)
    with pytest.raises(ValueError, match="a < b"):
        nn.init.trunc_normal_(nn.Parameter(np.zeros(3)), a=1.0, b=-1.0)


def test_eye_matches_torch():
    torch = pytest.importorskip("torch")
    for shape in [(3, 3), (2, 4), (4, 2)]:
        assert np.array_equal(nn.init.eye_(nn.Parameter(rand(*shape))).data,
                              torch.nn.init.eye_(torch.zeros(shape)).numpy())
    with pytest.raises(ValueError, match="2-D"):
        nn.init.eye_(nn.Parameter(np.zeros((2, 2, 2))))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.orthogonal_(nn.Parameter(np.zeros(3)))


# --- loss modules: PyTorch's arguments in PyTorch's order ----------------------------------------------
@pytest.mark.parametrize("size_average, reduce", [(None, None), (False, None), (None, False), (True, True),
                                                  (False, True), (True, False)])
@pytest.mark.parametrize("name", ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"])
def test_loss_legacy_flags_and_positional_order_match_torch(name, size_average, reduce):
    torch = pytest.importorskip("torch")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that size_average and reduce are deprecated
        theirs = getattr(torch.nn, name)(size_average=size_average, reduce=reduce)
    ours = getattr(nn, name)(size_average=size_average, reduce=reduce)
    assert ours.reduction == theirs.reduction
    x = rand(4, 3)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        target = np.array([0, 2, 1, 2])
        x = x if name == "CrossEntropyLoss" else np.log(np.exp(x) / np.exp(x).sum(1, keepdims=True))
        positional = (None, None, -100, None, "sum")  # weight, size_average, ignore_index, reduce, reduction
    else:
        target = np.random.default_rng(1).uniform(size=(4, 3))
        x = 1 / (1 + np.exp(-x)) if name == "BCELoss" else x
        positional = (None, None, "sum") if name == "MSELoss" else (None, None, None, "sum")
    out = ours(tg.tensor(x), tg.tensor(target))
    assert_close(out.data, theirs(torch.from_numpy(x), torch.from_numpy(target)).numpy())
    assert getattr(nn, name)(*positional).reduction == getattr(torch.nn, name)(*positional).reduction == "sum"


def test_loss_options_are_kept():
    assert nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum").label_smoothing == 0.1
    assert nn.DiceLoss(0.5, "sum").reduction == "sum" and nn.FocalLoss(0.5, 1.0, "none").reduction == "none"


@pytest.mark.parametrize("name, args", [
    ("Conv2d", (2, 4, 3, 1, 1, 1, 1, False, "zeros")),
    ("ConvTranspose2d", (2, 4, 3, 2, 1, 1, 1, True, 1, "zeros")),
    ("LayerNorm", ((2, 3), 1e-5, True, False)),
    ("Embedding", (5, 3, 1, None, 2.0, False, False)),
    ("BatchNorm2d", (3, 1e-3, 0.2, False, True)),
])
def test_layers_take_torchs_positional_arguments(name, args):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: tuple(v.shape)
                                                                  for k, v in theirs.state_dict().items()}


def test_layernorm_without_bias_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.LayerNorm(4, bias=False, dtype="float64")
    with tg.no_grad():
        ours.weight.copy_(np.linspace(0.5, 2.0, 4))
    theirs = torch.nn.LayerNorm(4, bias=False).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    assert repr(ours) == repr(theirs) and repr(nn.LayerNorm(3)) == repr(torch.nn.LayerNorm(3))
    x = rand(3, 4)
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    g = rand(3, 4, seed=3)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy())
    assert_close(ours.weight.grad.data, theirs.weight.grad.numpy())


def test_layer_options_not_implemented_are_refused():
    with pytest.raises(NotImplementedError, match="padding_mode"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(NotImplementedError, match="padding_mode"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="circular")
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding(4, 2, max_norm=1.0)
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(4, 2, sparse=True)


@pytest.mark.parametrize("groups, shape, affine, bias", [(2, (3, 4, 5, 6), True, True), (1, (2, 6, 3, 3), True, False),
                                                         (6, (2, 6, 7), False, True), (3, (4, 6), True, True)])
def test_groupnorm_matches_torch(groups, shape, affine, bias):
    torch = pytest.importorskip("torch")
    ours = nn.GroupNorm(groups, shape[1], eps=1e-4, affine=affine, dtype="float64", bias=bias)
    with tg.no_grad():
        for p, values in zip(ours.parameters(), [np.linspace(0.5, 2.0, shape[1]), np.linspace(-1.0, 1.0, shape[1])]):
            p.copy_(values)
    theirs = torch.nn.GroupNorm(groups, shape[1], eps=1e-4, affine=affine, bias=bias).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    assert repr(ours) == repr(theirs)
    x = rand(*shape) * 3 + 1
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*shape, seed=9)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy(), atol=1e-10)
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        assert_close(p.grad.data, tp.grad.numpy(), atol=1e-10)


def test_groupnorm_validation():
    with pytest.raises(ValueError, match="must divide"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"expected input \(N, 6"):
        nn.GroupNorm(2, 6)(tg.randn(2, 4, 3))


def test_unflatten_and_identity_like_torch():
    torch = pytest.importorskip("torch")
    x = rand(2, 12, 3)
    for dim, size in [(1, (3, 4)), (-1, (1, 3)), (0, (1, 2))]:
        ours, theirs = nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size)
        assert_close(ours(tg.tensor(x)).data, theirs(torch.from_numpy(x)).numpy())
    assert repr(nn.Unflatten(1, (3, 4))) == repr(torch.nn.Unflatten(1, (3, 4)))
    with pytest.raises(ValueError, match="out of range"):
        nn.Unflatten(3, (1, 3))(tg.tensor(x))
    t = tg.tensor(x)
    assert nn.Identity(54, unused=0.1)(t) is t  # arguments ignored, as torch's


def test_sequential_edits_like_torch():
    torch = pytest.importorskip("torch")

    def edit(lib):
        s = lib.Sequential(lib.Linear(1, 2), lib.ReLU(), lib.Linear(2, 3))
        s[-1] = lib.Linear(2, 5)  # a new head, as in transfer learning
        del s[1]
        s.insert(1, lib.Tanh())
        s.insert(-1, lib.Sigmoid())
        s.extend([lib.ReLU()])
        popped = s.pop(0)
        del s[1:2]
        return s, popped

    (ours, popped), (theirs, t_popped) = edit(nn), edit(torch.nn)
    assert [(n, type(m).__name__) for n, m in ours.named_children()] == \
        [(n, type(m).__name__) for n, m in theirs.named_children()]
    assert type(popped).__name__ == type(t_popped).__name__
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: tuple(v.shape)
                                                                  for k, v in theirs.state_dict().items()}
    with pytest.raises(IndexError, match="out of range"):
        ours[5] = nn.ReLU()
    with pytest.raises(TypeError, match="must be Modules"):
        ours[0] = "relu"


# --- 1-d layers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, options", [
    ((3, 4, 3), {}),
    ((3, 6, 4), dict(stride=2, padding=1, bias=False)),
    ((4, 6, 3), dict(dilation=2, groups=2, padding=2)),
    ((3, 4, 4), dict(padding="same")),  # an even kernel: the extra padding goes after
    ((3, 4, 5), dict(padding="valid")),
])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")  # torch's own notice
def test_conv1d_matches_torch(args, options):
    torch = pytest.importorskip("torch")
    ours = nn.Conv1d(*args, **options, dtype="float64")
    theirs = torch.nn.Conv1d(*args, **options).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    assert repr(ours) == repr(theirs)
    x = rand(2, args[0], 11)
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*out.shape, seed=6)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy())
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        assert_close(p.grad.data, tp.grad.numpy())


@pytest.mark.parametrize("kind, args, options", [
    ("MaxPool1d", (2,), {}), ("MaxPool1d", (3, 2, 1), {}), ("AvgPool1d", (2,), {}),
    ("AvgPool1d", (3, 2, 1), dict(count_include_pad=False)), ("AvgPool1d", (3, 1, 1), {}),
])
def test_pool1d_matches_torch(kind, args, options):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, kind)(*args, **options), getattr(torch.nn, kind)(*args, **options)
    assert repr(ours) == repr(theirs)
    x = rand(2, 3, 9)
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    out.sum().backward()
    t_out.sum().backward()
    assert_close(xt.grad.data, tx.grad.numpy())


def test_1d_layers_validate_their_input():
    with pytest.raises(ValueError, match=r"Conv1d: expected input \(N, C, L\)"):
        nn.Conv1d(1, 1, 3)(tg.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="same"):
        nn.Conv1d(1, 1, 3, stride=2, padding="same")


def test_module_conveniences_like_torch():
    import copy
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 2)))
    for target in ["", "0", "1.1"]:
        assert type(ours.get_submodule(target)).__name__ == type(theirs.get_submodule(target)).__name__
    with pytest.raises(AttributeError, match="no submodule '5'"):
        ours.get_submodule("1.5")
    ours.register_module("head", nn.Identity())
    assert "head" in dict(ours.named_children())

    ema = copy.deepcopy(ours)  # an EMA or best-so-far copy: same values, separate storage
    with tg.no_grad():
        ema[0].weight.fill_(0.0)
    assert ours[0].weight.data.any() and not ema[0].weight.data.any()
    assert [n for n, _ in ema.named_parameters()] == [n for n, _ in ours.named_parameters()]

    with pytest.raises(TypeError, match="half precision"):
        ours.half()
    with pytest.raises(TypeError, match="bfloat16"):
        ours.bfloat16()
    with pytest.raises(ValueError, match="unknown device 'cuda:1'"):
        ours.cuda(1)


def test_parameters_to_vector_and_back_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(3, 2, dtype="float64"), nn.Linear(2, 1, dtype="float64"))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    vec = nn.utils.parameters_to_vector(ours.parameters())
    assert_close(vec.data, torch.nn.utils.parameters_to_vector(theirs.parameters()).detach().numpy())
    (vec * vec).sum().backward()  # differentiable: d/dp sum p^2 = 2p
    assert_close(ours[0].weight.grad.data, 2 * ours[0].weight.data)
    new = tg.tensor(np.arange(vec.shape[0], dtype=np.float64))
    nn.utils.vector_to_parameters(new, ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.arange(vec.shape[0], dtype=torch.float64), theirs.parameters())
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        assert_close(p.data, tp.detach().numpy())
    with pytest.raises(ValueError, match="does not hold"):
        nn.utils.vector_to_parameters(tg.zeros(3, dtype="float64"), ours.parameters())
    with pytest.raises(TypeError, match="must be a Tensor"):
        nn.utils.vector_to_parameters(np.zeros(11), ours.parameters())


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_without_dim_picks_torchs_implicit_dim(name, shape):
    torch = pytest.importorskip("torch")
    x = rand(*shape)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        ours = getattr(nn, name)()(tg.tensor(x)).data
    with pytest.warns(UserWarning, match="Implicit dimension"):
        theirs = getattr(torch.nn, name)()(torch.from_numpy(x)).numpy()
    assert_close(ours, theirs)
    assert repr(getattr(nn, name)()) == repr(getattr(torch.nn, name)())


@pytest.mark.parametrize("affine, shape", [(False, (2, 3, 4, 5)), (True, (2, 3, 4, 5)), (False, (3, 4, 4))])
def test_instancenorm2d_matches_torch(affine, shape):
    torch = pytest.importorskip("torch")
    ours = nn.InstanceNorm2d(3, affine=affine, dtype="float64")
    with tg.no_grad():
        for p, values in zip(ours.parameters(), [np.linspace(0.5, 2.0, 3), np.linspace(-1.0, 1.0, 3)]):
            p.copy_(values)
    theirs = torch.nn.InstanceNorm2d(3, affine=affine).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    assert repr(ours) == repr(theirs)
    x = rand(*shape) * 2 + 1
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*shape, seed=8)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy(), atol=1e-10)
    with pytest.raises(NotImplementedError, match="track_running_stats"):
        nn.InstanceNorm2d(3, track_running_stats=True)


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "NLLLoss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_class_weights_and_ignore_index_match_torch(name, reduction):
    torch = pytest.importorskip("torch")
    weight = np.array([0.2, 1.0, 3.0])
    target = np.array([0, 2, -100, 1, 2, 1])  # -100 is ignored by default, as in torch
    x = rand(6, 3)
    x = x if name == "CrossEntropyLoss" else x - np.log(np.exp(x).sum(1, keepdims=True))
    extra = dict(label_smoothing=0.1) if name == "CrossEntropyLoss" else {}
    ours = getattr(nn, name)(tg.tensor(weight), reduction=reduction, **extra)
    theirs = getattr(torch.nn, name)(torch.from_numpy(weight), reduction=reduction, **extra)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]  # a buffer, saved
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt, tg.tensor(target)), theirs(tx, torch.from_numpy(target))
    assert_close(out.data, t_out.detach().numpy())
    out.sum().backward()
    t_out.sum().backward()
    assert_close(xt.grad.data, tx.grad.numpy())
    other = getattr(nn, name)(ignore_index=1)
    t_other = getattr(torch.nn, name)(ignore_index=1)
    assert_close(other(tg.tensor(x), tg.tensor(np.array([0, 2, 1, 1, 2, 0]))).data,
                 t_other(torch.from_numpy(x), torch.from_numpy(np.array([0, 2, 1, 1, 2, 0]))).numpy())
    with pytest.raises(TypeError, match="weight must be a Tensor"):
        getattr(nn, name)([0.2, 1.0, 3.0])


# --- activation and loss modules over the functional ops ----------------------------------------------
@pytest.mark.parametrize("name, args", [
    ("GELU", ()), ("GELU", ("tanh",)), ("SiLU", ()), ("SiLU", (True,)), ("ReLU6", ()), ("ELU", ()),
    ("ELU", (0.5, True)), ("Softplus", ()), ("Softplus", (2.0, 1.0)), ("Hardtanh", ()), ("Hardtanh", (-0.5, 2.0)),
    ("LogSigmoid", ()), ("Softmin", (1,)),
])
def test_activation_modules_match_torch(name, args):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    x = rand(3, 4, 5) * 4
    x[np.abs(np.abs(x) - 1) < 1e-3] += 0.01  # away from kinks
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx.clone() if "inplace" in repr(theirs) else tx)
    assert_close(out.data, t_out.detach().numpy())
    out.sum().backward()
    t_out.sum().backward()
    assert_close(xt.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("name, options", [
    ("L1Loss", {}), ("L1Loss", dict(reduction="sum")), ("SmoothL1Loss", dict(beta=0.5)),
    ("HuberLoss", dict(delta=0.7, reduction="none")), ("KLDivLoss", dict(reduction="batchmean")),
    ("KLDivLoss", dict(reduction="sum", log_target=True)),
])
def test_regression_and_divergence_losses_match_torch(name, options):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(**options), getattr(torch.nn, name)(**options)
    x, y = rand(4, 5), rand(4, 5, seed=1)
    if name == "KLDivLoss":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
        y = np.exp(y) / np.exp(y).sum(1, keepdims=True)
        y = np.log(y) if options.get("log_target") else y
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt, tg.tensor(y)), theirs(tx, torch.from_numpy(y))
    assert_close(out.data, t_out.detach().numpy())
    out.sum().backward()
    t_out.sum().backward()
    assert_close(xt.grad.data, tx.grad.numpy())
    assert ours.reduction == theirs.reduction


def test_cosine_similarity_module_matches_torch():
    torch = pytest.importorskip("torch")
    a, b = rand(4, 6), rand(4, 6, seed=2)
    for dim in (1, 0):
        ours, theirs = nn.CosineSimilarity(dim=dim), torch.nn.CosineSimilarity(dim=dim)
        assert_close(ours(tg.tensor(a), tg.tensor(b)).data, theirs(torch.from_numpy(a), torch.from_numpy(b)).numpy())


def test_parameter_containers_register_like_torch():
    torch = pytest.importorskip("torch")

    class Mixture(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(np.ones(2)), tg.zeros(3, dtype="float64")])
            self.scales.append(tg.ones(1, dtype="float64"))
            self.named = nn.ParameterDict({"a": nn.Parameter(np.zeros(2)), "b": tg.ones(2, dtype="float64")})

    class TorchMixture(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2)), torch.zeros(3)])
            self.scales.append(torch.ones(1))
            self.named = torch.nn.ParameterDict({"a": torch.nn.Parameter(torch.zeros(2)), "b": torch.ones(2)})

    ours, theirs = Mixture(), TorchMixture()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())  # tensors wrapped
    assert len(ours.scales) == 3 and ours.scales[-1].shape == (1,) and len(ours.scales[1:]) == 2
    ours.scales[0] = tg.full((2,), 5.0, dtype="float64")
    assert ours.scales[0].data.tolist() == [5.0, 5.0]
    assert "a" in ours.named and list(ours.named) == ["a", "b"]
    del ours.named["a"]
    assert list(ours.named.keys()) == ["b"]
    with pytest.raises(KeyError, match="no parameter 'a'"):
        ours.named["a"]
    with pytest.raises(TypeError, match="Parameter or Tensor"):
        ours.scales.append(np.zeros(2))
    with pytest.raises(IndexError, match="out of range"):
        ours.scales[3]


# --- recurrent layers -------------------------------------------------------------------------------------
RNN_CASES = [
    ("RNN", {}, (5, 2, 3)),
    ("RNN", dict(nonlinearity="relu", bias=False, num_layers=2), (4, 3, 3)),
    ("LSTM", {}, (5, 2, 3)),
    ("LSTM", dict(num_layers=2, bidirectional=True, dropout=0.5), (4, 2, 3)),  # dropout: eval, so none
    ("LSTM", dict(batch_first=True), (2, 6, 3)),
    ("GRU", {}, (5, 2, 3)),
    ("GRU", dict(bidirectional=True, batch_first=True), (3, 4, 3)),
    ("GRU", {}, (6, 3)),  # unbatched
]


@pytest.mark.parametrize("kind, options, shape", RNN_CASES,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(RNN_CASES)])
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_layers_match_torch(kind, options, shape, with_state):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, kind)(3, 4, **options, dtype="float64").eval()
    theirs = getattr(torch.nn, kind)(3, 4, **options).double().eval()
    assert list(ours.state_dict()) == list(theirs.state_dict()) and repr(ours) == repr(theirs)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    x = rand(*shape)
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    args, t_args = [xt], [tx]
    if with_state:
        layers = ours.num_layers * (2 if ours.bidirectional else 1)
        state_shape = (layers, 4) if len(shape) == 2 else (layers, shape[0 if ours.batch_first else 1], 4)
        states = [rand(*state_shape, seed=s) for s in (3, 4)][:2 if kind == "LSTM" else 1]
        args.append(tuple(tg.tensor(s) for s in states) if kind == "LSTM" else tg.tensor(states[0]))
        t_args.append(tuple(torch.from_numpy(s) for s in states) if kind == "LSTM" else torch.from_numpy(states[0]))
    out, final = ours(*args)
    t_out, t_final = theirs(*t_args)
    assert_close(out.data, t_out.detach().numpy())
    finals, t_finals = (final, t_final) if kind == "LSTM" else ((final,), (t_final,))
    for f, tf in zip(finals, t_finals):
        assert_close(f.data, tf.detach().numpy())
    g = rand(*out.shape, seed=7)
    loss = (out * tg.tensor(g)).sum() + sum(f.sum() for f in finals)
    t_loss = (t_out * torch.from_numpy(g)).sum() + sum(f.sum() for f in t_finals)
    loss.backward()
    t_loss.backward()
    assert_close(xt.grad.data, tx.grad.numpy())
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.data, t_params[name].grad.numpy())


def test_recurrent_layers_validate_and_drop_between_layers():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    with pytest.raises(ValueError, match=r"expected input \(L, N, 3\)"):
        lstm(tg.randn(5, 2, 7))
    with pytest.raises(ValueError, match="initial state of shape"):
        lstm(tg.randn(5, 2, 3), (tg.zeros(1, 2, 4), tg.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    x = tg.randn(5, 2, 3)
    tg.manual_seed(1)
    first = lstm(x)[0].data
    tg.manual_seed(2)
    assert not np.allclose(lstm(x)[0].data, first)  # training: dropout between the layers
    lstm.eval()
    assert np.array_equal(lstm(x)[0].data, lstm(x)[0].data)


@pytest.mark.parametrize("name, args, shape", [
    ("ZeroPad2d", (2,), (2, 3, 4, 5)), ("ZeroPad2d", ((1, 2, 0, 3),), (2, 3, 4, 5)),
    ("ConstantPad2d", (1, 3.5), (2, 3, 4, 5)), ("ConstantPad1d", ((1, 2), 0.5), (2, 3, 4)),
    ("PixelShuffle", (2,), (2, 8, 3, 4)), ("PixelUnshuffle", (2,), (2, 2, 4, 6)),
])
def test_padding_and_pixel_shuffle_match_torch(name, args, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    x = rand(*shape)
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt), theirs(tx)
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*out.shape, seed=3)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy())


def test_padding_and_pixel_shuffle_validate():
    with pytest.raises(ValueError, match="padding must be"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match=r"PixelShuffle\(2\): expected input"):
        nn.PixelShuffle(2)(tg.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="divisible by 2"):
        nn.PixelUnshuffle(2)(tg.randn(1, 1, 3, 4))


# --- attention ------------------------------------------------------------------------------------------------
MHA_CASES = [
    (dict(), dict(), (4, 3), (5, 3)),
    (dict(batch_first=True), dict(average_attn_weights=False), (3, 4), (3, 5)),
    (dict(bias=False), dict(need_weights=False), (4, 2), (4, 2)),
    (dict(), dict(attn_mask="causal", key_padding_mask=True), (4, 2), (4, 2)),
    (dict(), dict(attn_mask="float"), (4, 2), (5, 2)),
    (dict(batch_first=True), dict(key_padding_mask=True), (2, 4), (2, 5)),
    (dict(), dict(), (4,), (6,)),  # unbatched
]


@pytest.mark.parametrize("options, call, q_shape, k_shape", MHA_CASES, ids=[str(i) for i in range(len(MHA_CASES))])
def test_multihead_attention_matches_torch(options, call, q_shape, k_shape):
    torch = pytest.importorskip("torch")
    ours = nn.MultiheadAttention(8, 2, **options, dtype="float64")
    theirs = torch.nn.MultiheadAttention(8, 2, **options).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    q, k, v = rand(*q_shape, 8, seed=1), rand(*k_shape, 8, seed=2), rand(*k_shape, 8, seed=3)
    kwargs, t_kwargs = {}, {}
    length, source = q_shape[1 if options.get("batch_first") else 0], k_shape[1 if options.get("batch_first") else 0]
    if call.get("attn_mask") == "causal":
        mask = np.triu(np.ones((length, source), dtype=bool), 1)
        kwargs["attn_mask"], t_kwargs["attn_mask"] = tg.tensor(mask), torch.from_numpy(mask)
    elif call.get("attn_mask") == "float":
        mask = rand(length, source, seed=4)
        kwargs["attn_mask"], t_kwargs["attn_mask"] = tg.tensor(mask), torch.from_numpy(mask)
    if call.get("key_padding_mask"):
        pad = np.zeros((q_shape[0 if options.get("batch_first") else 1], source), dtype=bool)
        pad[0, -2:] = True
        kwargs["key_padding_mask"], t_kwargs["key_padding_mask"] = tg.tensor(pad), torch.from_numpy(pad)
    for name in ("need_weights", "average_attn_weights"):
        if name in call:
            kwargs[name] = t_kwargs[name] = call[name]
    inputs = [tg.tensor(a, requires_grad=True) for a in (q, k, v)]
    t_inputs = [torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v)]
    out, weights = ours(*inputs, **kwargs)
    t_out, t_weights = theirs(*t_inputs, **t_kwargs)
    assert_close(out.data, t_out.detach().numpy())
    assert (weights is None) == (t_weights is None)
    if weights is not None:
        assert_close(weights.data, t_weights.detach().numpy())
    g = rand(*out.shape, seed=5)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    for x, tx in zip(inputs, t_inputs):
        assert_close(x.grad.data, tx.grad.numpy())
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.data, t_params[name].grad.numpy())


def test_multihead_attention_validates():
    with pytest.raises(ValueError, match="must divide"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        nn.MultiheadAttention(8, 2, add_bias_kv=True)
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="is_causal"):
        mha(tg.randn(3, 1, 8), tg.randn(3, 1, 8), tg.randn(3, 1, 8), is_causal=True)
    with pytest.raises(ValueError, match="expected query"):
        mha(tg.randn(3, 1, 6), tg.randn(3, 1, 6), tg.randn(3, 1, 6))


@pytest.mark.parametrize("layer_options, masks", [
    (dict(), False),
    (dict(norm_first=True, activation="gelu", batch_first=True), True),
    (dict(bias=False), True),
])
def test_transformer_encoder_matches_torch(layer_options, masks):
    torch = pytest.importorskip("torch")
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, dtype="float64", **layer_options),
                                 2, norm=nn.LayerNorm(8, dtype="float64"))
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, **layer_options), 2,
                                         norm=torch.nn.LayerNorm(8), enable_nested_tensor=False).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    x = rand(3, 4, 8)  # (L, N, E), or (N, L, E) with batch_first: both work for equal comparison
    kwargs, t_kwargs = {}, {}
    if masks:
        causal = np.triu(np.ones((x.shape[1 if layer_options.get("batch_first") else 0],) * 2, dtype=bool), 1)
        pad = np.zeros((x.shape[0 if layer_options.get("batch_first") else 1],
                        x.shape[1 if layer_options.get("batch_first") else 0]), dtype=bool)
        pad[0, -1] = True
        kwargs = dict(mask=tg.tensor(causal), src_key_padding_mask=tg.tensor(pad))
        t_kwargs = dict(mask=torch.from_numpy(causal), src_key_padding_mask=torch.from_numpy(pad))
    xt, tx = tg.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_()
    out, t_out = ours(xt, **kwargs), theirs(tx, **t_kwargs)  # training mode: torch takes its plain path
    assert_close(out.data, t_out.detach().numpy())
    g = rand(*out.shape, seed=6)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(xt.grad.data, tx.grad.numpy())
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.data, t_params[name].grad.numpy(), atol=1e-10)


def test_transformer_encoder_layer_validates_and_copies_layers():
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)
    first, second = encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight
    assert first is not second and np.array_equal(first.data, second.data)  # copies, as torch's


def test_replacing_a_submodule_keeps_its_place_as_in_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 3))
    for model, lib in ((ours, nn), (theirs, torch.nn)):
        model.add_module("0", lib.Tanh())
        setattr(model, "2", lib.Identity())
        model.register_buffer("stat", None)
        model.register_buffer("stat", (tg if lib is nn else torch).zeros(1))
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs] == ["Tanh", "ReLU", "Identity"]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["stat"]
