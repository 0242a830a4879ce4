"""Autograd guards: no way of changing a tensor's storage behind autograd's back gives a wrong gradient.

Each test is a hostile-user probe: change something the graph saved (through `.numpy()`, `.data`,
an alias, the condition of `where`, an index, an array operand, a target), then backward. The
result must be the gradient of the forward that ran, or a clear error; never a silently wrong one.
Also: integer results never require grad, and concurrent backward on shared leaves loses nothing.
"""
from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import Function, metrics
from tinygrad_course.nn import functional as F
from tinygrad_course.testing import gradcheck


def leaf(values, dtype="float64"):
    return tg.tensor(values, dtype=dtype, requires_grad=True)


def _writable(t) -> bool:
    return t.detach().numpy().flags.writeable


# --- 1. raw writes through .numpy() and .data --------------------------------------------------
def test_numpy_refuses_a_tensor_that_requires_grad_as_pytorch_does():
    w = leaf([1.0, 2.0])
    for t in (w, w * 2.0):  # a leaf and a non-leaf
        with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
            t.numpy()
    with tg.no_grad():  # grad mode does not matter: the tensor still requires grad
        with pytest.raises(RuntimeError, match="requires grad"):
            w.numpy()
    assert np.shares_memory(w.detach().numpy(), w.data.numpy())  # the way to read it


def test_writes_through_numpy_to_a_saved_input_are_refused_and_the_gradient_stays_right():
    c = tg.tensor(np.array([1.0, 2.0, 3.0]))  # no grad, so .numpy() is allowed; Mul saves it
    w = leaf([0.5, -1.0, 2.0])
    y = (w * c).sum()
    arr = c.numpy()
    np.testing.assert_array_equal(arr, [1.0, 2.0, 3.0])  # reading works
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 100.0
    with pytest.raises(RuntimeError, match="read-only"):  # .data is a Tensor: its in-place write refuses
        c.data[1] = 100.0
    with pytest.raises(ValueError, match="read-only"):
        np.add(c.numpy(), 1.0, out=c.numpy())
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])
    c.numpy()[0] = 7.0  # the graph is freed: the storage is the user's again
    np.testing.assert_array_equal(c.numpy(), [7.0, 2.0, 3.0])


@pytest.mark.parametrize("alias", [
    lambda t: t.detach().numpy(),
    lambda t: t.data,
    lambda t: t.detach().data,
    lambda t: t.reshape(3, 1).detach().numpy(),   # views share the guard with their base
    lambda t: t[1:].detach().numpy(),
], ids=["detach_numpy", "data", "detach_data", "reshape_view", "slice_view"])
def test_every_alias_of_a_saved_output_is_read_only(alias):
    w = leaf([0.1, 0.2, 0.3])
    t = w.tanh()  # Tanh saves its output
    s = t.sum()
    with pytest.raises((ValueError, RuntimeError), match="read-only"):  # NumPy's error, or the Tensor's
        alias(t)[0] = 5.0
    s.backward()
    np.testing.assert_allclose(w.grad.numpy(), 1 - np.tanh([0.1, 0.2, 0.3]) ** 2)


def test_metrics_read_live_logits_through_detach():
    logits = leaf([[2.0, 0.0], [0.0, 1.0]]) * 1.0  # part of a graph, as in a training loop
    assert metrics.accuracy(logits, np.array([0, 0])) == 0.5


def test_pytorch_habits_on_parameters_still_work():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    with tg.no_grad():
        w.data -= 0.1 * w.grad.data                      # the classic SGD step
    np.testing.assert_allclose(w.detach().numpy(), [0.8, 1.6])
    w.data = np.array([3.0, 4.0])                        # replacing the storage
    with tg.no_grad():
        w.copy_(w.data * 2)                              # copy_-style update
        w.data[0] = 1.0                                  # element write: nothing saved w
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 8.0])


