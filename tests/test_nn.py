"""Tests of tinygrad_course.nn: Module semantics, layers, initialisation, and torch.nn as an oracle.

Tolerances: comparisons with torch run in float64 on both sides with the same weights, so the only
differences are summation orders: rtol 1e-10 and atol 1e-12 (values are O(1)).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course import nn
from tinygrad_course.nn import functional as F
from tinygrad_course.nn import init

RTOL, ATOL = 1e-10, 1e-12


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


class TwoLayer(nn.Module):
    """A small custom model: a nested Sequential, a Parameter, a buffer and a tied (shared) layer."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4))
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(tg.ones(1))
        self.register_buffer("steps", tg.zeros(1))
        self.tied = self.head  # the same module under two names

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def cifar_net(conv_bias=True, batch_norm=False, dropout=False):
    """The course's CIFAR-10 network (COURSE.md section 3)."""
    def conv(c_in, c_out):
        layers = [nn.Conv2d(c_in, c_out, 5, padding=2, bias=conv_bias)]
        return layers + ([nn.BatchNorm2d(c_out)] if batch_norm else []) + [nn.ReLU(), nn.MaxPool2d(2, 2)]
    return nn.Sequential(*conv(3, 32), *conv(32, 64), *conv(64, 64), nn.Flatten(), nn.Linear(1024, 1000),
                         nn.ReLU(), *([nn.Dropout(0.5)] if dropout else []), nn.Linear(1000, 10))


# --- Parameter and registration -------------------------------------------------------------
def test_parameter_requires_grad_shares_data_and_says_parameter():
    t = tg.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert isinstance(p, tg.Tensor) and p.requires_grad and p.is_leaf
    assert np.shares_memory(p.data, t.data)  # like torch.nn.Parameter(tensor)
    assert repr(p).startswith("Parameter(") and "requires_grad=True" in repr(p)
    assert nn.Parameter(np.zeros(3)).dtype == np.float64
    assert nn.Parameter([1.0]).dtype == tg.get_default_dtype()
    with pytest.raises(TypeError):
        nn.Parameter(np.arange(3))  # integer tensors cannot require grad
    # results of operations on Parameters are plain Tensors
    assert type(p * 2) is tg.Tensor


def test_named_parameters_are_dotted_recursive_and_unique():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                     "head.weight", "head.bias"]  # the tied layer's parameters appear once
    assert len(list(m.parameters())) == 7
    assert [n for n, _ in m.named_buffers()] == ["steps"]
    assert [n for n, _ in m.named_children()] == ["body", "head"]
    assert [type(c).__name__ for c in m.children()] == ["Sequential", "Linear"]
    assert [type(x).__name__ for x in m.modules()] == ["TwoLayer", "Sequential", "Linear", "Tanh", "Linear",
                                                       "Linear"]
    assert m.num_parameters() == 3 * 4 + 4 + 4 * 4 + 4 + 4 * 2 + 2 + 1
    assert [n for n, _ in m.body.named_parameters(recurse=True)][:1] == ["0.weight"]
    assert list(m.named_parameters(recurse=False)) == [("scale", m.scale)]


def test_setattr_registers_replaces_and_rejects():
    m = nn.Module()
    m.w = nn.Parameter(tg.zeros(2))
    m.sub = nn.Linear(2, 2)
    m.plain = 3
    assert dict(m.named_parameters()).keys() == {"w", "sub.weight", "sub.bias"}
    with pytest.raises(TypeError, match="Parameter"):
        m.w = tg.zeros(2)  # a plain tensor must not silently replace a parameter
    m.w = None
    assert "w" not in dict(m.named_parameters())
    m.sub = nn.Identity()  # replacing a submodule drops the old one's parameters
    assert list(m.named_parameters()) == []
    m.register_buffer("b", tg.ones(2))
    with pytest.raises(TypeError, match="buffer"):
        m.b = 5
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", tg.ones(1))
    del m.sub
    assert not hasattr(m, "sub")
    with pytest.raises(AttributeError, match="no attribute"):
        m.missing  # noqa: B018

    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tg.zeros(1))  # no super().__init__()

    with pytest.raises(AttributeError, match=r"super\(\).__init__"):
        Forgetful()


