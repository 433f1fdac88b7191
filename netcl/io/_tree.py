"""Turning a nested checkpoint into a JSON skeleton plus a list of arrays.

A checkpoint is a tree of dicts, lists and tuples whose leaves are strings,
numbers, bools, None, netcl tensors and numpy arrays. :func:`flatten` checks
every value (before anything is written), names each array after its key path
(``"model/fc1.weight"``) and replaces it by a reference; :func:`unflatten`
rebuilds the tree from the skeleton and the loaded arrays.

How values appear in the skeleton (plain JSON):

==========================  ==============================================
value                       JSON node
==========================  ==============================================
None, bool, int, str        itself
finite float                itself (``-0.0`` included)
nan, inf, -inf              ``{"float": "nan"}`` / ``"inf"`` / ``"-inf"``;
                            a NaN other than the standard one adds
                            ``"bits": "0x..."`` (its 64 IEEE bits)
list                        a JSON list of nodes
tuple                       ``{"tuple": [nodes]}``
dict with str keys          ``{"dict": {key: node}}``
dict with other keys        ``{"dict_items": [[key node, node], ...]}``
tensor or ndarray           ``{"array": "disk name"}``
==========================  ==============================================

Numpy scalars are stored as the plain number they hold. The same tensor or
array object reached twice (a parameter shared by two modules) is stored once
and both places refer to one disk name, so it comes back shared.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netcl.io import _tensors

__all__ = ["Leaf", "flatten", "unflatten", "plain_number"]

_STANDARD_NAN_BITS = struct.unpack("<Q", struct.pack("<d", float("nan")))[0]


@dataclass
class Leaf:
    """One array of the checkpoint: where it sits and what it holds."""

    name: str  # the name on disk, also the key of the JSON arrays table
    path: str  # the key path shown in messages, e.g. "['model']['fc.weight']"
    value: Any  # the tensor or ndarray
    kind: str  # "tensor" or "ndarray"
    dtype: str  # netcl / numpy dtype name, e.g. "bfloat16"
    shape: tuple[int, ...]


class _Flattener:
    """Walks a tree once, collecting arrays and checking every value."""

    def __init__(self, zero_d_as_number: bool) -> None:
        self.leaves: list[Leaf] = []
        self.by_name: dict[str, Leaf] = {}
        self.by_id: dict[int, Leaf] = {}
        self.zero_d_as_number = zero_d_as_number

    def node(self, value: Any, path: str, name: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float, np.generic)):
            return encode_number(plain_number(value, path))
        if _tensors.is_array(value):
            return self.array(value, path, name)
        if isinstance(value, Mapping):
            return self.mapping(value, path, name)
        if isinstance(value, (list, tuple)):
            items = [
                self.node(v, f"{path}[{i}]", _join(name, str(i)))
                for i, v in enumerate(value)
            ]
            return items if isinstance(value, list) else {"tuple": items}
        raise TypeError(
            f"checkpoint value at {path or 'the top'} is a {type(value).__name__}, "
            "which cannot be stored safely; use dicts, lists, tuples, strings, "
            "numbers, bools, None, tensors or numpy arrays"
        )

    def mapping(self, value: Mapping, path: str, name: str) -> dict:
        items = []
        for key, item in value.items():
            key = _check_key(key, path)
            sub = f"{path}[{key!r}]"
            items.append((key, self.node(item, sub, _join(name, str(key)))))
        if all(isinstance(k, str) for k, _ in items):
            return {"dict": dict(items)}
        return {"dict_items": [[k, v] for k, v in items]}

    def array(self, value: Any, path: str, name: str) -> Any:
        shared = self.by_id.get(id(value))
        if shared is not None:
            return {"array": shared.name}
        kind, dtype, shape = _tensors.describe(value, path)
        if self.zero_d_as_number and shape == ():
            return encode_number(plain_number(_tensors.to_host(value)[()], path))
        leaf = Leaf(name, path, value, kind, dtype, shape)
        other = self.by_name.get(name)
        if other is not None:
            raise ValueError(
                f"checkpoint keys {other.path} and {path} would both be stored as "
                f"{name!r}; rename one of them"
            )
        self.leaves.append(leaf)
        self.by_name[name] = leaf
        self.by_id[id(value)] = leaf
        return {"array": name}


def flatten(
    tree: Any, *, root_name: str = "", zero_d_as_number: bool = False, path: str = ""
) -> tuple[Any, list[Leaf]]:
    """Check ``tree`` and split it into a JSON skeleton and its arrays.

    Args:
        tree: the nested value.
        root_name: disk-name prefix for the arrays found (``""``: none).
        zero_d_as_number: store 0-d tensors and arrays as plain numbers
            (used for metadata such as ``config`` and ``optim_state``).
        path: key path of ``tree`` itself, for messages.

    Raises:
        TypeError: a value or key cannot be stored safely (names its path).
        ValueError: two arrays would get the same disk name.
    """
    walker = _Flattener(zero_d_as_number)
    return walker.node(tree, path, root_name), walker.leaves


def merge(parts: list[tuple[Any, list[Leaf]]]) -> list[Leaf]:
    """All leaves of several flattened parts, refusing disk-name collisions."""
    seen: dict[str, Leaf] = {}
    leaves = []
    for _, part in parts:
        for leaf in part:
            other = seen.get(leaf.name)
            if other is not None and other.value is not leaf.value:
                raise ValueError(
                    f"checkpoint keys {other.path} and {leaf.path} would both be "
                    f"stored as {leaf.name!r}; rename one of them"
                )
            if other is None:
                seen[leaf.name] = leaf
                leaves.append(leaf)
    return leaves


def unflatten(node: Any, array: Callable[[str], Any]) -> Any:
    """Rebuild a value from its skeleton; ``array(name)`` supplies each array."""
    if isinstance(node, list):
        return [unflatten(v, array) for v in node]
    if not isinstance(node, dict):
        return node
    if "array" in node:
        return array(node["array"])
    if "float" in node:
        return decode_float(node)
    if "tuple" in node:
        return tuple(unflatten(v, array) for v in node["tuple"])
    if "dict" in node:
        return {k: unflatten(v, array) for k, v in node["dict"].items()}
    if "dict_items" in node:
        return {k: unflatten(v, array) for k, v in node["dict_items"]}
    raise ValueError(f"unknown node {sorted(node)!r} in the checkpoint tree")


def plain_number(value: Any, path: str) -> bool | int | float:
    """A Python bool, int or float holding exactly ``value``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, np.floating) and np.dtype(value.dtype).itemsize <= 8:
        return float(value)
    raise TypeError(
        f"checkpoint value at {path or 'the top'} is a {type(value).__name__} "
        "scalar, which cannot be stored as a plain number"
    )


def encode_number(value: bool | int | float) -> Any:
    """The JSON node of a number; non-finite floats become tagged objects."""
    if not isinstance(value, float) or math.isfinite(value):
        return value
    if value != value:
        bits = struct.unpack("<Q", struct.pack("<d", value))[0]
        if bits == _STANDARD_NAN_BITS:
            return {"float": "nan"}
        return {"float": "nan", "bits": f"0x{bits:016x}"}
    return {"float": "inf" if value > 0 else "-inf"}


def decode_float(node: dict) -> float:
    """The float that :func:`encode_number` turned into ``node``."""
    if "bits" in node:
        return struct.unpack("<d", struct.pack("<Q", int(node["bits"], 16)))[0]
    if node["float"] not in ("nan", "inf", "-inf"):
        raise ValueError(f"unknown float {node['float']!r} in the checkpoint tree")
    return float(node["float"])


def _check_key(key: Any, path: str) -> str | int:
    if isinstance(key, str):
        return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return int(key)
    raise TypeError(
        f"checkpoint key {key!r} under {path or 'the top'} is a "
        f"{type(key).__name__}; keys must be strings or integers"
    )


def _join(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key
