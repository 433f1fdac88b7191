"""Batched matrix products.

float32 runs the register-blocked kernel in ``gemm.cl``, reading A through
any strides (so ``a.T`` views cost nothing) and B through a row stride; a B
whose columns are not adjacent in memory is copied first. Other dtypes use a
plain kernel: one work-item per output element, accumulating in float for
float16 and bfloat16, in long for integers.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from netcl.backends.opencl import clc
from netcl.backends.opencl.array import CLArray, collapse_dims

__all__ = ["matmul"]

# Rows and columns of C per work-item, as in gemm.cl, and the work-group
# shape in blocks (columns, rows), for gemm_f32, gemm_f32_r4 and gemm_nt_f32.
_MR, _NR, _GROUP = 8, 16, (4, 16)
_R4_MR, _R4_GROUP = 4, (2, 16)
_NT_MR, _NT_NR, _NT_GROUP = 4, 2, (8, 4)
# Products with fewer multiply-adds than this run gemm_f32_r4.
_SMALL_MACS = 2**27
_MIN_GROUPS = 8
_INT_MAX = 2**31 - 1


def _batch_layout(a: CLArray, b: CLArray):
    """``(batch, (a_stride, b_stride))`` for the merged batch axes, or None
    when they do not merge into one axis."""
    batch_shape = a.shape[:-2]
    if batch_shape != b.shape[:-2]:
        raise ValueError(f"matmul: batch shapes differ: {a.shape} and {b.shape}")
    if not batch_shape:
        return 1, (0, 0)
    shape, (sa, sb) = collapse_dims(batch_shape, a.strides[:-2], b.strides[:-2])
    if len(shape) != 1:
        return None
    return shape[0], (sa[0], sb[0])


def matmul(backend, a: CLArray, b: CLArray) -> CLArray:
    """See :meth:`OpenCLBackend.matmul`."""
    if a.ndim < 2 or b.ndim < 2 or a.ndim != b.ndim:
        raise ValueError(
            f"matmul: needs (..., M, K) @ (..., K, N), got {a.shape} @ {b.shape}"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: inner sizes differ: {a.shape} @ {b.shape}")
    if a.dtype != b.dtype:
        raise ValueError(f"matmul: dtypes differ: {a.dtype} and {b.dtype}")
    layout = _batch_layout(a, b)
    if layout is None:
        a, b = backend.contiguous(a), backend.contiguous(b)
        layout = _batch_layout(a, b)
    batch, (bsa, bsb) = layout
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    out = backend.empty(a.shape[:-1] + (n,), a.dtype)
    if out.size == 0:
        return out
    if k == 0:
        backend.assign(out, 0)
        return out
    if a.dtype == np.float32 and _fits_int(a, b, out):
        if _unit(a, -1) and _unit(b, -2) and not _unit(b, -1):
            _gemm_f32(backend, "gemm_nt_f32", a, b, out, batch, bsa, bsb)
            return out
        if not _unit(b, -1):
            b = backend.contiguous(b)
            _, (bsa, bsb) = _batch_layout(a, b)
        small = batch * m * n * k < _SMALL_MACS
        name = "gemm_f32_r4" if small else "gemm_f32"
        _gemm_f32(backend, name, a, b, out, batch, bsa, bsb)
        return out
    _gemm_simple(backend, a, b, out, batch, bsa, bsb, m, n, k)
    return out


def _fits_int(*arrays) -> bool:
    """Whether every element index of ``arrays`` fits a 32-bit int."""
    for x in arrays:
        span = x.offset + sum((d - 1) * abs(s) for d, s in zip(x.shape, x.strides))
        if span > _INT_MAX:
            return False
    return True


def _unit(x: CLArray, axis: int) -> bool:
    """Whether ``x``'s elements along ``axis`` are adjacent in memory."""
    return x.strides[axis] == 1 or x.shape[axis] == 1


