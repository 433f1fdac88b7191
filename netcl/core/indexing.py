"""Indexing: how ``tensor[index]`` and ``tensor[index] = value`` are taken apart.

Basic indices (ints, slices, ``None``, ``...``) become one backend slice,
a view that shares memory. Advanced indices (integer arrays, bool masks)
follow numpy's rules exactly: numpy computes the flat positions they select
from an index grid, and the tensor is gathered (or written) at those
positions.
"""

from __future__ import annotations

import numpy as np

import netcl.core.tensor as T
from netcl.core import dtypes as D
from netcl.core import functions as F
from netcl.core.autograd import is_grad_enabled

__all__ = ["apply_basic", "flat_positions", "parse", "value_raw"]


class _Basic:
    """The basic part of an index: the backend slice tuple and the shape
    after inserting ``None`` axes."""

    def __init__(self, raw: tuple, out_shape: tuple | None):
        self.raw, self.out_shape = raw, out_shape


def parse(index, shape: tuple):
    """Split an index into basic indexing (ints, slices, None, Ellipsis) or
    an advanced index (int arrays, bool masks) handled through numpy."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(_is_advanced(i) for i in index):
        return None, tuple(_to_numpy_index(i) for i in index)
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    if used > len(shape):
        raise IndexError(f"too many indices ({used}) for a tensor of shape {shape}")
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have one Ellipsis")
    expanded: list = []
    for i in index:
        if i is Ellipsis:
            expanded += [slice(None)] * (len(shape) - used)
        else:
            expanded.append(i)
    expanded += [slice(None)] * (len(shape) - sum(1 for i in expanded if i is not None))
    raw, out_shape, axis = [], [], 0
    for i in expanded:
        if i is None:
            out_shape.append(1)
            continue
        n = shape[axis]
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            out_shape.append(len(range(start, stop, step)))
            # A negative step that runs through index 0 has stop -1, which a
            # slice would read as "the last element": say None instead.
            raw.append(slice(start, stop if stop >= 0 else None, step))
        else:
            k = int(i)
            if not -n <= k < n:
                raise IndexError(
                    f"index {k} is out of range for dim {axis} of size {n}"
                )
            raw.append(k % n)
        axis += 1
    return _Basic(tuple(raw), tuple(out_shape)), None


def _is_advanced(i) -> bool:
    if isinstance(i, T.Tensor):
        return i.ndim > 0 or i.dtype is D.bool_
    if isinstance(i, (list, tuple, np.ndarray)):
        return True
    return isinstance(i, (bool, np.bool_))


def _to_numpy_index(i):
    if isinstance(i, T.Tensor):
        return i.numpy()
    if isinstance(i, (list, tuple)):
        arr = np.asarray(i)
        return arr.astype(np.int64) if arr.size == 0 else arr
    if isinstance(i, (np.integer, np.bool_)):
        return i.item()
    return i


def flat_positions(index: tuple, shape: tuple) -> np.ndarray:
    grid = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    try:
        return np.asarray(grid[index], dtype=np.int64)
    except IndexError as exc:
        raise IndexError(f"{exc} (tensor of shape {shape})") from None


def apply_basic(x: T.Tensor, basic: _Basic) -> T.Tensor:
    out = x
    if basic.raw and any(
        not (isinstance(s, slice) and s == slice(0, n, 1))
        for s, n in zip(basic.raw, x.shape)
    ):
        out = F.Slice.apply(x, index=basic.raw)
    if out.shape != basic.out_shape:
        out = out.reshape(basic.out_shape)
    return out


def value_raw(value, target: T.Tensor, shape: tuple):
    if T._is_num(value):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, T.Tensor) and value.requires_grad and is_grad_enabled():
        raise RuntimeError(
            "assigning a tensor that requires grad into another tensor would "
            "lose its gradient; build the result with cat() or where() instead, "
            "or assign value.detach()"
        )
    v = T._as_tensor(value, target)
    if v.device is not target.device:
        v = v.to(target.device)
    v = v.detach().to(target.dtype)
    while v.ndim > len(shape) and v.shape[0] == 1:
        v = v.reshape(v.shape[1:])
    return T._broadcast_to(v, shape)._data
