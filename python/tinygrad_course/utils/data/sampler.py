"""torch.utils.data.sampler's names."""
from ...data import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,  # noqa: F401
                     WeightedRandomSampler)
