"""Generated elementwise kernels: one work-item per output element.

An elementwise kernel reads each array operand through its own strides,
evaluates one C expression over the loaded values (named ``x0``, ``x1``,
...) in a common compute type, and stores the result through the output's
strides. Before launching, neighbouring axes that all operands walk alike are
merged (:func:`collapse_dims`), so contiguous inputs become one flat axis and
take the fast path, where an element's index is just ``offset + i``.

Kernels are generated per (expression, operand types, number of axes) and
cached; shapes, strides, offsets and scalars are passed as arguments.
"""

from __future__ import annotations

import numpy as np

from netcl.backends.opencl import clc
from netcl.backends.opencl.array import CLArray, collapse_dims, pad_dims

__all__ = ["SCALAR_NP", "launch_elementwise", "index_type"]

# numpy types pyopencl packs scalar kernel arguments as, by C type.
SCALAR_NP = {
    "float": np.float32,
    "double": np.float64,
    "char": np.int8,
    "uchar": np.uint8,
    "short": np.int16,
    "int": np.int32,
    "long": np.int64,
}

_INT_MAX = 2**31 - 1


def index_type(n: int, arrays) -> str:
    """``int`` when every index fits in 32 bits (cheaper to divide), else
    ``long``."""
    if n > _INT_MAX:
        return "long"
    for a in arrays:
        span = a.offset + sum((d - 1) * abs(s) for d, s in zip(a.shape, a.strides))
        if span > _INT_MAX:
            return "long"
    return "int"


def _source(expr, kinds, ct, rt, out_dt, ndim, idx, contig):
    """OpenCL C source of one elementwise kernel (see module docstring)."""
    arrays = [k for k, kind in enumerate(kinds) if isinstance(kind, np.dtype)]
    params = [f"__global {clc.storage_type(out_dt)} *out", f"{idx} out_off"]
    for k, kind in enumerate(kinds):
        if isinstance(kind, np.dtype):
            params += [f"__global const {clc.storage_type(kind)} *p{k}", f"{idx} o{k}"]
        else:
            params.append(f"{kind} s{k}")
    body = [f"    {idx} i = get_global_id(0);"]
    if contig:
        out_index = "out_off + i"
        index = {k: f"o{k} + i" for k in arrays}
    else:
        params += [f"{idx} n{d}" for d in range(ndim)]
        params += [f"{idx} os{d}" for d in range(ndim)]
        params += [f"{idx} s{k}_{d}" for k in arrays for d in range(ndim)]
        body += _decompose(arrays, ndim, idx)
        out_index = "io"
        index = {k: f"i{k}" for k in arrays}
    for k, kind in enumerate(kinds):
        if isinstance(kind, np.dtype):
            value = clc.load(kind, f"p{k}", index[k])
            body.append(f"    {ct} x{k} = ({ct})({value});")
        else:
            body.append(f"    {ct} x{k} = ({ct})s{k};")
    body.append("    " + clc.store(out_dt, "out", out_index, expr, rt))
    head = "__kernel void ew(" + ", ".join(params) + ")"
    return head + " {\n" + "\n".join(body) + "\n}\n"


def _decompose(arrays, ndim, idx):
    """C lines turning the work-item's position into each operand's element
    index. The innermost axis is the launch's first dimension and the other
    axes are flattened into its second, so only the second is divided into
    coordinates."""
    last = ndim - 1
    lines = [f"    {idx} io = out_off + i * os{last};"]
    lines += [f"    {idx} i{k} = o{k} + i * s{k}_{last};" for k in arrays]
    lines.append(f"    {idx} r = get_global_id(1), c;")
    for d in reversed(range(last)):
        if d > 0:
            lines.append(f"    c = r % n{d}; r = r / n{d};")
        else:
            lines.append("    c = r;")
        lines.append(f"    io += c * os{d};")
        lines += [f"    i{k} += c * s{k}_{d};" for k in arrays]
    return lines


def launch_elementwise(backend, name, expr, operands, ct, rt, out: CLArray):
    """Evaluate ``expr`` over ``operands`` into ``out`` (any strides).

    Args:
        backend: the OpenCLBackend whose queue and kernel cache to use.
        name: the op's name, for error messages and the cache key.
        expr: C expression over ``x0``, ``x1``, ... of type ``rt``.
        operands: CLArrays of ``out``'s shape, or ``(value, c_type)`` scalars.
        ct: the C type operands are converted to before ``expr``.
        rt: the C type ``expr`` produces.
        out: the array written.
    """
    if out.size == 0:
        return out
    arrays = [o for o in operands if isinstance(o, CLArray)]
    shape, strides = collapse_dims(out.shape, out.strides, *(a.strides for a in arrays))
    shape, strides = pad_dims(shape, strides)
    ndim = len(shape)
    contig = ndim == 1 and all(s[0] == 1 for s in strides)
    idx = index_type(out.size, [out, *arrays])
    kinds = tuple(o.dtype if isinstance(o, CLArray) else o[1] for o in operands)
    key = ("ew", name, expr, kinds, ct, rt, out.dtype, ndim, idx, contig)
    idx_np = SCALAR_NP[idx]

    def generate():
        source = _source(expr, kinds, ct, rt, out.dtype, ndim, idx, contig)
        used = [k for k in kinds if isinstance(k, np.dtype)] + [out.dtype]
        if "double" in (ct, rt) or "double" in kinds:
            used.append(np.dtype(np.float64))
        return source, "ew", used

    arg_types = [None, idx_np]
    args = [out.base, out.offset]
    for o in operands:
        if isinstance(o, CLArray):
            arg_types += [None, idx_np]
            args += [o.base, o.offset]
        else:
            arg_types.append(SCALAR_NP[o[1]])
            args.append(o[0])
    if not contig:
        arg_types += [idx_np] * (ndim * (2 + len(arrays)))
        args += list(shape)
        for s in strides:
            args += list(s)
    kernel = backend.kernels.get(key, generate, arg_types)
    grid = (out.size,) if contig else (shape[-1], out.size // shape[-1])
    kernel(backend.queue, grid, None, *args)
    return out
