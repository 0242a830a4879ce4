"""PyTorch's data API: DataLoader's keywords and batches (checked against torch.utils.data), worker
processes, per-sample transforms on the data sets, ToTensor / Normalize, TensorDataset."""
from __future__ import annotations

import collections
import gc
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest
import torch
import torch.utils.data as tud
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_course as tg
from tinygrad_course import data as D
from tinygrad_course.data import DataLoader, default_collate, get_worker_info

from data_writers import write_cifar_binary, write_images_masks, write_mnist  # noqa: E402

Point = collections.namedtuple("Point", "x y")


def same(ours, theirs):
    """Our batch equals torch's: the same nesting, values and dtypes (Tensors compared as arrays)."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, tg.Tensor), f"expected a Tensor, got {type(ours).__name__}"
        assert ours.shape == tuple(theirs.shape)
        assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch.")), (ours.dtype, theirs.dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            same(ours[k], theirs[k])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), (type(ours), type(theirs))
        for a, b in zip(ours, theirs):
            same(a, b)
    else:
        assert ours == theirs


class Samples:
    """A map-style data set both libraries can read: item i is `make(i)`."""

    def __init__(self, n, make):
        self.n, self.make = n, make

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not isinstance(i, int):
            raise TypeError(f"index {i!r} is not a Python int")
        return self.make(i)


def _feature(i):
    return np.arange(3, dtype=np.float32) + i


SAMPLE_KINDS = {
    "tuple": lambda i: (_feature(i), i),
    "dict": lambda i: {"image": _feature(i).reshape(1, 3), "label": i, "weight": i / 2},
    "numbers": lambda i: float(i) / 3,
    "numpy scalars": lambda i: np.float32(i) / 3,
    "bools": lambda i: i % 2 == 0,
    "strings and lists": lambda i: [f"name{i}", [i, np.int64(2 * i)]],
    "namedtuple": lambda i: Point(_feature(i), np.float64(i)),
    "array": _feature,
}


@pytest.mark.parametrize("kind", list(SAMPLE_KINDS))
def test_default_collate_matches_torch(kind):
    samples = [SAMPLE_KINDS[kind](i) for i in range(4)]
    same(default_collate(samples), tud.default_collate(samples))


def _leaf(shape):
    """A strategy of one kind of sample field, each sample drawn from it alike (as a data set's are)."""
    return st.one_of(
        st.just(lambda rng: rng.standard_normal(shape).astype(np.float32)),
        st.just(lambda rng: rng.integers(-5, 5, shape)),
        st.just(lambda rng: rng.random(shape) < 0.5),
        st.just(lambda rng: int(rng.integers(0, 10))),
        st.just(lambda rng: float(rng.random())),
        st.just(lambda rng: np.float64(rng.random())),
        st.just(lambda rng: f"s{rng.integers(9)}"))


_fields = st.recursive(
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=3).flatmap(_leaf),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: lambda rng: tuple(f(rng) for f in fs)),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: lambda rng: [f(rng) for f in fs]),
        st.dictionaries(st.sampled_from("abc"), inner, min_size=1).map(
            lambda d: lambda rng: {k: f(rng) for k, f in d.items()})),
    max_leaves=6)


@given(_fields, st.integers(1, 4), st.integers(0, 2 ** 32 - 1))
def test_default_collate_matches_torch_on_nested_samples(make, n, seed):
    rng = np.random.default_rng(seed)
    samples = [make(rng) for _ in range(n)]
    same(default_collate(samples), tud.default_collate(samples))


@pytest.mark.parametrize("kind", ["tuple", "dict", "namedtuple", "strings and lists"])
@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (3, False), (3, True), (10, False), (None, False)])
def test_loader_batches_match_torch(kind, batch_size, drop_last):
    ds = Samples(10, SAMPLE_KINDS[kind])
    ours = list(DataLoader(ds, batch_size=batch_size, drop_last=drop_last, prefetch=0))
    theirs = list(tud.DataLoader(ds, batch_size=batch_size, drop_last=drop_last))
    assert len(ours) == len(theirs) == len(DataLoader(ds, batch_size=batch_size, drop_last=drop_last))
    for a, b in zip(ours, theirs):
        same(a, b)


@given(st.integers(1, 25), st.one_of(st.none(), st.integers(1, 8)), st.booleans(), st.booleans(),
       st.sampled_from(list(SAMPLE_KINDS)))