def test_train_eval_propagate_recursively():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m[1].train()
    assert not m.training and m[1].training and m[1][0].training and m[1][1].training
    m.train()
    assert all(x.training for x in m.modules())


def test_zero_grad_sets_grads_to_none():
    m = TwoLayer()
    m(tg.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_sequential_and_module_list_containers():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    x = tg.randn(4, 2)
    assert_close(seq(x).data, c(b(a(x))).data)
    with pytest.raises(IndexError):
        seq[3]  # noqa: B018
    with pytest.raises(TypeError):
        nn.Sequential(a, "relu")
    named = nn.Sequential(OrderedDict(first=a, second=c))
    assert [n for n, _ in named.named_parameters()] == ["first.weight", "first.bias", "second.weight",
                                                        "second.bias"]
    ml = nn.ModuleList([a, b])
    ml.append(c)
    assert len(ml) == 3 and ml[2] is c and list(ml) == [a, b, c]
    assert len(list(ml.parameters())) == 4
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "ReLU", "Linear"]
    with pytest.raises(TypeError):
        ml.append(3)


def test_repr_is_nested_like_pytorch():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(8, 2)))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=8, out_features=2, bias=True)\n"
        "  )\n"
        ")")


# --- state dict ------------------------------------------------------------------------------
def test_state_dict_holds_copies_in_pytorch_order():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    sd = m.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked"]
    assert all(isinstance(v, tg.Tensor) and not v.requires_grad for v in sd.values())  # as in PyTorch
    assert sd["1.num_batches_tracked"].dtype == np.int64 and sd["1.num_batches_tracked"].shape == ()
    sd["0.weight"][...] = 123.0
    assert not (m[0].weight.data == 123.0).any()


def test_load_state_dict_round_trip_is_in_place():
    tg.manual_seed(1)
    source = TwoLayer()
    tg.manual_seed(2)
    target = TwoLayer()
    params_before = list(target.parameters())
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert all(a is b for a, b in zip(params_before, target.parameters()))  # same objects, new values
    x = tg.randn(4, 3)
    assert_close(target(x).data, source(x).data, rtol=0, atol=0)
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


@settings(max_examples=10)
@given(st.integers(1, 6), st.integers(1, 6), st.booleans())
def test_state_dict_round_trip_any_linear_shape(n_in, n_out, bias):
    a, b = nn.Linear(n_in, n_out, bias=bias), nn.Linear(n_in, n_out, bias=bias)
    b.load_state_dict(a.state_dict())
    for x, y in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(x.data, y.data)


def test_load_state_dict_strict_errors_name_the_keys():
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    sd = m.state_dict()
    del sd["1.bias"]
    sd["2.weight"] = np.zeros((1, 1), np.float32)
    with pytest.raises(RuntimeError, match=r"missing keys: '1\.bias'") as info:
        m.load_state_dict(sd)
    assert "unexpected keys: '2.weight'" in str(info.value)
    before = m[0].weight.numpy(force=True).copy()
    sd["0.weight"] = sd["0.weight"] + 1
    result = m.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["1.bias"] and result.unexpected_keys == ["2.weight"]
    assert_close(m[0].weight.data, before + 1)

    bad_shape = m.state_dict()
    bad_shape["0.weight"] = np.zeros((2, 3), np.float32)
    with pytest.raises(RuntimeError, match=r"'0\.weight': shape \(2, 3\) in the state dict, \(3, 2\)"):
        m.load_state_dict(bad_shape, strict=False)
    bad_dtype = m.state_dict()
    bad_dtype["0.bias"] = bad_dtype["0.bias"].astype(np.float64)
    bad_dtype["1.bias"] = bad_dtype["1.bias"] + 5
    with pytest.raises(RuntimeError, match=r"'0\.bias': dtype float64 in the state dict, float32"):
        m.load_state_dict(bad_dtype)
    assert not (m[1].bias.data > 4).any()  # nothing was copied from a rejected state dict


def test_to_dtype_converts_in_place_and_keeps_objects():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    params = list(m.parameters())
    version = params[0]._version
    m(tg.randn(4, 2)).sum().backward()
    assert m.double() is m
    assert all(p is q for p, q in zip(params, m.parameters()))
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in m.parameters())
    assert m[1].running_mean.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.int64
    assert params[0]._version > version  # graphs that saved the old weights cannot backward any more
    assert m(tg.randn(4, 2, dtype="float64")).dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.to(dtype="float64")
    assert m[0].weight.dtype == np.float64
    with pytest.raises(TypeError):
        m.to(dtype="int64")


