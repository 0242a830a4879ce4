"""DataLoader (batches, shuffling, drop_last, transforms, prefetch thread) and random_split.

Batches are Tensors; the tests read them back with `np_batches`."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_course as tg
from tinygrad_course.data import (
    ArrayDataset, Compose, DataLoader, RandomCrop, RandomHorizontalFlip, Subset, ToFloat, random_split)


def xy(n=23):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return x, np.arange(n, dtype=np.int64)


def np_batches(loader):
    """Every batch of one epoch, each a list of NumPy arrays."""
    return [[t.numpy() for t in b] for b in loader]


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "tinygrad_course-prefetch" and t.is_alive()]


@given(st.integers(1, 40), st.integers(1, 12), st.booleans(), st.booleans(), st.sampled_from([0, 1, 3]))
def test_every_sample_once_per_epoch(n, batch, shuffle, drop_last, prefetch):
    assume(n >= batch or not drop_last)  # no batches at all is refused (test_empty_loaders_are_refused)
    x, y = xy(n)
    loader = DataLoader((x, y), batch_size=batch, shuffle=shuffle, drop_last=drop_last, seed=1, prefetch=prefetch)
    batches = np_batches(loader)
    assert len(batches) == len(loader) == (n // batch if drop_last else -(-n // batch))
    full = batches if drop_last else batches[:-1]
    assert all(len(b[1]) == batch for b in full)
    seen = np.concatenate([b[1] for b in batches]) if batches else np.array([], np.int64)
    if drop_last:
        assert len(seen) == n - n % batch and len(set(seen)) == len(seen)
    else:
        np.testing.assert_array_equal(np.sort(seen), y)
    for bx, by in batches:  # inputs stay paired with their targets
        np.testing.assert_array_equal(bx, x[by])


def test_no_shuffle_keeps_order():
    x, y = xy(10)
    batches = np_batches(DataLoader((x, y), batch_size=4, prefetch=0))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    assert [len(b[1]) for b in batches] == [4, 4, 2]


def test_shuffle_new_permutation_each_epoch_reproducible():
    x, y = xy(50)

    def epochs(loader, k=3):
        return [np.concatenate([b[1] for b in np_batches(loader)]) for _ in range(k)]

    a = epochs(DataLoader((x, y), batch_size=8, shuffle=True, seed=7))
    b = epochs(DataLoader((x, y), batch_size=8, shuffle=True, seed=7))
    c = epochs(DataLoader((x, y), batch_size=8, shuffle=True, seed=8))
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], c[0])
    loader = DataLoader((x, y), batch_size=8, shuffle=True, seed=7)
    loader.set_epoch(2)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in np_batches(loader)]), a[2])
    # seed=None draws the seed from the global generator, so manual_seed makes it reproducible
    tg.manual_seed(3)
    first = epochs(DataLoader((x, y), batch_size=8, shuffle=True), 1)[0]
    tg.manual_seed(3)
    np.testing.assert_array_equal(first, epochs(DataLoader((x, y), batch_size=8, shuffle=True), 1)[0])


def test_prefetch_on_off_identical_with_augmentation():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (37, 3, 12, 12), dtype=np.uint8)
    y = rng.integers(0, 10, 37)
    aug = Compose([RandomCrop(12, padding=2), RandomHorizontalFlip(), ToFloat()])
    runs = []
    for prefetch in (0, 1, 4):
        loader = DataLoader((x, y), batch_size=5, shuffle=True, seed=3, transform=aug, prefetch=prefetch)
        runs.append([b for _ in range(2) for b in np_batches(loader)])
    for other in runs[1:]:
        assert len(other) == len(runs[0])
        for (ax, ay), (bx, by) in zip(runs[0], other):
            np.testing.assert_array_equal(ax, bx)
            np.testing.assert_array_equal(ay, by)
    assert runs[0][0][0].dtype == np.float32 and runs[0][0][0].shape == (5, 3, 12, 12)
    # different epochs get different augmentations of the same samples
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(runs[0][:8], runs[0][8:]))


def test_target_and_batch_transforms():
    x = np.random.default_rng(0).integers(0, 256, (6, 1, 4, 4), dtype=np.uint8)
    masks = x > 100
    loader = DataLoader((x, masks), batch_size=3, transform=RandomHorizontalFlip(), pair_transform=True, seed=0)
    for bx, bm in np_batches(loader):
        np.testing.assert_array_equal(bm, bx > 100)
    loader = DataLoader((x, np.arange(6)), batch_size=6, target_transform=lambda t: t * 10)
    np.testing.assert_array_equal(next(iter(loader))[1].numpy(), np.arange(6) * 10)


def test_plain_callables_get_the_loader_generator():
    x, y = xy(20)
    noisy = lambda a, rng: a + rng.normal(size=a.shape)  # noqa: E731

    def pair(a, b, rng):
        keep = rng.random(len(a)) < 0.5
        return a[keep], b[keep]

    for kwargs in ({"transform": noisy}, {"transform": pair, "pair_transform": True}):
        runs = [np_batches(DataLoader((x, y), batch_size=4, shuffle=True, seed=2, prefetch=p, **kwargs))
                for p in (0, 2)]
        for (ax, ay), (bx, by) in zip(*runs):
            np.testing.assert_array_equal(ax, bx)
            np.testing.assert_array_equal(ay, by)
    # a composed lambda passing the generator on positionally
    crop, flip = RandomCrop(4, padding=1), RandomHorizontalFlip()
    imgs = np.arange(6 * 16, dtype=np.float32).reshape(6, 1, 4, 4)
    loader = DataLoader((imgs, y[:6]), batch_size=3, seed=0, transform=lambda a, rng: flip(crop(a, rng), rng))
    assert [b[0].shape for b in loader] == [(3, 1, 4, 4)] * 2


class _Listy:
    """A data set without batched indexing: items are stacked one by one."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.full(2, i), i


