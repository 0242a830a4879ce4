"""PyTorch code runs unchanged: Tensor's names, keywords, return types and results follow torch's."""
from __future__ import annotations

import warnings

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


# --- size(), view_as, type, norm, log1p/log10, conversions -----------------------------------------
def test_size_is_a_method_as_torch():
    x, tx = tg.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert x.size() == tuple(tx.size()) and x.size(0) == tx.size(0) and x.size(-1) == tx.size(-1)
    assert x.numel() == x.nelement() == tx.nelement()
    with pytest.raises(IndexError, match="dim 3"):
        x.size(3)
    with pytest.raises(IndexError):
        tg.tensor(1.0).size(0)  # a 0-d tensor has no dimension 0 to measure, as in torch


def test_view_as_and_type_as_torch():
    x, y = tg.arange(6), tg.zeros(2, 3)
    assert x.view_as(y).shape == (2, 3)
    for data, dtype in (([1.0], None), ([1.0], "float64"), ([1], None), ([True], None)):
        mine, ref = tg.tensor(data, dtype=dtype), torch.tensor(data, dtype=getattr(torch, dtype or "float32")
                                                                if isinstance(data[0], float) else None)
        assert mine.type() == ref.type()
    assert tg.tensor([1.5]).type("torch.DoubleTensor").dtype == np.float64
    assert tg.tensor([1.5]).type(tg.int64).dtype == np.int64


@pytest.mark.parametrize("p", [2, "fro", 1, 3, float("inf")])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), ((0, 2), True)])
def test_norm_and_its_gradient_match_torch(p, dim, keepdim):
    x, tx = tg.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    if dim is None:
        out, tout = x.norm(p), tx.norm(p)
    else:
        out, tout = x.norm(p, dim=dim, keepdim=keepdim), tx.norm(p, dim=dim, keepdim=keepdim)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_the_2_norm_of_zeros_has_a_zero_gradient_as_torch():
    x = tg.zeros(3, requires_grad=True)
    x.norm().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="p must be"):
        x.norm(p="nuc")


@pytest.mark.parametrize("fn", ["log1p", "log10"])
def test_log1p_and_log10_with_gradients_match_torch(fn):
    a = np.abs(X) + 1e-3
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, tout = getattr(x, fn)(), getattr(tx, fn)()
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


def test_one_element_tensors_convert_to_python_numbers_and_format():
    assert int(tg.tensor([3])) == 3 and float(tg.tensor(2.5)) == 2.5 and int(tg.tensor(2.7)) == int(torch.tensor(2.7))
    assert list(range(tg.tensor(3))) == [0, 1, 2] and ["a", "b"][tg.tensor(1)] == "b"  # __index__
    acc = tg.tensor(0.98765)
    assert f"{acc:.2f}" == f"{torch.tensor(0.98765):.2f}" == "0.99" and f"{tg.tensor([7]):d}" == "7"
    assert f"{tg.tensor([1.0, 2.0])}" == str(tg.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="one element"):
        f"{tg.tensor([1.0, 2.0]):.2f}"
    with pytest.raises(TypeError, match="integer"):
        range(tg.tensor(3.0))
    with pytest.raises(ValueError, match="one element"):
        float(tg.tensor([1.0, 2.0]))


# --- results that used to differ from PyTorch's -----------------------------------------------------
def test_cross_entropy_with_probabilities_on_spatial_input_takes_classes_on_axis_1():
    from tinygrad_course.nn import functional as F
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4, 4)).astype(np.float32), rng.random((2, 3, 4, 4)).astype(np.float32)
    for kw in ({}, {"reduction": "none"}, {"label_smoothing": 0.2, "reduction": "sum"}):
        x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        out, ref = F.cross_entropy(x, tg.tensor(b), **kw), torch.nn.functional.cross_entropy(tx, torch.tensor(b), **kw)
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5)
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    c = rng.standard_normal(3).astype(np.float32)  # one unbatched (C,) sample
    np.testing.assert_allclose(F.cross_entropy(tg.tensor(c), tg.tensor(b[0, :, 0, 0])).item(),
                               torch.nn.functional.cross_entropy(torch.tensor(c), torch.tensor(b[0, :, 0, 0])).item(),
                               rtol=1e-5)


def test_cross_entropy_with_class_indices_on_spatial_input_as_torch():
    from tinygrad_course.nn import functional as F
    rng = np.random.default_rng(1)
    a, t = rng.standard_normal((2, 3, 4, 5)).astype(np.float32), rng.integers(0, 3, (2, 4, 5))
    for kw in ({}, {"reduction": "none"}, {"label_smoothing": 0.1}):
        x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        out, ref = F.cross_entropy(x, tg.tensor(t), **kw), torch.nn.functional.cross_entropy(tx, torch.tensor(t), **kw)
        assert out.shape == tuple(ref.shape)
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5)
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(2, 4, 5\)"):
        F.cross_entropy(tg.tensor(a), tg.tensor(t[:, :2]))


INDICES = [(0, slice(None), [0, 1]), ([0, 1], slice(None), 0), (1, Ellipsis, [0, 2]), (slice(None), 0, None, [1, 2]),
           (0, slice(None), [[0], [1]], [1, 2]), (1, [0, 2], slice(1, 3), [4, 0]), (0, slice(None), [True, False, True, True])]


@pytest.mark.parametrize("index", INDICES, ids=[str(i) for i in range(len(INDICES))])
def test_integers_mixed_with_index_arrays_select_first_as_torch(index):
    a = np.arange(120.0).reshape(2, 3, 4, 5)
    tindex = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, ref = x[index], tx[tindex]
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    weights = np.random.default_rng(2).standard_normal(ref.shape)
    (out * tg.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    y, ty = tg.zeros(2, 3, 4, 5, dtype="float64"), torch.zeros(2, 3, 4, 5, dtype=torch.float64)
    y[index], ty[tindex] = tg.tensor(weights), torch.tensor(weights)  # assignment takes the same shape
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


@pytest.mark.parametrize("base,exponent", [(0.0, 0.0), (0.0, -1.0), (0.0, 2.0), (-2.0, 0.5), (-2.0, 2.0), (0.0, 0.5),
                                           (3.0, 0.0), (2.0, -1.5)])
def test_pow_gradients_at_the_edges_match_torch(base, exponent):
    a, b = tg.tensor(base, requires_grad=True), tg.tensor(exponent, requires_grad=True)
    ta, tb = torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)
    with np.errstate(all="ignore"):
        (a ** b).backward()
    (ta ** tb).backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())


