"""PyTorch code runs unchanged: Tensor's names, keywords, return types and results follow torch's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tinygrad_course as tg


def _t(a, **kw):
    return tg.tensor(np.asarray(a), **kw)


# --- == and != ------------------------------------------------------------------------------
def test_eq_and_ne_are_elementwise_bool_tensors_as_torch():
    a, b = [1.0, 2.0, 3.0], [1.0, 0.0, 3.0]
    eq, ne = _t(a) == _t(b), _t(a) != _t(b)
    assert isinstance(eq, tg.Tensor) and eq.dtype == bool and not eq.requires_grad
    np.testing.assert_array_equal(eq.numpy(), (torch.tensor(a) == torch.tensor(b)).numpy())
    np.testing.assert_array_equal(ne.numpy(), (torch.tensor(a) != torch.tensor(b)).numpy())
    np.testing.assert_array_equal((_t(a) == 2.0).numpy(), [False, True, False])
    np.testing.assert_array_equal((2.0 == _t(a)).numpy(), [False, True, False])  # reflected
    assert ((_t(a, requires_grad=True) == _t(a)).requires_grad) is False


def test_eq_with_none_or_a_string_is_false_as_torch():
    x = _t([1.0, 2.0])
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert (x == "a") is False


def test_tensors_hash_by_identity_in_sets_dicts_and_lists():
    a, b = _t([1.0, 2.0]), _t([1.0, 2.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[b] == 2
    assert a in [a, b]  # membership tries identity before ==, as with torch tensors
    with pytest.raises(ValueError, match="ambiguous"):
        _t([5.0, 6.0]) in [a]  # an equality with several elements has no truth value, as in PyTorch


# --- dim= and keepdim= ------------------------------------------------------------------------
X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)

DIM_CALLS = [
    ("sum", {"dim": 1, "keepdim": True}), ("mean", {"dim": (0, 2)}), ("var", {"dim": 2, "keepdim": True}),
    ("std", {"dim": -1}), ("amax", {"dim": 1}), ("amin", {"dim": (0, 1), "keepdim": True}),
    ("argmax", {"dim": 1}), ("argmin", {"dim": 2, "keepdim": True}), ("logsumexp", {"dim": 1}),
    ("softmax", {"dim": 0}), ("log_softmax", {"dim": 1}), ("unsqueeze", {"dim": 1}),
]


@pytest.mark.parametrize("name,kwargs", DIM_CALLS, ids=[c[0] for c in DIM_CALLS])
def test_reductions_take_dim_and_keepdim_as_torch(name, kwargs):
    mine = getattr(tg.tensor(X), name)(**kwargs).numpy()
    ref = getattr(torch.tensor(X), name)(**kwargs).numpy()
    assert mine.shape == ref.shape
    np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6)


def test_squeeze_cat_stack_and_functional_softmax_take_dim():
    from tinygrad_course.nn import functional as F
    x = tg.zeros(2, 1, 3)
    assert x.squeeze(dim=1).shape == (2, 3)
    assert tg.cat([x, x], dim=1).shape == (2, 2, 3) and tg.stack([x, x], dim=-1).shape == (2, 1, 3, 2)
    np.testing.assert_allclose(F.softmax(tg.tensor(X), dim=1).numpy(),
                               torch.softmax(torch.tensor(X), dim=1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(F.log_softmax(tg.tensor(X), dim=2).numpy(),
                               torch.log_softmax(torch.tensor(X), dim=2).numpy(), rtol=1e-5, atol=1e-6)


def test_both_spellings_at_once_is_a_type_error_naming_them():
    with pytest.raises(TypeError, match="axis=.*dim="):
        tg.tensor(X).sum(axis=0, dim=1)
    with pytest.raises(TypeError, match="keepdims=.*keepdim="):
        tg.tensor(X).mean(keepdims=True, keepdim=True)


def test_var_and_std_take_unbiased_as_torch():
    for unbiased in (True, False):
        np.testing.assert_allclose(tg.tensor(X).var(1, unbiased=unbiased).numpy(),
                                   torch.tensor(X).var(1, unbiased=unbiased).numpy(), rtol=1e-5)
        np.testing.assert_allclose(tg.tensor(X).std(unbiased=unbiased).numpy(),
                                   torch.tensor(X).std(unbiased=unbiased).numpy(), rtol=1e-5)


# --- max(dim) / min(dim) -------------------------------------------------------------------
@pytest.mark.parametrize("fn", ["max", "min"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_and_min_with_dim_return_values_and_indices(fn, keepdim):
    mine, ref = getattr(tg.tensor(X), fn)(1, keepdim=keepdim), getattr(torch.tensor(X), fn)(1, keepdim=keepdim)
    values, indices = mine  # unpackable, as torch's return_types
    assert mine.values is values and mine.indices is indices
    np.testing.assert_array_equal(values.numpy(), ref.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), ref.indices.numpy())
    assert indices.dtype == np.int64
    whole = getattr(tg.tensor(X), fn)()  # without dim: the value alone
    assert isinstance(whole, tg.Tensor) and whole.item() == getattr(torch.tensor(X), fn)().item()


def test_max_over_dim_is_differentiable_through_values():
    x = tg.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    x.max(dim=2).values.sum().backward()
    torch.max(tx, dim=2).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_min_and_max_of_a_bool_tensor():
    b = [[True, False], [True, True]]
    assert tg.tensor(b).min().item() is False and tg.tensor(b).max().item() is True
    np.testing.assert_array_equal(tg.tensor(b).min(1).values.numpy(), torch.tensor(b).min(1).values.numpy())


def test_zero_dim_tensors_take_dim_0_and_minus_1_as_torch():
    for dim in (0, -1):
        for name in ("sum", "mean", "amax", "softmax", "argmax"):
            mine, ref = getattr(tg.tensor(1.5), name)(dim), getattr(torch.tensor(1.5), name)(dim)
            assert mine.shape == tuple(ref.shape) and mine.item() == ref.item()
        assert tg.tensor(1.5).sum(dim, keepdim=True).shape == ()
        values, indices = tg.tensor(1.5).max(dim)
        assert values.item() == 1.5 and indices.item() == 0
    with pytest.raises(IndexError):
        tg.tensor(1.5).sum(1)