def test_assigning_data_while_a_graph_saved_it_ends_in_the_version_error():
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    assert w.data.tolist() == [1.0, 2.0]  # reading .data is always fine
    with pytest.raises(RuntimeError, match="read-only"):  # the in-place part of `w.data -= ...`
        w.data -= 1.0
    w.data = np.array([5.0, 5.0])
    with pytest.raises(RuntimeError, match=r"Mul\.backward.*\.data assignment"):
        y.backward()


def test_retained_and_dropped_graphs():
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    y.backward(retain_graph=True)  # the graph may backward again: still guarded
    assert not _writable(w)
    y.backward()
    assert _writable(w)
    y = (w * w).sum()
    assert not _writable(w)
    del y  # dropped without backward: nothing can read the saved arrays any more
    assert _writable(w)


def test_a_copy_made_while_a_graph_is_alive_is_not_guarded_by_that_graph():
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    copies = [copy.deepcopy(w), pickle.loads(pickle.dumps(w))]
    for c in copies:
        c.detach().numpy()[0] = 5.0  # their own storage: no graph saved it
        assert c.detach().numpy()[0] == 5.0
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])


class _NoInputGrad(Function):
    """A test op that gives its input no gradient (a straight-through-like stop)."""

    def forward(self, a):
        return a * 2

    def backward(self, g):
        return None


def test_backward_frees_nodes_that_received_no_gradient():
    w = leaf([1.0, 2.0])
    h = w.exp()  # Exp saves its output h; no gradient will reach this node
    (_NoInputGrad.apply(h).sum() + w.sum()).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])
    assert _writable(h)


def test_in_place_on_a_read_only_storage_is_a_clear_error():
    c = tg.tensor(np.array([1.0, 2.0]))
    w = leaf([3.0, 4.0])
    y = (w * c).sum()
    alias = tg.from_numpy(c.numpy())  # shares the saved storage, read-only
    with pytest.raises(RuntimeError, match="read-only.*clone"):
        alias.add_(1.0)
    with pytest.raises(RuntimeError, match="expand"):
        tg.tensor(np.array([1.0])).expand(3).fill_(0.0)
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])


def test_tensor_of_a_tensor_is_a_copy():
    c = tg.tensor(np.array([1.0, 2.0]))
    w = leaf([3.0, 4.0])
    y = (w * c).sum()
    u = tg.tensor(c)  # as torch.tensor(t): a copy, not an alias with its own version counter
    u.add_(10.0)
    u[0] = -1.0
    np.testing.assert_array_equal(c.numpy(), [1.0, 2.0])
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])


@pytest.mark.parametrize("zero_grad", [
    lambda model: model.zero_grad(set_to_none=False),
    lambda model: tg.optim.SGD(model.parameters(), lr=0.1).zero_grad(set_to_none=False),
], ids=["module", "optimizer"])
def test_zeroing_gradients_in_place_is_version_checked(zero_grad):
    model = tg.nn.Linear(2, 1)
    model(tg.ones(3, 2)).sum().backward()
    g = model.weight.grad.detach().numpy().copy()
    w = leaf(np.ones((1, 2)), dtype="float32")
    y = (w * model.weight.grad).sum()  # Mul saved the gradient tensor
    zero_grad(model)
    assert not model.weight.grad.numpy().any()
    with pytest.raises(RuntimeError, match="Mul.*in-place"):
        y.backward()
    assert g.any()


def test_gradcheck_works_while_a_graph_saved_its_input():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()  # x stays saved (read-only to user code) until this backward
    assert gradcheck(lambda t: t.exp(), [x])
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_a_parameter_made_from_a_tensor_shares_its_version_counter():
    t = tg.tensor(np.array([1.0, 2.0]))
    p = tg.nn.Parameter(t)  # shares t's storage, as torch.nn.Parameter(t) does
    w = leaf([1.0, 1.0])
    y = (w * t).sum()
    with tg.no_grad():
        p.add_(10.0)  # changes t too
    with pytest.raises(RuntimeError, match="Mul.*in-place"):
        y.backward()


