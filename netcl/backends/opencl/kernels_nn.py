"""Indexing, convolution, pooling, softmax and optimizer kernels.

Each function here takes the backend first and implements the method of the
same name. Inputs that a kernel wants dense are made contiguous first (a
no-op when they already are). Kernels that only move elements (take, im2col,
put of an array) copy raw bits through a same-size unsigned type, so one
compiled kernel serves every dtype of that size. Everything that sums does so
in a fixed order, with no atomics, so results repeat bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from netcl.backends.opencl import clc
from netcl.backends.opencl.array import CLArray, collapse_dims, contiguous_strides

__all__ = [
    "adam_step",
    "col2im",
    "im2col",
    "index_add",
    "max_pool2d",
    "max_pool2d_backward",
    "put",
    "sgd_step",
    "softmax",
    "take",
]

_BITS = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}
_L = np.int64
_F = {"float": np.float32, "double": np.float64}


def _run(backend, key, source, name, dtypes, arg_types, size, args):
    """Compile (once) and launch kernel ``name`` over ``size`` work-items
    (an int, or a tuple for a multi-dimensional launch)."""
    grid = size if isinstance(size, tuple) else (size,)
    if math.prod(grid) == 0:
        return
    kernel = backend.kernels.get(key, lambda: (source(), name, dtypes), arg_types)
    kernel(backend.queue, grid, None, *args)


def _float_compute(op: str, backend, dt: np.dtype) -> str:
    """The floating compute type of ``dt``, or a TypeError naming ``op``."""
    if not clc.is_float(dt):
        raise TypeError(
            f"{op} needs a floating dtype, got {dt} on {backend.device.name}"
        )
    return clc.compute_type(dt)


# ---- indexing ----------------------------------------------------------------


def take(backend, x: CLArray, idx: CLArray, axis: int) -> CLArray:
    """See :meth:`OpenCLBackend.take`."""
    axis = int(axis) % x.ndim
    x, idx = backend.contiguous(x), backend.contiguous(idx)
    if idx.dtype != np.int64:
        idx = backend.astype(idx, np.int64)
    rows = x.shape[axis]
    post = math.prod(x.shape[axis + 1 :])
    out = backend.empty(x.shape[:axis] + idx.shape + x.shape[axis + 1 :], x.dtype)
    t = _BITS[x.dtype.itemsize]

    def source():
        return f"""
__kernel void take(__global {t} *out, __global const {t} *x, long xoff,
                   __global const long *idx, long ioff, long J, long T, long post) {{
    long i = get_global_id(0);
    long q = i % post, r = i / post;
    long j = r % J, p = r / J;
    out[i] = x[xoff + (p * T + idx[ioff + j]) * post + q];
}}
"""

    args = [out.base, x.base, x.offset, idx.base, idx.offset, idx.size, rows, post]
    types = [None, None, _L, None, _L, _L, _L, _L]
    _run(backend, ("take", t), source, "take", [], types, out.size, args)
    return out


def index_add(backend, shape: tuple, axis: int, idx: CLArray, src: CLArray):
    """See :meth:`OpenCLBackend.index_add`.

    The indices are read on the host and sorted stably by target row into a
    compressed list (for each target, its sources in order of appearance).
    One work-item per output element then adds its sources in that order.
    """
    shape = tuple(int(n) for n in shape)
    axis = int(axis) % len(shape)
    rows, post = shape[axis], math.prod(shape[axis + 1 :])
    flat = backend.to_numpy(idx).reshape(-1).astype(np.int64)
    order = np.argsort(flat, kind="stable").astype(np.int64)
    starts = np.zeros(rows + 1, np.int64)
    np.cumsum(np.bincount(flat, minlength=rows), out=starts[1:])
    order_d, starts_d = backend.from_numpy(order), backend.from_numpy(starts)
    src = backend.contiguous(src)
    out = backend.empty(shape, src.dtype)
    dt, acc = src.dtype, clc.accumulator(src.dtype)
    st = clc.storage_type(dt)

    def source():
        value = clc.load(dt, "src", "soff + (p * J + order[s]) * post + q")
        return f"""
