"""torch.utils.data.distributed's name."""
from ...distributed.sampler import DistributedSampler  # noqa: F401