def test_integer_division_gives_the_default_float_dtype_as_torch():
    i, ti = tg.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    for mine, ref in ((i / i, ti / ti), (i / 2, ti / 2), (2 / i, 2 / ti), (i / 2.5, ti / 2.5),
                      (tg.tensor([True]) / tg.tensor([True]), torch.tensor([True]) / torch.tensor([True]))):
        assert str(mine.dtype) == str(ref.dtype).replace("torch.", "")
        np.testing.assert_allclose(mine.numpy(), ref.numpy())
    tg.set_default_dtype("float64")
    try:
        assert (i / i).dtype == np.float64
    finally:
        tg.set_default_dtype("float32")


def test_full_infers_its_dtype_from_the_value_as_torch():
    for value in (4, 4.0, True):
        assert str(tg.full((2, 2), value).dtype) == str(torch.full((2, 2), value).dtype).replace("torch.", "")
    assert tg.full((2,), 4, dtype="float32").dtype == np.float32


def test_max_pool2d_of_integers_with_padding_as_torch():
    from tinygrad_course.nn import functional as F
    x = np.arange(-8, 17).reshape(1, 1, 5, 5)
    out = F.max_pool2d(tg.tensor(x), 3, stride=2, padding=1)
    ref = torch.nn.functional.max_pool2d(torch.tensor(x), 3, stride=2, padding=1)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


# --- in-place operators ---------------------------------------------------------------------------
def test_manual_sgd_step_with_minus_equals_updates_the_parameter_itself():
    w, tw = tg.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    params = [w]
    for x, tx in ((w, tw),):
        (x * tg.tensor([1.0, 2.0, 3.0])).sum().backward()
        (tx * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
        with tg.no_grad():
            x -= 0.1 * x.grad
            x *= 2.0
            x /= 4.0
            x += 1.0
        with torch.no_grad():
            tx -= 0.1 * tx.grad
            tx *= 2.0
            tx /= 4.0
            tx += 1.0
    assert params[0] is w and w.requires_grad  # the same object, changed in place
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)


def test_in_place_operators_that_autograd_must_record():
    w = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        w += 1.0  # a leaf that requires grad, as torch refuses
    x, tx = tg.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    y, ty = x * 3.0, tx * 3.0
    y += x  # a non-leaf: recorded (out of place here)
    ty += tx
    acc, tacc = tg.zeros(2), torch.zeros(2)
    acc += y  # a constant accumulating a differentiable value joins the graph
    tacc += ty
    acc.sum().backward()
    tacc.sum().backward()
    np.testing.assert_allclose(acc.detach().numpy(), tacc.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_in_place_arithmetic_keeps_an_integer_dtype_or_refuses_as_torch():
    i = tg.tensor([1, 2])
    alias = i
    i += 1
    i *= 3
    assert alias is i and i.tolist() == [6, 9] and i.dtype == np.int64
    ti = torch.tensor([6, 9])
    for name, arg in (("__itruediv__", 2), ("add_", 0.5), ("mul_", [0.5, 1.0])):
        with pytest.raises(TypeError, match="int64"):
            getattr(i, name)(np.array(arg) if isinstance(arg, list) else arg)
        with pytest.raises(RuntimeError):  # torch refuses too
            getattr(ti, name)(torch.tensor(arg) if isinstance(arg, list) else arg)
    assert i.tolist() == [6, 9]


# --- more of PyTorch's Tensor methods ---------------------------------------------------------------
UNARY_DOMAIN = {"asin": 0.9, "acos": 0.9, "rsqrt": None, "log2": None}  # scale into (-1, 1), or |x| + 0.1


@pytest.mark.parametrize("name", ["sin", "cos", "tan", "sinh", "cosh", "asin", "acos", "atan", "square", "reciprocal",
                                  "rsqrt", "expm1", "exp2", "log2", "sign", "floor", "ceil", "round", "trunc"])
def test_elementwise_methods_and_their_gradients_match_torch(name):
    a = np.random.default_rng(3).standard_normal((3, 4)) * 2
    a = np.tanh(a) * UNARY_DOMAIN[name] if UNARY_DOMAIN.get(name) else (np.abs(a) + 0.1 if name in UNARY_DOMAIN else a)
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, ref = getattr(x, name)(), getattr(tx, name)()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    i, ti = tg.tensor([1, -2, 3]), torch.tensor([1, -2, 3])  # integers: float results, or kept as torch keeps them
    assert str(getattr(i, name)().dtype) == str(getattr(ti, name)().dtype).replace("torch.", "")


def test_maximum_minimum_share_the_gradient_at_ties_as_torch():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([[2.0], [2.0]])
    for fn in ("maximum", "minimum"):
        x, y = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
        tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        out, ref = getattr(x, fn)(y), getattr(tx, fn)(ty)
        np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
        np.testing.assert_array_equal(y.grad.numpy(), ty.grad.numpy())


def test_bool_results_and_predicates_as_torch():
    a = np.array([[1.0, np.nan, np.inf], [0.0, -np.inf, 2.0]])
    x, tx = tg.tensor(a), torch.tensor(a)
    for name in ("isnan", "isinf", "isfinite", "logical_not"):
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(tx, name)().numpy())
    b = np.array([[True, False], [True, True]])
    for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}):
        for name in ("all", "any"):
            np.testing.assert_array_equal(getattr(tg.tensor(b), name)(**kw).numpy(), getattr(torch.tensor(b), name)(**kw).numpy())
    assert (x < 1).equal(x.lt(1)) and x.gt(0).equal(x > 0) and x.le(0).equal(x <= 0) and x.ge(1).equal(x >= 1)
    assert tg.tensor([1.0, 2.0]).equal(tg.tensor([1.0, 2.0])) and not tg.tensor([1.0]).equal(tg.tensor([1.0, 1.0]))
    assert tg.tensor([1.0, 2.0]).allclose(tg.tensor([1.0, 2.0 + 1e-9])) and x.is_floating_point()
    assert not tg.tensor([1]).is_floating_point()
    np.testing.assert_array_equal(tg.tensor([1.0, 2.0]).isclose(tg.tensor([1.0, 2.1])).numpy(), [True, False])