__kernel void index_add(__global {st} *out, __global const {st} *src, long soff,
                        __global const long *order, __global const long *starts,
                        long J, long T, long post) {{
    long i = get_global_id(0);
    long q = i % post, r = i / post;
    long t = r % T, p = r / T;
    {acc} acc = 0;
    for (long s = starts[t]; s < starts[t + 1]; ++s) {{
        acc += ({acc})({value});
    }}
    {clc.store(dt, "out", "i", "acc", acc)}
}}
"""

    args = [out.base, src.base, src.offset, order_d.base, starts_d.base]
    args += [flat.size, rows, post]
    types = [None, None, _L, None, None, _L, _L, _L]
    key = ("index_add", dt)
    _run(backend, key, source, "index_add", [dt], types, out.size, args)
    return out


def put(backend, x: CLArray, flat_idx: CLArray, values) -> None:
    """See :meth:`OpenCLBackend.put`. With repeated indices, which value
    lands is unspecified."""
    flat_idx = backend.contiguous(flat_idx)
    if flat_idx.dtype != np.int64:
        flat_idx = backend.astype(flat_idx, np.int64)
    nd, dt = x.ndim, x.dtype
    scalar = not isinstance(values, CLArray)
    if scalar:
        ct = clc.compute_type(dt)
        value = f"({ct})value"
        vparams = f"{ct} value"
        vtypes = [_scalar_np(ct)]
        vargs = [int(values) if isinstance(values, (bool, np.bool_)) else values]
    else:
        ct = clc.compute_type(dt)
        value = clc.load(dt, "vals", "voff + k * vstride")
        vparams = (
            f"__global const {clc.storage_type(dt)} *vals, long voff, long vstride"
        )
        vtypes = [None, _L, _L]
        stride = values.strides[0] if values.ndim else 0
        vargs = [values.base, values.offset, stride]
    dims = "".join(f", long n{d}, long s{d}" for d in range(nd))
    steps = "".join(
        f"    c = f % n{d}; f = f / n{d}; at += c * s{d};\n"
        for d in reversed(range(nd))
    )

    def source():
        return f"""
__kernel void put(__global {clc.storage_type(dt)} *x, long xoff,
                  __global const long *idx, long ioff, {vparams}{dims}) {{
    long k = get_global_id(0);
    long f = idx[ioff + k], at = xoff, c;
{steps}    {clc.store(dt, "x", "at", value, ct)}
}}
"""

    args = [x.base, x.offset, flat_idx.base, flat_idx.offset, *vargs]
    for n, s in zip(x.shape, x.strides):
        args += [n, s]
    types = [None, _L, None, _L, *vtypes] + [_L] * (2 * nd)
    key = ("put", dt, nd, scalar)
    _run(backend, key, source, "put", [dt], types, flat_idx.size, args)


def _scalar_np(ct: str):
    from netcl.backends.opencl.elementwise import SCALAR_NP

    return SCALAR_NP[ct]


# ---- convolution helpers ------------------------------------------------------


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def im2col(backend, x, kh, kw, stride, padding, dilation=(1, 1)):
    """See :meth:`OpenCLBackend.im2col`."""
    x = backend.contiguous(x)
    n, c, h, w = x.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    out = backend.empty((n, c * kh * kw, oh * ow), x.dtype)
    t = _BITS[x.dtype.itemsize]

    def source():
        return f"""
__kernel void im2col(__global {t} *out, __global const {t} *x, long xoff,
                     long C, long H, long W, long KH, long KW, long OH, long OW,
                     long sh, long sw, long ph, long pw, long dh, long dw) {{
    long i = get_global_id(0);
    long ox = i % OW, r = i / OW;
    long oy = r % OH; r /= OH;
    long kx = r % KW; r /= KW;
    long ky = r % KH; r /= KH;
    long y = oy * sh - ph + ky * dh, xx = ox * sw - pw + kx * dw;
    out[i] = (y >= 0 && y < H && xx >= 0 && xx < W)
        ? x[xoff + (r * H + y) * W + xx] : ({t})0;
}}
"""

    args = [out.base, x.base, x.offset, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw]
    types = [None, None] + [_L] * 14
    _run(backend, ("im2col", t), source, "im2col", [], types, out.size, args)
    return out


def col2im(backend, cols, x_shape, kh, kw, stride, padding, dilation=(1, 1)):
    """See :meth:`OpenCLBackend.col2im`. Each input pixel sums the patch
    entries that read it, kernel row-major, as the host does."""
    cols = backend.contiguous(cols)
    n, c, h, w = (int(v) for v in x_shape)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    out = backend.empty((n, c, h, w), cols.dtype)
    dt, acc = cols.dtype, clc.accumulator(cols.dtype)
    st = clc.storage_type(dt)

    def source():
        value = clc.load(dt, "cols", "coff + ((r * KH + ky) * KW + kx) * OH * OW + at")
        return f"""
