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