# --- default initialisation ----------------------------------------------------------------
def test_cifar_network_parameter_counts():
    assert cifar_net().num_parameters() == 1_191_170
    assert cifar_net(conv_bias=False).num_parameters() == 1_191_010
    weights = [p.numel() for n, p in cifar_net().named_parameters() if n.endswith("weight")]
    assert weights == [2_400, 51_200, 102_400, 1_024_000, 10_000]
    x = tg.randn(2, 3, 32, 32)
    assert cifar_net(batch_norm=True, dropout=True)(x).shape == (2, 10)


def test_default_init_ranges_follow_pytorch():
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) gives U(+-1/sqrt(fan_in))
    for p in (lin.weight, lin.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.99 * bound
    assert abs(lin.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound
    conv = nn.Conv2d(8, 16, (3, 5), groups=2)
    fan_in = 8 // 2 * 3 * 5
    assert conv.weight.shape == (16, 4, 3, 5)
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(fan_in)
    assert np.abs(conv.bias.data).max() <= 1 / math.sqrt(fan_in)
    bn = nn.BatchNorm2d(5)
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    np.testing.assert_array_equal(bn.running_var.data, 1)
    assert nn.PReLU(3).weight.data.tolist() == [0.25] * 3


def test_init_is_reproducible_and_follows_default_dtype():
    tg.manual_seed(7)
    a = cifar_net().state_dict()
    tg.manual_seed(7)
    b = cifar_net().state_dict()
    tg.manual_seed(8)
    c = cifar_net().state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])
    tg.set_default_dtype("float64")  # restored by the conftest fixture
    assert nn.Linear(2, 2).weight.dtype == np.float64
    assert nn.Linear(2, 2, dtype="float32").weight.dtype == np.float32


def test_init_functions_formulas():
    w = tg.zeros(200, 300)
    init.xavier_uniform_(w, gain=2.0)
    bound = 2.0 * math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    init.xavier_normal_(w)
    assert abs(w.data.std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2) / math.sqrt(200)) < 0.02 * math.sqrt(2 / 200)
    init.kaiming_uniform_(w, a=0, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    assert init.constant_(w, 0.5) is w and bool((w.data == 0.5).all())
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()
    init.uniform_(w, -0.1, 0.2)
    assert w.data.min() >= -0.1 and w.data.max() < 0.2
    init.normal_(w, 3.0, 0.5)
    assert abs(w.data.mean() - 3) < 0.01 and abs(w.data.std() - 0.5) < 0.01
    assert init._calculate_fan_in_and_fan_out(tg.zeros(16, 4, 3, 5)) == (60, 240)
    with pytest.raises(ValueError):
        init._calculate_fan_in_and_fan_out(tg.zeros(5))
    with pytest.raises(ValueError):
        init.kaiming_uniform_(w, mode="fan_sideways")
    with pytest.raises(ValueError):
        init.calculate_gain("swish")
    p = nn.Parameter(tg.zeros(3, 3))
    init.normal_(p)  # parameters are initialised under no_grad, no error
    assert p.requires_grad and p.data.any()


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param),
                                                                rel=1e-15)
    for shape in [(3, 4), (16, 4, 3, 5), (2, 3, 4)]:
        assert init._calculate_fan_in_and_fan_out(tg.zeros(*shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))


# --- layer behaviour -------------------------------------------------------------------------
def test_dropout_is_identity_in_eval_and_drops_about_p_in_train():
    drop = nn.Dropout(0.3)
    x = tg.ones(200_000)
    drop.eval()
    assert drop(x) is x
    drop.train()
    y = drop(x).data
    assert abs((y == 0).mean() - 0.3) < 0.005
    assert_close(y[y != 0], np.float32(1 / 0.7), rtol=0, atol=0)  # inverted dropout keeps the expectation
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_batchnorm_running_statistics_follow_the_formula():
    bn = nn.BatchNorm2d(3, momentum=0.2, dtype="float64")
    mean, var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rand(4, 3, 5, 5, seed=step) * (step + 1) + step
        bn(tg.tensor(x))
        n = 4 * 5 * 5
        batch_mean = x.mean(axis=(0, 2, 3))
        batch_var_unbiased = x.var(axis=(0, 2, 3)) * n / (n - 1)
        mean = 0.8 * mean + 0.2 * batch_mean
        var = 0.8 * var + 0.2 * batch_var_unbiased
    assert_close(bn.running_mean.data, mean)
    assert_close(bn.running_var.data, var)
    assert bn.num_batches_tracked.item() == 3
    bn.eval()
    x = rand(2, 3, 5, 5, seed=9)
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    assert_close(bn(tg.tensor(x)).data, expected)
    assert bn.num_batches_tracked.item() == 3  # evaluation does not count batches


