"""PyTorch's scatter / scatter_add, einsum and torchvision's Resize: values, shapes, dtypes and gradients
checked against torch (float64 at rtol 1e-10 / atol 1e-12; Resize in float32 at 1e-5)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course.data.transforms import Compose, RandomResizedCrop, Resize
from tinygrad_course.functions import einsum
from tinygrad_course.testing import gradcheck

TOL = dict(rtol=1e-10, atol=1e-12)


def _pair(a, requires_grad=True):
    """The same float64 array as a tinygrad_course and a torch leaf."""
    torch = pytest.importorskip("torch")
    return tg.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


def _distinct_index(rng, shape, ishape, d):
    """An index of shape `ishape` whose entries along dim d are distinct positions of 0..shape[d]-1."""
    full = [n if k == d else i for k, (i, n) in enumerate(zip(ishape, shape))]
    return np.take(rng.random(full).argsort(axis=d), np.arange(ishape[d]), axis=d).astype(np.int64)


# --- scatter / scatter_add ----------------------------------------------------------------------
SCATTER_CASES = [((3, 4), 0, (2, 4)), ((3, 4), 1, (3, 2)), ((3, 4), -1, (2, 3)), ((2, 3, 4), 1, (2, 2, 3)),
                 ((2, 3, 4), 2, (1, 3, 4)), ((5,), 0, (3,))]


@pytest.mark.parametrize("shape,dim,ishape", SCATTER_CASES)
def test_scatter_values_and_gradients_match_torch(shape, dim, ishape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    index = _distinct_index(rng, shape, ishape, dim % len(shape))
    x, xt = _pair(rng.standard_normal(shape))
    s, st_ = _pair(rng.standard_normal(ishape))
    y, yt = x.scatter(dim, tg.tensor(index), s), xt.scatter(dim, torch.tensor(index), st_)
    assert y.shape == tuple(yt.shape) and y.dtype == np.float64 and y.requires_grad
    _same_values_and_gradients(torch, rng, y, yt, [(x, xt), (s, st_)])


def _same_values_and_gradients(torch, rng, y, yt, leaves):
    """y equals torch's yt, and so do the gradients of a random weighting of it at each (ours, torch's) leaf."""
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL)
    w = rng.standard_normal(y.shape)
    (y * tg.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for ours, theirs in leaves:
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), **TOL)


@pytest.mark.parametrize("shape,dim,ishape", SCATTER_CASES + [((3, 4), 0, (6, 4)), ((2, 3), 1, (2, 7))])
def test_scatter_add_accumulates_repeats_and_matches_torch_gradients(shape, dim, ishape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    index = rng.integers(0, shape[dim], ishape)
    x, xt = _pair(rng.standard_normal(shape))
    s, st_ = _pair(rng.standard_normal(ishape))
    y, yt = x.scatter_add(dim, tg.tensor(index), s), xt.scatter_add(dim, torch.tensor(index), st_)
    _same_values_and_gradients(torch, rng, y, yt, [(x, xt), (s, st_)])


def test_a_src_larger_than_index_is_read_at_its_leading_corner_as_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    index = np.array([[2, 0], [0, 1]])
    x, src = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    for name in ("scatter", "scatter_add"):
        mine = getattr(tg.tensor(x), name)(0, tg.tensor(index), tg.tensor(src)).numpy()
        ref = getattr(torch.tensor(x), name)(0, torch.tensor(index), torch.tensor(src)).numpy()
        np.testing.assert_allclose(mine, ref, **TOL)
    # PyTorch's own backward refuses this case; ours gives src the gathered gradient, zero elsewhere
    s = tg.tensor(src, requires_grad=True)
    tg.tensor(x).scatter(0, tg.tensor(index), s).sum().backward()
    expected = np.zeros((3, 5))
    expected[:2, :2] = 1.0
    np.testing.assert_array_equal(s.grad.numpy(), expected)
    assert gradcheck(lambda a, b: a.scatter_add(1, tg.tensor(index), b),
                     [tg.tensor(x, requires_grad=True), tg.tensor(src, requires_grad=True)])


def test_scatter_with_a_number_builds_one_hot_as_torch():
    torch = pytest.importorskip("torch")
    labels = np.array([[1], [0], [3]])
    ref = torch.zeros(3, 4).scatter(1, torch.tensor(labels), 1.0).numpy()
    for out in (tg.zeros(3, 4).scatter(1, tg.tensor(labels), 1.0),  # positional, as torch code writes it
                tg.zeros(3, 4).scatter(1, tg.tensor(labels), value=1.0),
                tg.scatter(tg.zeros(3, 4), 1, tg.tensor(labels), value=1.0)):
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.numpy(), ref)
    ints = tg.zeros(3, 4, dtype=tg.int64).scatter_(1, tg.tensor(labels), 1)
    assert ints.dtype == np.int64
    np.testing.assert_array_equal(ints.numpy(), torch.zeros(3, 4, dtype=torch.long).scatter_(
        1, torch.tensor(labels), 1).numpy())


def test_scatter_with_a_number_zeroes_the_gradient_where_it_wrote():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x.scatter(1, tg.tensor(np.array([[2], [0]])), value=-1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 0], [0, 1, 1]])


def test_inplace_scatter_and_scatter_add_match_torch_and_count_versions():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    index = np.array([[0, 2, 2], [1, 0, 2]])
    x, src = rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    for name in ("scatter_", "scatter_add_"):
        t = tg.tensor(x)
        version = t._version
        assert getattr(t, name)(0, tg.tensor(index), tg.tensor(src)) is t
        assert t._version == version + 1
        ref = getattr(torch.tensor(x), name)(0, torch.tensor(index), torch.tensor(src))
        np.testing.assert_allclose(t.numpy(), ref.numpy(), **TOL)


def test_inplace_scatter_of_a_tensor_into_itself_reads_the_values_before_writing():
    torch = pytest.importorskip("torch")
    x = np.arange(6.0).reshape(2, 3)
    index = np.array([[2, 0, 1]])
    t = tg.tensor(x)
    t.scatter_(1, tg.tensor(index), t)
    np.testing.assert_array_equal(t.numpy(), torch.tensor(x).scatter_(1, torch.tensor(index),
                                                                      torch.tensor(x)).numpy())


def test_inplace_scatter_refuses_leaves_requiring_grad_and_read_only_storage():
    index = tg.tensor(np.array([[0, 1]]))
    with pytest.raises(RuntimeError, match="scatter_: in-place operation on a tensor that requires grad"):
        tg.zeros(2, 2, requires_grad=True).scatter_(0, index, value=1.0)
    with pytest.raises(RuntimeError, match="scatter_add_: the storage of this tensor .* is read-only"):
        tg.zeros(1, 2).expand(2, 2).scatter_add_(0, index, tg.ones(1, 2))
    with tg.no_grad():
        w = tg.zeros(2, 2, requires_grad=True)
        w.scatter_(0, index, value=1.0)
    np.testing.assert_array_equal(w.detach().numpy(), [[1, 0], [0, 1]])


def test_module_level_scatter_functions_take_torch_keywords():
    torch = pytest.importorskip("torch")
    x, src, index = np.zeros((2, 3)), np.arange(6.0).reshape(2, 3), np.array([[1, 0, 1]])
    np.testing.assert_array_equal(
        tg.scatter(tg.tensor(x), dim=0, index=tg.tensor(index), src=tg.tensor(src)).numpy(),
        torch.scatter(torch.tensor(x), 0, torch.tensor(index), torch.tensor(src)).numpy())
    np.testing.assert_array_equal(
        tg.scatter_add(tg.tensor(x), 1, tg.tensor(index), tg.tensor(src)).numpy(),
        torch.scatter_add(torch.tensor(x), 1, torch.tensor(index), torch.tensor(src)).numpy())


@pytest.mark.parametrize("call,error,match", [
    (lambda x: x.scatter(0, tg.tensor(np.array([[0.0, 1.0]])), tg.ones(1, 2)), TypeError, "index must be an int64"),
    (lambda x: x.scatter(0, [[0, 1]], tg.ones(1, 2)), TypeError, "index must be an int64 Tensor .* got list"),
    (lambda x: x.scatter(0, tg.tensor(np.array([0, 1])), tg.ones(1, 2)), TypeError, "index must be an int64 .*2 dims"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1, 0, 1]])), tg.ones(1, 4)), ValueError,
     r"index shape \(1, 4\) exceeds the shape of self"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1]])), tg.ones(1, 1)), ValueError, "exceeds the src shape"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 3]])), tg.ones(1, 2)), IndexError, "index out of range for dim 0"),
    (lambda x: x.scatter_add(1, tg.tensor(np.array([[-4]])), tg.ones(1, 1)), IndexError, "index out of range"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1]])), tg.ones(1, 2, dtype=tg.float64)), TypeError,
     "dtypes differ"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1]])), tg.ones(2)), ValueError, "src must have 2 dims"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1]])), tg.ones(1, 2), value=1.0), TypeError, "exactly one"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1]]))), TypeError, "exactly one"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1]])), "a"), TypeError, "src must be a Tensor or a number"),
    (lambda x: x.scatter_add(0, tg.tensor(np.array([[0, 1]])), 1.0), TypeError, "src must be a Tensor, not float"),
    (lambda x: x.scatter(0, tg.tensor(np.array([[0, 1]])), tg.ones(1, 2), reduce="add"), NotImplementedError,
     "use scatter_add"),
    (lambda x: x.scatter(2, tg.tensor(np.array([[0, 1]])), tg.ones(1, 2)), IndexError, "out of range"),
    (lambda x: x.scatter_(0, tg.tensor(np.array([[0, 5]])), value=1.0), IndexError, "scatter_: index out of range"),
])
def test_scatter_refuses_bad_arguments_with_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(tg.zeros(3, 3))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data())
def test_scatter_and_scatter_add_forward_match_torch_on_drawn_shapes(data):
    torch = pytest.importorskip("torch")
    ndim = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    d = data.draw(st.integers(0, ndim - 1))
    ishape = [data.draw(st.integers(0, n)) for n in shape]
    ishape[d] = data.draw(st.integers(0, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    index = rng.integers(0, shape[d], ishape)
    x, src = rng.standard_normal(shape), rng.standard_normal(ishape)
    np.testing.assert_allclose(
        tg.tensor(x).scatter_add(d, tg.tensor(index), tg.tensor(src)).numpy(),
        torch.tensor(x).scatter_add(d, torch.tensor(index), torch.tensor(src)).numpy(), **TOL)
    ishape[d] = min(ishape[d], shape[d])
    index = _distinct_index(rng, shape, ishape, d)  # no repeats: which write wins is unspecified
    src = rng.standard_normal(ishape)
    np.testing.assert_array_equal(
        tg.tensor(x).scatter(d, tg.tensor(index), tg.tensor(src)).numpy(),
        torch.tensor(x).scatter(d, torch.tensor(index), torch.tensor(src)).numpy())


# --- einsum -------------------------------------------------------------------------------------
EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(2,), (3,)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]), ("bhqd,bhkd->bhqk", [(1, 2, 3, 2), (1, 2, 4, 2)]),
    ("ii->i", [(3, 3)]), ("ii->", [(3, 3)]), ("ii", [(3, 3)]), ("ij,jk", [(2, 3), (3, 4)]), ("ba,ca", [(2, 3), (4, 3)]),
    ("...i->i", [(2, 3)]), ("i...->...", [(2, 3, 4)]), ("iij->j", [(2, 2, 3)]), ("ij,ij->i", [(1, 3), (2, 3)]),
    ("bii,bi->bi", [(2, 3, 3), (2, 3)]), ("ijk->kji", [(2, 3, 4)]), ("i,i,i->i", [(3,), (3,), (3,)]),
    ("ab,cd->", [(2, 2), (3, 1)]), ("...", [(2, 3)]), ("Ab,bA->", [(2, 3), (3, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 2)]),
    ("->", [()]), ("i,->i", [(3,), ()]),
]


@pytest.mark.parametrize("equation,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_values_and_gradients_match_torch(equation, shapes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in shapes]
    mine = [tg.tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = einsum(equation, *mine), torch.einsum(equation, *ref)
    assert y.shape == tuple(yt.shape) and y.dtype == np.float64
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL)
    w = rng.standard_normal(y.shape)
    (y * tg.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL)
    assert gradcheck(lambda *ops: einsum(equation, *ops), [tg.tensor(a, requires_grad=True) for a in arrays])


def test_einsum_takes_the_operands_as_a_list_and_keeps_float32():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(5).standard_normal((2, 3)).astype(np.float32)
    b = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    out = einsum("ij,jk", [tg.tensor(a), tg.tensor(b)])
    assert out.dtype == np.float32 and not out.requires_grad
    np.testing.assert_allclose(out.numpy(), torch.einsum("ij,jk", [torch.tensor(a), torch.tensor(b)]).numpy(),
                               rtol=1e-5, atol=1e-6)
    x = tg.tensor(a, requires_grad=True)
    einsum("ij->i", (x,)).sum().backward()
    assert x.grad.dtype == np.float32


def test_einsum_of_one_operand_is_a_copy_not_a_view():
    a = tg.tensor(np.arange(6.0).reshape(2, 3))
    for equation in ("ij->ij", "ij->ji", "ij"):
        out = einsum(equation, a)
        out += 100.0
        np.testing.assert_array_equal(a.numpy(), np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("equation,shapes,error,match", [
    ("ij,jk->ik", [(2, 3)], ValueError, "has 2 operand"),
    ("ij,jk->ik", [(2, 3), (2, 3)], ValueError, "label 'j' has sizes 3 and 2"),
    ("ij->ii", [(2, 3)], ValueError, "occurs twice in the output"),
    ("ij->k", [(2, 3)], ValueError, "output label 'k'"),
    ("i2", [(2, 3)], ValueError, "only the letters"),
    ("i......", [(2, 3)], ValueError, "one '...'"),
    ("ijk", [(2, 3)], ValueError, "has 2 dims"),
    ("i", [(2, 3)], ValueError, "has 2 dims"),
    ("ii", [(2, 3)], ValueError, "repeated in operand 0 over dims of different sizes"),
    ("ij->...ij", [(2, 3)], ValueError, "no operand has"),
])
def test_einsum_refuses_bad_equations_with_a_clear_error(equation, shapes, error, match):
    with pytest.raises(error, match=match):
        einsum(equation, *[tg.ones(*s) for s in shapes])


def test_einsum_refuses_mixed_dtypes_non_tensors_and_no_operands():
    with pytest.raises(TypeError, match="dtypes differ"):
        einsum("i,i", tg.ones(2), tg.ones(2, dtype=tg.float64))
    with pytest.raises(TypeError, match="operand 1 must be a Tensor, not list"):
        einsum("i,i", tg.ones(2), [1.0, 2.0])
    with pytest.raises(TypeError, match="must be a string"):
        einsum(tg.ones(2), tg.ones(2))
    with pytest.raises(ValueError, match="at least one operand"):
        einsum("i")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_einsum_matches_torch_on_drawn_label_sizes(data):
    torch = pytest.importorskip("torch")
    equation = data.draw(st.sampled_from(["ij,jk->ik", "bij,bjk->bik", "i,j->ij", "bhqd,bhkd->bhqk",
                                          "...ij,...jk->...ik", "bii,bi->bi", "ij,ij->i", "ijk->kji"]))
    size = {c: data.draw(st.integers(1, 3)) for c in sorted(set(equation) - set(",->."))}
    batch = [data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(0, 2)))]
    shapes = []
    for term in equation.split("->")[0].split(","):
        lead = [1 if data.draw(st.booleans()) else n for n in batch] if "..." in term else []
        shapes.append(tuple(lead) + tuple(size[c] for c in term.replace("...", "")))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    arrays = [rng.standard_normal(s) for s in shapes]
    mine = [tg.tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = einsum(equation, *mine), torch.einsum(equation, *ref)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL)
    y.sum().backward()
    yt.sum().backward()
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL)


# --- Resize ---------------------------------------------------------------------------------------
def _torch_resize(x, size, mode, antialias):
    """What torchvision's Resize computes on a float tensor batch: F.interpolate."""
    torch = pytest.importorskip("torch")
    kwargs = {"align_corners": False, "antialias": antialias} if mode == "bilinear" else {}
    return torch.nn.functional.interpolate(torch.tensor(x), size=size, mode=mode, **kwargs).numpy()


