"""More PyTorch ops for ported scripts: nn.RNNCell / LSTMCell / GRUCell, F.scaled_dot_product_attention,
and the Tensor methods (and torch.* functions) cummax, cummin, logcumsumexp, acosh, asinh, atanh, copysign,
lerp, logaddexp, diagonal, masked_select, div(rounding_mode=), << and >>, std_mean, var_mean, unflatten,
isclose with scalars and meshgrid. Values, shapes, dtypes and gradients against torch (float64 at
rtol 1e-10 / atol 1e-12)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tinygrad_course as tg
from tinygrad_course import nn
from tinygrad_course.nn import functional as F

TOL = dict(rtol=1e-10, atol=1e-12)


def _close(actual, expected, **tol):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), **{**TOL, **tol})


def _np(t):
    """A tinygrad_course or torch tensor as a NumPy array."""
    return t.detach().numpy()


def _both(torch, ours, theirs, *arrays, seed=99):
    """ours(*tensors) and theirs(*torch tensors) on the same float64 arrays: outputs (tuples compared
    element by element) and the gradient of every input for one random output gradient must agree."""
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ours(*xs), theirs(*ts)
    assert out.shape == tuple(ref.shape) and out.dtype == np.float64
    _close(_np(out), _np(ref))
    g = np.random.default_rng(seed).standard_normal(out.shape)
    (out * tg.tensor(g)).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    for x, t in zip(xs, ts):
        _close(x.grad.numpy(), t.grad.numpy())
    return out, ref


# --- recurrent cells ------------------------------------------------------------------------------
CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("RNNCell", {"bias": False}),
         ("LSTMCell", {}), ("LSTMCell", {"bias": False}), ("GRUCell", {}), ("GRUCell", {"bias": False})]


def _cell_pair(torch, name, kwargs, input_size=3, hidden_size=4):
    """Our cell and torch's in float64 with torch's weights copied into ours."""
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(input_size, hidden_size, dtype=torch.float64, **kwargs)
    ours = getattr(nn, name)(input_size, hidden_size, dtype=tg.float64, **kwargs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert p.shape == tuple(q.shape)
        p.data = tg.tensor(_np(q))
    return ours, theirs


@pytest.mark.parametrize("name,kwargs", CELLS)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_cells_match_torch_values_and_gradients(name, kwargs, batched, with_state):
    torch = pytest.importorskip("torch")
    ours, theirs = _cell_pair(torch, name, kwargs)
    rng = np.random.default_rng(1)
    lead = (5,) if batched else ()
    x = rng.standard_normal(lead + (3,))
    states = [rng.standard_normal(lead + (4,)) for _ in range(2 if name == "LSTMCell" else 1)] if with_state else []
    xs = [tg.tensor(a, requires_grad=True) for a in (x, *states)]
    ts = [torch.tensor(a, requires_grad=True) for a in (x, *states)]
    hx = None if not with_state else (tuple(xs[1:]) if name == "LSTMCell" else xs[1])
    hx_t = None if not with_state else (tuple(ts[1:]) if name == "LSTMCell" else ts[1])
    out, ref = ours(xs[0], hx), theirs(ts[0], hx_t)
    out, ref = (out, ref) if name == "LSTMCell" else ((out,), (ref,))
    assert isinstance(out, tuple) and len(out) == len(ref)
    loss, loss_t = 0, 0
    for k, (o, r) in enumerate(zip(out, ref)):
        assert o.shape == tuple(r.shape) == lead + (4,) and o.dtype == np.float64
        _close(_np(o), _np(r))
        g = rng.standard_normal(o.shape)
        loss, loss_t = loss + (o * tg.tensor(g)).sum(), loss_t + (r * torch.tensor(g)).sum()
    loss.backward()
    loss_t.backward()
    for x_, t_ in zip(xs, ts):
        _close(x_.grad.numpy(), t_.grad.numpy())
    for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        _close(p.grad.numpy(), q.grad.numpy(), err_msg=n)


@pytest.mark.parametrize("name,gates", [("RNNCell", 1), ("LSTMCell", 4), ("GRUCell", 3)])
def test_cells_default_init_shapes_dtype_and_bounds(name, gates):
    tg.manual_seed(0)
    cell = getattr(nn, name)(6, 25)
    shapes = {n: p.shape for n, p in cell.named_parameters()}
    assert shapes == {"weight_ih": (gates * 25, 6), "weight_hh": (gates * 25, 25), "bias_ih": (gates * 25,),
                      "bias_hh": (gates * 25,)}
    bound = 1 / math.sqrt(25)
    for n, p in cell.named_parameters():
        a = p.detach().numpy()
        assert p.dtype == np.float32 and p.requires_grad
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.8 * bound, n  # U(-bound, bound), not zeros
        assert a.min() < 0 < a.max()
    assert getattr(nn, name)(6, 25, bias=False).bias_ih is None


def test_cells_reject_bad_input_and_state_shapes():
    cell = nn.GRUCell(3, 4)
    with pytest.raises(ValueError, match=r"expected input \(N, 3\)"):
        cell(tg.zeros(2, 5))
    with pytest.raises(ValueError, match="hx of shape"):
        cell(tg.zeros(2, 3), tg.zeros(3, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match=r"pair \(h, c\)"):
        nn.LSTMCell(3, 4)(tg.zeros(2, 3), tg.zeros(2, 4))


def test_cells_repr_matches_torch():
    torch = pytest.importorskip("torch")
    for name, kwargs in CELLS:
        assert repr(getattr(nn, name)(3, 4, **kwargs)) == repr(getattr(torch.nn, name)(3, 4, **kwargs))


def test_lstm_layer_step_equals_lstm_cell():
    """The sequence layer and the cell share one step function: the same weights give the same states."""
    tg.manual_seed(3)
    layer, cell = nn.LSTM(3, 4, dtype=tg.float64), nn.LSTMCell(3, 4, dtype=tg.float64)
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, kind).data = getattr(layer, f"{kind}_l0").detach().clone()
    x = tg.tensor(np.random.default_rng(4).standard_normal((6, 2, 3)))
    out, (h, c) = layer(x)
    state = None
    for t in range(6):
        state = cell(x[t], state)
        _close(_np(state[0]), _np(out[t]))
    _close(_np(state[0]), _np(h[0]))
    _close(_np(state[1]), _np(c[0]))


# --- scaled_dot_product_attention ----------------------------------------------------------------
SDPA_CASES = [
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2), {}),
    ((2, 3, 4, 5), (3, 6, 5), (3, 6, 5), {}),  # leading batch dims broadcast
    ((4, 5), (6, 5), (6, 2), {"scale": 0.25}),
    ((2, 4, 5), (2, 4, 5), (2, 4, 3), {"is_causal": True}),
    ((2, 3, 5), (2, 6, 5), (2, 6, 2), {"is_causal": True}),  # L != S: torch's tril of (L, S)
    ((2, 4, 5), (2, 6, 5), (2, 6, 3), {"float_mask": (4, 6)}),
    ((2, 4, 5), (2, 6, 5), (2, 6, 3), {"bool_mask": (2, 1, 6)}),
]


@pytest.mark.parametrize("q,k,v,opts", SDPA_CASES)
def test_scaled_dot_product_attention_matches_torch(q, k, v, opts):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s) for s in (q, k, v)]
    opts = dict(opts)
    if "float_mask" in opts:
        opts["attn_mask"] = rng.standard_normal(opts.pop("float_mask"))
    if "bool_mask" in opts:
        mask = rng.random(opts.pop("bool_mask")) < 0.6
        mask[..., 0] = True  # every query attends somewhere
        opts["attn_mask"] = mask
    mask = opts.pop("attn_mask", None)
    ours_mask = None if mask is None else tg.tensor(mask)
    torch_mask = None if mask is None else torch.tensor(mask)
    _both(torch, lambda *t: F.scaled_dot_product_attention(*t, attn_mask=ours_mask, **opts),
          lambda *t: torch.nn.functional.scaled_dot_product_attention(*t, attn_mask=torch_mask, **opts), *arrays)


def test_scaled_dot_product_attention_options_and_errors():
    q = tg.tensor(np.random.default_rng(6).standard_normal((2, 3, 4)))
    with pytest.raises(NotImplementedError, match="enable_gqa"):
        F.scaled_dot_product_attention(q, q, q, enable_gqa=True)
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=tg.ones(3, 3, dtype=tg.bool), is_causal=True)
    with pytest.raises(ValueError, match="must agree"):
        F.scaled_dot_product_attention(q, q[..., :2], q)
    plain = F.scaled_dot_product_attention(q, q, q)
    tg.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    tg.manual_seed(0)
    again = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    assert dropped.shape == plain.shape and not np.allclose(dropped.numpy(), plain.numpy())
    _close(dropped.numpy(), again.numpy())


def test_multihead_attention_still_matches_torch_with_masks():
    """MultiheadAttention now computes through scaled_dot_product_attention's code: masks keep torch's meaning."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(6, 2, dtype=torch.float64)
    ours = nn.MultiheadAttention(6, 2, dtype=tg.float64)
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        p.data = tg.tensor(_np(q))
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 6))
    attn = np.triu(np.ones((4, 4), dtype=bool), 1)
    padding = np.zeros((3, 4), dtype=bool)
    padding[1, 3] = True
    out, w = ours(*(tg.tensor(x),) * 3, key_padding_mask=tg.tensor(padding), attn_mask=tg.tensor(attn))
    ref, wt = theirs(*(torch.tensor(x),) * 3, key_padding_mask=torch.tensor(padding), attn_mask=torch.tensor(attn))
    _close(_np(out), _np(ref))
    _close(_np(w), _np(wt))
    float_mask = rng.standard_normal((6, 4, 4))  # (N * heads, L, S)
    out, _ = ours(*(tg.tensor(x),) * 3, attn_mask=tg.tensor(float_mask), average_attn_weights=False)
    ref, _ = theirs(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(float_mask), average_attn_weights=False)
    _close(_np(out), _np(ref))