__kernel void col2im(__global {st} *out, __global const {st} *cols, long coff,
                     long H, long W, long KH, long KW, long OH, long OW,
                     long sh, long sw, long ph, long pw, long dh, long dw) {{
    long i = get_global_id(0);
    long xx = i % W, r = i / W;
    long y = r % H; r /= H;
    {acc} acc = 0;
    for (long ky = 0; ky < KH; ++ky) {{
        long ty = y + ph - ky * dh;
        if (ty < 0 || ty % sh != 0 || ty / sh >= OH) continue;
        for (long kx = 0; kx < KW; ++kx) {{
            long tx = xx + pw - kx * dw;
            if (tx < 0 || tx % sw != 0 || tx / sw >= OW) continue;
            long at = (ty / sh) * OW + tx / sw;
            acc += ({acc})({value});
        }}
    }}
    {clc.store(dt, "out", "i", "acc", acc)}
}}
"""

    args = [out.base, cols.base, cols.offset, h, w, kh, kw, oh, ow]
    args += [sh, sw, ph, pw, dh, dw]
    types = [None, None] + [_L] * 13
    _run(backend, ("col2im", dt), source, "col2im", [dt], types, out.size, args)
    return out


# ---- pooling ------------------------------------------------------------------


def max_pool2d(backend, x, kernel, stride, padding):
    """See :meth:`OpenCLBackend.max_pool2d`."""
    x = backend.contiguous(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = backend.empty((n, c, oh, ow), x.dtype)
    arg = backend.empty((n, c, oh, ow), np.int64)
    dt, ct = x.dtype, clc.compute_type(x.dtype)
    st = clc.storage_type(dt)
    if clc.is_float(dt):
        fill = f"({ct})(-INFINITY)"
    else:
        low = np.iinfo(np.uint8 if dt == np.bool_ else dt).min
        fill = f"({ct})({low + 1}L - 1)" if low < 0 else f"({ct})0"

    def source():
        value = clc.load(dt, "x", "plane + y * W + xx")
        return f"""
__kernel void max_pool(__global {st} *out, __global long *arg, __global const {st} *x,
                       long xoff, long H, long W, long OH, long OW, long KH, long KW,
                       long sh, long sw, long ph, long pw) {{
    long i = get_global_id(0);
    long ox = i % OW, r = i / OW;
    long oy = r % OH; r /= OH;
    long plane = xoff + r * H * W;
    {ct} best = {fill};
    long where = 0;
    for (long ky = 0; ky < KH; ++ky) {{
        long y = oy * sh - ph + ky;
        if (y < 0 || y >= H) continue;
        for (long kx = 0; kx < KW; ++kx) {{
            long xx = ox * sw - pw + kx;
            if (xx < 0 || xx >= W) continue;
            {ct} v = {value};
            if (v > best) {{ best = v; where = y * W + xx; }}
        }}
    }}
    {clc.store(dt, "out", "i", "best", ct)}
    arg[i] = where;
}}
"""

    args = [out.base, arg.base, x.base, x.offset, h, w, oh, ow, kh, kw, sh, sw, ph, pw]
    types = [None, None, None] + [_L] * 11
    _run(backend, ("max_pool", dt), source, "max_pool", [dt], types, out.size, args)
    return out, arg


def max_pool2d_backward(backend, g, argmax, x_shape):
    """See :meth:`OpenCLBackend.max_pool2d_backward`. One work-item per
    (N, C) plane adds its gradients in output order, as the host does."""
    g, argmax = backend.contiguous(g), backend.contiguous(argmax)
    n, c, h, w = (int(v) for v in x_shape)
    out = backend.full((n, c, h, w), 0, g.dtype)
    per_plane = g.size // max(n * c, 1)
    dt, ct = g.dtype, clc.compute_type(g.dtype)
    st = clc.storage_type(dt)

    def source():
        at = "p * HW + arg[aoff + p * OHW + o]"
        total = f"{clc.load(dt, 'out', at)} + {clc.load(dt, 'g', 'goff + p * OHW + o')}"
        return f"""
