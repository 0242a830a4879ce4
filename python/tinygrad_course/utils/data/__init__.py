"""torch.utils.data's names, which are tinygrad_course.data's: `from tinygrad_course.utils.data import
DataLoader` works as torch's import does, as do its submodules' (`utils.data.dataloader`, `.dataset`,
`.sampler`)."""
from ...data import (  # noqa: F401
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler, Sampler, SequentialSampler,
    Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, get_worker_info,
    random_split)
from . import dataloader, dataset, distributed, sampler  # noqa: F401,E402