# --- cummax / cummin / logcumsumexp ----------------------------------------------------------------
@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cummax_cummin_match_torch_values_indices_and_gradients(op, dim):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(8).standard_normal((4, 5))
    out, ref = _both(torch, lambda x: getattr(x, op)(dim).values, lambda t: getattr(t, op)(dim).values, a)
    result = getattr(tg, op)(tg.tensor(a), dim=dim)
    values, indices = result
    assert result.values is values and indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), getattr(torch, op)(torch.tensor(a), dim).indices.numpy())


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_cummin_ties_nans_and_integers_as_torch(op):
    torch = pytest.importorskip("torch")
    for a in (np.array([1.0, 1.0, 0.0, 2.0, 2.0, -1.0]), np.array([1.0, np.nan, 3.0, np.nan, -5.0]),
              np.array([[3, 1, 3, 0], [0, 0, 2, 2]], dtype=np.int64)):
        ours, theirs = getattr(tg.tensor(a), op)(-1), getattr(torch.tensor(a), op)(-1)
        assert ours.values.dtype == a.dtype
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_logcumsumexp_matches_torch(dim):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(9).standard_normal((3, 4)) * 3
    _both(torch, lambda x: x.logcumsumexp(dim), lambda t: t.logcumsumexp(dim), a)
    big = np.array([1000.0, 1001.0, -1000.0, 999.0])  # exp() would overflow
    _close(tg.logcumsumexp(tg.tensor(big), 0).numpy(), torch.logcumsumexp(torch.tensor(big), 0).numpy())
    _both(torch, lambda x: x.logcumsumexp(0), lambda t: t.logcumsumexp(0), big)


