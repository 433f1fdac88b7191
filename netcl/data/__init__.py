"""Data loading: datasets, a batching loader that resumes exactly, and
ready-made datasets (:mod:`netcl.data.datasets`).

Example:
    >>> import netcl
    >>> from netcl.data import DataLoader, datasets
    >>> netcl.manual_seed(0)
    >>> loader = DataLoader(datasets.digits("train"), batch_size=64, shuffle=True)
    >>> images, labels = next(iter(loader))
    >>> images.shape, labels.dtype
    ((64, 1, 8, 8), netcl.int64)
"""

from __future__ import annotations

from netcl.data import datasets
from netcl.data.dataset import Dataset, TensorDataset
from netcl.data.loader import DataLoader

__all__ = ["DataLoader", "Dataset", "TensorDataset", "datasets"]