# --- arrays that are not tensors, and tensors passed as plain arguments --------------------------
def test_an_array_operand_changed_after_forward_does_not_change_the_gradient():
    arr = np.array([1.0, 2.0, 3.0])
    w = leaf([0.0, 0.0, 0.0])
    y = (w * arr).sum()  # Mul saves the operand
    arr[:] = 0.0
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])


def test_an_array_clamp_bound_changed_after_forward_does_not_change_the_gradient():
    x = leaf([0.0, 1.0, 2.0])
    lo = np.array([0.5, 0.5, 0.5])
    y = x.clamp(min=lo).sum()
    lo[0] = -5.0
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0])


def test_tensor_clamp_bounds_are_differentiable_as_in_pytorch():
    x, lo = leaf([0.0, 1.0, 2.0, 0.5]), leaf([0.5, 0.5, 0.5, 0.5])
    y = x.clamp(min=lo, max=1.5)
    np.testing.assert_array_equal(y.detach().numpy(), [0.5, 1.0, 1.5, 0.5])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0, 1.0])  # a tie goes to x, as in torch
    np.testing.assert_array_equal(lo.grad.numpy(), [1.0, 0.0, 0.0, 0.0])
    z = tg.tensor([1, 5, -3])
    z.clamp_(min=tg.tensor([0, 0, 0]), max=2)
    assert z.tolist() == [1, 2, 0]


@pytest.mark.parametrize("product", [lambda w, m: w @ m, lambda w, m: m @ w], ids=["matmul", "rmatmul"])
def test_an_array_matmul_operand_changed_after_forward_does_not_change_the_gradient(product):
    ref = leaf(np.eye(3))
    product(ref, np.arange(9.0).reshape(3, 3)).sum().backward()
    w = leaf(np.eye(3))
    m = np.arange(9.0).reshape(3, 3)
    y = product(w, m).sum()  # the operand becomes a Tensor that Matmul saves
    m[:] = 0.0
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), ref.grad.numpy())


@pytest.mark.parametrize("loss", [F.focal_loss, F.dice_loss, F.jaccard_loss])
def test_an_array_mask_changed_after_forward_does_not_change_the_gradient(loss):
    x = leaf([0.5, -0.5, 1.0])
    loss(x, np.array([1.0, 0.0, 1.0])).backward()
    expected = x.grad.numpy().copy()
    x.grad = None
    mask = np.array([1.0, 0.0, 1.0])
    y = loss(x, mask)
    mask[:] = 0.0
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), expected)


@pytest.mark.parametrize("make_index", [
    lambda: tg.tensor([0, 2]), lambda: np.array([0, 2]), lambda: [0, 2],
], ids=["tensor", "ndarray", "list"])
def test_an_index_changed_after_forward_does_not_move_the_gradient(make_index):
    w = leaf([1.0, 2.0, 3.0])
    idx = make_index()
    y = w[idx].sum()
    idx[0] = 1  # __setitem__ on a Tensor, an ndarray or a list
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 0.0, 1.0])


def test_a_class_target_changed_after_forward_does_not_change_the_gradient(backend):
    logits = leaf(np.zeros((2, 3)))
    target = tg.tensor([0, 2])
    loss = F.cross_entropy(logits, target, reduction="sum")
    target[0] = 1
    loss.backward()
    np.testing.assert_allclose(logits.grad.numpy(), [[-2 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, -2 / 3]])


def test_running_statistics_updated_by_batch_norm_count_as_in_place():
    mean, var = tg.zeros(2, dtype="float64"), tg.ones(2, dtype="float64")
    w = leaf([1.0, 1.0])
    y = (w * mean).sum()  # Mul saved the running mean
    F.batch_norm(tg.tensor(np.arange(8.0).reshape(4, 2)), mean, var, training=True)
    with pytest.raises(RuntimeError, match="Mul.*in-place"):
        y.backward()