# --- elementwise ------------------------------------------------------------------------------------
@pytest.mark.parametrize("op,lo,hi", [("asinh", -3, 3), ("acosh", 1.1, 4), ("atanh", -0.9, 0.9)])
def test_inverse_hyperbolic_functions_match_torch(op, lo, hi):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(10).uniform(lo, hi, (3, 4))
    _both(torch, lambda x: getattr(x, op)(), lambda t: getattr(t, op)(), a)
    _close(getattr(tg, op)(tg.tensor(a)).numpy(), getattr(torch, op)(torch.tensor(a)).numpy())
    ints = getattr(tg, op)(tg.tensor([1, 2]) if op != "atanh" else tg.tensor([0, 0]))
    assert ints.dtype == np.float32  # integers become the default float, as in PyTorch


def test_copysign_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    _both(torch, lambda x, y: x.copysign(y), lambda s, t: s.copysign(t), a, b)
    signed = tg.copysign(tg.tensor([1.0, -2.0, 3.0]), -0.0).numpy()
    np.testing.assert_array_equal(signed, torch.copysign(torch.tensor([1.0, -2.0, 3.0]), -0.0).numpy())
    ints = tg.tensor([1, -2]).copysign(tg.tensor([-1, 1]))
    assert ints.dtype == np.float32
    np.testing.assert_array_equal(ints.numpy(), [-1.0, 2.0])


