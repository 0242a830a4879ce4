"""Tensor and autograd semantics: accumulation, graph lifetime, grad mode, errors, in-place safety,
creation functions, dtypes and conversions."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course.nn import functional as F


def leaf(values, dtype="float64"):
    return tg.tensor(values, dtype=dtype, requires_grad=True)


# --- gradient accumulation and graph lifetime ----------------------------------------------------
def test_gradients_accumulate_into_leaves_across_backward_calls():
    x = leaf([1.0, -2.0, 3.0])
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    (x * x).sum().backward()  # a second, independent graph: adds 2x
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, -2.0, 8.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_paths_through_a_shared_node_add_up():
    x, y = leaf([2.0]), leaf([5.0])
    h = x * y                # shared intermediate
    z = (h * h + h + x).sum()  # dz/dx = (2h + 1) y + 1, dz/dy = (2h + 1) x
    z.backward()
    assert x.grad.item() == pytest.approx(21 * 5 + 1)
    assert y.grad.item() == pytest.approx(21 * 2)


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])  # the failed call added nothing


def test_retain_graph_allows_a_second_backward_and_grads_double():
    x = leaf([1.0, 2.0])
    y = (x.tanh() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):  # the second call freed the graph
        y.backward()


def test_backward_frees_the_saved_arrays_and_links():
    x = leaf([1.0, 2.0])
    h = x.exp()
    y = (h * x).sum()
    nodes = [h.grad_fn, y.grad_fn]
    assert h.grad_fn.saved  # Exp saved its output
    y.backward()
    for ctx in nodes:
        assert ctx.saved is None and ctx.parents is None


def test_retain_grad_on_a_non_leaf():
    x = leaf([1.0, -3.0])
    y = x * 2.0
    y.retain_grad()
    w = x * 3.0  # another non-leaf without retain_grad
    (y * y + w).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.detach().numpy())
    assert w.grad is None
    np.testing.assert_allclose(x.grad.numpy(), 8 * x.detach().numpy() + 3)


# --- grad mode, detach -------------------------------------------------------------------------
def test_no_grad_results_do_not_require_grad():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        y = x * 2.0 + x.exp()
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_as_a_decorator():
    @tg.no_grad()
    def f(t):
        return t * 2.0

    assert not f(leaf([1.0])).requires_grad
    assert tg.is_grad_enabled()


def test_set_grad_enabled_nests_and_restores():
    x = leaf([1.0])
    with tg.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
        with tg.set_grad_enabled(True):
            assert (x * 2.0).requires_grad
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    with pytest.raises(KeyError):  # restored even when the block raises
        with tg.set_grad_enabled(False):
            raise KeyError
    assert tg.is_grad_enabled()


def test_detach_shares_data_and_stops_gradients():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    d = h.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert np.shares_memory(d.numpy(), h.detach().numpy())
    (x * 2.0 + d).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


# --- errors --------------------------------------------------------------------------------------
def test_requires_grad_on_an_int_tensor_raises_type_error():
    t = tg.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="int64"):
        t.requires_grad_()
    with pytest.raises(TypeError):
        tg.tensor([1, 2], requires_grad=True)


def test_requires_grad_off_on_a_non_leaf_raises():
    y = leaf([1.0]) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_backward_on_non_scalar_without_gradient_names_the_shape():
    y = leaf(np.ones((2, 3))) * 2.0
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape_raises():
    x = leaf(np.ones((2, 3)))
    y = x * 2.0
    with pytest.raises(ValueError) as e:
        y.backward(np.ones((3, 2)))
    assert "(3, 2)" in str(e.value) and "(2, 3)" in str(e.value)
    y.backward(np.full((2, 3), 0.5))  # the right shape works, and scales the gradient
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "@"])
def test_mixing_float32_and_float64_raises_naming_dtypes_and_shapes(op):
    a = tg.ones(2, 3, dtype="float32")
    b = tg.ones(3, 3, dtype="float64") if op == "@" else tg.ones(3, dtype="float64")
    fns = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
           "**": lambda: a ** b, "@": lambda: a @ b}
    with pytest.raises(TypeError) as e:
        fns[op]()
    msg = str(e.value)
    assert "float32" in msg and "float64" in msg and "(2, 3)" in msg and str(b.shape) in msg


def test_mixed_dtypes_in_concat_where_and_conv_raise():
    a, b = tg.ones(2, dtype="float32"), tg.ones(2, dtype="float64")
    with pytest.raises(TypeError, match="float64"):
        tg.concat([a, b])
    with pytest.raises(TypeError, match="float64"):
        tg.where(np.array([True, False]), a, b)
    with pytest.raises(TypeError, match="float64"):
        F.conv2d(tg.ones(1, 1, 3, 3), tg.ones(1, 1, 2, 2, dtype="float64"))


@pytest.mark.parametrize("shapes", [((2, 3), (4,)), ((2, 1, 3), (4, 2)), ((5,), (2, 4))])
def test_broadcast_mismatch_raises_value_error_naming_both_shapes(shapes):
    a, b = tg.ones(*shapes[0]), tg.ones(*shapes[1])
    for fn in (lambda: a + b, lambda: a * b, lambda: b - a):
        with pytest.raises(ValueError) as e:
            fn()
        assert str(shapes[0]) in str(e.value) and str(shapes[1]) in str(e.value)


@pytest.mark.parametrize("sa,sb", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 5, 3), (2, 4, 2)), ((3,), (2, 4))])
def test_matmul_misalignment_names_both_shapes(sa, sb):
    with pytest.raises(ValueError) as e:
        tg.ones(*sa) @ tg.ones(*sb)
    assert str(sa) in str(e.value) and str(sb) in str(e.value)


def test_matmul_batch_mismatch_and_0d_operands_raise():
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(3, 4, 5\)"):
        tg.ones(2, 3, 4) @ tg.ones(3, 4, 5)
    with pytest.raises(ValueError, match="1-D"):
        tg.tensor(2.0) @ tg.ones(2)


def test_conv2d_channel_mismatch_names_shapes():
    x, w = tg.ones(1, 3, 5, 5), tg.ones(2, 4, 3, 3)
    with pytest.raises(ValueError) as e:
        F.conv2d(x, w)
    assert "(1, 3, 5, 5)" in str(e.value) and "(2, 4, 3, 3)" in str(e.value)
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(tg.ones(1, 4, 5, 5), tg.ones(3, 2, 3, 3), groups=2)  # 3 output channels, 2 groups
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 2\)"):
        F.conv2d(tg.ones(1, 1, 2, 2), tg.ones(1, 1, 3, 3))  # input smaller than the kernel


# --- in-place operations -----------------------------------------------------------------------
def _mul_graph():
    a = tg.tensor(np.array([1.0, 2.0, 3.0]))  # no grad: may be modified in place
    w = leaf([0.5, -1.0, 2.0])
    return a, w, (a * w).sum()


@pytest.mark.parametrize("modify", [
    lambda a: a.mul_(2.0),
    lambda a: a.add_(1.0),
    lambda a: a.__setitem__(0, 5.0),
    lambda a: a.zero_(),
    lambda a: a.reshape(3, 1).mul_(2.0),    # a view shares the version counter
    lambda a: a[1:].fill_(0.0),              # so does a slice
    lambda a: a.detach().sub_(1.0),          # and a detached alias
], ids=["mul_", "add_", "setitem", "zero_", "reshape_view", "slice_view", "detached_alias"])
def test_modifying_a_tensor_saved_by_mul_raises_at_backward(modify):
    a, w, y = _mul_graph()
    modify(a)
    with pytest.raises(RuntimeError, match="in-place") as e:
        y.backward()
    assert "Mul" in str(e.value)


def test_modifying_the_base_of_a_saved_view_raises():
    a = tg.tensor(np.arange(6.0))
    w = leaf(np.ones((2, 3)))
    y = (a.reshape(2, 3) * w).sum()  # Mul saved the reshaped view
    a.add_(1.0)
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


def test_modifying_a_saved_output_raises_tanh():
    w = leaf([0.1, 0.2])
    t = w.tanh()         # Tanh saves its output
    s = t.sum()
    with tg.no_grad():
        t.add_(1.0)
    with pytest.raises(RuntimeError, match="Tanh"):
        s.backward()


def test_modifying_a_conv_input_raises():
    x = tg.tensor(np.ones((1, 1, 4, 4)))
    w = leaf(np.ones((1, 1, 2, 2)))
    y = F.conv2d(x, w).sum()
    x[0, 0, 0, 0] = 3.0
    with pytest.raises(RuntimeError, match="Conv2d"):
        y.backward()


def test_modifying_a_tensor_that_was_not_saved_is_fine():
    a, w = tg.tensor(np.array([1.0, 2.0])), leaf([3.0, 4.0])
    y = (a + w).sum()  # Add saves nothing
    a.mul_(10.0)
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_in_place_on_a_leaf_requiring_grad_raises_under_grad_mode():
    w = leaf([1.0, 2.0])
    for op in (lambda: w.add_(1.0), lambda: w.mul_(2.0), lambda: w.__setitem__(0, 0.0), lambda: w.zero_()):
        with pytest.raises(RuntimeError, match="no_grad"):
            op()
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 2.0])
    with tg.no_grad():
        v = w._version
        w.sub_(0.5)
        assert w._version == v + 1
    np.testing.assert_array_equal(w.detach().numpy(), [0.5, 1.5])


# --- creation functions and dtypes ---------------------------------------------------------------
@pytest.mark.parametrize("data,dtype", [
    ([1.0, 2.0], np.float32), (2.5, np.float32), ([[1, 2]], np.int64), (3, np.int64),
    (np.array([1.0]), np.float64), (np.array([1.0], dtype=np.float32), np.float32),
    (np.array([1], dtype=np.int32), np.int32), (np.array([1], dtype=np.uint8), np.uint8),  # kept, as torch
    (np.array([1], dtype=np.uint16), np.int64), (np.array([1], dtype=np.float16), np.float32),
    ([True, False], np.bool_),
])
def test_tensor_dtype_inference(data, dtype):
    assert tg.tensor(data).dtype == np.dtype(dtype)


def test_tensor_with_explicit_dtype_and_unsupported_types():
    assert tg.tensor([1, 2], dtype="float64").dtype == np.float64
    assert tg.tensor([1.7], dtype="int64").tolist() == [1]
    with pytest.raises(TypeError):
        tg.tensor(np.array(["a"]))


def test_shape_creation_functions():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros(2, 3).dtype == np.float32
    assert tg.zeros((2, 3)).shape == (2, 3)
    assert not tg.zeros(2).numpy().any()
    o = tg.ones(4, dtype="float64", requires_grad=True)
    assert o.dtype == np.float64 and o.requires_grad and o.detach().numpy().tolist() == [1.0] * 4
    f = tg.full((2, 2), 3.5)
    assert f.shape == (2, 2) and f.dtype == np.float32 and (f.numpy() == 3.5).all()
    assert tg.full(3, 1.0).shape == (3,)
    ref = tg.ones(2, 3, dtype="float64")
    assert tg.zeros_like(ref).dtype == np.float64 and tg.zeros_like(ref).shape == (2, 3)
    assert tg.ones_like(ref, dtype="float32").dtype == np.float32


def test_random_creation_functions():
    r = tg.rand(50, 4)
    assert r.shape == (50, 4) and r.dtype == np.float32
    assert r.numpy().min() >= 0.0 and r.numpy().max() < 1.0
    n = tg.randn(1000, dtype="float64")
    assert n.dtype == np.float64 and abs(n.numpy().mean()) < 0.15 and 0.8 < n.numpy().std() < 1.2
    assert tg.randn(2, 3, requires_grad=True).requires_grad


def test_arange():
    a = tg.arange(5)
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(2, 8, 3).tolist() == [2, 5]
    b = tg.arange(0, 1, 0.25)
    assert b.dtype == np.float32 and b.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tg.arange(3, dtype="float64").dtype == np.float64


def test_from_numpy_shares_memory_and_keeps_dtype():
    a = np.arange(4.0)
    t = tg.from_numpy(a)
    assert t.dtype == np.float64
    a[0] = 10.0
    assert t.numpy()[0] == 10.0
    assert tg.from_numpy(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert tg.from_numpy(np.arange(3)).dtype == np.int64
    with pytest.raises(TypeError):
        tg.from_numpy([1.0, 2.0])


def test_manual_seed_reproducibility():
    tg.manual_seed(3)
    a, b = tg.randn(5).numpy(), tg.rand(5).numpy()
    tg.manual_seed(3)
    np.testing.assert_array_equal(tg.randn(5).numpy(), a)
    np.testing.assert_array_equal(tg.rand(5).numpy(), b)
    tg.manual_seed(4)
    assert not np.array_equal(tg.randn(5).numpy(), a)
    x = tg.ones(100)
    tg.manual_seed(7)
    d1 = F.dropout(x, 0.5).numpy()
    tg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), d1)


def test_default_dtype_switch():
    assert tg.get_default_dtype() == np.float32
    tg.set_default_dtype("float64")
    assert tg.get_default_dtype() == np.float64
    assert tg.tensor([1.0]).dtype == np.float64
    assert tg.zeros(2).dtype == np.float64 and tg.randn(2).dtype == np.float64 and tg.rand(2).dtype == np.float64
    assert tg.arange(0.0, 1.0, 0.5).dtype == np.float64
    assert tg.tensor([1]).dtype == np.int64  # ints are unaffected
    assert tg.tensor(np.ones(1, dtype=np.float32)).dtype == np.float32  # arrays keep their dtype
    tg.set_default_dtype(np.float32)
    assert tg.tensor([1.0]).dtype == np.float32
    with pytest.raises(TypeError):
        tg.set_default_dtype("int64")


# --- conversions ---------------------------------------------------------------------------------
def test_item_tolist_numpy():
    t = tg.tensor([[1.5, 2.0]])
    assert t.tolist() == [[1.5, 2.0]]
    item = tg.tensor([3.5]).item()
    assert item == 3.5 and type(item) is float
    assert type(tg.tensor(4).item()) is int
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        t.item()
    arr = t.numpy()
    assert isinstance(arr, np.ndarray) and np.shares_memory(arr, t.data)
    assert len(t) == 1 and t.numel() == 2 and t.dim() == 2 and t.ndim == 2 and t.size() == (1, 2)


def test_astype_and_conversion_helpers():
    x = leaf([1.25, -2.5])
    assert x.astype("float64") is x
    y = x.float()
    assert y.dtype == np.float32 and y.requires_grad
    y.double().sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [1.0, 1.0]
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2]
    assert x.to(dtype="float32").dtype == np.float32
    with pytest.raises(RuntimeError, match="cuda"):
        x.to("cuda")


def test_comparisons_with_python_floats_keep_the_float():
    i = tg.tensor([0, 1, 2])
    assert (i < 0.5).tolist() == [True, False, False]
    assert i.eq(1.5).tolist() == [False, False, False]
    assert (i >= [0.5, 1.0, 2.5]).tolist() == [False, True, False]


def test_comparisons_return_bool_tensors_without_grad():
    x = leaf([-1.0, 0.0, 2.0])
    for r in (x < 0, x <= 0, x > 0, x >= 0, x.eq(0.0), x.ne(0.0), x < tg.tensor([0.0, 0.0, 3.0], dtype="float64")):
        assert r.dtype == np.bool_ and not r.requires_grad
    assert (x > 0).tolist() == [False, False, True]
    assert x.eq(0.0).tolist() == [False, True, False]
    assert (x < tg.tensor([0.0, 0.0, 3.0], dtype="float64")).tolist() == [True, False, True]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_scalars_keep_the_tensor_dtype(dtype):
    x = tg.ones(3, dtype=dtype)
    for r in (x + 1.5, 1.5 + x, x - 2, 2 - x, x * 0.1, 0.1 * x, x / 3, 3 / x, x ** 2, 2.0 ** x, -x):
        assert r.dtype == np.dtype(dtype)
    assert (x + np.float64(1.0)).dtype == np.dtype(dtype)
    i = tg.tensor([1, 2])
    assert (i + 1).dtype == np.int64 and (i * 3).tolist() == [3, 6]


def test_gradient_has_the_leaf_dtype_and_shape():
    x = tg.ones(2, 1, dtype="float32", requires_grad=True)
    (x * tg.ones(2, 3)).sum().backward()  # broadcast: the gradient is summed back
    assert x.grad.dtype == np.float32 and x.grad.shape == (2, 1)
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0], [3.0]])


def test_int_tensor_with_python_float_promotes_to_float():
    out = tg.tensor([1, 2]) + 0.5
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), [1.5, 2.5])
    assert (tg.tensor([1, 2]) * 2).dtype == np.int64


def test_std_gradient_is_zero_on_constant_data():
    x = tg.ones(3, 4, dtype="float64", requires_grad=True)
    x.std(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))


def test_expand_minus_one_keeps_the_dimension():
    assert tg.ones(3, 1).expand(-1, 4).shape == (3, 4)
    assert tg.ones(3, 1).expand(2, -1, 5).shape == (2, 3, 5)


def test_reduction_over_a_repeated_axis_raises():
    with pytest.raises(ValueError, match="twice"):
        tg.ones(2, 3).sum(axis=(0, 0))
