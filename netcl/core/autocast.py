"""The autocast switch that mixed-precision training turns on.

While :func:`netcl.amp.autocast` is active, matrix products (and so linear
and convolution layers) run in its low-precision dtype; everything else keeps
its dtype. The switch lives in core so that tensor operations can read it
without importing :mod:`netcl.amp`.
"""

from __future__ import annotations

import threading

__all__ = ["autocast_dtype", "compute_dtype", "set_autocast_dtype"]


class _State(threading.local):
    dtype = None


_state = _State()


def autocast_dtype():
    """The DType matrix products are cast to, or None when autocast is off."""
    return _state.dtype


def set_autocast_dtype(dtype) -> object:
    """Set the autocast DType (None turns it off); returns the previous one."""
    prev = _state.dtype
    _state.dtype = dtype
    return prev


def compute_dtype(dtype):
    """The DType a matrix product of ``dtype`` operands runs in: the
    autocast dtype for floating operands while autocast is on, else
    ``dtype`` itself."""
    low = _state.dtype
    return low if low is not None and dtype.is_floating else dtype
