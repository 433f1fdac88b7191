"""Deterministic reductions: sum, prod, max, min, argmax, argmin.

The reduced axes and the kept axes are each merged where their strides
allow. Every output gets one work-item that walks its reduced elements in C
order; the innermost reduced axis is a plain strided loop, so rows and
columns both reduce at memory speed. When there are few outputs but many
elements each (a full sum), the reduced range is cut into a fixed number of
chunks, each summed by its own work-item into a partial, and the partials are
summed in order by a second launch. The chunking depends only on the shape,
so the same input gives the same bits on every call; nothing uses atomics.
"""

from __future__ import annotations

import math

import numpy as np

from netcl.backends.opencl import clc
from netcl.backends.opencl.array import CLArray, collapse_dims, pad_dims
from netcl.backends.opencl.elementwise import SCALAR_NP, index_type

__all__ = ["argreduce", "reduce"]

_ACC_NP = {"float": np.float32, "double": np.float64, "long": np.int64}

# Split a reduction into chunks only when it has fewer outputs than this...
_FEW_OUTPUTS = 64
# ...and each output reduces at least this many elements per chunk.
_CHUNK = 4096
_MAX_WORK_ITEMS = 256


def _combine(op: str, is_float: bool) -> str:
    """C statement folding ``v`` into ``acc``; NaN wins max and min."""
    if op == "sum":
        return "acc = acc + v;"
    if op == "prod":
        return "acc = acc * v;"
    cmp = ">" if op == "max" else "<"
    nan = " || v != v" if is_float else ""
    return f"if (v {cmp} acc{nan}) acc = v;"


def _init(op: str, dt: np.dtype, acc: str) -> str:
    """The identity of ``op`` as a C literal of type ``acc``."""
    if op == "sum":
        return f"({acc})0"
    if op == "prod":
        return f"({acc})1"
    if clc.is_float(dt):
        return f"({acc})(-INFINITY)" if op == "max" else f"({acc})INFINITY"
    if dt == np.bool_:
        return "0" if op == "max" else "1"
    info = np.iinfo(dt)
    value = info.min if op == "max" else info.max
    # The most negative long has no literal in C; build it from one above.
    return f"({acc})({value + 1}L - 1)" if value < 0 else f"({acc}){value}L"


def _acc_type(op: str, dt: np.dtype) -> str:
    return clc.accumulator(dt) if op in ("sum", "prod") else clc.compute_type(dt)


def _source(op, in_dt, out_dt, nk, nr, idx):
    acc = _acc_type(op, in_dt)
    last = nr - 1
    params = [f"__global {clc.storage_type(out_dt)} *out"]
    params += [f"__global const {clc.storage_type(in_dt)} *x", f"{idx} xoff"]
    params += [f"{idx} total", f"{idx} chunk", f"{idx} parts"]
    params += [f"{idx} kn{d}, {idx} ks{d}" for d in range(nk)]
    params += [f"{idx} rn{d}, {idx} rs{d}" for d in range(nr)]
    lines = [
        f"{idx} g = get_global_id(0);",
        f"{idx} o = g / parts, part = g - o * parts;",
        f"{idx} base = xoff, q = o, c;",
    ]
    for d in reversed(range(nk)):
        step = f"c = q % kn{d}; q = q / kn{d};" if d else "c = q;"
        lines.append(f"{step} base += c * ks{d};")
    lines += [
        f"{idx} j = part * chunk;",
        f"{idx} end = min(j + chunk, total);",
        f"{acc} acc = {_init(op, in_dt, acc)};",
        "while (j < end) {",
        f"    {idx} t = j % rn{last}, p = j / rn{last};",
        f"    {idx} at = base + t * rs{last};",
    ]
    for d in reversed(range(last)):
        step = f"c = p % rn{d}; p = p / rn{d};" if d else "c = p;"
        lines.append(f"    {step} at += c * rs{d};")
    lines += [
        f"    {idx} run = min(rn{last} - t, end - j);",
        f"    for ({idx} u = 0; u < run; ++u) {{",
        f"        {acc} v = ({acc})({clc.load(in_dt, 'x', f'at + u * rs{last}')});",
        f"        {_combine(op, clc.is_float(in_dt))}",
        "    }",
        "    j += run;",
        "}",
        clc.store(out_dt, "out", "g", "acc", acc),
    ]
    body = "\n".join("    " + line for line in lines)
    return f"__kernel void red({', '.join(params)}) {{\n{body}\n}}\n"


def _merged(x: CLArray, axes) -> tuple:
    """Shape and strides of ``x``'s ``axes``, merged and padded."""
    shape = tuple(x.shape[d] for d in axes)
    return pad_dims(*collapse_dims(shape, tuple(x.strides[d] for d in axes)))