def test_any_loader_shape_matches_torch(n, batch_size, drop_last, as_list, kind):
    ds = Samples(n, SAMPLE_KINDS[kind])
    if as_list:  # a Python list of samples is a data set too, as in PyTorch
        ds = [ds[i] for i in range(n)]
    if drop_last and (batch_size is None or n < batch_size):
        with pytest.raises(ValueError, match="no batches" if batch_size else "drop_last=True has nothing to drop"):
            DataLoader(ds, batch_size=batch_size, drop_last=drop_last)
        return
    ours = list(DataLoader(ds, batch_size=batch_size, drop_last=drop_last, prefetch=0))
    theirs = list(tud.DataLoader(ds, batch_size=batch_size, drop_last=drop_last))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        same(a, b)


def test_tensor_dataset_and_array_batches_match_torch():
    x = np.random.default_rng(0).standard_normal((7, 2, 3)).astype(np.float32)
    y = np.arange(7)
    ours = list(DataLoader(D.TensorDataset(tg.tensor(x), tg.tensor(y)), batch_size=3))
    theirs = list(tud.DataLoader(tud.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=3))
    for a, b in zip(ours, theirs):
        same(a, b)
    for a, b in zip(DataLoader((x, y), batch_size=3), theirs):  # our tuple-of-arrays shorthand batches alike
        same(a, b)
    for a, b in zip(DataLoader(x, batch_size=3), tud.DataLoader(x, batch_size=3)):  # a bare array
        same(a, b)
    ds = D.TensorDataset(tg.tensor(x), y)
    sample = ds[2]
    assert isinstance(sample, tuple) and all(isinstance(t, tg.Tensor) for t in sample) and sample[1].item() == 2


def test_samplers_match_torch():
    ds = Samples(10, SAMPLE_KINDS["tuple"])
    order = [3, 1, 4, 1, 5, 9, 2, 6]
    for kwargs in ({"sampler": order, "batch_size": 3}, {"sampler": order, "batch_size": 3, "drop_last": True},
                   {"batch_sampler": [[0, 1], [9, 2, 8], [5]]}):
        ours, theirs = list(DataLoader(ds, **kwargs)), list(tud.DataLoader(ds, **kwargs))
        assert len(ours) == len(theirs) == len(DataLoader(ds, **kwargs))
        for a, b in zip(ours, theirs):
            same(a, b)


def _labels(loader):
    return [np.concatenate([b[1].numpy() for b in loader]) for _ in range(3)]


def test_shuffle_with_a_generator_is_reproducible():
    x, y = np.zeros((40, 2), np.float32), np.arange(40)
    a = _labels(DataLoader((x, y), batch_size=8, shuffle=True, generator=np.random.default_rng(5)))
    b = _labels(DataLoader((x, y), batch_size=8, shuffle=True, generator=np.random.default_rng(5)))
    c = _labels(DataLoader((x, y), batch_size=8, shuffle=True, generator=np.random.default_rng(6)))
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
        np.testing.assert_array_equal(np.sort(ea), y)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], c[0])
    # as torch's generator: the loader draws from it, so reseeding it replays an epoch
    g = np.random.default_rng(5)
    loader = DataLoader((x, y), batch_size=8, shuffle=True, generator=g)
    first = np.concatenate([b[1].numpy() for b in loader])
    g.bit_generator.state = np.random.default_rng(5).bit_generator.state
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in loader]), first)


def test_bad_arguments_are_named():
    x = np.zeros((6, 2), np.float32)
    cases = [
        (ValueError, "sampler is mutually exclusive with shuffle", dict(sampler=[0, 1], shuffle=True)),
        (ValueError, "batch_sampler is mutually exclusive", dict(batch_sampler=[[0]], batch_size=2)),
        (ValueError, "prefetch_factor applies to worker processes", dict(prefetch_factor=2)),
        (ValueError, "persistent_workers needs num_workers > 0", dict(persistent_workers=True)),
        (ValueError, "num_workers must be an integer >= 0", dict(num_workers=-1)),
        (ValueError, "timeout must be a number of seconds", dict(timeout=-1)),
        (TypeError, r"generator must be a tinygrad_course.Generator .* got torch\.", dict(generator=torch.Generator())),
        (TypeError, "collate_fn must be callable", dict(collate_fn=3)),
        (ValueError, "collate_fn and the loader's transform", dict(collate_fn=list, transform=abs)),
    ]
    for error, message, kwargs in cases:
        with pytest.raises(error, match=message):
            DataLoader(x, **kwargs)
    with pytest.raises(TypeError, match="dataset must support len"):
        DataLoader(5)
    with pytest.raises(TypeError, match="default_collate: samples must be"):
        next(iter(DataLoader(Samples(2, lambda i: object()), batch_size=2)))
    with pytest.raises(ValueError, match="different shapes"):
        next(iter(DataLoader(Samples(2, lambda i: np.zeros(i + 1)), batch_size=2)))