@pytest.mark.parametrize("hw", [(7, 5), (32, 24), (5, 9), (13, 13), (3, 40)])
@pytest.mark.parametrize("size", [4, (6, 11), 17, (2, 3), 1, (40, 3)])
@pytest.mark.parametrize("mode,antialias", [("bilinear", False), ("bilinear", True), ("nearest", False)])
def test_resize_matches_torch_interpolate(hw, size, mode, antialias):
    x = np.random.default_rng(7).random((2, 3) + hw).astype(np.float32)
    out = Resize(size, interpolation=mode, antialias=antialias)(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _torch_resize(x, out.shape[2:], mode, antialias), rtol=0, atol=1e-5)


@pytest.mark.parametrize("hw,size,expected", [
    ((7, 5), 17, (23, 17)), ((5, 7), 17, (17, 23)), ((6, 6), 4, (4, 4)), ((32, 24), 10, (13, 10)),
    ((3, 40), 2, (2, 26)), ((10, 20), (4, 7), (4, 7)), ((10, 20), [5], (5, 10)),
])
def test_resize_of_one_number_sets_the_smaller_edge_with_torchvisions_rounding(hw, size, expected):
    assert Resize(size)(np.zeros((1, 1) + hw, dtype=np.float32)).shape[2:] == expected


