"""Fisher's Iris from scikit-learn's CSV (header line `150,4,setosa,versicolor,virginica`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import ArrayDataset
from .root import DatasetError, data_root, download_url, missing_files_error

__all__ = ["read_iris_csv", "Iris"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_iris_csv(path):
    """Read scikit-learn's iris.csv: returns features float32 (n, d), labels int64 (n,), class names.

    The header line gives the row count, the feature count and the class names; every row is
    d finite numbers then an integer label. Counts that do not match the header, non-numbers,
    NaN or infinite features, labels out of range and non-UTF-8 text raise DatasetError naming
    the line.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DatasetError(f"{path}: empty file; expected a 'rows,features,class names...' header and rows")
    header = lines[0][1].split(",")
    try:
        n_rows, n_features = int(header[0]), int(header[1])
    except (IndexError, ValueError):
        raise DatasetError(f"{path}: first line {lines[0][1]!r:.80} is not a 'rows,features,class names...' "
                           "header") from None
    classes = [c.strip() for c in header[2:]]
    if n_rows < 1 or n_features < 1 or not classes:
        raise DatasetError(f"{path}: header {lines[0][1]!r:.80} must announce at least one row, one feature "
                           "and one class name")
    if len(lines) - 1 != n_rows:
        raise DatasetError(f"{path}: header announces {n_rows} rows, found {len(lines) - 1}")
    features, labels = [], []
    for number, line in lines[1:]:
        fields = line.split(",")
        if len(fields) != n_features + 1:
            raise DatasetError(f"{path}: line {number} has {len(fields)} fields, expected {n_features + 1}")
        try:
            row, label = [float(v) for v in fields[:-1]], int(fields[-1])
        except ValueError as e:
            raise DatasetError(f"{path}: line {number}: {e}") from None
        if not all(abs(v) <= _FLOAT32_MAX for v in row):  # also false for NaN
            raise DatasetError(f"{path}: line {number}: features must be finite float32 numbers, got {line!r:.80}")
        if not 0 <= label < len(classes):
            raise DatasetError(f"{path}: line {number}: label {label} out of range for classes {classes}")
        features.append(row)
        labels.append(label)
    return np.array(features, np.float32), np.array(labels, np.int64), classes


class Iris(ArrayDataset):
    """Iris: `.data` float32 (150, 4), `.labels` int64 (150,), `.classes`, `.feature_names`.

    Reads <root>/iris/iris.csv; download=True fetches scikit-learn's copy (sha256-checked).
    transform / target_transform are applied to each sample's features / label.
    """

    url = "https://raw.githubusercontent.com/scikit-learn/scikit-learn/1.5.2/sklearn/datasets/data/iris.csv"
    sha256 = "f13ffa8fdd56fd8e6c8d16d4081a3fbd3114bcd0aae4256c43205169cd9d1449"
    feature_names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

    def __init__(self, root=None, download: bool = False, *, transform=None, target_transform=None):
        self.root = data_root(root)
        path = self.root / "iris" / "iris.csv"
        if not path.is_file():
            if not download:
                raise missing_files_error("Iris", path.parent, [path.name])
            download_url(self.url, path, sha256=self.sha256)
        features, labels, self.classes = read_iris_csv(path)
        super().__init__(features, labels, transform=transform, target_transform=target_transform)

    @property
    def data(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays[1]