def _grad_pair(a, fn_mine, fn_torch):
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, ref = fn_mine(x), fn_torch(tx)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    w = np.random.default_rng(4).standard_normal(ref.shape)
    (out * tg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


A = np.random.default_rng(5).permutation(24).reshape(2, 3, 4).astype(np.float64)  # no ties
SHAPE_CALLS = {
    "cumsum": (lambda t: t.cumsum(dim=1)),
    "cumsum_last": (lambda t: t.cumsum(-1)),
    "flip": (lambda t: t.flip(0, 2)),
    "flip_list": (lambda t: t.flip([1])),
    "repeat": (lambda t: t.repeat(2, 1, 1, 3)),
    "t": (lambda t: t[0].t()),
    "swapaxes": (lambda t: t.swapaxes(0, 2)),
    "masked_fill": (lambda t: t.masked_fill(t > 10, -1.0)),
    "sort_values": (lambda t: t.sort(dim=1, descending=True).values),
    "topk_values": (lambda t: t.topk(2, dim=2).values),
    "topk_smallest": (lambda t: t.topk(3, dim=1, largest=False)[0]),
    "split": (lambda t: t.split([1, 3], dim=2)[1] * 2),
    "chunk": (lambda t: t.chunk(2, dim=1)[1]),
    "contiguous_type_as": (lambda t: t.contiguous().type_as(t)),
}


@pytest.mark.parametrize("name", list(SHAPE_CALLS))
def test_shape_and_selection_methods_with_gradients_match_torch(name):
    fn = SHAPE_CALLS[name]
    _grad_pair(A, fn, fn)


def test_gather_and_its_gradient_match_torch():
    index = np.array([[[0, 0, 2, 1]], [[2, 2, 2, 0]]])  # smaller than the input off dim 1, with repeats
    _grad_pair(A, lambda t: t.gather(1, tg.tensor(index)), lambda t: t.gather(1, torch.tensor(index)))
    with pytest.raises(IndexError, match="dim 1"):
        tg.tensor(A).gather(1, tg.tensor(index + 3))


def test_sort_argsort_and_topk_indices_match_torch_without_ties():
    x, tx = tg.tensor(A), torch.tensor(A)
    for dim in (0, 1, -1):
        for descending in (False, True):
            mine, ref = x.sort(dim, descending), tx.sort(dim, descending=descending)
            np.testing.assert_array_equal(mine.indices.numpy(), ref.indices.numpy())
            np.testing.assert_array_equal(x.argsort(dim, descending).numpy(), tx.argsort(dim, descending=descending).numpy())
        np.testing.assert_array_equal(x.topk(2, dim).indices.numpy(), tx.topk(2, dim).indices.numpy())
    assert tg.tensor([True, False, True]).cumsum(0).tolist() == torch.tensor([True, False, True]).cumsum(0).tolist()


# --- to(), in-place random fills, new_* ------------------------------------------------------------
def test_to_takes_a_dtype_a_device_or_a_tensor_as_torch():
    x = tg.ones(2)
    assert x.to(tg.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.to(np.int64).dtype == np.int64 and x.to("cpu", tg.float64).dtype == np.float64
    assert x.to(tg.tensor([1])).dtype == np.int64 and x.to("cpu") is x
    assert x.to("cpu", copy=True) is not x and x.to(device="cpu", non_blocking=True) is x
    assert not x.is_cuda
    with pytest.raises(ValueError, match="unknown device"):
        x.to("gpu")


def test_normal_and_uniform_fill_in_place_from_the_seeded_generator():
    w = tg.zeros(2000)
    tg.manual_seed(0)
    assert w.normal_(1.0, 0.5) is w
    first = w.numpy().copy()
    assert abs(first.mean() - 1.0) < 0.05 and abs(first.std() - 0.5) < 0.05
    tg.manual_seed(0)
    np.testing.assert_array_equal(w.normal_(1.0, 0.5).numpy(), first)
    w.uniform_(-2.0, -1.0)
    assert w.numpy().min() >= -2.0 and w.numpy().max() < -1.0 and w.dtype == np.float32
    p = tg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        p.normal_()  # as torch: under no_grad() only
    with tg.no_grad():
        p.uniform_()
    with pytest.raises(TypeError, match="int64"):
        tg.tensor([1, 2]).normal_()


def test_new_methods_and_expand_as_take_this_tensors_dtype_and_device():
    x = tg.zeros(2, 3, dtype="float64")
    assert x.new_zeros(4).dtype == np.float64 and x.new_ones((2, 2)).shape == (2, 2)
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0] and x.new_full((2,), 7).dtype == np.float64
    assert x.new_tensor([1, 2]).dtype == np.float64 and x.new_zeros(2, dtype="int64").dtype == np.int64
    assert tg.tensor([1.0, 2.0, 3.0]).expand_as(x).shape == (2, 3)


def test_arithmetic_with_the_values_indices_pair_is_refused_as_torch():
    x = tg.tensor(X)
    for op in (lambda: x.max(0) + x.mean(0), lambda: x.mean(0) + x.max(0), lambda: x.mean(0) * [x, x]):
        with pytest.raises(TypeError, match="values"):
            op()
    np.testing.assert_allclose((x.max(0).values + x.mean(0)).numpy(), (X.max(0) + X.mean(0)), rtol=1e-6)


B = np.random.default_rng(6).permutation(12).reshape(3, 4).astype(np.float64) - 5.5  # no ties, no zeros
MORE_CALLS = {
    "neg": (lambda t: t.neg()),
    "ravel": (lambda t: t.ravel()),
    "movedim": (lambda t: t.movedim(0, -1)),
    "movedim_pairs": (lambda t: t.movedim((0, 1), (2, 0))),
    "narrow": (lambda t: t.narrow(2, 1, 2)),
    "narrow_negative": (lambda t: t.narrow(1, -2, 2)),
    "unbind": (lambda t: t.unbind(1)[2]),
    "roll": (lambda t: t.roll(1, 2)),
    "roll_dims": (lambda t: t.roll((1, -2), (0, 2))),
    "roll_flat": (lambda t: t.roll(5)),
    "tile": (lambda t: t.tile(2, 1)),
    "repeat_interleave": (lambda t: t.repeat_interleave(2, dim=1)),
    "repeat_interleave_flat": (lambda t: t.repeat_interleave(3)),
    "tril": (lambda t: t.tril()),
    "triu_offset": (lambda t: t.triu(1)),
    "nan_to_num": (lambda t: (t / (t - 7.0).clamp(min=0)).nan_to_num()),
}


@pytest.mark.parametrize("name", list(MORE_CALLS))
def test_more_methods_with_gradients_match_torch(name):
    fn = MORE_CALLS[name]
    with np.errstate(all="ignore"):
        _grad_pair(A, fn, fn)


def test_index_select_median_trace_dot_outer_match_torch():
    _grad_pair(A, lambda t: t.index_select(1, tg.tensor([2, 0, 2])), lambda t: t.index_select(1, torch.tensor([2, 0, 2])))
    _grad_pair(B, lambda t: t.trace(), lambda t: t.trace())
    _grad_pair(B[0], lambda t: t.dot(t * 2), lambda t: t.dot(t * 2))
    _grad_pair(B[0], lambda t: t.outer(t[:3]), lambda t: t.outer(t[:3]))
    _grad_pair(B, lambda t: t.median(), lambda t: t.median())
    _grad_pair(B, lambda t: t.median(dim=1).values, lambda t: t.median(dim=1).values)
    mine, ref = tg.tensor(B).median(0, keepdim=True), torch.tensor(B).median(0, keepdim=True)
    np.testing.assert_array_equal(mine.indices.numpy(), ref.indices.numpy())
    np.testing.assert_array_equal(mine.values.numpy(), ref.values.numpy())


@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod", "true_divide"])
def test_division_variants_match_torch_for_floats_and_integers(name):
    a, b = np.array([7.5, -7.5, 3.0, -2.25]), np.array([2.0, 2.0, -2.5, 0.5])
    if name == "floor_divide":  # not differentiable in torch either
        out = tg.tensor(a, requires_grad=True).floor_divide(tg.tensor(b))
        assert not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), torch.tensor(a).floor_divide(torch.tensor(b)).numpy())
    else:
        _grad_pair(a, lambda t: getattr(t, name)(tg.tensor(b)), lambda t: getattr(t, name)(torch.tensor(b)))
    i, j = np.array([7, -7, 3, -3]), np.array([2, 2, -2, 5])
    for other, tother in ((tg.tensor(j), torch.tensor(j)), (3, 3), (2.5, 2.5)):
        mine, ref = getattr(tg.tensor(i), name)(other), getattr(torch.tensor(i), name)(tother)
        assert str(mine.dtype) == str(ref.dtype).replace("torch.", ""), (other, mine.dtype, ref.dtype)
        np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-6)