def _gemm_f32(backend, name, a, b, out, batch, bsa, bsb):
    """Launch ``gemm_f32`` or ``gemm_f32_r4`` (B with unit column stride) or
    ``gemm_nt_f32`` (A and B both with unit stride along K)."""

    def generate():
        source = resources.files(__package__).joinpath("gemm.cl").read_text()
        return source, name, [np.dtype(np.float32)]

    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    i32 = np.int32
    args = [out.base, out.offset, m * n]
    if name != "gemm_nt_f32":
        arg_types = [None, i32, i32, None] + [i32] * 4 + [None] + [i32] * 6
        ldb = b.strides[-2] if k > 1 else n
        args += [a.base, a.offset, a.strides[-2], a.strides[-1], bsa]
        args += [b.base, b.offset, ldb, bsb, m, n, k]
        mr, group = (_R4_MR, _R4_GROUP) if name == "gemm_f32_r4" else (_MR, _GROUP)
        grid, local = _work_groups(-(-n // _NR), -(-m // mr), batch, group)
    else:
        arg_types = [None, i32, i32, None] + [i32] * 3 + [None] + [i32] * 6
        lda = a.strides[-2] if m > 1 else k
        ldb = b.strides[-1] if n > 1 else k
        args += [a.base, a.offset, lda, bsa, b.base, b.offset, ldb, bsb, m, n, k]
        grid, local = _work_groups(-(-n // _NT_NR), -(-m // _NT_MR), batch, _NT_GROUP)
    kernel = backend.kernels.get((name,), generate, arg_types)
    kernel(backend.queue, grid, local, *args)


def _work_groups(cols: int, rows: int, batch: int, group: tuple[int, int]):
    """Grid and work-group shape for ``cols`` x ``rows`` blocks of C.

    PoCL runs one work-group on one core, work-item by work-item, so a group
    of ``group`` (column blocks, row blocks) reuses the same B columns and A
    rows from cache: 4 x 16 blocks of 8 x 16 is a 128 x 64 piece of C. Smaller
    problems get smaller groups so that there are enough of them to keep
    every core busy.
    """
    lc, lr = min(group[0], cols), min(group[1], rows)
    while lr > 1 and -(-cols // lc) * -(-rows // lr) * batch < _MIN_GROUPS:
        lr //= 2
    grid = (-(-cols // lc) * lc, -(-rows // lr) * lr, batch)
    return grid, (lc, lr, 1)


def _simple_source(dt: np.dtype) -> str:
    acc = clc.accumulator(dt)
    st = clc.storage_type(dt)
    a = clc.load(dt, "A", "ia + kk * sak")
    b = clc.load(dt, "B", "ib + kk * sbk")
    return f"""
__kernel void gemm(__global {st} *C, long coff, __global const {st} *A, long aoff,
                   long sam, long sak, long bsa, __global const {st} *B, long boff,
                   long sbk, long sbn, long bsb, long M, long N, long K) {{
    long j = get_global_id(0), i = get_global_id(1), bt = get_global_id(2);
    long ia = aoff + bt * bsa + i * sam;
    long ib = boff + bt * bsb + j * sbn;
    {acc} acc = 0;
    for (long kk = 0; kk < K; ++kk) {{
        acc += ({acc})({a}) * ({acc})({b});
    }}
    {clc.store(dt, "C", "coff + (bt * M + i) * N + j", "acc", acc)}
}}
"""


def _gemm_simple(backend, a, b, out, batch, bsa, bsb, m, n, k):
    dt = a.dtype

    def generate():
        return _simple_source(dt), "gemm", [dt]

    i64 = np.int64
    arg_types = [None, i64, None] + [i64] * 4 + [None] + [i64] * 7
    kernel = backend.kernels.get(("gemm_simple", dt), generate, arg_types)
    args = [out.base, out.offset, a.base, a.offset, a.strides[-2], a.strides[-1]]
    args += [bsa, b.base, b.offset, b.strides[-2], b.strides[-1], bsb, m, n, k]
    kernel(backend.queue, (n, m, batch), None, *args)
