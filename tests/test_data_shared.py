"""The loaders on the offline copies of the real data sets (../shared/datasets); skipped when absent."""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_course import data as D

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CIFAR_BATCH_1 = [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]


def test_env_var_points_at_shared_copy(shared_datasets, monkeypatch):
    monkeypatch.setenv("TINYGRAD_COURSE_DATA", str(shared_datasets))
    assert len(D.Iris()) == 150


@pytest.mark.parametrize("train, counts", [(True, MNIST_TRAIN), (False, MNIST_TEST)])
def test_mnist(shared_datasets, train, counts):
    ds = D.MNIST(shared_datasets, train=train)
    assert ds.images.shape == (sum(counts), 1, 28, 28) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(ds.labels), counts)


@pytest.mark.parametrize("train, n", [(True, 60000), (False, 10000)])
def test_fashion_mnist(shared_datasets, train, n):
    ds = D.FashionMNIST(shared_datasets, train=train)
    assert len(ds) == n and ds.images.shape[1:] == (1, 28, 28)
    np.testing.assert_array_equal(np.bincount(ds.labels), [n // 10] * 10)


def test_cifar_one_training_batch(shared_datasets):
    images, labels = D.read_cifar_binary(shared_datasets / "cifar-10" / "data_batch_1.bin.xz")
    assert images.shape == (10000, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), CIFAR_BATCH_1)


def test_cifar_test_split_and_exact_records(shared_datasets):
    test = D.CIFAR10(shared_datasets, train=False)
    assert len(test) == 10000 and test.classes[0] == "airplane" and test.classes[9] == "truck"
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
    np.testing.assert_array_equal(np.flatnonzero(test.exact_mask), np.arange(1000))
    exact = D.CIFAR10(shared_datasets, train=False, exact_only=True)
    np.testing.assert_array_equal(exact.images, test.images[:1000])


@pytest.mark.slow
def test_cifar_full_training_set_statistics(shared_datasets):
    train = D.CIFAR10(shared_datasets, train=True)
    assert train.images.shape == (50000, 3, 32, 32)
    np.testing.assert_array_equal(np.bincount(train.labels), [5000] * 10)
    mean = train.images.mean(axis=(0, 2, 3), dtype=np.float64) / 255
    np.testing.assert_allclose(mean, [0.49139968, 0.48215841, 0.44653091], atol=5e-9)
    std = D.Standardize().fit(train.images).std_.ravel() / 255
    np.testing.assert_allclose(std, [0.24703223, 0.24348513, 0.26158784], atol=5e-9)


def test_iris(shared_datasets):
    ds = D.Iris(shared_datasets)
    assert ds.data.shape == (150, 4) and ds.classes == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(np.bincount(ds.labels), [50, 50, 50])
    np.testing.assert_allclose(ds.data[0], [5.1, 3.5, 1.4, 0.2])


@pytest.mark.parametrize("split", ["train", "val"])
def test_horizon_sky(shared_datasets, split):
    ds = D.HorizonSky(shared_datasets, split=split, size=(32, 48))
    assert ds.images.shape == (100, 3, 32, 48) and ds.masks.shape == (100, 1, 32, 48)
    assert set(np.unique(ds.masks)) <= {0, 1}
    sky = ds.masks.reshape(100, -1).mean(axis=1)
    if split == "train":  # 63 train images have no sky; sky covers ~7.6 % of the pixels
        assert (sky == 0).sum() >= 55 and 0.03 < sky.mean() < 0.13
    else:  # every val image has sky, ~29 % of the pixels
        assert (sky > 0).all() and 0.22 < sky.mean() < 0.36