def test_collate_fn_output_is_returned_as_is():
    ds = Samples(5, SAMPLE_KINDS["tuple"])
    batches = list(DataLoader(ds, batch_size=2, collate_fn=lambda samples: [s[1] for s in samples]))
    assert batches == [[0, 1], [2, 3], [4]]


# --- worker processes ---------------------------------------------------------------------------------
class WhoMadeMe:
    """Sample i: (i, the id of the worker process that made it, a draw from our global generator)."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        info = get_worker_info()
        return np.array([i, -1 if info is None else info.id, tg.rand(1).item() * 1e6])


def _augmented_epochs(num_workers, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (23, 3, 8, 8), dtype=np.uint8)
    crop, flip = D.RandomCrop(8, padding=2), D.RandomHorizontalFlip()
    loader = DataLoader((x, np.arange(23)), batch_size=4, shuffle=True, seed=3, num_workers=num_workers,
                        transform=lambda a, rng: flip(crop(a, rng), rng), **kwargs)
    return [[t.numpy() for t in b] for _ in range(2) for b in loader]


def test_workers_give_the_batches_of_num_workers_0():
    reference = _augmented_epochs(0)
    for runs in (_augmented_epochs(1), _augmented_epochs(3, prefetch_factor=1)):
        assert len(runs) == len(reference) == 12
        for (ax, ay), (bx, by) in zip(runs, reference):
            np.testing.assert_array_equal(ax, bx)
            np.testing.assert_array_equal(ay, by)
    assert not multiprocessing.active_children()


def test_workers_are_seeded_and_reported():
    def run():
        return np.concatenate([b.numpy() for b in DataLoader(WhoMadeMe(), batch_size=2, num_workers=3, seed=1)])

    first = run()
    np.testing.assert_array_equal(first[:, 0], np.arange(12))
    np.testing.assert_array_equal(first[:, 1], np.arange(12) // 2 % 3)  # batch k comes from worker k % 3
    np.testing.assert_array_equal(run(), first)  # reproducible
    assert len(set(first[:, 2])) == 12  # the workers' generators differ
    assert get_worker_info() is None


def _init_fails(worker_id):
    raise OSError(f"init of {worker_id} failed")


def _fails_on_7(i):
    if i == 7:
        raise KeyError("sample seven")
    return np.zeros(2)


def _dies_on_5(i):
    if i == 5:
        os._exit(3)
    return np.zeros(2)


def _killed_on_1(i):
    if i == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return np.zeros(2)


def test_worker_errors_name_the_worker_and_batch():
    loader = DataLoader(Samples(12, _fails_on_7), batch_size=2, num_workers=2)
    with pytest.raises(KeyError, match=r"KeyError in DataLoader worker 1 while preparing batch 3") as caught:
        list(loader)
    assert "\n" in str(caught.value)  # the worker's traceback, shown as lines
    with pytest.raises(OSError, match="(?s)worker 0 in worker_init_fn.*init of 0 failed"):
        list(DataLoader(Samples(4, _fails_on_7), batch_size=2, num_workers=2, worker_init_fn=_init_fails))
    with pytest.raises(RuntimeError, match="worker 0 .* exited unexpectedly with exit code 3 while preparing batch 2"):
        list(DataLoader(Samples(12, _dies_on_5), batch_size=2, num_workers=2))
    with pytest.raises(RuntimeError, match=r"worker 1 .* killed by signal SIGKILL \(out of memory\?\) while preparing"):
        list(DataLoader(Samples(4, _killed_on_1), batch_size=1, num_workers=2))
    assert not multiprocessing.active_children()


def test_abandoned_worker_iterators_stop_their_workers():
    it = iter(DataLoader(np.zeros((100, 2), np.float32), batch_size=2, num_workers=2))
    next(it)
    assert len(multiprocessing.active_children()) == 2
    it.close()
    assert not multiprocessing.active_children()
    for _ in DataLoader(np.zeros((100, 2), np.float32), batch_size=2, num_workers=2):
        break
    assert not multiprocessing.active_children()
    it = iter(DataLoader(np.zeros((100, 2), np.float32), batch_size=2, num_workers=2))
    next(it)
    del it  # garbage collected
    gc.collect()
    assert not multiprocessing.active_children()


# --- data sets and per-sample transforms ----------------------------------------------------------------
def test_to_tensor_and_normalize_match_torch():
    rng = np.random.default_rng(1)
    for image in (rng.integers(0, 256, (5, 4, 3), dtype=np.uint8), rng.integers(0, 256, (5, 4), dtype=np.uint8)):
        t = D.ToTensor()(image)
        hwc = image if image.ndim == 3 else image[:, :, None]
        expected = torch.from_numpy(hwc.transpose(2, 0, 1).copy()).float().div(255)
        assert isinstance(t, tg.Tensor) and t.dtype == np.float32
        np.testing.assert_allclose(t.numpy(), expected.numpy(), rtol=1e-6)
    floats = rng.random((5, 4, 3))
    assert D.ToTensor()(floats).dtype == np.float64  # not scaled, as in torchvision
    np.testing.assert_array_equal(D.ToTensor()(floats).numpy(), floats.transpose(2, 0, 1))
    x = D.ToTensor()(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    out = D.Compose([D.Normalize(mean, std)])(x)
    expected = (torch.from_numpy(x.numpy()) - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    batch = np.stack([x.numpy()] * 2)
    np.testing.assert_allclose(D.Normalize(mean, std)(batch)[1], expected.numpy(), rtol=1e-6)
    D.Normalize(mean, std, inplace=True)(batch)
    np.testing.assert_allclose(batch[0], expected.numpy(), rtol=1e-6)


def test_transform_errors_name_the_problem():
    with pytest.raises(TypeError, match="ToTensor: pic must be a NumPy array"):
        D.ToTensor()([[1, 2]])
    with pytest.raises(ValueError, match="ToTensor: pic must be an H x W"):
        D.ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))
    with pytest.raises(ValueError, match="std must not be zero"):
        D.Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="one value per channel"):
        D.Normalize([0.5, 0.5], [0.2, 0.2, 0.2])
    with pytest.raises(TypeError, match="apply ToTensor first"):
        D.Normalize([0.5], [0.2])(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        D.Normalize([0.5] * 3, [0.2] * 3)(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(TypeError, match="transform must be callable"):
        D.ArrayDataset(np.zeros(3), transform="ToTensor")
    with pytest.raises(TypeError, match="argument 1 must be a Tensor"):
        D.TensorDataset(tg.zeros(3), [1, 2, 3])
    with pytest.raises(ValueError, match="different lengths"):
        D.TensorDataset(tg.zeros(3), tg.zeros(4))


def test_mnist_and_cifar_transforms_as_torchvision(tmp_path):
    written = write_mnist(tmp_path / "mnist")
    ds = D.MNIST(tmp_path, train=False, transform=D.Compose([D.ToTensor(), D.Normalize((0.1307,), (0.3081,))]),
                 target_transform=lambda y: y + 100)
    image, label = ds[1]
    images, labels = written["t10k"]
    assert isinstance(image, tg.Tensor) and image.shape == (1, 28, 28) and label == labels[1] + 100
    np.testing.assert_allclose(image.numpy()[0], (images[1] / np.float32(255) - 0.1307) / 0.3081, rtol=1e-5)
    seen = []
    D.MNIST(tmp_path, train=False, transform=lambda a: seen.append(a.shape) or a)[0]
    assert seen == [(28, 28)]  # what torchvision's transforms get: np.array(PIL image)
    batches = list(DataLoader(ds, batch_size=2))
    assert batches[0][0].shape == (2, 1, 28, 28) and batches[0][0].dtype == np.float32
    assert batches[0][1].dtype == np.int64 and batches[-1][1].tolist() == [int(labels[2]) + 100]
    # without a transform the data set is gathered a batch at a time, uint8 becoming int64
    fast = next(iter(DataLoader(D.MNIST(tmp_path, train=False), batch_size=3)))
    np.testing.assert_array_equal(fast[0].numpy()[:, 0], images)
    write_cifar_binary(tmp_path / "cifar-10")
    cifar = D.CIFAR10(tmp_path, train=False, transform=D.ToTensor())
    image, _ = cifar[0]
    np.testing.assert_allclose(image.numpy(), cifar.images[0] / np.float32(255), rtol=1e-6)


def test_subset_of_a_transformed_data_set():
    x, y = np.arange(12, dtype=np.float32).reshape(6, 2), np.arange(6)
    ds = D.ArrayDataset(x, y, transform=lambda a: a * 10, target_transform=lambda t: t + 1)
    assert not ds.supports_batch_index
    sub = D.Subset(ds, [4, 1])
    np.testing.assert_array_equal(sub[0][0], x[4] * 10)
    (bx, by), = list(DataLoader(sub, batch_size=2))
    np.testing.assert_array_equal(bx.numpy(), x[[4, 1]] * 10)
    assert by.tolist() == [5, 2]
    with pytest.raises(TypeError, match="one sample at a time"):
        ds[np.array([0, 1])]


# --- samplers, Dataset, ConcatDataset, random_split ---------------------------------------------------
def test_sequential_and_batch_samplers_match_torch():
    for drop_last in (False, True):
        ours = D.BatchSampler(D.SequentialSampler(range(10)), 3, drop_last)
        theirs = tud.BatchSampler(tud.SequentialSampler(range(10)), 3, drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    ds = Samples(10, SAMPLE_KINDS["tuple"])
    batches = D.BatchSampler(D.SequentialSampler(ds), 4, False)
    for a, b in zip(DataLoader(ds, batch_sampler=batches), tud.DataLoader(ds, batch_size=4)):
        same(a, b)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        D.BatchSampler(range(3), 0, False)


def test_random_samplers():
    ds = range(10)
    a = D.RandomSampler(ds, generator=np.random.default_rng(1))
    b = D.RandomSampler(ds, generator=np.random.default_rng(1))
    first, second = list(a), list(a)
    assert sorted(first) == list(range(10)) and first != second and first == list(b)  # new order per epoch
    assert all(type(i) is int for i in first)
    tg.manual_seed(4)
    global_draw = list(D.RandomSampler(ds))
    tg.manual_seed(4)
    assert list(D.RandomSampler(ds)) == global_draw
    long = list(D.RandomSampler(ds, num_samples=25, generator=np.random.default_rng(0)))
    assert len(long) == 25 and sorted(long[:10]) == sorted(long[10:20]) == list(range(10))
    drawn = list(D.RandomSampler(ds, replacement=True, num_samples=50, generator=np.random.default_rng(0)))
    assert len(drawn) == 50 and len(set(drawn[:10])) < 10 and min(drawn) >= 0 and max(drawn) < 10  # repeats
    sub = list(D.SubsetRandomSampler([7, 3, 5], generator=np.random.default_rng(0)))
    assert sorted(sub) == [3, 5, 7]
    weighted = list(D.WeightedRandomSampler([0.0, 1.0, 3.0], 4000, generator=np.random.default_rng(0)))
    counts = np.bincount(weighted, minlength=3)
    assert counts[0] == 0 and 2.5 < counts[2] / counts[1] < 3.5
    assert sorted(D.WeightedRandomSampler([1, 1, 1], 3, replacement=False)) == [0, 1, 2]
    with pytest.raises(ValueError, match="needs as many non-zero weights"):
        D.WeightedRandomSampler([1, 0, 1], 3, replacement=False)
    with pytest.raises(ValueError, match="weights must be a 1-D sequence"):
        D.WeightedRandomSampler([1, -1], 2)
    with pytest.raises(TypeError, match="generator must be a tinygrad_course.Generator"):
        D.RandomSampler(ds, generator=torch.Generator())
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        D.RandomSampler(ds, num_samples=0)
    loader = DataLoader(Samples(10, SAMPLE_KINDS["tuple"]), batch_size=4,
                        sampler=D.RandomSampler(ds, generator=np.random.default_rng(3)))
    labels = np.concatenate([b[1].numpy() for b in loader])
    assert sorted(labels.tolist()) == list(range(10)) and len(loader) == 3


class Squares(D.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i * i


def test_dataset_subclasses_and_concat_match_torch():
    ours = Squares(3) + D.ArrayDataset(np.arange(4))
    theirs = tud.ConcatDataset([[0, 1, 4], tud.TensorDataset(torch.arange(4))])
    assert len(ours) == len(theirs) == 7
    for i in list(range(-7, 7)):
        a, b = ours[i], theirs[i]
        assert (a if isinstance(a, int) else int(a[0])) == (b if isinstance(b, int) else int(b[0]))
    with pytest.raises(IndexError, match="out of range"):
        ours[7]
    with pytest.raises(NotImplementedError, match="must define __getitem__"):
        D.Dataset()[0]
    assert next(iter(DataLoader(Squares(5), batch_size=5))).tolist() == [0, 1, 4, 9, 16]


def test_random_split_takes_a_generator():
    a = D.random_split(Squares(10), [0.8, 0.2], generator=np.random.default_rng(9))
    b = D.random_split(Squares(10), [0.8, 0.2], generator=np.random.default_rng(9))
    assert [len(p) for p in a] == [8, 2] and all(np.array_equal(p.indices, q.indices) for p, q in zip(a, b))
    with pytest.raises(TypeError, match="generator must be a tinygrad_course.Generator"):
        D.random_split(10, [5, 5], generator=1)


# --- torchvision-style per-sample augmentation --------------------------------------------------------
def test_crops_and_flips_take_one_image_as_torchvision():
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    grey = hwc[:, :, 0]
    np.testing.assert_array_equal(D.RandomHorizontalFlip(p=1.0)(hwc), hwc[:, ::-1])
    np.testing.assert_array_equal(D.RandomHorizontalFlip(p=1.0)(grey), grey[:, ::-1])
    chw = D.ToTensor()(hwc)
    flipped = D.RandomHorizontalFlip(p=1.0)(chw)
    assert isinstance(flipped, tg.Tensor)
    np.testing.assert_array_equal(flipped.numpy(), chw.numpy()[:, :, ::-1])
    np.testing.assert_array_equal(D.CenterCrop(4)(hwc), hwc[1:5, 0:4])
    assert D.CenterCrop(4)(chw).shape == (3, 4, 4)
    padded = np.pad(hwc, ((2, 2), (2, 2), (0, 0)))
    crop = D.RandomCrop(6, padding=2, rng=1)(hwc)
    assert crop.shape == (6, 6, 3) and crop.dtype == np.uint8
    windows = [padded[i:i + 6, j:j + 6] for i in range(padded.shape[0] - 5) for j in range(padded.shape[1] - 5)]
    assert any(np.array_equal(crop, w) for w in windows)
    assert D.RandomCrop(3)(grey).shape == (3, 3)


def _cifar_epoch(root, num_workers, prefetch=2):
    augment = D.Compose([D.RandomCrop(32, padding=4), D.RandomHorizontalFlip(), D.ToTensor(),
                         D.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    ds = D.CIFAR10(root, train=True, transform=augment)
    loader = DataLoader(ds, batch_size=6, shuffle=True, seed=2, num_workers=num_workers, prefetch=prefetch)
    return [[t.numpy() for t in b] for b in loader]


def test_torchvision_style_cifar_pipeline_same_batches_with_or_without_workers(tmp_path):
    write_cifar_binary(tmp_path / "cifar-10")  # 5 x 4 training images
    reference = _cifar_epoch(tmp_path, 0, prefetch=0)
    assert reference[0][0].shape == (6, 3, 32, 32) and reference[0][0].dtype == np.float32
    assert reference[0][1].dtype == np.int64
    tg.manual_seed(123)  # the global generator plays no part
    for run in (_cifar_epoch(tmp_path, 0), _cifar_epoch(tmp_path, 2)):
        for (ax, ay), (bx, by) in zip(run, reference):
            np.testing.assert_array_equal(ax, bx)
            np.testing.assert_array_equal(ay, by)
    # the augmentation did something: the same order without it gives other inputs
    plain = DataLoader(D.CIFAR10(tmp_path, train=True, transform=D.Compose(
        [D.ToTensor(), D.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])), batch_size=6, shuffle=True, seed=2)
    plain = [[t.numpy() for t in b] for b in plain]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(plain, reference))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(plain, reference))


def test_spawn_start_method_names_what_cannot_be_pickled():
    loader = DataLoader(np.zeros((4, 2), np.float32), batch_size=2, num_workers=2, multiprocessing_context="spawn",
                        collate_fn=lambda samples: samples)
    with pytest.raises(TypeError, match="'spawn' start method must pickle the data set, collate_fn and transforms"):
        next(iter(loader))
    assert not multiprocessing.active_children()


# --- IterableDataset ----------------------------------------------------------------------------------
def _stream(n, worker_info):
    """Samples 0..n-1 as (features, label), split between the workers as PyTorch's docs do."""
    info = worker_info()
    start, step = (0, 1) if info is None else (info.id, info.num_workers)
    for i in range(start, n, step):
        yield _feature(i), i