def test_generic_dataset_and_subset():
    batches = np_batches(DataLoader(_Listy(), batch_size=2))
    np.testing.assert_array_equal(batches[0][0], [[0, 0], [1, 1]])
    np.testing.assert_array_equal(batches[2][1], [4])
    ds = ArrayDataset(*xy(10))
    sub = Subset(ds, [9, 2, 4])
    assert len(sub) == 3 and sub[0][1] == 9
    np.testing.assert_array_equal(next(iter(DataLoader(sub, batch_size=3)))[1].numpy(), [9, 2, 4])
    single = next(iter(DataLoader(np.arange(7), batch_size=7)))  # an array's batches are Tensors, as in PyTorch
    assert isinstance(single, tg.Tensor) and single.tolist() == list(range(7))


def test_worker_exception_surfaces_in_consumer():
    def bad(batch):
        if batch[0, 0] >= 16:  # the third batch (rows 8-11)
            raise ZeroDivisionError("broken batch")
        return batch

    for prefetch in (0, 2):
        it = iter(DataLoader(xy(12), batch_size=4, transform=bad, prefetch=prefetch))
        next(it)
        next(it)
        with pytest.raises(ZeroDivisionError, match="broken batch"):
            next(it)
    assert not prefetch_threads()


def test_abandoned_iterator_stops_its_thread():
    x, y = xy(1000)
    loader = DataLoader((x, y), batch_size=2, prefetch=2)
    it = iter(loader)
    next(it)
    assert prefetch_threads()
    it.close()
    assert not prefetch_threads()
    for _ in DataLoader((x, y), batch_size=2, prefetch=2):  # a break out of a for loop
        break
    assert not prefetch_threads()


def test_bad_arguments():
    with pytest.raises(ValueError, match="different lengths"):
        DataLoader((np.zeros(3), np.zeros(4)))
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
            DataLoader(np.zeros(3), batch_size=bad)
    for bad in (-1, 1.0, None):
        with pytest.raises(ValueError, match="prefetch must be an integer >= 0"):
            DataLoader(np.zeros(3), prefetch=bad)
    assert len(DataLoader(np.zeros(3), batch_size=np.int64(2))) == 2


def test_empty_loaders_are_refused():
    """Zero batches would only show up later, as a division by zero when an epoch's loss is averaged."""
    with pytest.raises(ValueError, match="empty data set"):
        DataLoader((np.zeros((0, 2)), np.zeros(0)), batch_size=4)
    with pytest.raises(ValueError, match="empty data set"):
        DataLoader(Subset(ArrayDataset(*xy(5)), []))
    with pytest.raises(ValueError, match="no batches: 3 samples with batch_size=4 and drop_last=True"):
        DataLoader(xy(3), batch_size=4, drop_last=True)
    assert len(DataLoader(xy(3), batch_size=4)) == 1


def test_random_split():
    parts = random_split(10, [0.7, 0.3], seed=0)
    assert [len(p) for p in parts] == [7, 3]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(10))
    again = random_split(10, [0.7, 0.3], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert [len(p) for p in random_split(10, [1 / 3] * 3)] == [4, 3, 3]
    assert [len(p) for p in random_split(10, [2, 8])] == [2, 8]
    train, val = random_split(ArrayDataset(*xy(20)), [0.8, 0.2], seed=1)
    assert isinstance(train, Subset) and len(train) == 16 and len(val) == 4
    assert not set(train.indices) & set(val.indices)
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(10, [0.5, 0.4])
    with pytest.raises(ValueError, match="sum to 10"):
        random_split(10, [5, 4])