def test_batchnorm_cumulative_average_when_momentum_is_none():
    bn = nn.BatchNorm1d(2, momentum=None, dtype="float64")
    xs = [rand(6, 2, seed=s) + s for s in range(4)]
    for x in xs:
        bn(tg.tensor(x))
    assert_close(bn.running_mean.data, np.mean([x.mean(axis=0) for x in xs], axis=0))


def test_batchnorm_input_ranks():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input \(N, C, H, W\)"):
        nn.BatchNorm2d(3)(tg.randn(4, 3, 5))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        nn.BatchNorm1d(3)(tg.randn(4, 3, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(3)(tg.randn(4, 2))
    assert nn.BatchNorm1d(3)(tg.randn(4, 3)).shape == (4, 3)
    assert nn.BatchNorm1d(3)(tg.randn(4, 3, 7)).shape == (4, 3, 7)


def test_flatten_identity_and_loss_reduction_validation():
    x = tg.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Identity()(x) is x
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="average")
    with pytest.raises(ValueError, match="same"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")


@settings(max_examples=15)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6), st.booleans())
def test_linear_matches_numpy(batch, n_in, n_out, bias):
    lin = nn.Linear(n_in, n_out, bias=bias, dtype="float64")
    x = rand(batch, n_in, seed=batch)
    expected = x @ lin.weight.data.T + (lin.bias.data if bias else 0)
    assert_close(lin(tg.tensor(x)).data, expected)


def test_module_used_as_documented_in_the_course_circles_model():
    """Step 3 of the circles lesson: nn layers replace the hand-written forward, same gradients."""
    model = nn.Sequential(nn.Linear(2, 4, dtype="float64"), nn.Tanh(), nn.Linear(4, 2, dtype="float64"))
    x, y = rand(10, 2), np.arange(10) % 2
    loss = nn.CrossEntropyLoss()(model(tg.tensor(x)), tg.tensor(y))
    loss.backward()
    w_h, b_h, w_y, b_y = (p.detach().numpy() for p in model.parameters())
    h = np.tanh(x @ w_h.T + b_h)
    logits = h @ w_y.T + b_y
    y_hat = np.exp(logits - logits.max(1, keepdims=True))
    y_hat /= y_hat.sum(1, keepdims=True)
    d_logits = (y_hat - np.eye(2)[y]) / 10  # dL/dy~ = y^ - y, averaged over the batch
    d_h = (d_logits @ w_y) * (1 - h ** 2)
    assert_close(model[2].weight.grad.data, d_logits.T @ h)
    assert_close(model[0].weight.grad.data, d_h.T @ x)


# --- torch.nn as an oracle -------------------------------------------------------------------
def _torch_twin(torch, ours, theirs):
    """Make `theirs` (a torch module) float64 with exactly our weights and buffers."""
    theirs = theirs.double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    return theirs