class OurStream(D.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return _stream(self.n, get_worker_info)


class TorchStream(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return _stream(self.n, tud.get_worker_info)


@pytest.mark.parametrize("batch_size,drop_last,num_workers", [(3, False, 0), (3, True, 0), (None, False, 0),
                                                                (2, False, 2), (4, True, 2)])
def test_iterable_dataset_matches_torch(batch_size, drop_last, num_workers):
    kwargs = dict(batch_size=batch_size, drop_last=drop_last, num_workers=num_workers)
    ours = list(DataLoader(OurStream(11), **kwargs))
    theirs = list(tud.DataLoader(TorchStream(11), **kwargs))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        same(a, b)
    assert not multiprocessing.active_children()


def test_iterable_dataset_refuses_an_order():
    for kwargs in ({"shuffle": True}, {"sampler": [0, 1]}, {"batch_sampler": [[0]]}):
        with pytest.raises(ValueError, match="an IterableDataset sets its own order"):
            DataLoader(OurStream(3), **kwargs)
    with pytest.raises(NotImplementedError, match="must define __iter__"):
        list(DataLoader(D.IterableDataset()))


def _slow(i):
    if i == 2:
        time.sleep(30)
    return np.zeros(2)


def test_worker_timeout_is_named_and_the_stuck_worker_stopped():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"timed out after 0.3 s waiting for batch 1 from worker 1"):
        list(DataLoader(Samples(4, _slow), batch_size=2, num_workers=2, timeout=0.3))
    assert not multiprocessing.active_children()
    assert time.monotonic() - started < 20  # the sleeping worker was stopped, not waited for


def _tensor_pairs(samples):
    return tg.tensor(np.stack([s[0] for s in samples])), [s[1] for s in samples]


def test_workers_send_back_what_collate_fn_returns():
    ds = Samples(6, SAMPLE_KINDS["tuple"])
    for x, labels in DataLoader(ds, batch_size=3, num_workers=2, collate_fn=_tensor_pairs):
        assert isinstance(x, tg.Tensor) and x.shape == (3, 3)
        np.testing.assert_array_equal(x.numpy()[:, 0], labels)


def test_torchvision_attributes_of_mnist_and_cifar(tmp_path):
    written = write_mnist(tmp_path / "mnist")
    targets = D.MNIST(tmp_path, train=False).targets
    assert isinstance(targets, tg.Tensor) and targets.dtype == np.int64
    assert targets.tolist() == written["t10k"][1].tolist()
    batches = write_cifar_binary(tmp_path / "cifar-10")
    cifar = D.CIFAR10(tmp_path, train=False)
    images, labels = batches["test_batch"]
    assert cifar.data.shape == (len(labels), 32, 32, 3) and cifar.data.dtype == np.uint8
    np.testing.assert_array_equal(cifar.data, images.transpose(0, 2, 3, 1))
    assert cifar.targets == labels.tolist() and all(type(t) is int for t in cifar.targets)


def test_segmentation_transforms_get_images_and_masks_as_torchvision(tmp_path):
    pytest.importorskip("PIL")
    write_images_masks(tmp_path / "horizon-sky" / "val", [(16, 8), (20, 10)])
    seen = []
    ds = D.HorizonSky(tmp_path, split="val", size=(8, 16), transform=D.ToTensor(),
                      target_transform=lambda m: seen.append(m.shape) or D.ToTensor()(m))
    image, mask = ds[0]
    assert image.shape == (3, 8, 16) and mask.shape == (1, 8, 16) and seen == [(8, 16)]
    np.testing.assert_allclose(image.numpy(), ds.images[0] / np.float32(255), rtol=1e-6)
    x, m = next(iter(DataLoader(ds, batch_size=2)))
    assert x.shape == (2, 3, 8, 16) and m.shape == (2, 1, 8, 16)


def test_lambda_transform():
    flatten = D.Lambda(lambda x: x.reshape(-1))
    out = D.Compose([D.ToTensor(), flatten])(np.zeros((2, 3, 1), np.uint8))
    assert isinstance(out, tg.Tensor) and out.shape == (6,)
    with pytest.raises(TypeError, match="Lambda needs a callable"):
        D.Lambda(3)


def test_our_generator_as_torch_scripts_pass_it():
    x, y = np.zeros((30, 2), np.float32), np.arange(30)
    g = tg.Generator().manual_seed(7)
    loader = DataLoader((x, y), batch_size=5, shuffle=True, generator=g)
    first = np.concatenate([b[1].numpy() for b in loader])
    second = np.concatenate([b[1].numpy() for b in loader])
    assert sorted(first) == list(range(30)) and not np.array_equal(first, second)
    g.manual_seed(7)  # reseeding replays the epochs, as with torch's generator
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in loader]), first)
    a = D.random_split(Squares(10), [7, 3], generator=tg.Generator().manual_seed(1))
    b = D.random_split(Squares(10), [7, 3], generator=tg.Generator().manual_seed(1))
    assert all(np.array_equal(p.indices, q.indices) for p, q in zip(a, b))
    order = list(D.RandomSampler(range(8), generator=tg.Generator().manual_seed(2)))
    assert order == list(D.RandomSampler(range(8), generator=tg.Generator().manual_seed(2)))


