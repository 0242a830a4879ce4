"""Hypothesis strategies shared by the op tests: shapes, broadcast pairs, arrays and memory layouts.

Arrays are drawn element by element from hypothesis (so failures shrink to simple values) and are then
*separated* where an op has a kink: `away_from` pushes values out of a band around given points (0 for
abs/relu, the bounds of clamp), `distinct` spreads values so no two are closer than a gap (max/min,
max-pool without ties). The gaps are far larger than gradcheck's eps (1e-6), so finite differences never
straddle a kink.

Layouts: every array strategy can return a non-contiguous view, because stride bugs hide there:

* "contiguous"      a fresh C-contiguous array;
* "fortran"         column-major copy;
* "permuted"        a transpose of a fresh array whose axes were laid out in another order;
* "sliced"          a slice with steps (also negative) and offsets out of a larger fresh array;
* "permuted_sliced" both;
* "broadcast"       a stride-0 view (np.broadcast_to) of a smaller array -- READ-ONLY.

gradcheck perturbs its inputs in place, so gradcheck inputs must be writeable: use
`WRITEABLE_LAYOUTS` there (views of a fresh array are writeable and perturbing them writes through to
the base). `ALL_LAYOUTS` (with "broadcast") is for forward-only comparisons.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

WRITEABLE_LAYOUTS = ("contiguous", "fortran", "permuted", "sliced", "permuted_sliced")
ALL_LAYOUTS = WRITEABLE_LAYOUTS + ("broadcast",)

# odd sizes: 1 and small primes, where blocked/vectorised kernels have ragged edges
ODD_SIZES = (1, 2, 3, 5, 7, 11, 13)


# --- shapes ---------------------------------------------------------------------------------------
def _shrink_to_budget(shape, max_size, min_side):
    shape = list(shape)
    while shape and math.prod(shape) > max_size:
        i = int(np.argmax(shape))
        if shape[i] <= min_side:
            break
        shape[i] -= 1
    return tuple(shape)


@st.composite
def shapes(draw, min_dims=0, max_dims=4, min_side=1, max_side=5, max_size=60):
    """A shape with min_dims..max_dims axes of min_side..max_side, at most max_size elements."""
    ndim = draw(st.integers(min_dims, max_dims))
    shape = tuple(draw(st.integers(min_side, max_side)) for _ in range(ndim))
    return _shrink_to_budget(shape, max_size, min_side)


@st.composite
def broadcast_shapes(draw, num_shapes=2, min_dims=0, max_dims=4, max_side=4, max_size=48):
    """(input_shapes, result_shape): shapes that broadcast together to result_shape.

    Each input drops some leading axes of the result and sets some remaining axes to 1.
    """
    result = draw(shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side, max_size=max_size))
    inputs = []
    for _ in range(num_shapes):
        drop = draw(st.integers(0, len(result)))
        shape = tuple(1 if draw(st.booleans()) and draw(st.booleans()) else s for s in result[drop:])
        inputs.append(shape)
    # the result must really be the broadcast of the inputs (every axis covered by some input)
    full = np.broadcast_shapes(*inputs) if inputs else ()
    if full != result:
        inputs[0] = result
    return tuple(inputs), result


def axis_args(ndim):
    """Axis arguments for reductions: None, an int (possibly negative) or a tuple (possibly negative)."""
    if ndim == 0:
        return st.none()
    ints = st.integers(-ndim, ndim - 1)
    tuples = st.lists(ints, min_size=1, max_size=ndim, unique_by=lambda a: a % ndim).map(tuple)
    return st.one_of(st.none(), ints, tuples)


def normalise_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in axes))


# --- value separation -------------------------------------------------------------------------
def away_from(x, points=(0.0,), gap=1e-2):
    """Squeeze the band [p - 2 gap, p + 2 gap] around each point p so no value is closer than gap to p.

    The map is strictly increasing and the identity outside the bands (so separating from one point
    never moves values towards another one, given points more than 4 gap apart); it halves distances
    inside a band.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    for p in points:
        below = (x >= p - 2 * gap) & (x < p)
        above = (x >= p) & (x <= p + 2 * gap)
        x[below] = p - gap + (x[below] - p) / 2   # [p - 2g, p) -> [p - 2g, p - g)
        x[above] = p + gap + (x[above] - p) / 2   # [p, p + 2g] -> [p + g, p + 2g]
    return x