def test_logical_nonzero_and_count_nonzero_match_torch():
    a, b = np.array([[True, False], [True, True]]), np.array([[False, False], [True, False]])
    for fn in ("logical_and", "logical_or", "logical_xor"):
        np.testing.assert_array_equal(getattr(tg.tensor(a), fn)(tg.tensor(b)).numpy(),
                                      getattr(torch.tensor(a), fn)(torch.tensor(b)).numpy())
    x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    np.testing.assert_array_equal(tg.tensor(x).nonzero().numpy(), torch.tensor(x).nonzero().numpy())
    np.testing.assert_array_equal(tg.tensor(x).argwhere().numpy(), torch.tensor(x).argwhere().numpy())
    for dim in (None, 0, 1):
        np.testing.assert_array_equal(tg.tensor(x).count_nonzero(dim=dim).numpy(),
                                      torch.tensor(x).count_nonzero(dim=dim).numpy())


@pytest.mark.parametrize("k", [0, 1, -2])
def test_diag_both_ways_matches_torch(k):
    _grad_pair(B, lambda t: t.diag(k), lambda t: t.diag(k))
    _grad_pair(B[0], lambda t: t.diag(k), lambda t: t.diag(k))


def test_take_along_dim_and_unique_match_torch():
    idx = np.array([[[0], [2], [1]]])  # broadcasts over dim 0 and dim 2
    _grad_pair(A, lambda t: t.take_along_dim(tg.tensor(idx), dim=1), lambda t: t.take_along_dim(torch.tensor(idx), dim=1))
    flat = np.array([5, 0, 23])
    _grad_pair(A, lambda t: t.take_along_dim(tg.tensor(flat)), lambda t: t.take_along_dim(torch.tensor(flat)))
    x = np.array([[3, 1, 3], [2, 1, 1]])
    mine, ref = tg.tensor(x).unique(return_inverse=True, return_counts=True), \
        torch.tensor(x).unique(return_inverse=True, return_counts=True)
    for m, r in zip(mine, ref):
        np.testing.assert_array_equal(m.numpy(), r.numpy())
    np.testing.assert_array_equal(tg.tensor(x).unique().numpy(), torch.tensor(x).unique().numpy())


# --- cross_entropy / nll_loss: weight= and ignore_index= ---------------------------------------------
CE_CASES = [dict(), dict(weight=True), dict(label_smoothing=0.2), dict(weight=True, label_smoothing=0.3),
            dict(reduction="sum", weight=True), dict(reduction="none", weight=True, label_smoothing=0.1),
            dict(ignore_index=1), dict(ignore_index=2, reduction="none")]


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("case", range(len(CE_CASES)))
def test_class_weights_and_ignored_targets_match_torch(case, loss, spatial):
    from tinygrad_course.nn import functional as F
    kw = dict(CE_CASES[case])
    if loss == "nll_loss" and "label_smoothing" in kw:
        pytest.skip("nll_loss has no label smoothing")
    rng = np.random.default_rng(case)
    shape, tshape = ((3, 4, 2, 2), (3, 2, 2)) if spatial else ((6, 4), (6,))
    a, t, w = rng.standard_normal(shape), rng.integers(0, 4, tshape), rng.random(4)
    t.flat[1] = t.flat[4] = kw.get("ignore_index", -100)  # some ignored samples
    mine_kw, torch_kw = dict(kw), dict(kw)
    if kw.pop("weight", None):
        mine_kw["weight"], torch_kw["weight"] = tg.tensor(w), torch.tensor(w)
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    inp, tinp = (x, tx) if loss == "cross_entropy" else (x.log_softmax(dim=1), tx.log_softmax(dim=1))
    out = getattr(F, loss)(inp, tg.tensor(t), **mine_kw)
    ref = getattr(torch.nn.functional, loss)(tinp, torch.tensor(t), **torch_kw)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_class_weights_with_probability_targets_match_torch():
    from tinygrad_course.nn import functional as F
    rng = np.random.default_rng(9)
    a, p, w = rng.standard_normal((2, 3, 4)), rng.random((2, 3, 4)), rng.random(3)
    out = F.cross_entropy(tg.tensor(a), tg.tensor(p), weight=tg.tensor(w), label_smoothing=0.1)
    ref = torch.nn.functional.cross_entropy(torch.tensor(a), torch.tensor(p), weight=torch.tensor(w), label_smoothing=0.1)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-10)