def test_resize_max_size_caps_the_longer_edge_as_torchvision():
    assert Resize(10, max_size=15)(np.zeros((1, 1, 10, 40), dtype=np.float32)).shape[2:] == (3, 15)
    assert Resize(10, max_size=50)(np.zeros((1, 1, 10, 40), dtype=np.float32)).shape[2:] == (10, 40)
    with pytest.raises(ValueError, match="max_size=10 must be larger than size=10"):
        Resize(10, max_size=10)
    with pytest.raises(ValueError, match="only when size is one number"):
        Resize((4, 4), max_size=10)


def test_resize_takes_one_image_as_torchvision_tensor_or_array():
    rng = np.random.default_rng(8)
    chw = rng.random((3, 9, 6)).astype(np.float32)
    out = Resize((4, 5), antialias=False)(tg.tensor(chw))
    assert isinstance(out, tg.Tensor) and out.shape == (3, 4, 5)
    np.testing.assert_allclose(out.numpy(), _torch_resize(chw[None], (4, 5), "bilinear", False)[0], atol=1e-5)
    hwc = np.ascontiguousarray(chw.transpose(1, 2, 0))
    out = Resize(3, interpolation="nearest")(hwc)  # smaller edge 6 -> 3: (9, 6) -> (4, 3)
    assert out.shape == (4, 3, 3)
    np.testing.assert_array_equal(out.transpose(2, 0, 1), _torch_resize(chw[None], (4, 3), "nearest", False)[0])
    gray = Resize((2, 2), antialias=False)(hwc[:, :, 0])
    assert gray.shape == (2, 2)
    uint8 = (hwc * 255).astype(np.uint8)
    out = Resize((5, 4), antialias=False)(uint8)
    assert out.dtype == np.uint8
    ref = _torch_resize(uint8.transpose(2, 0, 1)[None].astype(np.float32), (5, 4), "bilinear", False)[0]
    # resampled in float32 and rounded, as torchvision: a value within float32 rounding of a .5 tie may round
    # the other way (torch's kernel sums in another order), so one grey level apart at most
    diff = np.abs(out.transpose(2, 0, 1).astype(int) - np.round(ref).astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.9


def test_resize_keeps_float64_and_composes():
    x = np.random.default_rng(9).random((2, 1, 6, 8))
    out = Compose([Resize((3, 4), antialias=False), Resize((6, 8), interpolation="nearest")])(x)
    assert out.dtype == np.float64 and out.shape == x.shape
    np.testing.assert_allclose(out, _torch_resize(_torch_resize(x, (3, 4), "bilinear", False), (6, 8), "nearest",
                                                  False), **TOL)


def test_resize_refuses_bad_arguments():
    with pytest.raises(ValueError, match="interpolation must be 'bilinear' or 'nearest'"):
        Resize(4, interpolation="bicubic")
    with pytest.raises(ValueError, match="size must be a positive int"):
        Resize((1, 2, 3))
    with pytest.raises(ValueError, match="size must be a positive int"):
        Resize(0)
    with pytest.raises(ValueError, match="Resize expects an NCHW batch"):
        Resize(4)(np.zeros((2, 3, 4, 5, 6)))


# --- RandomResizedCrop ---------------------------------------------------------------------------
def test_random_resized_crop_is_a_resize_of_the_crop_get_params_draws():
    x = np.random.default_rng(11).random((3, 2, 12, 16)).astype(np.float32)
    t = RandomResizedCrop((5, 6), scale=(0.2, 0.9), antialias=False)
    out = t(x, rng=np.random.default_rng(12))
    assert out.shape == (3, 2, 5, 6) and out.dtype == np.float32
    g = np.random.default_rng(12)  # the same draws, one crop per sample
    for k in range(3):
        top, left, h, w = RandomResizedCrop.get_params(12, 16, (0.2, 0.9), (3 / 4, 4 / 3), g)
        assert 0 <= top <= 12 - h and 0 <= left <= 16 - w
        assert 0.2 * 192 * 0.5 <= h * w <= 0.9 * 192 * 1.5  # the drawn area, up to rounding of h and w
        crop = x[k:k + 1, :, top:top + h, left:left + w]
        np.testing.assert_allclose(out[k], _torch_resize(crop, (5, 6), "bilinear", False)[0], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(t(x, rng=np.random.default_rng(12)), out)  # reproducible


def test_random_resized_crop_of_the_whole_image_is_resize():
    x = np.random.default_rng(13).random((2, 1, 8, 12)).astype(np.float32)
    whole = RandomResizedCrop(4, scale=(1.0, 1.0), ratio=(1.5, 1.5), interpolation="nearest")
    np.testing.assert_array_equal(whole(x, rng=0), Resize((4, 4), interpolation="nearest")(x))


def test_random_resized_crop_falls_back_to_torchvisions_central_crop():
    never = np.random.default_rng(0)  # scale > 1: no try fits, so the central crop of the nearest ratio
    assert RandomResizedCrop.get_params(10, 40, (2.0, 3.0), (0.5, 2.0), never) == (0, 10, 10, 20)
    assert RandomResizedCrop.get_params(40, 10, (2.0, 3.0), (0.5, 2.0), never) == (10, 0, 20, 10)
    assert RandomResizedCrop.get_params(10, 12, (2.0, 3.0), (0.5, 2.0), never) == (0, 0, 10, 12)


def test_random_resized_crop_takes_one_image_and_checks_its_arguments():
    img = tg.tensor(np.random.default_rng(14).random((3, 10, 10)).astype(np.float32))
    out = RandomResizedCrop(4)(img, rng=1)
    assert isinstance(out, tg.Tensor) and out.shape == (3, 4, 4)
    with pytest.raises(ValueError, match="must be .min, max. ranges"):
        RandomResizedCrop(4, scale=(1.0, 0.5))
    with pytest.raises(ValueError, match="interpolation must be"):
        RandomResizedCrop(4, interpolation="area")


# --- on the "cuda" device (the CPU emulation here; a real GPU where there is one) ----------------------
def test_scatter_and_einsum_on_cuda_match_the_cpu(cuda):
    rng = np.random.default_rng(10)
    x, s, w = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal((4, 3))
    index = np.array([[0, 1, 2, 0], [2, 0, 0, 1]])

    def run(device):
        xs = [tg.tensor(a, requires_grad=True, device=device) for a in (x, s, w)]
        i = tg.tensor(index, device=device)
        y = xs[0].scatter_add(0, i, xs[1]) + xs[0].scatter(0, i, xs[1]) + einsum("ij,jk,kj->ij", xs[0], xs[2], xs[2].T)
        y.sum().backward()
        z = tg.zeros(3, 4, device=device).scatter_(1, tg.tensor(np.array([[1], [0], [3]]), device=device), 1.0)
        assert y.device == z.device == device
        return [y.detach().to("cpu").numpy(), z.to("cpu").numpy()] + [t.grad.to("cpu").numpy() for t in xs]

    for got, ref in zip(run(cuda), run("cpu")):
        np.testing.assert_allclose(got, ref, **TOL)
    with pytest.raises(RuntimeError, match=r"scatter \(index\): tensors are on different devices"):
        tg.zeros(3, 4, device=cuda).scatter(0, tg.tensor(index), value=1.0)
    with pytest.raises(RuntimeError, match=r"einsum\(\): the operands are on different devices"):
        einsum("i,i", tg.ones(2, device=cuda), tg.ones(2))
