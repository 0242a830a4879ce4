"""PyTorch's functional API, ported by changing the import: pooling options (ceil_mode, dilation,
return_indices, divisor_override), adaptive pooling, conv1d, more activations and weighted BCE, each
with its module, against torch.nn.functional.

Same inputs on both sides in float64 (rtol 1e-10, atol 1e-12), float32 where the dtype is what is
tested; tests that run kernels take the `backend` fixture (every CPU backend).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import nn
from tinygrad_course.nn import functional as F

RTOL, ATOL = 1e-10, 1e-12


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def run_both(torch, ours, theirs, *arrays, grad_seed=1, **compare):
    """ours(*tensors) and theirs(*torch tensors) on the same float arrays: the outputs (the first of a
    tuple) and the gradients of every input for one random output gradient must agree. Returns both outputs."""
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
    out, t_out = ours(*xs), theirs(*ts)
    first, t_first = (out[0], t_out[0]) if isinstance(out, tuple) else (out, t_out)
    assert first.shape == tuple(t_first.shape) and first.dtype == np.dtype(str(t_first.dtype).split(".")[1])
    assert_close(first.detach().numpy(), t_first.detach().numpy(), **compare)
    g = rand(*first.shape, seed=grad_seed).astype(arrays[0].dtype)
    first.backward(tg.tensor(g))
    t_first.backward(torch.from_numpy(g))
    for x, t in zip(xs, ts):
        assert_close(x.grad.numpy(), t.grad.numpy(), **compare)
    return out, t_out


# --- max_pool2d / avg_pool2d with PyTorch's options ----------------------------------------------------
MAX_POOL_CASES = [  # kernel_size, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, True), (3, 2, 1, 1, True), ((3, 2), (2, 3), (1, 0), 1, True), (2, 3, 1, 1, True),
    (3, 2, 1, 2, False), (2, 1, 0, (2, 3), False), (3, 2, 1, (1, 2), True), (2, (1, 2), 1, 3, True),
]


@pytest.mark.parametrize("size", [(7, 6), (8, 5), (4, 9)])
@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", MAX_POOL_CASES)
def test_max_pool2d_options_and_indices_match_torch(backend, size, kernel, stride, padding, dilation, ceil_mode):
    torch = pytest.importorskip("torch")
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    x = rand(2, 3, *size)
    (out, idx), (t_out, t_idx) = run_both(torch, lambda t: F.max_pool2d(t, return_indices=True, **kw),
                                          lambda t: torch.nn.functional.max_pool2d(t, return_indices=True, **kw), x)
    assert idx.dtype == np.int64 and not idx.requires_grad
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())  # flat h * W + w in each (N, C) plane
    run_both(torch, lambda t: F.max_pool2d(t, **kw), lambda t: torch.nn.functional.max_pool2d(t, **kw), x)


AVG_POOL_CASES = [  # kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    (2, None, 0, True, True, None), (3, 2, 1, True, True, None), (3, 2, 1, True, False, None),
    ((3, 2), (2, 3), (1, 1), True, True, None), ((3, 2), (2, 3), (1, 1), True, False, None),
    (2, 3, 1, True, True, None), (3, 2, 1, False, True, 5), (3, 2, 1, True, False, 4), (2, 2, 0, False, True, 1),
]


@pytest.mark.parametrize("size", [(7, 6), (8, 5), (4, 9)])
@pytest.mark.parametrize("kernel, stride, padding, ceil_mode, count_include_pad, divisor_override", AVG_POOL_CASES)
def test_avg_pool2d_options_match_torch(backend, size, kernel, stride, padding, ceil_mode, count_include_pad,
                                        divisor_override):
    torch = pytest.importorskip("torch")
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad, divisor_override=divisor_override)
    run_both(torch, lambda t: F.avg_pool2d(t, **kw), lambda t: torch.nn.functional.avg_pool2d(t, **kw),
             rand(2, 3, *size))


def test_ceil_mode_drops_a_last_window_that_would_start_in_the_right_padding():
    torch = pytest.importorskip("torch")
    # size 4, kernel 2, stride 3, padding 1: rounding up gives 3 windows, but the third would start at
    # padded position 6, past the input and its left padding (4 + 1), so it is dropped
    assert F.pool_output_size(4, 2, 3, 1, ceil_mode=True) == 2
    assert F.pool_output_size(5, 2, 2, 0) == 2 and F.pool_output_size(5, 2, 2, 0, ceil_mode=True) == 3
    x = rand(1, 1, 4, 5)
    for pool in ("max_pool2d", "avg_pool2d"):
        out = getattr(F, pool)(tg.tensor(x), 2, 3, 1, ceil_mode=True)
        t_out = getattr(torch.nn.functional, pool)(torch.from_numpy(x), 2, 3, 1, ceil_mode=True)
        assert out.shape == tuple(t_out.shape) == (1, 1, 2, 2)
        assert_close(out.numpy(), t_out.numpy())


def test_pool_layers_take_torchs_positional_arguments(backend):
    torch = pytest.importorskip("torch")
    x = rand(2, 3, 7, 8)
    for name, args in [("MaxPool2d", (3, 2, 1, 2, False, True)), ("MaxPool2d", ((2, 3), 2, (1, 1), 1, True, True)),
                       ("AvgPool2d", (3, 2, 1, True, False, None)), ("AvgPool2d", (3, 2, 1, True, True, 7))]:
        ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
        out, t_out = run_both(torch, ours, theirs, x)
        if name == "MaxPool2d" and args[4]:  # return_indices
            np.testing.assert_array_equal(out[1].numpy(), t_out[1].numpy())
    assert repr(nn.MaxPool2d(3, dilation=2)) == \
        "MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=2, ceil_mode=False)"


def test_pool1d_functional_and_layers_match_torch(backend):
    torch = pytest.importorskip("torch")
    x = rand(2, 3, 10)
    for k, s, p, d, ceil in [(2, None, 0, 1, False), (3, 2, 1, 1, True), (2, 3, 1, 1, True), (3, 1, 1, 2, True)]:
        (out, idx), (_, t_idx) = run_both(
            torch, lambda t: F.max_pool1d(t, k, s, p, d, ceil, True),
            lambda t: torch.nn.functional.max_pool1d(t, k, s, p, d, ceil, True), x)
        np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
        ours, theirs = nn.MaxPool1d(k, s, p, d, False, ceil), torch.nn.MaxPool1d(k, s, p, d, False, ceil)
        assert repr(ours) == repr(theirs)
        run_both(torch, ours, theirs, x)
        for count_include_pad in (True, False):
            args = (k, s, p, ceil, count_include_pad)
            run_both(torch, lambda t: F.avg_pool1d(t, *args), lambda t: torch.nn.functional.avg_pool1d(t, *args), x)
            run_both(torch, nn.AvgPool1d(*args), torch.nn.AvgPool1d(*args), x)
    out, t_out = nn.MaxPool1d(3, 2, return_indices=True)(tg.tensor(x)), torch.nn.MaxPool1d(3, 2, return_indices=True)(
        torch.from_numpy(x))
    np.testing.assert_array_equal(out[1].numpy(), t_out[1].numpy())


def test_pooling_takes_unbatched_input_and_integers():
    torch = pytest.importorskip("torch")
    x = rand(3, 6, 5)
    out, idx = F.max_pool2d(tg.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    assert_close(out.numpy(), t_out.numpy())
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    assert_close(F.avg_pool2d(tg.tensor(x), 2, ceil_mode=True).numpy(),
                 torch.nn.functional.avg_pool2d(torch.from_numpy(x), 2, ceil_mode=True).numpy())
    assert_close(F.max_pool1d(tg.tensor(x[0]), 2).numpy(), torch.nn.functional.max_pool1d(torch.from_numpy(x[0]), 2))
    ints = np.arange(30).reshape(1, 1, 5, 6)
    out, idx = F.max_pool2d(tg.tensor(ints), 2, ceil_mode=True, return_indices=True)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), [[[[7, 9, 11], [19, 21, 23], [25, 27, 29]]]])
    np.testing.assert_array_equal(idx.numpy(), out.numpy())  # arange: each value is its own index


def test_pooling_arguments_are_checked_naming_them():
    x = tg.tensor(rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="padding .* half the kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="padding .* half the kernel"):
        F.avg_pool2d(x, 3, padding=2)
    F.max_pool2d(x, 2, padding=2, dilation=3)  # half the dilated kernel (4) is allowed, as in torch
    with pytest.raises(ValueError, match="dilation"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        F.max_pool2d(x, 3, dilation=2)
    with pytest.raises(ValueError, match="divisor_override must be a positive int"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"expected input \(N, C, L\)"):
        F.max_pool1d(tg.tensor(rand(1, 1, 4, 4)), 2)


# --- adaptive pooling ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(7, 6), (5, 9), (6, 6), (1, 3)])
@pytest.mark.parametrize("output_size", [1, 2, (3, None), (None, 4), (5, 4)])
def test_adaptive_pooling_functions_match_torch(backend, size, output_size):
    torch = pytest.importorskip("torch")
    x = rand(2, 3, *size)
    run_both(torch, lambda t: F.adaptive_avg_pool2d(t, output_size),
             lambda t: torch.nn.functional.adaptive_avg_pool2d(t, output_size), x)
    (out, idx), (_, t_idx) = run_both(
        torch, lambda t: F.adaptive_max_pool2d(t, output_size, return_indices=True),
        lambda t: torch.nn.functional.adaptive_max_pool2d(t, output_size, return_indices=True), x)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    run_both(torch, nn.AdaptiveMaxPool2d(output_size, True), torch.nn.AdaptiveMaxPool2d(output_size, True), x[0])


def test_adaptive_pooling_checks_output_size():
    for bad in [0, (2,), (2, -1), 1.5, True]:
        with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size"):
            F.adaptive_avg_pool2d(tg.tensor(rand(1, 1, 4, 4)), bad)
    with pytest.raises(ValueError, match=r"adaptive_max_pool2d: expected input \(N, C, H, W\)"):
        F.adaptive_max_pool2d(tg.tensor(rand(4, 4)), 2)
    assert repr(nn.AdaptiveMaxPool2d(2)) == "AdaptiveMaxPool2d(output_size=2)"


# --- conv1d, and conv2d's string padding --------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note that it copies the input, as we do
@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1), (1, "same", 1, 2), (3, "valid", 2, 1), (2, 2, 3, 2),
])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_conv1d_matches_torch(backend, stride, padding, dilation, groups, k):
    torch = pytest.importorskip("torch")
    x, w, b = rand(2, 4, 11), rand(6, 4 // groups, k, seed=1), rand(6, seed=2)
    args = (stride, padding, dilation, groups)
    tconv1d = torch.nn.functional.conv1d
    run_both(torch, lambda x, w, b: F.conv1d(x, w, b, *args), lambda x, w, b: tconv1d(x, w, b, *args), x, w, b)
    run_both(torch, lambda x, w: F.conv1d(x, w, None, *args), lambda x, w: tconv1d(x, w, None, *args),
             x[0], w)  # unbatched (C, L)


def test_conv1d_layer_calls_the_function_and_conv2d_takes_string_padding(backend):
    torch = pytest.importorskip("torch")
    layer = nn.Conv1d(4, 6, 4, padding="same", dilation=2, groups=2, dtype="float64")
    x = tg.tensor(rand(2, 4, 9))
    assert_close(layer(x).detach().numpy(),
                 F.conv1d(x, layer.weight, layer.bias, 1, "same", 2, 2).detach().numpy())
    for padding, dilation in [("same", 1), ("same", (2, 1)), ("valid", 1)]:
        args = (None, 1, padding, dilation)
        run_both(torch, lambda x, w: F.conv2d(x, w, *args), lambda x, w: torch.nn.functional.conv2d(x, w, *args),
                 rand(1, 2, 6, 7), rand(3, 2, 2, 3, seed=1))
    with pytest.raises(ValueError, match="'same' is only supported with stride 1"):
        F.conv1d(x, layer.weight, None, 2, "same")
    with pytest.raises(ValueError, match="'same' or 'valid'"):
        F.conv2d(tg.tensor(rand(1, 1, 3, 3)), tg.tensor(rand(1, 1, 2, 2)), padding="full")
    with pytest.raises(ValueError, match=r"conv1d: expected input \(N, C, L\)"):
        F.conv1d(tg.tensor(rand(1, 1, 3, 3)), layer.weight)


# --- activations ---------------------------------------------------------------------------------------
X = np.concatenate([np.linspace(-25, 25, 102), [-3.0, 3.0, 0.0, 0.5, -0.5, 0.3, 1.0, -1.0, 1e-3, -1e-3]]).reshape(-1, 2)

ACTIVATIONS = [  # function, its arguments, module, its arguments
    ("mish", (), "Mish", ()), ("hardswish", (), "Hardswish", ()), ("hardsigmoid", (), "Hardsigmoid", ()),
    ("selu", (), "SELU", ()), ("celu", (), "CELU", ()), ("celu", (0.7,), "CELU", (0.7,)),
    ("softsign", (), "Softsign", ()), ("tanhshrink", (), "Tanhshrink", ()),
    ("threshold", (0.3, -2.0), "Threshold", (0.3, -2.0)), ("hardshrink", (), "Hardshrink", ()),
    ("hardshrink", (1.0,), "Hardshrink", (1.0,)), ("softshrink", (), "Softshrink", ()),
    ("softshrink", (0.3,), "Softshrink", (0.3,)), ("glu", (), "GLU", ()), ("glu", (0,), "GLU", (0,)),
]
# torch computes these gradients with a float32 constant (1/6, 1/alpha) even in float64
_TORCH_FLOAT32_CONSTANT = {"hardsigmoid", "celu"}


@pytest.mark.parametrize("name, args, module, module_args", ACTIVATIONS)
def test_activations_match_torch(name, args, module, module_args):
    torch = pytest.importorskip("torch")
    grad_tol = dict(rtol=1e-6, atol=1e-12) if name in _TORCH_FLOAT32_CONSTANT else {}
    xs, ts = tg.tensor(X, requires_grad=True), torch.from_numpy(X.copy()).requires_grad_()
    out, t_out = getattr(F, name)(xs, *args), getattr(torch.nn.functional, name)(ts, *args)
    assert_close(out.detach().numpy(), t_out.detach().numpy())
    g = rand(*out.shape, seed=3)
    out.backward(tg.tensor(g))
    t_out.backward(torch.from_numpy(g))
    assert_close(xs.grad.numpy(), ts.grad.numpy(), **grad_tol)
    x32 = tg.tensor(X.astype(np.float32), requires_grad=True)
    out32 = getattr(F, name)(x32, *args)
    out32.sum().backward()
    assert out32.dtype == x32.grad.dtype == np.float32
    np.testing.assert_allclose(out32.detach().numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-5)
    ours, theirs = getattr(nn, module)(*module_args), getattr(torch.nn, module)(*module_args)
    assert repr(ours) == repr(theirs)
    assert_close(ours(tg.tensor(X)).numpy(), theirs(torch.from_numpy(X)).numpy())


def test_activation_arguments_are_checked():
    x = tg.tensor(rand(3, 5))
    with pytest.raises(ValueError, match=r"glu: dim -1 of input shape \(3, 5\) .* even size"):
        F.glu(x)
    with pytest.raises(ValueError, match="glu: dim 2"):
        F.glu(x, dim=2)
    with pytest.raises(ValueError, match="lambd must be >= 0"):
        F.softshrink(x, -0.1)
    with pytest.raises(ValueError, match="alpha must not be 0"):
        F.celu(x, 0.0)
    assert {"mish", "hardswish", "selu", "glu", "max_pool1d", "adaptive_max_pool2d", "conv1d"} <= set(F.__all__)
    assert {"Mish", "SELU", "GLU", "Threshold", "Softshrink"} <= set(nn.__all__)


# --- binary cross-entropy with weight and pos_weight ----------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight_shape, pos_weight_shape", [(None, None), ((4, 1), None), (None, (3,)),
                                                            ((3,), (3,)), ((4, 3), (1,))])
def test_bce_weight_and_pos_weight_match_torch(backend, reduction, weight_shape, pos_weight_shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rand(4, 3) * 3, rng.uniform(size=(4, 3))
    x[0] = [100.0, -100.0, 0.0]  # finite at |logit| = 100; at 0 the gradient is that of the smooth formula
    weight = None if weight_shape is None else rng.uniform(0.1, 2.0, weight_shape)
    pos_weight = None if pos_weight_shape is None else rng.uniform(0.3, 3.0, pos_weight_shape)

    def ours(x, y):
        return F.binary_cross_entropy_with_logits(x, y, None if weight is None else tg.tensor(weight), reduction,
                                                  None if pos_weight is None else tg.tensor(pos_weight))

    def theirs(x, y):
        return torch.nn.functional.binary_cross_entropy_with_logits(
            x, y, None if weight is None else torch.from_numpy(weight), reduction=reduction,
            pos_weight=None if pos_weight is None else torch.from_numpy(pos_weight))

    out, _ = run_both(torch, ours, theirs, x, y)
    assert np.isfinite(out.detach().numpy()).all()
    p = 1 / (1 + np.exp(-rand(4, 3, seed=5)))  # probabilities away from 0 and 1
    w = None if weight is None else tg.tensor(weight)
    run_both(torch, lambda p, y: F.binary_cross_entropy(p, y, w, reduction=reduction),
             lambda p, y: torch.nn.functional.binary_cross_entropy(
                 p, y, None if weight is None else torch.from_numpy(weight), reduction=reduction), p, y)


def test_bce_modules_hold_weight_and_pos_weight_as_buffers():
    torch = pytest.importorskip("torch")
    weight, pos_weight, x, y = np.array([[0.5], [2.0]]), np.array([3.0, 0.5, 1.0]), rand(2, 3), rand(2, 3, seed=1) > 0
    y = y.astype(np.float64)
    ours = nn.BCEWithLogitsLoss(tg.tensor(weight), reduction="sum", pos_weight=tg.tensor(pos_weight))
    theirs = torch.nn.BCEWithLogitsLoss(torch.from_numpy(weight), reduction="sum",
                                        pos_weight=torch.from_numpy(pos_weight))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "pos_weight"]
    run_both(torch, ours, theirs, x, y)
    p = 1 / (1 + np.exp(-x))
    ours, theirs = nn.BCELoss(tg.tensor(weight)), torch.nn.BCELoss(torch.from_numpy(weight))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    run_both(torch, ours, theirs, p, y)
    with pytest.raises(TypeError, match="pos_weight must be a Tensor"):
        nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0])


def test_bce_arguments_are_checked_naming_the_fix():
    x, y = tg.tensor(rand(2, 3)), tg.tensor(np.full((2, 3), 0.5))
    with pytest.raises(TypeError, match="weight must be a Tensor or None, got str; pass reduction= by keyword"):
        F.binary_cross_entropy_with_logits(x, y, "sum")
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) must broadcast to the input shape \(2, 3\)"):
        F.binary_cross_entropy_with_logits(x, y, pos_weight=tg.tensor(np.ones(2)))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: weight of shape \(3, 2\)"):
        F.binary_cross_entropy(y, y, tg.tensor(np.ones((3, 2))))
    with pytest.raises(TypeError, match="pos_weight must be a Tensor or None, got list"):
        F.binary_cross_entropy_with_logits(x, y, pos_weight=[1.0, 2.0, 3.0])