def test_lerp_and_logaddexp_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    a, b, w = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.uniform(0, 1, (3,))
    _both(torch, lambda x, y: x.lerp(y, 0.3), lambda s, t: s.lerp(t, 0.3), a, b)
    _both(torch, lambda x, y, z: tg.lerp(x, y, z), lambda s, t, u: torch.lerp(s, t, u), a, b, w)
    _both(torch, lambda x, y: x.logaddexp(y), lambda s, t: s.logaddexp(t), a, b[:1])
    big = np.array([1000.0, -1000.0, 3.0, -np.inf])
    _close(tg.logaddexp(tg.tensor(big), tg.tensor(big[::-1].copy())).numpy(),
           torch.logaddexp(torch.tensor(big), torch.tensor(big[::-1].copy())).numpy())
    _close(tg.tensor(a).logaddexp(2.0).numpy(), torch.tensor(a).logaddexp(torch.tensor(2.0)).numpy())


@pytest.mark.parametrize("mode", [None, "trunc", "floor"])
def test_div_rounding_modes_match_torch(mode):
    torch = pytest.importorskip("torch")
    ints = np.array([-7, -6, 7, 8, 0], dtype=np.int64)
    floats = np.array([-7.5, -6.0, 7.25, 8.0, 0.5])
    for a, b in ((ints, 2), (ints, np.array([2, -4, -3, 3, 5])), (floats, 2.0), (floats, -1.5)):
        ours = tg.tensor(a).div(tg.tensor(b) if isinstance(b, np.ndarray) else b, rounding_mode=mode)
        theirs = torch.tensor(a).div(torch.tensor(b) if isinstance(b, np.ndarray) else b, rounding_mode=mode)
        assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
        _close(ours.numpy(), theirs.numpy())
        _close(tg.div(tg.tensor(a), b, rounding_mode=mode).numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="rounding_mode"):
        tg.tensor([1.0]).div(2, rounding_mode="round")


def test_div_without_rounding_mode_is_differentiable():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    _both(torch, lambda x, y: x.div(y), lambda s, t: s.div(t), rng.standard_normal((2, 3)), rng.uniform(1, 2, (3,)))


def test_shifts_of_integer_tensors_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([1, -8, 5, 0], dtype=np.int64)
    for ours, theirs in ((tg.tensor(a) << 2, torch.tensor(a) << 2), (tg.tensor(a) >> 1, torch.tensor(a) >> 1),
                         (tg.tensor(a) << tg.tensor([0, 1, 2, 3]), torch.tensor(a) << torch.tensor([0, 1, 2, 3])),
                         (3 << tg.tensor([1, 2]), 3 << torch.tensor([1, 2])),
                         (64 >> tg.tensor([1, 2]), 64 >> torch.tensor([1, 2]))):
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert (tg.tensor([1, 2], dtype=tg.int32) << 3).dtype == np.int32
    with pytest.raises(TypeError, match="integer"):
        tg.tensor([1.0]) << 1
    with pytest.raises(TypeError, match="integer"):
        tg.tensor([1]) >> 1.5


# --- shapes: diagonal, masked_select, unflatten, meshgrid --------------------------------------------
@pytest.mark.parametrize("offset,dim1,dim2", [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (2, 1, 2), (0, 2, 0),
                                              (-2, -1, 1), (5, 0, 1)])
def test_diagonal_matches_torch(offset, dim1, dim2):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(14).standard_normal((3, 4, 5))
    _both(torch, lambda x: x.diagonal(offset, dim1, dim2), lambda t: t.diagonal(offset, dim1, dim2), a)
    _close(tg.diagonal(tg.tensor(a), offset=offset, dim1=dim1, dim2=dim2).numpy(),
           torch.diagonal(torch.tensor(a), offset=offset, dim1=dim1, dim2=dim2).numpy())
    with pytest.raises(ValueError, match="dim1 and dim2"):
        tg.tensor(a).diagonal(0, 1, -2)


