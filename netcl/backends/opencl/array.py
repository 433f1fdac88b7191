"""``CLArray``: a strided view of an OpenCL buffer, and the view arithmetic.

A CLArray never owns computation; it only says where its elements live:
element ``(i0, i1, ...)`` is at ``offset + i0 * strides[0] + i1 * strides[1]
+ ...`` elements from the start of ``base``. Strides and offset count
elements, not bytes, and may be zero (``expand``) or negative (a slice with a
negative step). Views share ``base``, so writing through one is seen by all.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CLArray", "collapse_dims", "contiguous_strides", "pad_dims"]


def contiguous_strides(shape: tuple) -> tuple:
    """The C-order element strides of ``shape``."""
    strides = []
    step = 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class CLArray:
    """A strided view of a pyopencl buffer (see the module docstring).

    Attributes:
        shape: the logical shape, a tuple of ints.
        dtype: the numpy dtype of the elements (bool is stored as uchar 0/1,
            float16 and bfloat16 as 16-bit words).
        strides: element strides, one per axis.
        offset: element offset of element ``(0, ..., 0)`` in ``base``.
        base: the pyopencl buffer (usually a pooled allocation) holding the
            data; views keep it alive.
    """

    __slots__ = ("shape", "dtype", "strides", "offset", "base", "size")

    def __init__(self, base, shape, dtype, strides=None, offset=0):
        self.base = base
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        if strides is None:
            strides = contiguous_strides(self.shape)
        self.strides = tuple(int(s) for s in strides)
        self.offset = int(offset)
        self.size = math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def buffer(self):
        """The pyopencl memory object behind this view."""
        return self.base

    def is_contiguous(self) -> bool:
        """True when the elements are laid out densely in C order."""
        if self.size <= 1:
            return True
        expect = 1
        for n, s in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1 and s != expect:
                return False
            expect *= n
        return True

    def view(self, shape, strides, offset) -> CLArray:
        """Another view of the same buffer."""
        return CLArray(self.base, shape, self.dtype, strides, offset)

    def __repr__(self) -> str:
        return (
            f"CLArray(shape={self.shape}, dtype={self.dtype}, "
            f"strides={self.strides}, offset={self.offset})"
        )


def collapse_dims(shape: tuple, *stride_sets: tuple) -> tuple:
    """Merge neighbouring axes that every operand walks as one.

    Axes ``i`` and ``i + 1`` merge when, for every stride set,
    ``strides[i] == strides[i + 1] * shape[i + 1]``. Axes of length 1 are
    dropped. Returns ``(shape, [strides, ...])`` with at least one axis, so
    kernels index far fewer dimensions in the common cases.
    """
    dims = [i for i, n in enumerate(shape) if n != 1]
    if not dims:
        return (1,), [(0,) for _ in stride_sets]
    out_shape = [shape[dims[0]]]
    out_strides = [[s[dims[0]]] for s in stride_sets]
    for i in dims[1:]:
        n = shape[i]
        if all(o[-1] == s[i] * n for o, s in zip(out_strides, stride_sets)):
            out_shape[-1] *= n
            for o, s in zip(out_strides, stride_sets):
                o[-1] = s[i]
        else:
            out_shape.append(n)
            for o, s in zip(out_strides, stride_sets):
                o.append(s[i])
    return tuple(out_shape), [tuple(o) for o in out_strides]


def pad_dims(shape: tuple, stride_sets: list) -> tuple:
    """Pad a collapsed 3-D layout to 4-D with a leading axis of length 1, so
    one compiled kernel serves both (kernels exist for 1, 2, 4, 5, ... axes)."""
    if len(shape) != 3:
        return shape, stride_sets
    return (1, *shape), [(0, *s) for s in stride_sets]
