"""Hypothesis strategies for transposed convolution and interpolation arguments (used by the gradcheck,
torch-oracle and segmentation-op tests)."""
from __future__ import annotations

import math

from hypothesis import strategies as st

INTERP_MODES = (("nearest", False), ("bilinear", False), ("bilinear", True))
SCALES = (0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0)


def conv_transpose_out(size, kernel, stride, padding, output_padding, dilation):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


@st.composite
def conv_transpose2d_configs(draw, max_batch=2, max_channels=4, max_kernel=3, max_stride=3, max_dilation=2,
                             max_input_elems=40, max_weight_elems=40):
    """Valid conv_transpose2d arguments: dict with x_shape, w_shape (C_in, C_out/groups, kh, kw), stride,
    padding, output_padding (< stride or dilation), dilation, groups, bias; the output is non-empty."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, max(1, max_channels // groups)))
    cout_g = draw(st.integers(1, max(1, max_channels // groups)))
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    dilation = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))
    padding = tuple(draw(st.integers(0, k)) for k in kernel)
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    hw = []
    for i in range(2):
        # smallest input with a non-empty output, plus a few more rows/columns
        short = 2 * padding[i] - dilation[i] * (kernel[i] - 1) - output_padding[i]
        low = 1 + max(0, math.ceil(short / stride[i]))
        hw.append(low + draw(st.integers(0, 2)))
    n = draw(st.integers(1, max_batch))
    while n * cin * hw[0] * hw[1] > max_input_elems and n > 1:
        n -= 1
    while cin * cout_g * kernel[0] * kernel[1] > max_weight_elems and cout_g > 1:
        cout_g -= 1
    return dict(x_shape=(n, cin) + tuple(hw), w_shape=(cin, cout_g) + kernel, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))


@st.composite
def interpolate_configs(draw, max_side=5, max_out=7):
    """dict(x_shape, mode, align_corners, kwargs) for F.interpolate: a size or a scale factor (scalar or pair)."""
    mode, align = draw(st.sampled_from(INTERP_MODES))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w)
    if draw(st.booleans()):
        size = (draw(st.integers(1, max_out)), draw(st.integers(1, max_out)))
        kwargs = dict(size=size if size[0] != size[1] or draw(st.booleans()) else size[0])
    else:
        sh = draw(st.sampled_from([s for s in SCALES if math.floor(h * s) >= 1]))
        sw = draw(st.sampled_from([s for s in SCALES if math.floor(w * s) >= 1]))
        kwargs = dict(scale_factor=sh if sh == sw and draw(st.booleans()) else (sh, sw))
    return dict(x_shape=shape, mode=mode, align_corners=align, kwargs=kwargs)
