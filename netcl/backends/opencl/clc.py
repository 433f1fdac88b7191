"""OpenCL C spellings of netcl's dtypes, shared by every kernel generator.

Each dtype has a storage type (what a buffer element is) and a compute type
(what arithmetic is done in): float16 and bfloat16 are stored as ``ushort``
and computed in ``float``; bool is stored as ``uchar`` holding 0 or 1. The
helpers here return C expressions that load an element as its compute type
and store a compute value back with the right rounding.
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

__all__ = [
    "BF16",
    "F16",
    "accumulator",
    "compute_type",
    "convert",
    "is_float",
    "load",
    "preamble",
    "storage_type",
    "store",
]

F16 = np.dtype(np.float16)
BF16 = np.dtype(ml_dtypes.bfloat16)

_STORAGE = {
    "float16": "ushort",
    "bfloat16": "ushort",
    "float32": "float",
    "float64": "double",
    "int8": "char",
    "int16": "short",
    "int32": "int",
    "int64": "long",
    "uint8": "uchar",
    "bool": "uchar",
    # Unsigned views used only to copy elements bit for bit.
    "uint16": "ushort",
    "uint32": "uint",
    "uint64": "ulong",
}

_COMPUTE = dict(_STORAGE, float16="float", bfloat16="float")

# Helpers every program gets. bfloat16 keeps float32's exponent, so a load is
# a shift; a store rounds the dropped 16 bits to nearest even, keeping NaN a
# (quiet) NaN instead of letting the rounding carry turn it into infinity.
# Integer pow squares (negative exponents give 0 unless the base is +-1).
_HELPERS = """
inline float netcl_bf16_load(ushort h) { return as_float(((uint)h) << 16); }
inline ushort netcl_bf16_store(float f) {
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (ushort)(u >> 16);
}
inline long netcl_ipow(long b, long e) {
    if (e < 0) return b == 1 ? 1 : (b == -1 ? ((e & 1) ? -1 : 1) : 0);
    long r = 1;
    while (e) { if (e & 1) r *= b; b *= b; e >>= 1; }
    return r;
}
"""


@functools.cache  # on every launch: dtype.name is slow
def storage_type(dt: np.dtype) -> str:
    """The C type of one stored element of ``dt``."""
    try:
        return _STORAGE[np.dtype(dt).name]
    except KeyError:
        raise TypeError(f"the OpenCL backend has no dtype {dt!r}") from None


@functools.cache
def compute_type(dt: np.dtype) -> str:
    """The C type arithmetic on ``dt`` is done in."""
    storage_type(dt)
    return _COMPUTE[np.dtype(dt).name]


def accumulator(dt: np.dtype) -> str:
    """The C type sums and products of ``dt`` accumulate in."""
    if not is_float(dt):
        return "long"
    return compute_type(dt)


def is_float(dt: np.dtype) -> bool:
    """Whether ``dt`` is a floating type (numpy calls bfloat16 kind "V")."""
    return compute_type(dt) in ("float", "double")


def uses_double(*dtypes: np.dtype) -> bool:
    return any(np.dtype(d) == np.float64 for d in dtypes)


def preamble(double: bool) -> str:
    """Source every program starts with (fp64 pragma when ``double``)."""
    head = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if double else ""
    return head + _HELPERS


def load(dt: np.dtype, ptr: str, index: str) -> str:
    """C expression reading element ``index`` of ``ptr`` as the compute type."""
    name = np.dtype(dt).name
    if name == "float16":
        return f"vload_half({index}, (__global const half *)({ptr}))"
    if name == "bfloat16":
        return f"netcl_bf16_load({ptr}[{index}])"
    return f"{ptr}[{index}]"


def convert(value: str, src: str, dt: np.dtype) -> str:
    """C expression turning ``value`` (of C type ``src``) into ``dt``'s
    compute type, with C casting rules (bool means "is non-zero")."""
    dt = np.dtype(dt)
    if dt == np.bool_:
        return f"(uchar)(({value}) != 0)"
    target = compute_type(dt)
    if target == src:
        return f"({value})"
    return f"(({target})({value}))"


def store(dt: np.dtype, ptr: str, index: str, value: str, src: str) -> str:
    """C statement writing ``value`` (C type ``src``) to ``ptr[index]``."""
    name = np.dtype(dt).name
    v = convert(value, src, dt)
    if name == "float16":
        return f"vstore_half_rte({v}, {index}, (__global half *)({ptr}));"
    if name == "bfloat16":
        return f"{ptr}[{index}] = netcl_bf16_store({v});"
    return f"{ptr}[{index}] = {v};"