__kernel void pool_back(__global {st} *out, __global const {st} *g, long goff,
                        __global const long *arg, long aoff, long HW, long OHW) {{
    long p = get_global_id(0);
    for (long o = 0; o < OHW; ++o) {{
        {clc.store(dt, "out", at, total, ct)}
    }}
}}
"""

    args = [out.base, g.base, g.offset, argmax.base, argmax.offset, h * w, per_plane]
    types = [None, None, _L, None, _L, _L, _L]
    key = ("pool_back", dt)
    _run(backend, key, source, "pool_back", [dt], types, n * c, args)
    return out


# ---- softmax --------------------------------------------------------------------


def softmax(backend, x: CLArray, axis: int, log: bool) -> CLArray:
    """softmax or log_softmax of ``x`` along ``axis``: one work-item per
    row, three passes (max, sum of exponentials, write)."""
    name = "log_softmax" if log else "softmax"
    ct = _float_compute(name, backend, x.dtype)
    x = backend.contiguous(x)
    axis = int(axis) % x.ndim
    outer, length = math.prod(x.shape[:axis]), x.shape[axis]
    inner = math.prod(x.shape[axis + 1 :])
    out = backend.empty(x.shape, x.dtype)
    dt, st = x.dtype, clc.storage_type(x.dtype)
    result = "(v - m) - log(s)" if log else "exp(v - m) / s"

    def source():
        v = clc.load(dt, "x", "base + j * inner")
        return f"""
__kernel void {name}(__global {st} *out, __global const {st} *x, long xoff,
                     long L, long inner) {{
    long i = get_global_id(0);
    long rest = i / inner, q = i % inner;
    long base = xoff + rest * L * inner + q, obase = rest * L * inner + q;
    {ct} m = ({ct})(-INFINITY), s = 0;
    for (long j = 0; j < L; ++j) {{ {ct} v = {v}; m = v > m ? v : m; }}
    for (long j = 0; j < L; ++j) {{ {ct} v = {v}; s += exp(v - m); }}
    for (long j = 0; j < L; ++j) {{
        {ct} v = {v};
        {clc.store(dt, "out", "obase + j * inner", result, ct)}
    }}
}}
"""

    args = [out.base, x.base, x.offset, length, inner]
    types = [None, None, _L, _L, _L]
    _run(backend, (name, dt), source, name, [dt], types, outer * inner, args)
    return out


# ---- optimizer updates ----------------------------------------------------------


def _dense_params(backend, arrays):
    """Contiguous stand-ins for ``arrays`` and a function that writes the
    updated stand-ins back into any that were views."""
    work = [None if a is None else backend.contiguous(a) for a in arrays]

    def write_back():
        for a, wk in zip(arrays, work):
            if a is not None and wk is not a:
                backend.assign(a, wk)

    return work, write_back


def _grad_layout(backend, p: CLArray, g: CLArray):
    """How an update kernel reads gradient ``g`` next to contiguous ``p``.

    Returns ``(g, grid, (stride0, stride1))``: work-item ``(i0, i1)`` of the
    2-D ``grid`` updates element ``i1 * grid[0] + i0`` of ``p`` and reads
    ``g`` at ``i0 * stride0 + i1 * stride1``. A transposed gradient (what
    ``x.T @ grad`` gives a linear layer) is read in place this way; a layout
    that does not fit two axes is copied first.
    """
    shape, (_, gs) = collapse_dims(p.shape, contiguous_strides(p.shape), g.strides)
    if len(shape) > 2:
        g = backend.contiguous(g)
        shape, gs = (p.size,), (1,)
    if len(shape) == 1:
        return g, (shape[0], 1), (gs[0], 0)
    return g, (shape[1], shape[0]), (gs[1], gs[0])


_GRAD_INDEX = """
    long i0 = get_global_id(0), i1 = get_global_id(1);
    long i = i1 * get_global_size(0) + i0;
    long gi = goff + i0 * gs0 + i1 * gs1;"""


def _check_same(op, p, *others):
    for o in others:
        if o is not None and (o.shape != p.shape or o.dtype != p.dtype):
            raise ValueError(
                f"{op}: {o.shape} {o.dtype} does not match the parameter "
                f"{p.shape} {p.dtype}"
            )


def sgd_step(backend, p, g, buf, *, lr, momentum, dampening, nesterov, wd, first):
    """See :meth:`OpenCLBackend.sgd_step`: one fused in-place kernel."""
    ct = _float_compute("sgd_step", backend, p.dtype)
    _check_same("sgd_step", p, g, buf if momentum else None)
    (p_w, b_w), write_back = _dense_params(backend, [p, buf if momentum else None])
    g_w, grid, gstrides = _grad_layout(backend, p_w, g)
    dt, st = p.dtype, clc.storage_type(p.dtype)
    flags = (bool(wd), bool(momentum), bool(nesterov), bool(first))

    def source():
        lines = [f"{ct} gv = {clc.load(dt, 'g', 'gi')};"]
        lines.append(f"{ct} pv = {clc.load(dt, 'p', 'poff + i')};")
        if wd:
            lines.append("gv = gv + pv * wd;")
        if momentum:
            if first:
                lines.append(f"{ct} bv = gv;")
            else:
                old = clc.load(dt, "buf", "boff + i")
                lines.append(f"{ct} bv = {old} * momentum + gv * damp;")
            lines.append(clc.store(dt, "buf", "boff + i", "bv", ct))
            lines.append("gv = gv + bv * momentum;" if nesterov else "gv = bv;")
        lines.append(clc.store(dt, "p", "poff + i", "pv - gv * lr", ct))
        body = "\n    ".join(lines)
        return f"""
