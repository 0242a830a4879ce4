"""Segmentation building blocks: transposed convolution, upsampling and the Dice/Jaccard/focal losses.

Gradients are checked in test_gradcheck_ops.py and values against PyTorch in test_torch_oracle.py; here:
the adjoint identity behind ConvTranspose2d, the modules (shapes, PyTorch's default initialisation),
argument errors, dtypes and mask conversions, and the losses' values in cases known by hand.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course import nn
from tinygrad_course.nn import functional as F

from resample_strategies import conv_transpose2d_configs, conv_transpose_out


# --- transposed convolution ----------------------------------------------------------------------
@settings(max_examples=15)
@given(c=conv_transpose2d_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(backend, c, seed):
    # <conv2d(z, w), x> == <z, conv_transpose2d(x, w)> for every z of the transposed output's shape
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(c["x_shape"]), rng.standard_normal(c["w_shape"])
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    y = F.conv_transpose2d(tg.Tensor(x), tg.Tensor(w), output_padding=c["output_padding"], **kw).numpy()
    expected = tuple(conv_transpose_out(c["x_shape"][2 + i], c["w_shape"][2 + i], c["stride"][i], c["padding"][i],
                                        c["output_padding"][i], c["dilation"][i]) for i in range(2))
    assert y.shape == (x.shape[0], w.shape[1] * c["groups"]) + expected
    z = rng.standard_normal(y.shape)
    conv_z = F.conv2d(tg.Tensor(z), tg.Tensor(w), **kw).numpy()
    # output_padding >= stride: conv2d over y sees extra rows/columns beyond x, which meet zeros
    conv_z = conv_z[:, :, :x.shape[2], :x.shape[3]]
    np.testing.assert_allclose((conv_z * x).sum(), (z * y).sum(), rtol=1e-10, atol=1e-10)


def test_conv_transpose2d_doubles_the_size_as_in_a_decoder(backend):
    m = nn.ConvTranspose2d(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1)
    x = tg.randn(2, 8, 5, 7)
    y = m(x)
    assert y.shape == (2, 4, 10, 14) and y.dtype == np.float32
    y.sum().backward()
    assert m.weight.grad.shape == (8, 4, 3, 3) and m.bias.grad.shape == (4,)


def test_conv_transpose2d_module_default_init_follows_pytorch():
    # kaiming_uniform_(a=sqrt(5)) on weight (C_in, C_out/groups, kh, kw): fan_in = C_out/groups * kh * kw
    tg.manual_seed(0)
    m = nn.ConvTranspose2d(6, 20, kernel_size=(3, 2), groups=2)
    assert m.weight.shape == (6, 10, 3, 2) and m.bias.shape == (20,)
    bound = 1 / math.sqrt(10 * 3 * 2)
    for p in (m.weight, m.bias):
        assert np.abs(p.detach().numpy()).max() <= bound
        assert np.abs(p.detach().numpy()).max() > 0.8 * bound
    assert nn.ConvTranspose2d(2, 2, 1, bias=False).bias is None
    assert "output_padding=(1, 1)" in repr(nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=1))


@pytest.mark.parametrize("kwargs, message", [
    (dict(x=(1, 3, 4, 4), w=(2, 2, 3, 3)), "has 3 channels"),
    (dict(x=(1, 3, 4), w=(3, 2, 3, 3)), "4-D input"),
    (dict(x=(1, 4, 4, 4), w=(4, 2, 3, 3), groups=3), "groups=3"),
    (dict(x=(1, 2, 4, 4), w=(2, 2, 3, 3), stride=2, output_padding=2), "output_padding (2, 2)"),
    (dict(x=(1, 2, 4, 4), w=(2, 2, 3, 3), output_padding=1), "smaller than the stride"),
    (dict(x=(1, 2, 1, 1), w=(2, 2, 1, 1), padding=1), "empty output"),
    (dict(x=(1, 2, 4, 4), w=(2, 2, 3, 3), bias=(3,)), "bias shape (3,)"),
    (dict(x=(1, 2, 4, 4), w=(2, 2, 3, 3), stride=0), "must be >= 1"),
])
def test_conv_transpose2d_errors_name_the_shapes(kwargs, message):
    kwargs = dict(kwargs)
    x, w = tg.zeros(*kwargs.pop("x")), tg.zeros(*kwargs.pop("w"))
    bias = kwargs.pop("bias", None)
    with pytest.raises(ValueError) as info:
        F.conv_transpose2d(x, w, None if bias is None else tg.zeros(*bias), **kwargs)
    assert message in str(info.value)


def test_conv_transpose2d_module_rejects_bad_output_padding():
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="groups=2"):
        nn.ConvTranspose2d(3, 2, 3, groups=2)


# --- upsampling -----------------------------------------------------------------------------------
def test_nearest_upsampling_by_two_repeats_pixels_and_sums_gradients(backend):
    x = tg.Tensor(np.arange(6.0).reshape(1, 1, 2, 3), requires_grad=True)
    y = nn.Upsample(scale_factor=2)(x)
    np.testing.assert_array_equal(y.detach().numpy()[0, 0], np.repeat(np.repeat(np.arange(6.0).reshape(2, 3), 2, 0), 2, 1))
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 1, 2, 3), 4.0))


def test_bilinear_align_corners_keeps_the_corners_and_interpolates_linearly(backend):
    x = tg.Tensor(np.array([[[[0.0, 3.0], [6.0, 9.0]]]]))
    y = F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=True).numpy()[0, 0]
    np.testing.assert_allclose(y, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])


def test_bilinear_gradient_is_the_transpose_of_the_interpolation(backend):
    rng = np.random.default_rng(5)
    x, g = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 7, 9))
    for align in (False, True):
        t = tg.Tensor(x.copy(), requires_grad=True)
        y = F.upsample(t, size=(7, 9), mode="bilinear", align_corners=align)
        y.backward(g)
        np.testing.assert_allclose((y.detach().numpy() * g).sum(), (x * t.grad.numpy()).sum(), rtol=1e-12)


def test_upsample_dtypes_and_integer_masks(backend):
    x32 = tg.randn(1, 2, 3, 3)
    assert F.upsample(x32, scale_factor=1.5, mode="bilinear").dtype == np.float32
    mask = tg.Tensor(np.array([[[[0, 1], [1, 0]]]]))
    up = F.interpolate(mask, scale_factor=2)
    assert up.dtype == np.int64 and up.shape == (1, 1, 4, 4)
    with pytest.raises(TypeError, match="float"):
        F.interpolate(mask, scale_factor=2, mode="bilinear")


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "exactly one of size and scale_factor"),
    (dict(size=4, scale_factor=2), "exactly one of size and scale_factor"),
    (dict(size=4, mode="bicubic"), "mode must be"),
    (dict(size=4, align_corners=True), "align_corners=True only applies"),
    (dict(scale_factor=0.1), "would be empty"),
    (dict(scale_factor=-1), "positive"),
])
def test_upsample_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.upsample(tg.zeros(1, 1, 3, 3), **kwargs)
    with pytest.raises(ValueError, match="4-D input"):
        F.upsample(tg.zeros(3, 3), scale_factor=2)


def test_upsample_module_repr_and_validation():
    assert repr(nn.Upsample(size=(4, 5), mode="bilinear")) == "Upsample(size=(4, 5), mode='bilinear')"
    with pytest.raises(ValueError, match="exactly one"):
        nn.Upsample()


# --- losses ---------------------------------------------------------------------------------------
def test_dice_and_jaccard_by_hand(backend):
    x = tg.Tensor(np.array([[0.0, 0.0], [0.0, 0.0]]))     # p = 0.5 everywhere
    t = tg.Tensor(np.array([[1.0, 0.0], [0.0, 0.0]]))
    # sample 0: sum(pt) = 0.5, sum p = 1, sum t = 1; sample 1: 0, 1, 0
    dice = F.dice_loss(x, t, smooth=0.0, reduction="none").numpy()
    np.testing.assert_allclose(dice, [1 - 1.0 / 2.0, 1.0])
    jac = F.jaccard_loss(x, t, smooth=1.0, reduction="none").numpy()
    np.testing.assert_allclose(jac, [1 - 1.5 / 2.5, 1 - 1.0 / 2.0])
    assert F.dice_loss(x, t, smooth=0.0).item() == pytest.approx(0.75)
    assert F.dice_loss(x, t, smooth=0.0, reduction="sum").item() == pytest.approx(1.5)


def test_overlap_losses_vanish_for_a_confident_correct_prediction(backend):
    t = np.zeros((2, 1, 4, 4))
    t[0, 0, 1:3, 1:3] = 1
    logits = tg.Tensor(np.where(t > 0, 50.0, -50.0), requires_grad=True)
    for fn in (F.dice_loss, F.jaccard_loss, nn.DiceLoss(), nn.JaccardLoss()):
        assert fn(logits, tg.Tensor(t)).item() < 1e-12
    assert F.focal_loss(logits, tg.Tensor(t)).item() < 1e-20


def test_losses_accept_bool_and_integer_masks_and_keep_float32(backend):
    logits = tg.randn(2, 1, 3, 3, requires_grad=True)
    mask = np.random.default_rng(6).random((2, 1, 3, 3)) > 0.5
    for fn in (F.dice_loss, F.jaccard_loss, F.focal_loss):
        a = fn(logits, tg.Tensor(mask))
        b = fn(logits, tg.Tensor(mask.astype(np.float32)))
        c = fn(logits, mask.astype(np.int64))
        assert a.dtype == np.float32
        np.testing.assert_allclose([a.item(), c.item()], b.item(), rtol=1e-6)
        a.backward()
        assert logits.grad.dtype == np.float32
        logits.grad = None


def test_focal_loss_is_finite_at_saturated_logits_for_any_gamma(backend):
    x = tg.Tensor(np.array([100.0, -100.0, 100.0, -100.0, 800.0, -800.0]), requires_grad=True)
    t = tg.Tensor(np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0]), requires_grad=True)
    for gamma in (0.0, 0.3, 1.0, 2.0):
        x.grad = t.grad = None
        loss = F.focal_loss(x, t, gamma=gamma, reduction="none")
        loss.sum().backward()
        assert all(np.all(np.isfinite(a)) for a in (loss.detach().numpy(), x.grad.numpy(), t.grad.numpy()))
        # a confident wrong prediction costs (1 - alpha_t-weighted) |x|, a right one nothing
        np.testing.assert_allclose(loss.detach().numpy()[[0, 1, 4, 5]], 0.0, atol=1e-30)
        np.testing.assert_allclose(loss.detach().numpy()[2:4], [0.75 * 100, 0.25 * 100])


def test_focal_loss_without_alpha_and_gamma_zero_is_bce(backend):
    rng = np.random.default_rng(7)
    x, t = tg.Tensor(rng.standard_normal((3, 4))), tg.Tensor(rng.random((3, 4)))
    np.testing.assert_allclose(F.focal_loss(x, t, alpha=None, gamma=0.0).item(),
                               F.binary_cross_entropy_with_logits(x, t).item(), rtol=1e-12)
    np.testing.assert_allclose(nn.FocalLoss(alpha=-1, gamma=0, reduction="sum")(x, t).item(),
                               F.binary_cross_entropy_with_logits(x, t, reduction="sum").item(), rtol=1e-12)


def test_segmentation_loss_errors():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"input \(2, 3\) and target \(3, 2\) differ"):
        F.dice_loss(x, tg.zeros(3, 2))
    with pytest.raises(TypeError, match="dtypes differ"):
        F.focal_loss(x, tg.zeros(2, 3, dtype="float64"))
    with pytest.raises(ValueError, match="smooth"):
        F.jaccard_loss(x, tg.zeros(2, 3), smooth=-1)
    with pytest.raises(ValueError, match="gamma"):
        F.focal_loss(x, tg.zeros(2, 3), gamma=-1)
    with pytest.raises(ValueError, match="reduction"):
        F.dice_loss(x, tg.zeros(2, 3), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.FocalLoss(reduction="avg")
