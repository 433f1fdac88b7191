"""The bridge between checkpoint files and netcl tensors / numpy arrays.

Files hold host arrays only: a tensor on an OpenCL device is copied to the
host one at a time while saving, and values are copied straight from host
memory into a device buffer while loading. Element types that numpy cannot
describe portably (``bfloat16`` and the other ``ml_dtypes`` types) are stored
as unsigned integers of the same width holding the raw bits; the true dtype
name is kept in the checkpoint's JSON record.
"""

from __future__ import annotations

import functools
from typing import Any

import ml_dtypes
import numpy as np

__all__ = [
    "describe",
    "from_storage",
    "is_array",
    "is_tensor",
    "numpy_dtype",
    "storage_array",
    "storage_dtype",
    "to_host",
]


@functools.cache
def _tensor_class() -> type | None:
    try:
        from netcl.core.tensor import Tensor
    except ImportError:  # a numpy-only installation or a partial checkout
        return None
    return Tensor


def is_tensor(value: Any) -> bool:
    cls = _tensor_class()
    return cls is not None and isinstance(value, cls)


def is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or is_tensor(value)


def describe(value: Any, path: str) -> tuple[str, str, tuple[int, ...]]:
    """``(kind, dtype name, shape)`` of a tensor or array, checking its dtype.

    Raises:
        TypeError: the array's dtype cannot be stored (names ``path``).
    """
    if is_tensor(value):
        return "tensor", value.dtype.name, tuple(value.shape)
    dtype = value.dtype
    if not _storable(dtype):
        raise TypeError(
            f"checkpoint array at {path or 'the top'} has dtype {dtype!r}, which "
            "cannot be stored safely; use a boolean, integer, floating or "
            "complex dtype"
        )
    return "ndarray", dtype.name, tuple(value.shape)


def to_host(value: Any) -> np.ndarray:
    """The host array of a tensor (a copy from a device), or the array itself."""
    if is_tensor(value):
        return value.numpy()
    return value


@functools.cache
def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype called ``name``; ``ml_dtypes`` names included."""
    if hasattr(ml_dtypes, name):
        return np.dtype(getattr(ml_dtypes, name))
    dtype = np.dtype(name)
    if not _storable(dtype) or dtype.name != name:
        raise TypeError(f"{name!r} is not a dtype a checkpoint may hold")
    return dtype


@functools.cache
def storage_dtype(name: str) -> np.dtype:
    """The little-endian dtype an array of dtype ``name`` is stored as."""
    dtype = numpy_dtype(name)
    if dtype.type.__module__.startswith("ml_dtypes"):
        return np.dtype(f"<u{dtype.itemsize}")
    return dtype.newbyteorder("<")


def storage_array(host: np.ndarray, name: str) -> np.ndarray:
    """``host`` as a C-contiguous, little-endian array of the storage dtype.

    No copy is made when ``host`` already is one; a view or a non-contiguous
    array is compacted, so only its own elements are stored.
    """
    target = storage_dtype(name)
    if host.dtype.type.__module__.startswith("ml_dtypes"):
        return _c_contiguous(host).view(target)
    return _c_contiguous(host.astype(target, copy=False))


def from_storage(stored: np.ndarray, name: str) -> np.ndarray:
    """The array of true dtype ``name`` whose bits ``stored`` holds (a view)."""
    dtype = numpy_dtype(name)
    if stored.dtype == dtype:
        return stored
    if dtype.type.__module__.startswith("ml_dtypes"):
        return stored.view(dtype)
    return stored.astype(dtype, copy=False)


def _c_contiguous(array: np.ndarray) -> np.ndarray:
    # np.ascontiguousarray would turn a 0-d array into shape (1,).
    if array.flags.c_contiguous:
        return array
    return array.copy(order="C")


def _storable(dtype: np.dtype) -> bool:
    if dtype.type.__module__.startswith("ml_dtypes"):
        return True
    limits = {"b": 1, "i": 8, "u": 8, "f": 8, "c": 16}
    return dtype.kind in limits and dtype.itemsize <= limits[dtype.kind]


def is_floating(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a floating type (``ml_dtypes`` floats included)."""
    if dtype.type.__module__.startswith("ml_dtypes"):
        return "float" in dtype.name
    return dtype.kind == "f"


def target_dtype(target: Any) -> np.dtype:
    """The numpy dtype of the values a tensor or array holds."""
    if is_tensor(target):
        return np.dtype(target.dtype.np)
    return target.dtype


def device_for(queue: Any) -> Any:
    """The netcl Device of ``queue`` (a queue, a Device, or None: the host)."""
    from netcl.core.device import manager

    return manager.for_queue(queue)


def make_tensor(data: np.ndarray, dtype_name: str, device: Any) -> Any:
    """A new netcl tensor on ``device`` holding a copy of ``data``."""
    if _tensor_class() is None:
        return np.array(data)
    import netcl

    # netcl.tensor copies once, straight from ``data`` (which may view the file).
    return netcl.tensor(data, dtype=dtype_name, device=device)


def copy_into(target: Any, data: np.ndarray) -> None:
    """Write ``data`` into ``target`` in place, on the target's device."""
    if is_tensor(target):
        from netcl.core.autograd import no_grad

        with no_grad():  # restoring a parameter is not a step to differentiate
            target.copy_(data)
    else:
        np.copyto(target, data)