def test_bad_weights_and_targets_are_named():
    from tinygrad_course.nn import functional as F
    logits = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"weight must be a Tensor of shape \(3,\)"):
        F.cross_entropy(logits, tg.tensor([0, 1]), weight=tg.ones(4))
    with pytest.raises(IndexError, match="target class 5"):
        F.nll_loss(logits, tg.tensor([5, -100]))


Z = np.array([[2.0, 0.0, 3.0, -1.5], [0.0, 0.0, 1.5, 2.0], [1.0, -2.0, 0.5, 3.0]])  # zeros: one, two, none per row
PROD_CALLS = {
    "prod": (lambda t: t.prod()),
    "prod_dim1": (lambda t: t.prod(dim=1)),
    "prod_dim0_keepdim": (lambda t: t.prod(0, keepdim=True)),
    "cumprod_dim1": (lambda t: t.cumprod(dim=1)),
    "cumprod_dim0": (lambda t: t.cumprod(0)),
}


@pytest.mark.parametrize("name", list(PROD_CALLS))
@pytest.mark.parametrize("data", ["zeros", "no_zeros"])
def test_prod_and_cumprod_gradients_are_exact_at_zeros_as_torch(name, data):
    fn = PROD_CALLS[name]
    _grad_pair(Z if data == "zeros" else Z + 3.5, fn, fn)


def test_prod_and_cumprod_of_integers_and_bools_give_int64_as_torch():
    for data in ([[1, 2], [3, 4]], [[True, False], [True, True]]):
        for fn in (lambda t: t.prod(), lambda t: t.prod(1), lambda t: t.cumprod(0)):
            mine, ref = fn(tg.tensor(data)), fn(torch.tensor(data))
            assert mine.dtype == np.int64 and ref.dtype == torch.int64
            np.testing.assert_array_equal(mine.numpy(), ref.numpy())


# --- more of torch.nn.functional ----------------------------------------------------------------------
EDGES = np.array([-800.0, -30.0, -2.0, -1.0, 0.0, 0.5, 1.0, 6.0, 7.0, 30.0, 800.0])
ACTIVATIONS = [("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("elu", {}), ("elu", {"alpha": 0.5}),
               ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 5.0}), ("relu6", {}), ("hardtanh", {}),
               ("hardtanh", {"min_val": -2.0, "max_val": 6.0}), ("logsigmoid", {}), ("softmin", {"dim": 0})]


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=[f"{n}{i}" for i, (n, _) in enumerate(ACTIVATIONS)])
def test_activations_and_their_gradients_match_torch_at_the_edges(name, kw):
    from tinygrad_course.nn import functional as F
    a = EDGES if name not in ("gelu", "softmin") else EDGES[1:-1]  # torch's own gelu/softmin overflow at 800
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, ref = getattr(F, name)(x, **kw), getattr(torch.nn.functional, name)(tx, **kw)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-15)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert np.isfinite(x.grad.numpy()).all()


def test_erf_and_bitwise_operators_match_torch():
    _grad_pair(EDGES[1:-1] / 10, lambda t: t.erf(), lambda t: t.erf())
    a, b = np.array([True, False, True]), np.array([True, True, False])
    for fn in (lambda x, y: x & y, lambda x, y: x | y, lambda x, y: x ^ y, lambda x, y: ~x, lambda x, y: x & True):
        np.testing.assert_array_equal(fn(tg.tensor(a), tg.tensor(b)).numpy(), fn(torch.tensor(a), torch.tensor(b)).numpy())
    i, j = np.array([6, -3, 5]), np.array([3, 5, -1])
    for fn in (lambda x, y: x & y, lambda x, y: x | y, lambda x, y: ~x):
        np.testing.assert_array_equal(fn(tg.tensor(i), tg.tensor(j)).numpy(), fn(torch.tensor(i), torch.tensor(j)).numpy())
    with pytest.raises(TypeError, match="bool or integer"):
        tg.tensor([1.0]) & tg.tensor([1.0])