# --- torchvision.utils.make_grid ------------------------------------------------------------------
def _make_grid_reference(batch, nrow, padding, pad_value):
    """torchvision's algorithm, written out: rows of nrow images, padding before each and at the end."""
    b, c, h, w = batch.shape
    cols, rows = min(nrow, b), -(-b // min(nrow, b))
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, batch.dtype)
    for k in range(b):
        y, x = divmod(k, cols)
        grid[:, y * (h + padding) + padding:(y + 1) * (h + padding), x * (w + padding) + padding:(x + 1) * (w + padding)] \
            = batch[k]
    return grid


@pytest.mark.parametrize("b, nrow, padding", [(5, 2, 2), (8, 8, 0), (3, 8, 1), (7, 3, 4)])
def test_make_grid_lays_out_images_as_torchvision(b, nrow, padding):
    import tinygrad_course.data as torchvision  # the documented stand-in
    batch = np.random.default_rng(b).random((b, 3, 4, 5)).astype(np.float32)
    grid = torchvision.utils.make_grid(tg.tensor(batch), nrow=nrow, padding=padding, pad_value=0.5)
    assert isinstance(grid, tg.Tensor)
    np.testing.assert_array_equal(grid.numpy(), _make_grid_reference(batch, nrow, padding, 0.5))
    assert torchvision.datasets.MNIST is D.MNIST and torchvision.transforms.ToTensor is D.ToTensor