def check_against_torch(torch, ours, theirs, inputs, targets=(), grad_seed=123):
    """Forward on the same float64 inputs, backward with the same random output gradient, compare
    outputs, input gradients and parameter gradients."""
    xs = [tg.tensor(a.copy(), requires_grad=True) for a in inputs]
    txs = [torch.from_numpy(a.copy()).requires_grad_() for a in inputs]
    out = ours(*xs, *[tg.tensor(t) for t in targets])
    t_out = theirs(*txs, *[torch.from_numpy(t) for t in targets])
    assert_close(out.data, t_out.detach().numpy())
    g = np.random.default_rng(grad_seed).standard_normal(out.shape)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    for x, tx in zip(xs, txs):
        assert_close(x.grad.data, tx.grad.numpy())
    t_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(t_params)
    for name, p in ours.named_parameters():
        assert_close(p.grad.data, t_params[name].grad.numpy())
    t_buffers = dict(theirs.named_buffers())
    assert [n for n, _ in ours.named_buffers()] == list(t_buffers)
    for name, b in ours.named_buffers():
        assert_close(b.data, t_buffers[name].numpy())
    return out


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(backend, bias):
    torch = pytest.importorskip("torch")
    ours = nn.Linear(5, 3, bias=bias, dtype="float64")
    theirs = _torch_twin(torch, ours, torch.nn.Linear(5, 3, bias=bias))
    check_against_torch(torch, ours, theirs, [rand(4, 5)])
    ours.zero_grad()
    theirs.zero_grad()
    check_against_torch(torch, ours, theirs, [rand(2, 4, 5)])  # extra leading dims


