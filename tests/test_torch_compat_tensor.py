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