@pytest.mark.parametrize("name,kw", [("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
                                     ("smooth_l1_loss", {"beta": 0.0, "reduction": "sum"}), ("huber_loss", {"delta": 0.7}),
                                     ("huber_loss", {"reduction": "none"})])
def test_regression_losses_match_torch(name, kw):
    from tinygrad_course.nn import functional as F
    rng = np.random.default_rng(10)
    p, q = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    q[0, 0] = p[0, 0]  # a zero difference: the kink
    _grad_pair(p, lambda t: getattr(F, name)(t, tg.tensor(q), **kw),
               lambda t: getattr(torch.nn.functional, name)(t, torch.tensor(q), **kw))


@pytest.mark.parametrize("kw", [{"reduction": "batchmean"}, {"reduction": "sum"}, {"reduction": "none"},
                                {"reduction": "batchmean", "log_target": True}])
def test_kl_div_matches_torch_with_zero_targets(kw):
    from tinygrad_course.nn import functional as F
    rng = np.random.default_rng(11)
    t = rng.random((4, 5))
    t[0, :2] = 0
    t /= t.sum(1, keepdims=True)
    if kw.get("log_target"):
        t = np.log(t + 1e-3)
    _grad_pair(rng.standard_normal((4, 5)), lambda x: F.kl_div(x.log_softmax(1), tg.tensor(t), **kw),
               lambda x: torch.nn.functional.kl_div(x.log_softmax(1), torch.tensor(t), **kw))


def test_normalize_and_cosine_similarity_match_torch_with_a_zero_row():
    from tinygrad_course.nn import functional as F
    rng = np.random.default_rng(12)
    p, q = np.vstack([rng.standard_normal((3, 4)), np.zeros((1, 4))]), rng.standard_normal((4, 4))
    _grad_pair(p, lambda t: F.normalize(t), lambda t: torch.nn.functional.normalize(t))
    _grad_pair(p, lambda t: F.normalize(t, p=1.0, dim=0), lambda t: torch.nn.functional.normalize(t, p=1.0, dim=0))
    _grad_pair(p, lambda t: F.cosine_similarity(t, tg.tensor(q)), lambda t: torch.nn.functional.cosine_similarity(t, torch.tensor(q)))
    _grad_pair(p, lambda t: F.cosine_similarity(t, tg.tensor(q), dim=0),
               lambda t: torch.nn.functional.cosine_similarity(t, torch.tensor(q), dim=0))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("widths", [(1, 2, 2, 0), (0, 3, 1, 2)])
def test_functional_pad_modes_match_torch(mode, widths):
    from tinygrad_course.nn import functional as F
    a = np.random.default_rng(13).standard_normal((2, 3, 4, 5))
    kw = {"value": 1.5} if mode == "constant" else {}
    _grad_pair(a, lambda t: F.pad(t, widths, mode=mode, **kw), lambda t: torch.nn.functional.pad(t, widths, mode=mode, **kw))


def test_one_hot_infers_classes_and_gives_int64_as_torch():
    from tinygrad_course.nn import functional as F
    labels = np.array([[2, 0], [1, 4]])
    mine, ref = F.one_hot(tg.tensor(labels)), torch.nn.functional.one_hot(torch.tensor(labels))
    assert mine.dtype == np.int64 and mine.shape == tuple(ref.shape)
    np.testing.assert_array_equal(mine.numpy(), ref.numpy())
    assert F.one_hot(tg.tensor([1]), 3, dtype="float32").dtype == np.float32


def test_functional_activations_accept_inplace_as_torch():
    from tinygrad_course.nn import functional as F
    x = tg.tensor([-1.0, 2.0])
    assert F.relu(x, inplace=True).tolist() == [0.0, 2.0] and F.leaky_relu(x, 0.5, inplace=True).tolist() == [-0.5, 2.0]
    assert F.dropout(x, 0.5, training=False, inplace=True).tolist() == [-1.0, 2.0]


def test_floor_division_and_modulo_operators_match_torch():
    for a in (np.array([7, -7, 3, -3]), np.array([7.5, -7.5, 3.0, -2.25])):
        x, tx = tg.tensor(a), torch.tensor(a)
        for fn in (lambda t: t // 2, lambda t: t % 2, lambda t: 9 // t, lambda t: 9 % t, lambda t: t % -4):
            mine, ref = fn(x), fn(tx)
            assert str(mine.dtype) == str(ref.dtype).replace("torch.", "")
            np.testing.assert_allclose(mine.numpy(), ref.numpy())


def test_bool_and_integer_tensors_promote_with_float_tensors_as_torch():
    f, tf = tg.tensor([1.5, 2.5], requires_grad=True), torch.tensor([1.5, 2.5], requires_grad=True)
    for data in ([True, False], [2, 3]):
        for fn in (lambda x, y: x * y, lambda x, y: y * x, lambda x, y: x + y, lambda x, y: x / y, lambda x, y: y ** x):
            with np.errstate(divide="ignore"):  # 1.5 / False is inf, as in torch
                mine, ref = fn(f, tg.tensor(data)), fn(tf, torch.tensor(data))
            assert str(mine.dtype) == str(ref.dtype).replace("torch.", "") and mine.requires_grad
            np.testing.assert_allclose(mine.detach().numpy(), ref.detach().numpy())
    assert (tg.tensor([2]) + tg.tensor([True])).dtype == np.int64
    for a, b in ((f, [True, False]), ([True], [False])):
        with pytest.raises(TypeError, match="bool"):  # torch refuses it too
            (a if isinstance(a, tg.Tensor) else tg.tensor(a)) - tg.tensor(b)
    (f * tg.tensor([True, False])).sum().backward()
    assert f.grad.tolist() == [1.0, 0.0]
    with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
        tg.tensor([1.0]) + tg.tensor([1.0], dtype="float64")  # deliberately refused (see README)


def test_register_hook_sees_and_can_replace_gradients_as_torch():
    seen, tseen = [], []
    x, tx = tg.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    y, ty = x * 3.0, tx * 3.0
    y.register_hook(lambda g: seen.append(g.tolist()))
    ty.register_hook(lambda g: tseen.append(g.tolist()))
    handle = x.register_hook(lambda g: g * 10.0)  # the leaf's gradient is replaced before .grad gets it
    tx.register_hook(lambda g: g * 10.0)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert seen == tseen and x.grad.tolist() == tx.grad.tolist()
    handle.remove()
    x.grad = None
    (x * 1.0).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.zeros(2).register_hook(print)
    z = tg.zeros(2, requires_grad=True)
    z.register_hook(lambda g: tg.zeros(3))
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        (z * 1.0).sum().backward()


def test_iteration_gives_rows_and_a_0d_tensor_refuses_as_torch():
    x = tg.tensor(X, requires_grad=True)
    rows = list(x)
    assert len(rows) == 2 and rows[1].shape == (3, 4) and rows[1].requires_grad
    sum(r.sum() for r in rows).backward()
    assert x.grad.tolist() == np.ones_like(X).tolist()
    for fn in (iter, len):
        with pytest.raises(TypeError, match="0-d"):
            fn(tg.tensor(1.0))
        with pytest.raises(TypeError):
            fn(torch.tensor(1.0))


def test_bool_and_int_conversions_as_torch():
    a = np.array([-1.5, 0.0, 2.7])
    np.testing.assert_array_equal(tg.tensor(a).bool().numpy(), torch.tensor(a).bool().numpy())
    np.testing.assert_array_equal(tg.tensor(a).int().numpy(), torch.tensor(a).int().numpy())
    assert tg.tensor(a).int().dtype == np.int32 and tg.tensor(a).bool().dtype == np.bool_  # int(): int32, as torch


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
                                  "binary_cross_entropy_with_logits", "kl_div"])