CONV_CASES = [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(kernel_size=3, padding=2, dilation=2, groups=2),
    dict(kernel_size=1, groups=4, bias=False),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, padding="same", dilation=1),  # even kernel: uneven padding
    dict(kernel_size=(2, 3), padding="same", dilation=(3, 1)),
    dict(kernel_size=3, padding="valid"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")  # torch's own notice
@pytest.mark.parametrize("options", CONV_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_conv2d_matches_torch(backend, options):
    torch = pytest.importorskip("torch")
    ours = nn.Conv2d(4, 8, dtype="float64", **options)
    theirs = _torch_twin(torch, ours, torch.nn.Conv2d(4, 8, **options))
    check_against_torch(torch, ours, theirs, [rand(2, 4, 7, 6)])


@pytest.mark.parametrize("kind, options", [
    ("max", dict(kernel_size=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=(3, 2), stride=(1, 2))),
    ("avg", dict(kernel_size=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg", dict(kernel_size=(2, 3), stride=1, padding=(1, 1), count_include_pad=False)),
])
def test_pooling_matches_torch(backend, kind, options):
    torch = pytest.importorskip("torch")
    ours = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(**options)
    theirs = (torch.nn.MaxPool2d if kind == "max" else torch.nn.AvgPool2d)(**options)
    check_against_torch(torch, ours, theirs, [rand(2, 3, 7, 6)])


@pytest.mark.parametrize("layer, shape, options", [
    ("BatchNorm1d", (8, 3), {}),
    ("BatchNorm1d", (4, 3, 5), dict(momentum=0.3)),
    ("BatchNorm2d", (4, 3, 5, 6), {}),
    ("BatchNorm2d", (4, 3, 5, 6), dict(affine=False)),
    ("BatchNorm2d", (4, 3, 2, 2), dict(momentum=None, eps=1e-3)),
    ("BatchNorm2d", (4, 3, 5, 6), dict(track_running_stats=False)),
])
def test_batchnorm_matches_torch_in_train_and_eval(backend, layer, shape, options):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, layer)(3, dtype="float64", **options)
    theirs = _torch_twin(torch, ours, getattr(torch.nn, layer)(3, **options))
    for step in range(3):  # running statistics after a few training steps
        ours.zero_grad()
        theirs.zero_grad()
        check_against_torch(torch, ours, theirs, [rand(*shape, seed=step) * 2 + 1], grad_seed=step)
    ours.eval()
    theirs.eval()
    ours.zero_grad()
    theirs.zero_grad()
    check_against_torch(torch, ours, theirs, [rand(*shape, seed=10)])
    if options.get("track_running_stats", True):
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 3


@pytest.mark.parametrize("normalized_shape, affine", [(5, True), ((4, 5), True), (5, False)])
def test_layernorm_matches_torch(backend, normalized_shape, affine):
    torch = pytest.importorskip("torch")
    ours = nn.LayerNorm(normalized_shape, elementwise_affine=affine, dtype="float64")
    theirs = _torch_twin(torch, ours, torch.nn.LayerNorm(normalized_shape, elementwise_affine=affine))
    if affine:  # non-trivial affine parameters, the same on both sides
        with tg.no_grad():
            ours.weight.copy_(rand(*ours.weight.shape, seed=1))
            ours.bias.copy_(rand(*ours.bias.shape, seed=2))
        theirs = _torch_twin(torch, ours, theirs)
    check_against_torch(torch, ours, theirs, [rand(3, 4, 5)])


@pytest.mark.parametrize("name, args", [
    ("ReLU", ()), ("LeakyReLU", ()), ("LeakyReLU", (0.2,)), ("Tanh", ()), ("Sigmoid", ()),
    ("Softmax", (1,)), ("Softmax", (-1,)), ("LogSoftmax", (1,)), ("LogSoftmax", (-1,)), ("Flatten", ()),
    ("Identity", ()), ("PReLU", ()), ("PReLU", (3,)),
])
def test_activations_match_torch(name, args):
    torch = pytest.importorskip("torch")
    kwargs = {"dtype": "float64"} if name == "PReLU" else {}
    ours = getattr(nn, name)(*args, **kwargs)
    theirs = _torch_twin(torch, ours, getattr(torch.nn, name)(*args))
    if name == "PReLU":
        with tg.no_grad():
            ours.weight.copy_(np.linspace(-0.5, 0.5, ours.weight.numel()))
        theirs = _torch_twin(torch, ours, theirs)
    x = rand(4, 3, 5)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink at 0
    check_against_torch(torch, ours, theirs, [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_matches_torch(reduction, label_smoothing):
    torch = pytest.importorskip("torch")
    ours = nn.CrossEntropyLoss(label_smoothing=label_smoothing, reduction=reduction)
    theirs = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing, reduction=reduction)
    check_against_torch(torch, ours, theirs, [rand(6, 4) * 3], targets=[np.array([0, 3, 1, 1, 2, 3])])
    probs = np.random.default_rng(1).dirichlet(np.ones(4), size=6)
    check_against_torch(torch, ours, theirs, [rand(6, 4) * 3], targets=[probs])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_mse_bce_losses_match_torch(reduction):
    torch = pytest.importorskip("torch")
    logp = np.log(np.random.default_rng(2).dirichlet(np.ones(5), size=4))
    check_against_torch(torch, nn.NLLLoss(reduction=reduction), torch.nn.NLLLoss(reduction=reduction),
                        [logp], targets=[np.array([4, 0, 2, 2])])
    check_against_torch(torch, nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction),
                        [rand(3, 4)], targets=[rand(3, 4, seed=1)])
    p = np.random.default_rng(3).uniform(0.01, 0.99, (3, 4))
    y = np.random.default_rng(4).uniform(0, 1, (3, 4))
    check_against_torch(torch, nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction),
                        [p], targets=[y])
    logits = rand(3, 4) * 5
    logits[0, :] = [100.0, -100.0, 100.0, -100.0]  # must stay finite in forward and backward
    y_binary = (np.arange(12).reshape(3, 4) % 3 == 0).astype(np.float64)
    out = check_against_torch(torch, nn.BCEWithLogitsLoss(reduction=reduction),
                              torch.nn.BCEWithLogitsLoss(reduction=reduction), [logits], targets=[y_binary])
    assert np.all(np.isfinite(out.data))


SATURATED_P = np.array([0.0, 1.0, 0.0, 1.0, 0.3])
SATURATED_Y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_bce_at_saturated_probabilities_matches_torch():
    """Probabilities of exactly 0 and 1 (a saturated sigmoid): PyTorch clamps the logs at -100."""
    torch = pytest.importorskip("torch")
    ours = F.binary_cross_entropy(tg.tensor(SATURATED_P), tg.tensor(SATURATED_Y), reduction="none")
    theirs = torch.nn.functional.binary_cross_entropy(torch.from_numpy(SATURATED_P), torch.from_numpy(SATURATED_Y),
                                                      reduction="none")
    assert_close(ours.data, theirs.numpy())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_bce_gradient_at_saturated_probabilities_matches_torch():
    torch = pytest.importorskip("torch")
    p = tg.tensor(SATURATED_P, requires_grad=True)
    F.binary_cross_entropy(p, tg.tensor(SATURATED_Y), reduction="sum").backward()
    tp = torch.from_numpy(SATURATED_P.copy()).requires_grad_()
    torch.nn.functional.binary_cross_entropy(tp, torch.from_numpy(SATURATED_Y), reduction="sum").backward()
    # torch's 1e-12 floor is stored as a float32 (9.99999996e-13): 4e-9 relative difference at saturation.
    assert_close(p.grad.data, tp.grad.numpy(), rtol=1e-8)
