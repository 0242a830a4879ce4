"""torch.utils.data.dataloader's names (`from torch.utils.data.dataloader import DataLoader`)."""
from ...data import DataLoader, default_collate, get_worker_info  # noqa: F401