def test_masked_select_matches_torch_with_broadcasting():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    a = rng.standard_normal((3, 4))
    for mask in (a > 0, rng.random((4,)) > 0.5, rng.random((2, 3, 1)) > 0.3):
        _both(torch, lambda x: x.masked_select(tg.tensor(mask)), lambda t: t.masked_select(torch.tensor(mask)), a)
        _close(tg.masked_select(tg.tensor(a), tg.tensor(mask)).numpy(),
               torch.masked_select(torch.tensor(a), torch.tensor(mask)).numpy())
    with pytest.raises(TypeError, match="bool Tensor"):
        tg.tensor(a).masked_select(tg.tensor(a))


def test_unflatten_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.arange(24.0).reshape(2, 12)
    for dim, sizes in ((1, (3, 4)), (-1, (2, -1, 3)), (0, (1, 2)), (1, (12,))):
        ours = tg.tensor(a).unflatten(dim, sizes)
        theirs = torch.tensor(a).unflatten(dim, sizes)
        assert ours.shape == tuple(theirs.shape)
        _close(ours.numpy(), theirs.numpy())
        assert tg.unflatten(tg.tensor(a), dim, sizes).shape == ours.shape
    _both(torch, lambda x: x.unflatten(1, (3, 4)), lambda t: t.unflatten(1, (3, 4)), a)
    with pytest.raises(ValueError, match="sizes"):
        tg.tensor(a).unflatten(1, (5, 2))
    with pytest.raises(ValueError, match="sizes"):
        tg.tensor(a).unflatten(1, (-1, -1))


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid_matches_torch(indexing):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    arrays = [rng.standard_normal(n) for n in (2, 3, 4)]
    ours = tg.meshgrid(*[tg.tensor(a, requires_grad=True) for a in arrays], indexing=indexing)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    theirs = torch.meshgrid(*ts, indexing=indexing)
    assert len(ours) == 3
    for o, t in zip(ours, theirs):
        assert o.shape == tuple(t.shape)
        _close(_np(o), _np(t))
    listed = tg.meshgrid([tg.tensor(a) for a in arrays[:2]], indexing=indexing)
    for o, t in zip(listed, torch.meshgrid([torch.tensor(a) for a in arrays[:2]], indexing=indexing)):
        _close(o.numpy(), t.numpy())
    _both(torch, lambda x, y: tg.meshgrid(x, y, indexing=indexing)[0] * tg.meshgrid(x, y, indexing=indexing)[1],
          lambda s, t: torch.meshgrid(s, t, indexing=indexing)[0] * torch.meshgrid(s, t, indexing=indexing)[1],
          *arrays[:2])


