"""Datasets: indexable collections of samples for :class:`~netcl.data.DataLoader`.

A dataset is anything with ``__len__`` and ``__getitem__(i)`` for
``0 <= i < len(dataset)``. :class:`TensorDataset` holds whole arrays in host
memory and lets the loader cut a batch out of every array with one numpy
indexing operation instead of one Python call per sample.
"""

from __future__ import annotations

import numpy as np

from netcl.core.tensor import Tensor, tensor

__all__ = ["Dataset", "TensorDataset"]


class Dataset:
    """Base class of map-style datasets: samples looked up by position.

    Subclasses implement ``__getitem__(index)``, returning one sample (a tuple
    of arrays, numbers or tensors, or a single one of them), and ``__len__``.
    """

    def __getitem__(self, index: int):
        raise NotImplementedError(
            f"{type(self).__name__} must implement __getitem__(index)"
        )

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__()")


class TensorDataset(Dataset):
    """Samples cut along the first dimension of one or more arrays.

    Sample ``i`` is ``(a[i], b[i], ...)``. The arrays are kept as numpy arrays
    on the host (tensors on a device are copied to the host once, here), so a
    :class:`~netcl.data.DataLoader` builds each batch with one fancy-indexing
    operation per array and a single upload.

    Args:
        *arrays: numpy arrays, netcl tensors or anything ``numpy.asarray``
            accepts, all with the same length along their first dimension.

    Raises:
        ValueError: if no array is given, one is zero-dimensional, or their
            first dimensions differ.

    Example:
        >>> import numpy as np
        >>> ds = TensorDataset(np.zeros((4, 3)), np.arange(4))
        >>> len(ds), ds[2][1].item()
        (4, 2)
    """

    def __init__(self, *arrays) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        converted = tuple(_to_numpy(a) for a in arrays)
        for k, a in enumerate(converted):
            if a.ndim == 0:
                raise ValueError(
                    f"TensorDataset array {k} is zero-dimensional; every array "
                    "needs a first dimension to index samples along"
                )
        lengths = [a.shape[0] for a in converted]
        if len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in converted)
            raise ValueError(
                "TensorDataset arrays must have the same size in their first "
                f"dimension, got shapes {shapes}"
            )
        self._arrays = converted

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The underlying host arrays, in the order they were given."""
        return self._arrays

    def __len__(self) -> int:
        return self._arrays[0].shape[0]

    def __getitem__(self, index) -> tuple[Tensor, ...]:
        """Sample ``index`` as a tuple of host tensors (an int, a slice or an
        integer array selects one sample or several)."""
        return tuple(tensor(a[index]) for a in self._arrays)

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """The samples at ``indices`` (an integer array), one new host array
        per underlying array; this is the loader's batch fast path."""
        return tuple(a[indices] for a in self._arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self._arrays)
        return f"TensorDataset({shapes})"


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, Tensor):
        return np.array(a.numpy(), copy=True, order="C")
    arr = np.asarray(a)
    if arr.dtype == object:
        raise TypeError(
            "TensorDataset needs numeric arrays, got ragged or non-numeric data"
        )
    return arr
