"""Batch transforms: standardisation, ZCA, crops, flips, one-hot, Compose; reproducibility."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course.data import (
    ZCA, CenterCrop, Compose, OneHot, RandomCrop, RandomHorizontalFlip, Standardize, ToFloat, one_hot)


def images(n=16, c=3, h=8, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8)


def test_standardize_per_channel_on_train_only():
    rng = np.random.default_rng(0)
    train = (rng.normal(size=(64, 3, 5, 5)) * [[[2.0]], [[5.0]], [[0.5]]] + [[[1.0]], [[-3.0]], [[10.0]]])
    test = train[:8] + 100.0
    t = Standardize().fit(train)
    out = t(train)
    assert out.dtype == np.float32 and out.shape == train.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-5)
    # the test split uses the training statistics, not its own
    np.testing.assert_allclose(t(test), (test - t.mean_) / t.std_, rtol=1e-5)
    assert t(test).mean() > 10


def test_standardize_uint8_and_features():
    x = images(32)
    np.testing.assert_allclose(Standardize().fit(x).mean_.ravel(), x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(Standardize().fit(x).std_.ravel(), x.std(axis=(0, 2, 3)))
    feats = np.random.default_rng(1).normal(3, 2, (50, 4))
    feats[:, 2] = 7.0  # a constant feature is centred, not divided by 0
    out = Standardize().fit(feats)(feats)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), [1, 1, 0, 1], atol=1e-5)
    with pytest.raises(RuntimeError, match="fit"):
        Standardize()(feats)
    with pytest.raises(ValueError, match="3 channels"):
        Standardize().fit(x)(images(2, c=1))


def test_zca_whitens_train_covariance():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(48, 48))
    train = (rng.normal(size=(2000, 48)) @ mixing).reshape(2000, 3, 4, 4) + 5.0
    zca = ZCA(eps=1e-6).fit(train)
    out = zca(train)
    assert out.shape == train.shape and out.dtype == np.float32
    flat = out.reshape(len(out), -1).astype(np.float64)
    cov = np.cov(flat, rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(48), atol=1e-3)
    np.testing.assert_allclose(zca.W_, zca.W_.T, atol=1e-10)  # ZCA's W is symmetric
    # a large eps shrinks the low-variance directions instead
    shrunk = ZCA(eps=1e6).fit(train)(train).reshape(2000, -1)
    assert np.cov(shrunk, rowvar=False).trace() < 48 * 0.9
    with pytest.raises(ValueError, match="48 values"):
        zca(np.zeros((2, 3, 4, 5)))


def test_random_crop_with_padding_shapes_and_content():
    x = images(10, h=32, w=32)
    out = RandomCrop(32, padding=4, rng=0)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i in range(len(x)):  # every crop is a window of its own padded image
        windows = np.lib.stride_tricks.sliding_window_view(padded[i], (32, 32), axis=(1, 2))
        assert any(np.array_equal(windows[:, a, b], out[i]) for a in range(9) for b in range(9))


@given(st.integers(1, 6), st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_random_crop_smaller(n, ch, cw, seed):
    x = images(n, h=8, w=8, seed=seed % 7)
    out = RandomCrop((ch, cw), rng=seed)(x)
    assert out.shape == (n, 3, ch, cw)
    for i in range(n):
        windows = np.lib.stride_tricks.sliding_window_view(x[i], (ch, cw), axis=(1, 2))
        assert any(np.array_equal(windows[:, a, b], out[i])
                   for a in range(9 - ch) for b in range(9 - cw))


def test_center_crop():
    x = np.arange(2 * 1 * 6 * 7).reshape(2, 1, 6, 7)
    np.testing.assert_array_equal(CenterCrop(4)(x), x[:, :, 1:5, 1:5])
    assert CenterCrop((28, 28))(images(2, h=32, w=32)).shape == (2, 3, 28, 28)
    with pytest.raises(ValueError, match="larger"):
        CenterCrop(9)(x)


def test_horizontal_flip_is_exact_mirror():
    x = images(200)
    before = x.copy()
    out = RandomHorizontalFlip(rng=3)(x)
    np.testing.assert_array_equal(x, before)  # the input is left alone
    flipped = np.array([np.array_equal(o, a[..., ::-1]) for o, a in zip(out, x)])
    kept = np.array([np.array_equal(o, a) for o, a in zip(out, x)])
    assert np.all(flipped ^ kept) and 60 < flipped.sum() < 140
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)


def test_joint_flip_of_images_and_masks():
    x = images(50)
    masks = x[:, :1] > 128
    fx, fm = RandomHorizontalFlip(rng=1)(x, masks)
    np.testing.assert_array_equal(fm, fx[:, :1] > 128)


def test_random_transforms_reproducible():
    x = images(32, h=32, w=32)
    aug = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToFloat()])
    a = aug(x, rng=np.random.default_rng(5))
    b = aug(x, rng=np.random.default_rng(5))
    c = aug(x, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a.dtype == np.float32 and a.max() <= 1.0
    # construction-time generators and the global one (manual_seed) are reproducible too
    np.testing.assert_array_equal(RandomCrop(28, rng=1)(x), RandomCrop(28, rng=1)(x))
    tg.manual_seed(11)
    first = RandomCrop(28)(x)
    tg.manual_seed(11)
    np.testing.assert_array_equal(first, RandomCrop(28)(x))


def test_one_hot():
    np.testing.assert_array_equal(one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert OneHot(4)(np.array([3])).dtype == np.float32
    with pytest.raises(ValueError, match="0..2"):
        one_hot([3], 3)


def test_compose_plain_callables_and_pipeline():
    x = images(4)
    pipe = Compose([ToFloat(), lambda a: a * 2])
    np.testing.assert_allclose(pipe(x), x.astype(np.float32) / 255 * 2, rtol=1e-6)