def test_meshgrid_warns_without_indexing_and_uses_ij():
    with pytest.warns(UserWarning, match="indexing"):
        grids = tg.meshgrid(tg.arange(2), tg.arange(3))
    assert [g.shape for g in grids] == [(2, 3), (2, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.meshgrid(tg.arange(2), tg.arange(3), indexing="ij")
    with pytest.raises(ValueError, match="indexing"):
        tg.meshgrid(tg.arange(2), indexing="yx")
    with pytest.raises(ValueError, match="1-D"):
        tg.meshgrid(tg.zeros(2, 2), indexing="ij")


# --- statistics and comparisons ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["std_mean", "var_mean"])
@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": (0, 2), "keepdim": True}, {"dim": 0, "correction": 0}])
def test_std_mean_and_var_mean_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(17).standard_normal((3, 4, 2))
    ours, theirs = getattr(tg, name)(tg.tensor(a), **kwargs), getattr(torch, name)(torch.tensor(a), **kwargs)
    assert isinstance(ours, tuple) and len(ours) == 2
    for o, t in zip(ours, theirs):
        assert o.shape == tuple(t.shape)
        _close(o.numpy(), t.numpy())
    _both(torch, lambda x: getattr(tg, name)(x, **kwargs)[0] * getattr(tg, name)(x, **kwargs)[1],
          lambda t: getattr(torch, name)(t, **kwargs)[0] * getattr(torch, name)(t, **kwargs)[1], a)


def test_isclose_takes_scalars_and_arrays():
    """torch.isclose wants a Tensor for other; a number or array is taken here (it used to raise a raw
    AttributeError) and gives what torch gives for the same value as a tensor."""
    torch = pytest.importorskip("torch")
    a = np.array([1.0, 1.0 + 1e-9, 1.1, np.nan])
    x, t = tg.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal(x.isclose(1.0).numpy(), t.isclose(torch.tensor(1.0, dtype=t.dtype)).numpy())
    np.testing.assert_array_equal(tg.isclose(x, 1.1, rtol=0, atol=1e-12).numpy(),
                                  torch.isclose(t, torch.full_like(t, 1.1), rtol=0, atol=1e-12).numpy())
    np.testing.assert_array_equal(x.isclose(a.tolist(), equal_nan=True).numpy(),
                                  t.isclose(t, equal_nan=True).numpy())
    np.testing.assert_array_equal(x.isclose(tg.tensor(a)).numpy(), t.isclose(t).numpy())
    assert x.isclose(a).dtype == np.bool_


def test_new_module_level_functions_are_exported():
    for name in ("cummax", "cummin", "logcumsumexp", "acosh", "asinh", "atanh", "copysign", "lerp", "logaddexp",
                 "diagonal", "masked_select", "unflatten", "meshgrid", "std_mean", "var_mean"):
        assert callable(getattr(tg, name)) and name in tg.__all__, name
    for name in ("RNNCell", "LSTMCell", "GRUCell"):
        assert name in nn.__all__
    assert "scaled_dot_product_attention" in F.__all__


# --- interpolate(mode="nearest-exact") -------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"size": (7, 3)}, {"size": 5}, {"scale_factor": 2}, {"scale_factor": 1.7},
                                    {"scale_factor": (0.5, 3)}, {"size": (4, 6)}, {"size": (2, 2)}])
def test_interpolate_nearest_exact_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(18).standard_normal((2, 3, 4, 6))
    _both(torch, lambda x: F.interpolate(x, mode="nearest-exact", **kwargs),
          lambda t: torch.nn.functional.interpolate(t, mode="nearest-exact", **kwargs), a)
    up = nn.Upsample(mode="nearest-exact", **kwargs)
    _close(up(tg.tensor(a)).numpy(),
           torch.nn.Upsample(mode="nearest-exact", **kwargs)(torch.tensor(a)).numpy())
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(tg.tensor(a), mode="nearest-exact", align_corners=True, **kwargs)


def test_logcumsumexp_gradient_stays_finite_far_apart_as_torch():
    torch = pytest.importorskip("torch")
    for dtype in ("float32", "float64"):
        x = tg.tensor(np.array([0.0, 100.0, -30.0]), dtype=dtype, requires_grad=True)
        tx = torch.tensor([0.0, 100.0, -30.0], dtype=getattr(torch, dtype), requires_grad=True)
        g = np.array([1.0, -2.0, 0.5])
        tg.logcumsumexp(x, 0).backward(tg.tensor(g, dtype=dtype))
        torch.logcumsumexp(tx, 0).backward(torch.tensor(g, dtype=getattr(torch, dtype)))
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("name", ["cummax", "cummin", "logcumsumexp", "cumsum"])
def test_cumulative_ops_of_a_zero_dim_tensor_check_dim_as_torch(name):
    torch = pytest.importorskip("torch")
    out = getattr(tg, name)(tg.tensor(1.5), -1)
    assert float(out[0] if isinstance(out, tuple) else out) == 1.5
    for lib in (tg, torch):
        with pytest.raises(IndexError):
            getattr(lib, name)(lib.tensor(1.0), 1)


def test_var_with_no_degrees_of_freedom_left_is_inf_or_nan_as_torch():
    torch = pytest.importorskip("torch")
    for correction in (3, 5):
        with pytest.warns(UserWarning, match="degrees of freedom"):
            ours = tg.tensor([1.0, 2.0, 3.0]).var(correction=correction)
        with pytest.warns(UserWarning):
            theirs = torch.tensor([1.0, 2.0, 3.0]).var(correction=correction)
        assert ours.item() == theirs.item() == math.inf