def test_losses_refuse_numpy_targets_naming_the_fix(loss):
    """As torch: a loss takes Tensors; a NumPy label array gets a TypeError saying how to wrap it (it failed
    deep inside the target check, or was silently converted)."""
    import numpy as np
    import tinygrad_course as tg
    import tinygrad_course.nn.functional as F
    x = tg.tensor(np.full((3, 2), 0.5, np.float32))
    target = np.array([0, 1, 1]) if loss in ("cross_entropy", "nll_loss") else np.full((3, 2), 0.5, np.float32)
    with pytest.raises(TypeError, match=rf"{loss}: target must be a Tensor, got ndarray; wrap it with "
                                        r"tinygrad_course.tensor"):
        getattr(F, loss)(x, target)
    with pytest.raises(TypeError, match=rf"{loss}: target must be a Tensor, got list"):
        getattr(F, loss)(x, target.tolist())


def test_set_grad_enabled_as_a_call_a_context_and_a_decorator_as_torch():
    import tinygrad_course as tg
    x = tg.ones(2, requires_grad=True)
    tg.set_grad_enabled(False)  # a plain call switches at once
    try:
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    assert tg.is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tg.is_grad_enabled()

    @tg.set_grad_enabled(False)
    def f(t):
        return t * 2
    assert tg.is_grad_enabled()  # decorating switched nothing
    assert not f(x).requires_grad and tg.is_grad_enabled()

    @tg.no_grad()
    def g(t):
        return t * 2
    assert not g(x).requires_grad and tg.is_grad_enabled()


@pytest.mark.parametrize("args, kwargs", [((5,), {}), ((1, 7, 2), {}), ((0,), {"end": 3}), ((), {"end": 4}),
                                          ((0.5, 2.0, 0.5), {}), ((-3, 3), {"step": 2})])
def test_arange_takes_torchs_forms(args, kwargs):
    import numpy as np
    import torch
    import tinygrad_course as tg
    got, want = tg.arange(*args, **kwargs), torch.arange(*args, **kwargs)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")


# --- .data, __array__, numpy(force=) ----------------------------------------------------------
def test_data_is_a_tensor_sharing_storage_without_grad_as_torch():
    w = tg.nn.Parameter(tg.tensor(np.array([1.0, 2.0, 3.0])))
    d = w.data
    assert isinstance(d, tg.Tensor) and not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), w.detach().numpy())
    np.testing.assert_array_equal(w.data.numpy(), [1.0, 2.0, 3.0])   # x.data.numpy()
    values, indices = tg.max(tg.tensor(np.array([[1.0, 5.0], [7.0, 2.0]])).data, 1)  # torch.max(out.data, 1)
    np.testing.assert_array_equal(indices.numpy(), [1, 0])


@pytest.mark.parametrize("lib", ["tg", "torch"])
def test_the_manual_sgd_step_through_data_matches_torch(lib):
    mod = tg if lib == "tg" else torch
    w = mod.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    for _ in range(3):
        loss = (w * w * w).sum()
        loss.backward()
        w.data -= 0.1 * w.grad.data   # the classic update, in place through .data
        w.grad = None
    np.testing.assert_allclose(w.detach().numpy(), _manual_sgd_reference(), rtol=1e-12)


def _manual_sgd_reference():
    w = np.array([0.5, -1.0, 2.0])
    for _ in range(3):
        w = w - 0.1 * 3 * w ** 2
    return w


def test_assigning_data_shares_the_given_tensor_and_may_change_the_shape_as_torch():
    w = tg.nn.Parameter(tg.zeros(3))
    new = tg.ones(2, 2)
    version = w._version
    w.data = new
    assert w.shape == (2, 2) and w.requires_grad and w._version > version
    new.add_(1.0)  # shared, as after torch's w.data = new
    np.testing.assert_array_equal(w.detach().numpy(), np.full((2, 2), 2.0))
    with pytest.raises(ValueError, match="dtype float32.*to\\(float32\\)"):
        w.data = tg.zeros(3, dtype=tg.float64)


def test_a_write_through_data_of_a_saved_tensor_is_refused_until_backward():
    w = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (w * w).sum()  # Mul saved w
    with pytest.raises(RuntimeError, match="read-only"):
        w.data.mul_(2.0)
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])  # the gradient of the unchanged w
    w.data.mul_(2.0)  # the graph is freed: allowed again
    np.testing.assert_array_equal(w.detach().numpy(), [2.0, 4.0])


