"""torch.utils.data.dataset's names."""
from ...data import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split  # noqa: F401
