"""The dtype table: every dtype netcl knows, with its numpy and OpenCL C types.

A :class:`DType` is a small immutable record. Tensors carry one; backends use
``np`` to allocate host arrays and ``cl_type`` / ``cl_compute`` to generate
kernels. Half-precision values are stored as 16-bit words on OpenCL devices
and computed in ``float``, so they work on devices without ``cl_khr_fp16``.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = [
    "DType",
    "bfloat16",
    "bool_",
    "dtype",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "promote",
    "uint8",
    "ALL_DTYPES",
]


@dataclass(frozen=True, eq=False)
class DType:
    """One element type.

    Attributes:
        name: netcl's name, also used in checkpoints (``"float32"``).
        np: the numpy dtype of host arrays holding this type.
        cl_type: the OpenCL C type a buffer element is stored as.
        cl_compute: the OpenCL C type arithmetic is done in.
        kind: ``"f"`` floating, ``"i"`` signed, ``"u"`` unsigned, ``"b"`` bool.
        rank: orders types inside a kind for promotion.
    """

    name: str
    np: np.dtype
    cl_type: str
    cl_compute: str
    kind: str
    rank: int

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def is_floating(self) -> bool:
        return self.kind == "f"

    def __repr__(self) -> str:
        return f"netcl.{self.name}"

    def __reduce__(self):
        return (dtype, (self.name,))


float16 = DType("float16", np.dtype(np.float16), "ushort", "float", "f", 1)
bfloat16 = DType("bfloat16", np.dtype(ml_dtypes.bfloat16), "ushort", "float", "f", 1)
float32 = DType("float32", np.dtype(np.float32), "float", "float", "f", 2)
float64 = DType("float64", np.dtype(np.float64), "double", "double", "f", 3)
int8 = DType("int8", np.dtype(np.int8), "char", "char", "i", 1)
int16 = DType("int16", np.dtype(np.int16), "short", "short", "i", 2)
int32 = DType("int32", np.dtype(np.int32), "int", "int", "i", 3)
int64 = DType("int64", np.dtype(np.int64), "long", "long", "i", 4)
uint8 = DType("uint8", np.dtype(np.uint8), "uchar", "uchar", "u", 1)
bool_ = DType("bool", np.dtype(np.bool_), "uchar", "uchar", "b", 0)

ALL_DTYPES = (
    float16,
    bfloat16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
    bool_,
)
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME["bool_"] = bool_
_BY_NP = {d.np: d for d in ALL_DTYPES}


def dtype(spec) -> DType:
    """Return the :class:`DType` for a DType, a name, a numpy dtype or a type.

    Raises:
        TypeError: if netcl has no such dtype (the message lists the choices).
    """
    if isinstance(spec, DType):
        return spec
    if isinstance(spec, str) and spec in _BY_NAME:
        return _BY_NAME[spec]
    if spec is bool:
        return bool_
    if spec is int:
        return int64
    if spec is float:
        return float32
    try:
        found = _BY_NP.get(np.dtype(spec))
    except TypeError:
        found = None
    if found is None:
        names = ", ".join(d.name for d in ALL_DTYPES)
        raise TypeError(f"netcl has no dtype {spec!r}; choose one of: {names}")
    return found


def promote(a: DType, b: DType) -> DType:
    """The dtype of a binary operation between tensors of dtypes ``a`` and ``b``.

    Floating beats integer beats bool; inside a kind the wider type wins;
    float16 with bfloat16 gives float32; signed with unsigned gives the signed
    type wide enough for both.
    """
    if a is b:
        return a
    order = {"b": 0, "u": 1, "i": 1, "f": 2}
    if order[a.kind] != order[b.kind]:
        return a if order[a.kind] > order[b.kind] else b
    if a.kind == "f":
        if a.rank == b.rank:  # float16 with bfloat16
            return float32
        return a if a.rank > b.rank else b
    if a.kind == b.kind:
        return a if a.rank > b.rank else b
    signed, unsigned = (a, b) if a.kind == "i" else (b, a)
    return signed if signed.rank > unsigned.rank else int16