def _launch(backend, op, x, out_dt, kept, red, parts):
    """Reduce ``x`` over axes ``red`` into a new (outputs * parts) array."""
    kshape, (kstr,) = _merged(x, kept)
    rshape, (rstr,) = _merged(x, red)
    outputs, total = math.prod(kshape), math.prod(rshape)
    out = backend.empty((outputs * parts,), out_dt)
    chunk = -(-total // parts)
    idx = index_type(max(outputs * parts, total), [x])
    nk, nr = len(kshape), len(rshape)
    key = ("reduce", op, x.dtype, out_dt, nk, nr, idx)

    def generate():
        source = _source(op, x.dtype, np.dtype(out_dt), nk, nr, idx)
        return source, "red", [x.dtype, out_dt]

    idx_np = SCALAR_NP[idx]
    arg_types = [None, None] + [idx_np] * (4 + 2 * (nk + nr))
    args = [out.base, x.base, x.offset, total, chunk, parts]
    for n, s in zip(kshape, kstr):
        args += [n, s]
    for n, s in zip(rshape, rstr):
        args += [n, s]
    kernel = backend.kernels.get(key, generate, arg_types)
    kernel(backend.queue, (outputs * parts,), None, *args)
    return out


def _parts(outputs: int, total: int) -> int:
    """How many chunks each output's reduction is cut into."""
    if outputs >= _FEW_OUTPUTS or total < 2 * _CHUNK:
        return 1
    parts = min(-(-total // _CHUNK), max(1, _MAX_WORK_ITEMS // outputs))
    return -(-total // -(-total // parts))


def reduce(backend, op: str, x: CLArray, axes: tuple, keepdim: bool) -> CLArray:
    """See :meth:`OpenCLBackend.reduce`."""
    if op not in ("sum", "prod", "max", "min"):
        raise NotImplementedError(f"OpenCL backend has no reduction {op!r}")
    axes = sorted({int(a) % x.ndim for a in axes}) if x.ndim else []
    kept = [d for d in range(x.ndim) if d not in axes]
    out_shape = tuple(1 if d in axes else x.shape[d] for d in range(x.ndim))
    if not keepdim:
        out_shape = tuple(x.shape[d] for d in kept)
    if not axes:
        return backend.reshape(backend._copy(x), out_shape)
    outputs = math.prod(x.shape[d] for d in kept)
    total = math.prod(x.shape[d] for d in axes)
    if total == 0:
        if op in ("max", "min"):
            raise ValueError(f"reduce {op}: zero-size axes {tuple(axes)} of {x.shape}")
        return backend.full(out_shape, 0 if op == "sum" else 1, x.dtype)
    if outputs == 0:
        return backend.empty(out_shape, x.dtype)
    parts = _parts(outputs, total)
    if parts == 1:
        out = _launch(backend, op, x, x.dtype, kept, axes, 1)
    else:
        acc = _acc_type(op, x.dtype)
        partial_dt = np.dtype(_ACC_NP[acc]) if op in ("sum", "prod") else x.dtype
        partial = _launch(backend, op, x, partial_dt, kept, axes, parts)
        partial = partial.view((outputs, parts), (parts, 1), partial.offset)
        out = _launch(backend, op, partial, x.dtype, [0], [1], 1)
    return out.view(out_shape, None, out.offset)


def _arg_source(op, dt, nk, idx):
    ct = clc.compute_type(dt)
    cmp = ">" if op == "argmax" else "<"
    nan = " || (v != v && best == best)" if clc.is_float(dt) else ""
    params = ["__global long *out", f"__global const {clc.storage_type(dt)} *x"]
    params += [f"{idx} xoff", f"{idx} rn", f"{idx} rs"]
    params += [f"{idx} kn{d}, {idx} ks{d}" for d in range(nk)]
    lines = [f"{idx} g = get_global_id(0);", f"{idx} base = xoff, q = g, c;"]
    for d in reversed(range(nk)):
        step = f"c = q % kn{d}; q = q / kn{d};" if d else "c = q;"
        lines.append(f"{step} base += c * ks{d};")
    lines += [
        f"{ct} best = {clc.load(dt, 'x', 'base')};",
        "long arg = 0;",
        f"for ({idx} j = 1; j < rn; ++j) {{",
        f"    {ct} v = {clc.load(dt, 'x', 'base + j * rs')};",
        f"    if (v {cmp} best{nan}) {{ best = v; arg = j; }}",
        "}",
        "out[g] = arg;",
    ]
    body = "\n".join("    " + line for line in lines)
    return f"__kernel void argred({', '.join(params)}) {{\n{body}\n}}\n"


def argreduce(backend, op: str, x: CLArray, axis: int, keepdim: bool) -> CLArray:
    """See :meth:`OpenCLBackend.argreduce`."""
    if op not in ("argmax", "argmin"):
        raise NotImplementedError(f"OpenCL backend has no arg-reduction {op!r}")
    axis = int(axis) % x.ndim
    if x.shape[axis] == 0:
        raise ValueError(f"{op}: axis {axis} of {x.shape} is empty")
    kept = [d for d in range(x.ndim) if d != axis]
    kshape, (kstr,) = _merged(x, kept)
    outputs = math.prod(x.shape[d] for d in kept)
    out_shape = tuple(1 if d == axis else x.shape[d] for d in range(x.ndim))
    if not keepdim:
        out_shape = tuple(x.shape[d] for d in kept)
    out = backend.empty(out_shape, np.int64)
    if outputs == 0:
        return out
    idx = index_type(max(outputs, x.shape[axis]), [x])
    nk = len(kshape)
    key = ("argreduce", op, x.dtype, nk, idx)

    def generate():
        return _arg_source(op, x.dtype, nk, idx), "argred", [x.dtype]

    idx_np = SCALAR_NP[idx]
    args = [out.base, x.base, x.offset, x.shape[axis], x.strides[axis]]
    for n, s in zip(kshape, kstr):
        args += [n, s]
    arg_types = [None, None] + [idx_np] * (3 + 2 * nk)
    kernel = backend.kernels.get(key, generate, arg_types)
    kernel(backend.queue, (outputs,), None, *args)
    return out