def distinct(x, gap=1e-3):
    """Spread values so that any two differ by at least `gap` (order kept, shifts <= size * gap)."""
    flat = np.array(x, dtype=np.float64, copy=True).ravel()
    if flat.size < 2:
        return flat.reshape(np.shape(x))
    order = np.argsort(flat, kind="stable")
    vals = flat[order]
    for i in range(1, vals.size):
        if vals[i] < vals[i - 1] + gap:
            vals[i] = vals[i - 1] + gap
    flat[order] = vals
    return flat.reshape(np.shape(x))


def separate(x, away=None, gap=1e-2, distinct_gap=None):
    """Values pairwise >= distinct_gap apart (if given) and >= gap away from the points `away` (if given)."""
    if distinct_gap:
        x = distinct(x, 2 * distinct_gap)  # away_from may halve distances
    if away is not None:
        x = away_from(x, away, gap)
    return np.asarray(x)


# --- arrays ---------------------------------------------------------------------------------
def _elements(lo, hi, dtype):
    if np.dtype(dtype) == np.float32:  # bounds must be float32 numbers: round them inwards
        lo32, hi32 = np.float32(lo), np.float32(hi)
        lo = float(lo32 if lo32 >= lo else np.nextafter(lo32, np.float32(np.inf)))
        hi = float(hi32 if hi32 <= hi else np.nextafter(hi32, np.float32(-np.inf)))
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


# Up to this many elements, every element is drawn by hypothesis (and shrinks); larger arrays (the
# backend-equivalence tests) are filled from a drawn seed, which is much faster and never too large.
MAX_DRAWN_ELEMENTS = 128


def raw_arrays(shape, lo=-2.0, hi=2.0, dtype=np.float64):
    """Fresh C-contiguous arrays with independently drawn elements in [lo, hi]."""
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    if math.prod(shape) > MAX_DRAWN_ELEMENTS:
        return st.integers(0, 2**32 - 1).map(
            lambda seed: np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype))
    return hnp.arrays(dtype, shape, elements=_elements(lo, hi, dtype),
                      fill=st.nothing()).map(np.asarray)  # shape () would give a NumPy scalar


@st.composite
def arrays(draw, shape, lo=-2.0, hi=2.0, dtype=np.float64, layouts=WRITEABLE_LAYOUTS, away=None, gap=1e-2,
           distinct_gap=None, integral=False):
    """An array of exactly `shape` and `dtype` with values in about [lo, hi], in a drawn memory layout.

    integral=True rounds the values to integers (many exact ties, e.g. for max-pooling tie-breaking).
    away / gap / distinct_gap: see `separate` (the view's values are separated in place). For the
    read-only "broadcast" layout the separation applies to the smaller base array, so a broadcast view
    always repeats values: use it only where ties do not matter.
    """
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    layout = draw(st.sampled_from(layouts)) if shape else "contiguous"

    def fill(a):
        if integral:
            a[...] = np.round(a)
        if away is not None or distinct_gap:
            a[...] = separate(a, away, gap, distinct_gap).astype(dtype)
        return a

    if layout == "broadcast":
        keep_from = draw(st.integers(0, len(shape)))  # leading axes [0, keep_from) are new (stride 0)
        base_shape = tuple(1 if draw(st.booleans()) else s for s in shape[keep_from:])
        # the base itself may be permuted/sliced, so stride-0 axes mix with stepped and negative strides
        base = draw(arrays(base_shape, lo, hi, dtype, WRITEABLE_LAYOUTS, away, gap, distinct_gap, integral))
        view = np.broadcast_to(base, shape)
        assert view.shape == shape
        return view

    if layout == "fortran":
        return fill(np.asfortranarray(draw(raw_arrays(shape, lo, hi, dtype))))

    perm = tuple(range(len(shape)))
    if layout in ("permuted", "permuted_sliced"):
        perm = tuple(draw(st.permutations(range(len(shape)))))
    # the view is v = b[slices].transpose(perm); b[slices] has shape pshape with pshape[perm[i]] = shape[i]
    pshape = [0] * len(shape)
    for i, p in enumerate(perm):
        pshape[p] = shape[i]
    slices, base_shape = [], []
    for n in pshape:
        if layout in ("sliced", "permuted_sliced"):
            step = draw(st.sampled_from([1, 2, 3, -1, -2]))
            offset = draw(st.integers(0, 2))
            extra = draw(st.integers(0, 1))
        else:
            step, offset, extra = 1, 0, 0
        a = abs(step)
        size = offset + (n - 1) * a + 1 + extra if n > 0 else offset + extra
        base_shape.append(size)
        if step > 0:
            slices.append(slice(offset, offset + (n - 1) * a + 1 if n > 0 else offset, step))
        else:
            start = offset + (n - 1) * a
            slices.append(slice(start, offset - 1 if offset > 0 else None, step) if n > 0 else slice(0, 0))
    base = draw(raw_arrays(base_shape, lo, hi, dtype))
    view = base[tuple(slices)].transpose(perm) if shape else base  # 0-d: base[()] would be a scalar
    assert view.shape == shape, (view.shape, shape, layout)
    return fill(view)


