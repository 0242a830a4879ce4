"""Fisher's Iris from scikit-learn's CSV (header line `150,4,setosa,versicolor,virginica`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import ArrayDataset
from .root import DatasetError, data_root, download_url, missing_files_error

__all__ = ["read_iris_csv", "Iris"]


def read_iris_csv(path):
    """Read scikit-learn's iris.csv: returns features float32 (n, d), labels int64 (n,), class names.

    The header line gives the row count, the feature count and the class names; every row is
    d numbers then an integer label. Counts that do not match the header raise DatasetError.
    """
    path = Path(path)
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise DatasetError(f"{path}: empty file")
    header = lines[0].split(",")
    try:
        n_rows, n_features = int(header[0]), int(header[1])
    except (IndexError, ValueError):
        raise DatasetError(f"{path}: first line {lines[0]!r} is not a 'rows,features,class names...' header") from None
    classes = [c.strip() for c in header[2:]]
    if len(lines) - 1 != n_rows:
        raise DatasetError(f"{path}: header announces {n_rows} rows, found {len(lines) - 1}")
    features = np.empty((n_rows, n_features), np.float32)
    labels = np.empty(n_rows, np.int64)
    for i, line in enumerate(lines[1:]):
        fields = line.split(",")
        if len(fields) != n_features + 1:
            raise DatasetError(f"{path}: line {i + 2} has {len(fields)} fields, expected {n_features + 1}")
        try:
            features[i] = [float(v) for v in fields[:-1]]
            labels[i] = int(fields[-1])
        except ValueError as e:
            raise DatasetError(f"{path}: line {i + 2}: {e}") from None
        if not 0 <= labels[i] < max(len(classes), 1):
            raise DatasetError(f"{path}: line {i + 2}: label {labels[i]} out of range for classes {classes}")
    return features, labels, classes


class Iris(ArrayDataset):
    """Iris: `.data` float32 (150, 4), `.labels` int64 (150,), `.classes`, `.feature_names`.

    Reads <root>/iris/iris.csv; download=True fetches scikit-learn's copy (sha256-checked).
    """

    url = "https://raw.githubusercontent.com/scikit-learn/scikit-learn/1.5.2/sklearn/datasets/data/iris.csv"
    sha256 = "f13ffa8fdd56fd8e6c8d16d4081a3fbd3114bcd0aae4256c43205169cd9d1449"
    feature_names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

    def __init__(self, root=None, download: bool = False):
        self.root = data_root(root)
        path = self.root / "iris" / "iris.csv"
        if not path.is_file():
            if not download:
                raise missing_files_error("Iris", path.parent, [path.name])
            download_url(self.url, path, sha256=self.sha256)
        features, labels, self.classes = read_iris_csv(path)
        super().__init__(features, labels)

    @property
    def data(self) -> np.ndarray:
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays[1]