# --- 2. the condition of where -------------------------------------------------------------------
def test_changing_a_where_condition_tensor_after_forward_raises():
    a = leaf([1.0, 2.0, 3.0])
    cond = tg.tensor([True, False, True])
    out = tg.where(cond, a * 3.0, a * 0.0)
    cond[0] = False
    with pytest.raises(RuntimeError, match="Where.*in-place"):
        out.sum().backward()


@pytest.mark.parametrize("make_cond", [
    lambda: np.array([True, False, True]), lambda: [True, False, True], lambda: np.array([1.0, 0.0, 1.0]),
], ids=["bool_array", "list", "float_array"])
def test_a_where_condition_array_is_copied(make_cond):
    a = leaf([1.0, 2.0, 3.0])
    cond = make_cond()
    out = tg.where(cond, a * 3.0, a * 0.0)
    cond[0] = False
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 0.0, 3.0])


def test_a_float_where_condition_tensor_is_a_bool_test():
    a = leaf([1.0, 2.0])
    cond = tg.tensor([0.0, 2.0], requires_grad=True)  # not differentiable through the condition
    out = tg.where(cond, a, a * 0.0)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 1.0])
    assert cond.grad is None


# --- 3. integer and bool results never require grad ----------------------------------------------
@pytest.mark.parametrize("op", [
    lambda x: x.long(), lambda x: x.astype(np.int64), lambda x: x.astype(bool),
    lambda x: x > 0, lambda x: x.eq(x), lambda x: x.argmax(), lambda x: x.to(dtype=np.int64),
    lambda x: x.long().reshape(3, 1), lambda x: x.long()[1:],
], ids=["long", "astype_int", "astype_bool", "gt", "eq", "argmax", "to_int", "int_reshape", "int_slice"])
def test_integer_and_bool_results_do_not_require_grad(op):
    x = leaf([1.5, -2.5, 3.5])
    out = op(x)
    assert out.dtype.kind in "iub"
    assert not out.requires_grad and out.grad_fn is None


def test_no_gradient_flows_through_a_cast_to_int():
    x = leaf([1.5, 2.5])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x.long() * 3).sum().backward()
    assert x.grad is None
    (x * 2.0 + x.long().double() * 100.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    x32 = leaf([1.5], dtype="float32")
    x32.double().sum().backward()  # float to float stays differentiable
    assert x32.grad.dtype == np.float32 and x32.grad.item() == 1.0


# --- 4. concurrent backward on shared leaves --------------------------------------------------------
def test_concurrent_backward_on_shared_leaves_loses_no_update():
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal((64, 64)))  # 4096 elements: NumPy adds them without the GIL
    b = leaf(rng.standard_normal(64))
    batches = [tg.tensor(rng.standard_normal((32, 64))) for _ in range(2)]
    passes = 200

    def train(x):
        for _ in range(passes):
            (x @ w + b).tanh().sum().backward()

    for x in batches:
        train(x)
    expected = [w.grad.numpy().copy(), b.grad.numpy().copy()]
    w.grad = b.grad = None
    threads = [threading.Thread(target=train, args=(x,)) for x in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(w.grad.numpy(), expected[0], rtol=1e-10)
    np.testing.assert_allclose(b.grad.numpy(), expected[1], rtol=1e-10)
    assert _writable(w) and _writable(b)  # every graph built by the threads was released


def test_tensor_copies_an_array_from_numpy_shares_it():
    """tensor(arr) copies, as torch.tensor does: a later write to arr cannot change a saved input or
    its gradient. from_numpy(arr) shares memory, as torch.from_numpy does."""
    arr = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    w = tg.tensor([2.0, 2.0, 2.0], requires_grad=True)
    x = tg.tensor(arr)
    (x * w).sum().backward()
    arr[:] = 0
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])
    shared = tg.from_numpy(arr)
    arr[0] = 5
    assert shared.numpy()[0] == 5
