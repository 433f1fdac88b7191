"""netcl: tensors with autograd on OpenCL devices and the host, and training
state that is saved, moved between machines and resumed exactly.

The tensor API lives at the top level (``netcl.tensor``, ``netcl.zeros``,
``netcl.no_grad`` ...); layers in :mod:`netcl.nn`, optimizers in
:mod:`netcl.optim`, data loading in :mod:`netcl.data`, files in
:mod:`netcl.io`.
"""

from __future__ import annotations

import importlib

from netcl.core import random
from netcl.core.autograd import enable_grad, is_grad_enabled, no_grad
from netcl.core.device import Device, get_device, manager
from netcl.core.dtypes import (
    DType,
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)
from netcl.core.random import Generator, manual_seed
from netcl.core.tensor import (
    Tensor,
    arange,
    broadcast_shapes,
    cat,
    empty,
    full,
    full_like,
    matmul,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

_SUBMODULES = ("nn", "optim", "data", "io", "amp", "cli")


def __getattr__(name: str):
    # Subpackages load on first use so `import netcl` stays light.
    if name in _SUBMODULES:
        return importlib.import_module(f"netcl.{name}")
    raise AttributeError(f"module 'netcl' has no attribute {name!r}")


__all__ = [
    "DType",
    "Device",
    "Generator",
    "Tensor",
    "arange",
    "bfloat16",
    "bool_",
    "broadcast_shapes",
    "cat",
    "empty",
    "enable_grad",
    "float16",
    "float32",
    "float64",
    "full",
    "full_like",
    "get_device",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_grad_enabled",
    "manager",
    "manual_seed",
    "matmul",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "random",
    "stack",
    "tensor",
    "uint8",
    "where",
    "zeros",
    "zeros_like",
]
