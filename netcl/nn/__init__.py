"""Neural-network layers, containers, initialisation and losses.

Build models from :class:`Module` subclasses; their parameters, buffers and
submodules are found by attribute assignment and named in ``state_dict()``.
Stateless operations live in :mod:`netcl.nn.functional`, initialisers in
:mod:`netcl.nn.init`.

Example:
    >>> import netcl
    >>> from netcl import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> net(netcl.zeros(5, 4)).shape
    (5, 2)
"""

from __future__ import annotations

from netcl.nn import functional, init
from netcl.nn.containers import ModuleDict, ModuleList, Sequential
from netcl.nn.layers import (
    GELU,
    AvgPool2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)
from netcl.nn.module import (
    IncompatibleKeys,
    Module,
    Parameter,
    StateDictError,
    StateDictWarning,
    module_registry,
    register,
    registered_name,
)
from netcl.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm

__all__ = [
    "GELU",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "IncompatibleKeys",
    "LayerNorm",
    "Linear",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "StateDictWarning",
    "Tanh",
    "functional",
    "init",
    "module_registry",
    "register",
    "registered_name",
]
