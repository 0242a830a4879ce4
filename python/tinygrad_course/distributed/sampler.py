"""DistributedSampler: each rank's share of a data set, as torch.utils.data.distributed's."""
from __future__ import annotations

import math

import numpy as np

from ..data.sampler import Sampler, epoch_order_rng


class DistributedSampler(Sampler):
    """Rank `rank`'s share of the indices of `dataset` among `num_replicas` ranks (default: the process
    group's), PyTorch's rule: with shuffle, one permutation per epoch drawn from seed + epoch (so every
    rank draws the same one; call set_epoch(e) before each epoch, or DataLoader.set_epoch(e), which
    passes it on), padded by repeating its start to a
    multiple of num_replicas (or cut, with drop_last), then every num_replicas-th index from `rank`.
    The shares are disjoint, cover the data set, and are equally long, so every rank runs the same
    number of steps. The permutation is DataLoader(shuffle=True, seed=seed)'s at the same epoch (not
    torch.randperm's): rank r's k-th batch of b samples is every num_replicas-th sample of that
    loader's k-th batch of num_replicas * b, so the ranks together take the same steps as one process."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from . import get_rank, get_world_size  # the process group's; raises when there is none
            num_replicas = get_world_size() if num_replicas is None else num_replicas
            rank = get_rank() if rank is None else rank
        if not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got {num_replicas!r}")
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas}), got {rank!r}")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), bool(drop_last), 0
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose permutation the next iter() draws (the same on every rank)."""
        self.epoch = int(epoch)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = epoch_order_rng([self.seed, self.epoch]).permutation(n)
        else:
            indices = np.arange(n)
        if self.total_size > n:  # pad with the start, repeated as often as needed
            indices = np.resize(indices, self.total_size)
        indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