__kernel void sgd(__global {st} *p, long poff, __global const {st} *g, long goff,
                  long gs0, long gs1, __global {st} *buf, long boff, {ct} lr,
                  {ct} momentum, {ct} damp, {ct} wd) {{{_GRAD_INDEX}
    {body}
}}
"""

    fnp = _F[ct]
    b_arr = b_w if b_w is not None else p_w
    args = [p_w.base, p_w.offset, g_w.base, g_w.offset, *gstrides]
    args += [b_arr.base, b_arr.offset, lr, momentum, 1 - dampening, wd]
    types = [None, _L, None, _L, _L, _L, None, _L, fnp, fnp, fnp, fnp]
    key = ("sgd", dt, flags)
    _run(backend, key, source, "sgd", [dt], types, grid, args)
    write_back()


def adam_step(backend, p, g, m, v, *, lr, beta1, beta2, eps, wd, decoupled, step):
    """See :meth:`OpenCLBackend.adam_step`: one fused in-place kernel."""
    ct = _float_compute("adam_step", backend, p.dtype)
    _check_same("adam_step", p, g, m, v)
    (p_w, m_w, v_w), write_back = _dense_params(backend, [p, m, v])
    g_w, grid, gstrides = _grad_layout(backend, p_w, g)
    dt, st = p.dtype, clc.storage_type(p.dtype)
    mode = "decoupled" if wd and decoupled else ("l2" if wd else "none")

    def source():
        lines = [
            f"{ct} gv = {clc.load(dt, 'g', 'gi')};",
            f"{ct} pv = {clc.load(dt, 'p', 'poff + i')};",
        ]
        if mode == "decoupled":
            lines.append("pv = pv * decay;")
        elif mode == "l2":
            lines.append("gv = gv + pv * wd;")
        lines += [
            f"{ct} mv = {clc.load(dt, 'm', 'moff + i')} * b1 + gv * one_b1;",
            f"{ct} vv = {clc.load(dt, 'v', 'voff + i')} * b2 + gv * gv * one_b2;",
            clc.store(dt, "m", "moff + i", "mv", ct),
            clc.store(dt, "v", "voff + i", "vv", ct),
            f"{ct} denom = sqrt(vv) / sqrt_bias2 + eps;",
            clc.store(dt, "p", "poff + i", "pv - step_size * mv / denom", ct),
        ]
        body = "\n    ".join(lines)
        return f"""
__kernel void adam(__global {st} *p, long poff, __global const {st} *g, long goff,
                   long gs0, long gs1, __global {st} *m, long moff, __global {st} *v,
                   long voff, {ct} b1, {ct} one_b1, {ct} b2, {ct} one_b2, {ct} eps,
                   {ct} wd, {ct} decay, {ct} step_size, {ct} sqrt_bias2) {{{_GRAD_INDEX}
    {body}
}}
"""

    bias1, bias2 = 1 - beta1**step, 1 - beta2**step
    fnp = _F[ct]
    args = [p_w.base, p_w.offset, g_w.base, g_w.offset, *gstrides]
    args += [m_w.base, m_w.offset, v_w.base, v_w.offset]
    args += [beta1, 1 - beta1, beta2, 1 - beta2, eps, wd, 1 - lr * wd]
    args += [lr / bias1, math.sqrt(bias2)]
    types = [None, _L, None, _L, _L, _L] + [None, _L] * 2 + [fnp] * 9
    key = ("adam", dt, mode)
    _run(backend, key, source, "adam", [dt], types, grid, args)
    write_back()
