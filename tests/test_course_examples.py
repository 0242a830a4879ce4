"""COURSE.md's "worked examples with exact answers" as unit tests (on every backend)."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course.nn import functional as F

IMAGE = [[2, 4, 9, 1, 4], [2, 1, 4, 4, 6], [1, 1, 2, 9, 2], [7, 3, 5, 1, 3], [2, 3, 4, 8, 5]]
KERNEL = [[1, 2, 3], [-4, 7, 4], [2, -5, 1]]
EXPECTED = [[51, 66, 20], [31, 49, 101], [15, 53, -2]]  # one report prints this transposed


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_valid_cross_correlation_of_the_5x5_image(backend, dtype):
    x = tg.tensor(np.array(IMAGE).reshape(1, 1, 5, 5), dtype=dtype)
    w = tg.tensor(np.array(KERNEL).reshape(1, 1, 3, 3), dtype=dtype)
    y = F.conv2d(x, w)
    assert y.shape == (1, 1, 3, 3) and y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y.numpy()[0, 0], EXPECTED)  # small integers: exact in float32 too
    assert not np.array_equal(y.numpy()[0, 0], np.array(EXPECTED).T)  # cross-correlation, not its transpose


def test_the_same_cross_correlation_through_a_batch_of_views(backend):
    # the same example inside a batch, with a channel-last layout permuted to NCHW (non-contiguous)
    img = np.stack([np.array(IMAGE), np.array(IMAGE).T], axis=-1).astype(np.float64)  # (5, 5, 2)
    x = tg.tensor(img[None]).permute(0, 3, 1, 2)  # (1, 2, 5, 5)
    w = tg.tensor(np.array(KERNEL, dtype=np.float64).reshape(1, 1, 3, 3))
    y = F.conv2d(x, tg.concat([w, w]), groups=2)
    np.testing.assert_array_equal(y.numpy()[0, 0], EXPECTED)


def _descend(x0, lr, steps):
    """Gradient descent on f(x) = 3x^2 + 5x + 4 with autograd and an explicit update."""
    x = tg.tensor(x0, dtype="float64", requires_grad=True)
    iterates = []
    for _ in range(steps):
        f = 3 * x ** 2 + 5 * x + 4
        f.backward()
        assert x.grad.item() == pytest.approx(6 * x.item() + 5, abs=1e-12)  # f'(x) = 6x + 5
        with tg.no_grad():  # the explicit update: x <- x - lr * f'(x), in place so x stays a leaf
            x.sub_(lr * x.grad)
        x.grad = None
        iterates.append(x.item())
    return iterates


def test_gradient_descent_on_the_quadratic(backend):
    its = _descend(1.0, 0.01, 3)
    np.testing.assert_allclose(its, [0.89, 0.7866, 0.689404], rtol=0, atol=1e-9)
    final = _descend(1.0, 0.01, 1000)[-1]
    assert final == pytest.approx(-5 / 6, abs=1e-9)  # the minimum


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_outputs_are_positive_and_sum_to_one(backend, dtype):
    y = tg.tensor(np.random.default_rng(0).standard_normal((4, 7)) * 30, dtype=dtype)
    for axis in (0, 1, -1):
        s = F.softmax(y, axis).numpy()
        assert (s > 0).all() or dtype == "float32"  # float32 may underflow to 0 at logit gaps ~100
        assert (s >= 0).all()
        np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-6 if dtype == "float32" else 1e-14)


def test_log_softmax_nll_equals_cross_entropy_formula_and_its_gradient(backend):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 4))
    labels = np.array([3, 0, 1, 1, 2])
    y = np.eye(4)[labels]  # one-hot targets
    yt = tg.tensor(logits, requires_grad=True)
    loss = F.nll_loss(F.log_softmax(yt, -1), tg.tensor(labels), reduction="none")
    # -sum(y * y~) + logsumexp(y~), per sample
    formula = -(y * logits).sum(axis=1) + np.log(np.exp(logits).sum(axis=1))
    np.testing.assert_allclose(loss.detach().numpy(), formula, rtol=1e-12)
    loss.sum().backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(yt.grad.numpy(), softmax - y, rtol=1e-12, atol=1e-15)
    # the fused cross_entropy gives the same values and gradient
    yt2 = tg.tensor(logits, requires_grad=True)
    ce = F.cross_entropy(yt2, tg.tensor(labels), reduction="none")
    np.testing.assert_allclose(ce.detach().numpy(), formula, rtol=1e-12)
    ce.sum().backward()
    np.testing.assert_allclose(yt2.grad.numpy(), softmax - y, rtol=1e-12, atol=1e-15)


def test_binary_cross_entropy_formula_and_the_logits_form(backend):
    rng = np.random.default_rng(2)
    logits = rng.uniform(-4, 4, 12)
    p = 1 / (1 + np.exp(-logits))
    y = (rng.uniform(size=12) > 0.5).astype(np.float64)
    formula = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    bce = F.binary_cross_entropy(tg.tensor(p), tg.tensor(y))
    bce_logits = F.binary_cross_entropy_with_logits(tg.tensor(logits), tg.tensor(y))
    assert bce.item() == pytest.approx(formula, rel=1e-12)
    assert bce_logits.item() == pytest.approx(formula, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_is_finite_and_correct_at_plus_minus_100(backend, dtype):
    x = tg.tensor([100.0, -100.0, 100.0, -100.0], dtype=dtype, requires_grad=True)
    y = tg.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    # right answers: ~0 where the logit agrees with the label, 100 (+ log(1 + e^-100)) where it does not
    np.testing.assert_allclose(loss.detach().numpy(), [0.0, 0.0, 100.0, 100.0], atol=1e-30, rtol=1e-7)
    assert 0 < loss.detach().numpy()[0] < 1e-40 or dtype == "float32"  # exp(-100) ~ 3.7e-44 is representable in float64
    loss.sum().backward()
    g = x.grad.numpy()
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, [0.0, 0.0, 1.0, -1.0], atol=1e-30)  # sigmoid(x) - y
    # the mean form is finite too, and its gradient is the elementwise one / n
    x.grad = None
    F.binary_cross_entropy_with_logits(x, y).backward()
    np.testing.assert_allclose(x.grad.numpy(), g / 4, atol=1e-30)