def test_make_grid_grey_single_lists_and_normalize():
    grey = np.arange(2 * 1 * 2 * 2, dtype=np.float32).reshape(2, 1, 2, 2)
    grid = D.make_grid(list(tg.tensor(grey)), padding=1).numpy()
    assert grid.shape == (3, 4, 7) and (grid[0] == grid[2]).all()  # one channel repeated to three
    assert D.make_grid(tg.tensor(grey[:1])).shape == (3, 2, 2)        # a batch of one: the image, unpadded
    norm = D.make_grid(tg.tensor(grey), normalize=True, padding=0).numpy()
    assert norm.min() == 0.0 and norm.max() == 1.0 and grey.max() == 7  # the caller's batch is unchanged
    each = D.make_grid(tg.tensor(grey), normalize=True, scale_each=True, padding=0).numpy()
    assert each[0, :, 2:].min() == 0.0 and each[0, :, 2:].max() == 1.0
    with pytest.raises(ValueError, match="one shape"):
        D.make_grid([tg.zeros(3, 2, 2), tg.zeros(3, 3, 3)])
    with pytest.raises(ValueError, match="nrow"):
        D.make_grid(tg.zeros(2, 3, 2, 2), nrow=0)


def test_random_sampler_draws_lazily_and_reproducibly():
    huge = tg.utils.data.RandomSampler(range(10), replacement=True, num_samples=10**10)  # makemore's InfiniteSampler
    first = [i for _, i in zip(range(5000), iter(huge))]
    assert len(huge) == 10**10 and len(first) == 5000 and set(first) <= set(range(10))
    g = tg.Generator().manual_seed(3)
    sampler = tg.utils.data.RandomSampler(range(6), num_samples=14, generator=g)
    epoch = list(sampler)
    assert len(epoch) == 14 and sorted(epoch[:6]) == list(range(6)) and sorted(epoch[6:12]) == list(range(6))
    g.manual_seed(3)
    assert list(sampler) == epoch  # the epoch's draws follow the generator, as torch's
    it = iter(sampler)
    tg.randn(100)  # other draws from the global generator between batches change nothing
    assert list(it) != [] and list(tg.utils.data.RandomSampler(range(6), generator=g.manual_seed(3))) == epoch[:6]