def test_numpy_protocol_follows_numpys_rules():
    x = _t([1.0, 2.0])
    assert isinstance(np.asarray(x), np.ndarray) and np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.shares_memory(np.asarray(x), x.numpy()) and not np.shares_memory(np.array(x, copy=True), x.numpy())
    np.testing.assert_array_equal(np.exp(x), np.exp([1.0, 2.0]))  # _t keeps the array's float64
    assert isinstance(np.float64(2.0) * x, tg.Tensor) and isinstance(np.ones(2) + x, tg.Tensor)  # ours, not NumPy's
    w = _t([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(w)
    assert w.numpy(force=True).tolist() == [1.0]  # torch's numpy(force=True)
    assert abs(_t([-2.0, 3.0])).tolist() == [2.0, 3.0]


def test_in_place_ops_on_a_zero_dim_result_work_as_torch():
    correct = tg.tensor(0) + 0  # 0-d result of an op with a Python scalar
    for pred, y in [([1, 2, 3], [1, 0, 3]), ([0, 0], [0, 0])]:
        correct += (tg.tensor(pred) == tg.tensor(y)).sum()
    assert correct.item() == 4 and correct.shape == ()


# --- integer dtypes -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["int32", "int16", "int8", "uint8", "int64"])
def test_integer_dtypes_promote_as_torch(name):
    ours_dtype, torch_dtype = getattr(tg, name), getattr(torch, name)
    a, b = np.array([250, 3, 7]), np.array([9, 4, 2])
    x, tx = tg.tensor(a, dtype=ours_dtype), torch.tensor(a, dtype=torch_dtype)
    cases = [(lambda u, v: u + 10), (lambda u, v: u * 2), (lambda u, v: u + v), (lambda u, v: u / 2),
             (lambda u, v: u // 3), (lambda u, v: u + 0.5), (lambda u, v: u.sum()), (lambda u, v: u.float() * 1.5)]
    for case in cases:
        ours = case(x, tg.tensor(b))   # b: int64, as torch.tensor(b)
        theirs = case(tx, torch.tensor(b))
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), case
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_integer_dtype_names_methods_and_indexing_as_torch():
    assert tg.int is tg.int32 and tg.short is tg.int16
    x = tg.tensor([[1, 2], [3, 4]], dtype=tg.int32)   # makemore's index tensors
    table = tg.randn(5, 3)
    np.testing.assert_array_equal(table[x].numpy(), table.numpy()[x.numpy()])
    assert tg.ones(2).int().dtype == tg.int32 and tg.ones(2).byte().dtype == tg.uint8
    assert tg.ones(2).short().dtype == tg.int16 and tg.ones(2).char().dtype == tg.int8
    assert tg.ones(1).int().type() == torch.ones(1).int().type() == "torch.IntTensor"
    assert tg.from_numpy(np.arange(3, dtype=np.uint8)).dtype == tg.uint8  # kept, as torch.from_numpy
    assert (tg.tensor([1], dtype=tg.uint8) + tg.tensor([1], dtype=tg.int8)).dtype == tg.int16  # as torch
    with pytest.raises(TypeError, match="unsupported dtype float16"):
        tg.ones(2).astype(np.float16)
    with pytest.raises(TypeError, match="unsupported dtype"):
        tg.tensor([1], dtype=np.uint32)


# --- devices and seeds ----------------------------------------------------------------------------
def test_a_tensors_device_is_a_device_object_as_torch():
    x = tg.ones(2)
    for t in (x, x + 1, x.sum(), tg.nn.Linear(2, 2).weight, x.to("cpu"), x.detach()):
        assert t.device.type == "cpu" and t.device == "cpu" and isinstance(t.device, tg.device)
    assert repr(x.device) == repr(torch.ones(1).device) == "device(type='cpu')"


def test_manual_seed_returns_the_default_generator_as_torch():
    g = tg.manual_seed(7)
    assert g is tg.default_generator and g.initial_seed() == 7 == tg.initial_seed()
    a = tg.randn(3)
    state = g.get_state()
    b = tg.randn(3)
    g.set_state(state)
    assert tg.randn(3).equal(b) and not a.equal(b)
    tg.manual_seed(7)
    assert tg.randn(3).equal(a)
    with pytest.raises(TypeError, match="seed must be an int"):
        tg.manual_seed(1.5)


# --- found by peer projects' test suites run against torch -----------------------------------------
def test_float_functions_of_integer_tensors_give_the_default_float_as_torch():
    for name in ("exp", "log", "sqrt", "sigmoid", "tanh", "log1p", "sin", "erf"):
        ours, theirs = getattr(tg.tensor([1, 2, 3]), name)(), getattr(torch.tensor([1, 2, 3]), name)()
        assert ours.dtype == tg.float32 and str(theirs.dtype) == "torch.float32", name
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_a_float_scalar_on_the_left_of_an_integer_tensor_stays_float_as_torch():
    for op in (lambda a, t: a % t, lambda a, t: a // t):
        ours, theirs = op(100.5, tg.tensor([2, -3])), op(100.5, torch.tensor([2, -3]))
        assert ours.dtype == tg.float32
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal((7 % tg.tensor([2, -3])).numpy(), (7 % torch.tensor([2, -3])).numpy())


@pytest.mark.parametrize("reduce, shape, dim", [("mean", (1, 0, 3), 1), ("var", (3, 1), 1), ("std", (3, 1), 1),
                                                ("var", (3, 0), 1), ("std", (3, 0), 1)])
def test_reductions_over_nothing_are_nan_as_torch(reduce, shape, dim):
    x, tx = tg.ones(*shape, dtype=tg.float64, requires_grad=True), torch.ones(shape, dtype=torch.float64,
                                                                              requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, t_out = getattr(x, reduce)(dim=dim), getattr(tx, reduce)(dim=dim)
    assert len(caught) == (0 if reduce == "mean" else 2)  # torch's warning and ours
    np.testing.assert_array_equal(out.detach().numpy(), t_out.detach().numpy())  # NaN where torch has NaN
    out.sum().backward()
    t_out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_cumulative_ops_check_dim_and_take_empty_axes_as_torch():
    x = tg.zeros(2, 0, 4, requires_grad=True)
    tg.cumprod(x, dim=1).sum().backward()
    assert x.grad.shape == (2, 0, 4)
    for name in ("cumsum", "cumprod"):
        assert getattr(tg, name)(tg.tensor(2.0), dim=-1).item() == 2.0
        with pytest.raises(IndexError):
            getattr(tg, name)(tg.tensor(1.0), dim=1)
        with pytest.raises(IndexError):
            getattr(torch, name)(torch.tensor(1.0), dim=1)
    with pytest.raises(TypeError, match="bool"):
        tg.linspace(5, 10, 3, dtype=tg.bool)


def test_where_with_two_numbers_takes_their_common_dtype_as_torch():
    mask, t_mask = tg.tensor([True, False, True]), torch.tensor([True, False, True])
    for a, b in [(1.0, 0.0), (1, 0), (True, False), (2, 0.5)]:
        ours, theirs = tg.where(mask, a, b), torch.where(t_mask, a, b)
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(TypeError, match="Tensor condition and two numbers"):
        tg.where([True, False], 1.0, 0.0)


def test_post_accumulate_grad_hooks_see_the_accumulated_grad_as_torch():
    seen = {"tg": [], "torch": []}
    for name, lib in (("tg", tg), ("torch", torch)):
        w = lib.tensor(np.array([1.0, 2.0]), requires_grad=True)
        handle = w.register_post_accumulate_grad_hook(lambda p, name=name: seen[name].append(p.grad.tolist()))
        (w * 3).sum().backward()
        (w * w).sum().backward()
        handle.remove()
        (w * 5).sum().backward()
    assert seen["tg"] == seen["torch"] == [[3.0, 3.0], [5.0, 7.0]]
    with pytest.raises(RuntimeError, match="only leaves"):
        (tg.ones(2, requires_grad=True) * 2).register_post_accumulate_grad_hook(print)


def test_backward_callbacks_run_once_when_the_backward_ends():
    from tinygrad_course.tensor import queue_backward_callback
    order = []
    w = tg.ones(3, requires_grad=True)
    w.register_post_accumulate_grad_hook(
        lambda p: (order.append("grad"), queue_backward_callback(lambda: order.append(("end", p.grad.tolist())))))
    (w * 2).sum().backward()
    assert order == ["grad", ("end", [2.0, 2.0, 2.0])]
    with pytest.raises(RuntimeError, match="no backward"):
        queue_backward_callback(print)
