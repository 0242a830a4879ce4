"""Samplers, as torch.utils.data's: the order in which a DataLoader visits a data set's indices.

The random ones draw from `generator` (a tinygrad_course.Generator, as torch's, or a NumPy
Generator), else from tinygrad_course's global generator (see manual_seed), afresh on every
iteration: each epoch gets a new order.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def _rng(generator) -> np.random.Generator:
    """The NumPy Generator to draw from now (looked up at each use: Generator.manual_seed replaces it)."""
    if isinstance(generator, np.random.Generator):
        return generator
    from ..functions import Generator, _rng_of
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"generator must be a tinygrad_course.Generator (Generator().manual_seed(0)) or a "
                        f"numpy.random.Generator, got {type(generator).__module__}.{type(generator).__qualname__}")
    return _rng_of(generator)  # None: the global generator


def epoch_order_rng(entropy) -> np.random.Generator:
    """The generator of an epoch's shuffled order, from (seed, epoch): DataLoader(shuffle=True, seed=s)
    and DistributedSampler(seed=s) draw the same permutation at the same epoch, so the ranks' shares
    of a step make up the batch that one process would take at that step."""
    return np.random.default_rng(np.random.SeedSequence(entropy).spawn(1)[0])


def _positive_int(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Sampler:
    """Base class: iterating gives indices (or, for a batch sampler, lists of them)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of the indices; with replacement=True, num_samples independent draws.
    Without replacement, num_samples > len(data_source) repeats whole permutations, as in PyTorch."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement must be a bool, got {replacement!r}")
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = None if num_samples is None else _positive_int("num_samples", num_samples)
        _rng(generator)  # a wrong type fails here, not at the first epoch

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        """Drawn lazily, a chunk at a time: num_samples may be far larger than memory (makemore's 1e10).
        The epoch's own generator is seeded from `generator` now, as PyTorch does, so the draws do not
        depend on when a loader's prefetching asks for them."""
        seed = _rng(self.generator).integers(2**63)
        return self._draw(len(self.data_source), np.random.default_rng(seed), self.num_samples)

    def _draw(self, n, rng, left):
        while left > 0:
            chunk = rng.integers(0, n, min(left, 4096)) if self.replacement else rng.permutation(n)[:left]
            yield from chunk.tolist()
            left -= len(chunk)

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = indices, generator
        _rng(generator)

    def __iter__(self):
        return (self.indices[i] for i in _rng(self.generator).permutation(len(self.indices)).tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """num_samples indices drawn with probabilities proportional to `weights` (with replacement by default)."""

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement must be a bool, got {replacement!r}")
        weights = np.asarray(weights.detach().numpy() if hasattr(weights, "detach") else weights, np.float64)
        if weights.ndim != 1 or not len(weights) or not np.isfinite(weights).all() or (weights < 0).any() \
                or weights.sum() <= 0:
            raise ValueError("weights must be a 1-D sequence of finite, non-negative numbers with a positive sum, "
                             f"got shape {weights.shape}")
        self.num_samples = _positive_int("num_samples", num_samples)
        if not replacement and self.num_samples > np.count_nonzero(weights):
            raise ValueError(f"num_samples={self.num_samples} without replacement needs as many non-zero weights, "
                             f"got {np.count_nonzero(weights)}")
        self.weights, self.replacement, self.generator = weights, replacement, generator
        _rng(generator)

    def __iter__(self):
        p = self.weights / self.weights.sum()
        return iter(_rng(self.generator).choice(len(p), self.num_samples, replace=self.replacement, p=p).tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of batch_size indices from `sampler` (the last one shorter unless drop_last)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(drop_last, bool):
            raise TypeError(f"drop_last must be a bool, got {drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, _positive_int("batch_size", batch_size), drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
