"""Building OpenCL programs once per context and launching their kernels.

PoCL takes a tenth of a second or more to compile a program, so every
generated kernel is keyed by what its source depends on (op, dtypes, number
of dimensions), never by shapes: shapes and strides travel as kernel
arguments. A :class:`KernelCache` maps each key to a ready ``pyopencl.Kernel``
whose scalar argument types are declared, so a launch costs a few
microseconds of Python.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pyopencl as cl

from netcl.backends.opencl import clc

__all__ = ["KernelCache", "BUILD_OPTIONS"]

logger = logging.getLogger(__name__)

# NOTE: mad-enable lets PoCL fuse a * b + c into one instruction; fma() and
# vloadN() calls would instead compile to slow function calls on PoCL.
BUILD_OPTIONS = ["-cl-mad-enable"]


class KernelCache:
    """Compiled kernels of one context, keyed by generator and parameters."""

    def __init__(self, device) -> None:
        self.device = device
        self.context = device.context
        self._kernels: dict = {}
        self._lock = threading.Lock()
        self.has_fp64 = "cl_khr_fp64" in device.cl_device.extensions

    def check_dtype(self, op: str, dt: np.dtype) -> None:
        """Raise when the device cannot run ``op`` on ``dt``."""
        if np.dtype(dt) == np.float64 and not self.has_fp64:
            raise TypeError(
                f"{op}: float64 needs the cl_khr_fp64 extension, which OpenCL "
                f"device {self.device.name} ({self.device.description}) lacks; "
                "use float32"
            )

    def get(self, key, generate, arg_types):
        """The kernel for ``key``, compiling ``generate()`` on first use.

        Args:
            key: a hashable tuple naming everything the source depends on.
            generate: returns ``(source, kernel_name, dtypes_used)``.
            arg_types: per kernel argument, None for a buffer or the numpy
                scalar type pyopencl should pack a Python number as.
        """
        kernel = self._kernels.get(key)
        if kernel is not None:
            return kernel
        with self._lock:
            kernel = self._kernels.get(key)
            if kernel is None:
                kernel = self._build(key, generate, arg_types)
                self._kernels[key] = kernel
        return kernel

    def _build(self, key, generate, arg_types):
        source, name, dtypes = generate()
        for dt in dtypes:
            self.check_dtype(str(key[0]), dt)
        source = clc.preamble(clc.uses_double(*dtypes)) + source
        logger.debug("compiling OpenCL kernel %s for %s", name, key)
        try:
            program = cl.Program(self.context, source).build(BUILD_OPTIONS)
        except cl.RuntimeError as exc:
            raise RuntimeError(
                f"OpenCL kernel {name} for {key!r} failed to compile on "
                f"{self.device.name}: {exc}\n--- source ---\n{source}"
            ) from exc
        kernel = getattr(program, name)
        kernel.set_scalar_arg_dtypes(list(arg_types))
        return kernel
