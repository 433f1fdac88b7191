"""The autocast context manager: run matrix products in low precision."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from netcl.core import dtypes as D
from netcl.core.autocast import autocast_dtype, set_autocast_dtype

__all__ = ["autocast"]


class autocast:
    """Context manager (and decorator) under which matmuls run in ``dtype``.

    Inside the block, :func:`netcl.matmul` (and so linear and convolution
    layers) casts its operands to ``dtype`` and returns a ``dtype`` result;
    other operations keep their inputs' dtypes. On exit the previous setting
    comes back, so blocks nest. ``enabled=False`` turns autocast off inside
    the block, e.g. for a part that needs float32 under an outer autocast.

    Args:
        dtype: the low-precision floating dtype (default: ``netcl.float16``;
            ``netcl.bfloat16`` also works).
        enabled: whether autocast is on inside the block (default: True).

    Example:
        >>> import netcl
        >>> a = netcl.ones(2, 2)
        >>> with netcl.amp.autocast():
        ...     (a @ a).dtype
        netcl.float16
        >>> (a @ a).dtype
        netcl.float32
    """

    def __init__(self, dtype: Any = D.float16, enabled: bool = True) -> None:
        dt = D.dtype(dtype)
        if not dt.is_floating:
            raise ValueError(f"autocast dtype must be floating, got {dt.name}")
        self.dtype = dt
        self.enabled = bool(enabled)
        self._saved: list[Any] = []

    def __enter__(self) -> autocast:
        self._saved.append(set_autocast_dtype(self.dtype if self.enabled else None))
        return self

    def __exit__(self, *exc) -> None:
        set_autocast_dtype(self._saved.pop())

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper


def is_autocast_enabled() -> bool:
    """Whether an autocast block is active here (in this thread)."""
    return autocast_dtype() is not None