def as_tensor(array, requires_grad=False):
    """Wrap an array (any layout) in a Tensor without copying."""
    import tinygrad_course as tg

    t = tg.Tensor(array, requires_grad=requires_grad)
    assert t.data is array or np.shares_memory(t.data, array)
    return t


# --- parameters for convolution and pooling --------------------------------------------------------
@st.composite
def conv2d_configs(draw, max_batch=2, max_channels=4, max_kernel=3, max_stride=2, max_dilation=2,
                   max_input_elems=64, max_weight_elems=48):
    """Valid conv2d arguments: dict with x_shape, w_shape, stride, padding, dilation, groups, bias.

    groups divides both channel counts; the input is large enough for a >= 1 output.
    """
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, max(1, max_channels // groups)))
    cout = groups * draw(st.integers(1, max(1, max_channels // groups)))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    dilation = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))
    padding = (draw(st.integers(0, kh)), draw(st.integers(0, kw)))
    n = draw(st.integers(1, max_batch))
    # smallest input giving one output: d*(k-1)+1 - 2p; draw a few more rows/cols on top
    hmin = max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0])
    wmin = max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    h = hmin + draw(st.integers(0, 3))
    w = wmin + draw(st.integers(0, 3))
    # keep gradcheck cheap: shrink the batch, then the spatial extent, to the element budget
    while n * cin * h * w > max_input_elems and n > 1:
        n -= 1
    while n * cin * h * w > max_input_elems and (h > hmin or w > wmin):
        if h > hmin and (h >= w or w == wmin):
            h -= 1
        else:
            w -= 1
    while cout * (cin // groups) * kh * kw > max_weight_elems and cout > groups:
        cout -= groups
    return dict(x_shape=(n, cin, h, w), w_shape=(cout, cin // groups, kh, kw), stride=stride,
                padding=padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))


@st.composite
def pool_configs(draw, max_batch=2, max_channels=2, max_kernel=3, max_stride=3, max_input_elems=60):
    """Valid pooling arguments: dict with x_shape, kernel, stride, padding (<= kernel // 2).

    Windows need not divide the input and the stride may differ from the kernel (overlapping or
    gapped windows).
    """
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    hmin, wmin = max(1, kernel[0] - 2 * padding[0]), max(1, kernel[1] - 2 * padding[1])
    h, w = hmin + draw(st.integers(0, 4)), wmin + draw(st.integers(0, 4))
    while n * c * h * w > max_input_elems and (n > 1 or c > 1):
        if n > 1:
            n -= 1
        else:
            c -= 1
    while n * c * h * w > max_input_elems and (h > hmin or w > wmin):
        if h > hmin and (h >= w or w == wmin):
            h -= 1
        else:
            w -= 1
    return dict(x_shape=(n, c, h, w), kernel=kernel, stride=stride, padding=padding)


def conv_out(size, kernel, stride, padding, dilation=1):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