def test_torch_utils_data_submodules_import_as_torchs():
    from tinygrad_course.utils.data.dataloader import DataLoader
    from tinygrad_course.utils.data.dataset import Dataset, TensorDataset
    from tinygrad_course.utils.data.sampler import RandomSampler, WeightedRandomSampler
    assert DataLoader is D.DataLoader and Dataset is D.Dataset and TensorDataset is D.TensorDataset
    assert RandomSampler is D.RandomSampler and WeightedRandomSampler is D.WeightedRandomSampler


def test_a_loader_draws_a_huge_samplers_indices_as_it_goes():
    """makemore's InfiniteDataLoader: RandomSampler(num_samples=10**10) must not be listed up front."""
    ds = tg.utils.data.TensorDataset(tg.arange(10))
    sampler = tg.utils.data.RandomSampler(ds, replacement=True, num_samples=10**10)
    loader = tg.utils.data.DataLoader(ds, batch_size=4, sampler=sampler)
    batches = iter(loader)
    first = [next(batches)[0] for _ in range(3)]
    assert all(b.shape == (4,) and 0 <= int(b.min()) and int(b.max()) < 10 for b in first)
    again = iter(tg.utils.data.DataLoader(ds, batch_size=4, sampler=tg.utils.data.RandomSampler(
        ds, replacement=True, num_samples=10**10, generator=tg.Generator().manual_seed(1))))
    assert next(again)[0].shape == (4,)


def test_worker_processes_take_a_huge_samplers_indices_as_they_go():
    ds = tg.utils.data.TensorDataset(tg.arange(10))
    sampler = tg.utils.data.RandomSampler(ds, replacement=True, num_samples=10**10,
                                          generator=tg.Generator().manual_seed(2))
    with_workers = iter(tg.utils.data.DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2))
    first = [next(with_workers)[0].tolist() for _ in range(5)]
    sampler.generator.manual_seed(2)
    without = iter(tg.utils.data.DataLoader(ds, batch_size=4, sampler=sampler))
    assert first == [next(without)[0].tolist() for _ in range(5)]  # the same batches, in order
