"""The host backend: netcl's primitive operations on numpy arrays.

This module is also the contract every backend implements. A backend works
on its own raw arrays (here ``numpy.ndarray``; on OpenCL a strided view of a
buffer). Each raw array has ``shape``, ``dtype`` (a numpy dtype), ``ndim`` and
``size``. Rules shared by all backends:

- Inputs of an elementwise op have the same shape and dtype (the tensor layer
  broadcasts and casts first); they may be views with any strides, including
  the zero strides of ``expand``. Either operand of ``binary`` may instead be
  a Python number. Outputs are new contiguous arrays.
- View operations (``reshape`` of a contiguous array, ``permute``,
  ``expand``, ``slice``) share memory with their input.
- ``index_add`` and the reductions are deterministic: the same inputs give
  the same bits on every call, which exact resume depends on.
- Float16 and bfloat16 arithmetic may be done in float32 and rounded once.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HostBackend"]

_UNARY = {
    "neg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "sign": np.sign,
    "recip": np.reciprocal,
    "not": np.logical_not,
}

_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "and": np.logical_and,
    "or": np.logical_or,
}

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SMALL_FLOATS = (np.dtype(np.float16), np.dtype("bfloat16"))


def _erf(x: np.ndarray) -> np.ndarray:
    """erf of each element, exact to the dtype (numpy has no erf ufunc).

    NOTE: math.erf per element is slow; GELU on the host pays for exactness.
    """
    return _VERF(x).astype(x.dtype, copy=False)


_VERF = np.vectorize(math.erf, otypes=[np.float64])


class HostBackend:
    """Primitive operations on numpy arrays (see the module docstring)."""

    name = "host"

    # ---- creation and transfer -------------------------------------------

    def from_numpy(self, a: np.ndarray) -> np.ndarray:
        """A new contiguous array holding a copy of host array ``a``."""
        return np.array(a, copy=True, order="C")

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        """A host array with ``x``'s values; may share memory with ``x``."""
        return x

    def write(self, x: np.ndarray, a: np.ndarray) -> None:
        """Copy host array ``a`` (same shape, same dtype) into ``x`` in place."""
        np.copyto(x, a)

    def empty(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        return np.empty(shape, dtype)

    def full(self, shape: tuple, value, dtype: np.dtype) -> np.ndarray:
        return np.full(shape, value, dtype)

    def arange(self, start, stop, step, dtype: np.dtype) -> np.ndarray:
        return np.arange(start, stop, step).astype(dtype, copy=False)

    def astype(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """A new array of ``x``'s values converted to ``dtype`` (C casting)."""
        return x.astype(dtype)

    def contiguous(self, x: np.ndarray) -> np.ndarray:
        return x if x.flags.c_contiguous else x.copy(order="C")

    def synchronize(self) -> None:
        """Wait for all queued work (nothing to wait for on the host)."""

    # ---- views -------------------------------------------------------------

    def reshape(self, x: np.ndarray, shape: tuple) -> np.ndarray:
        """A view when ``x`` is contiguous, else a contiguous copy."""
        return x.reshape(shape)

    def permute(self, x: np.ndarray, axes: tuple) -> np.ndarray:
        return x.transpose(axes)

    def expand(self, x: np.ndarray, shape: tuple) -> np.ndarray:
        """Broadcast ``x`` to ``shape`` (same ndim) with zero strides."""
        return np.broadcast_to(x, shape)

    def slice(self, x: np.ndarray, index: tuple) -> np.ndarray:
        """A view of ``x`` through ``index``: one ``slice`` (with int start,
        stop, step; step may be negative, and then stop may be None meaning
        "through index 0") or int per axis, ints dropping the
        axis. Missing trailing axes are taken whole."""
        # The Ellipsis keeps an all-int index a 0-d view, not a copied scalar.
        return x[tuple(index) + (Ellipsis,)]

    # ---- elementwise -------------------------------------------------------

    def unary(self, op: str, x: np.ndarray) -> np.ndarray:
        """``op`` of each element; ops: neg exp log sqrt abs tanh sin cos
        sign recip not sigmoid relu gelu (exact, with erf) log1p erf."""
        with np.errstate(all="ignore"):  # inf and NaN are answers, not faults
            return self._unary(op, x)

    def _unary(self, op: str, x: np.ndarray) -> np.ndarray:
        if op == "not":
            return np.asarray(np.logical_not(x))
        if x.dtype in _SMALL_FLOATS:
            return self._unary(op, x.astype(np.float32)).astype(x.dtype)
        fn = _UNARY.get(op)
        if fn is not None:
            return np.asarray(fn(x))  # ufuncs turn 0-d arrays into scalars
        if op == "relu":
            return np.asarray(np.maximum(x, 0))
        if op == "sigmoid":
            return _sigmoid(x)
        if op == "gelu":
            return 0.5 * x * (1.0 + _erf(x * x.dtype.type(1 / math.sqrt(2))))
        if op == "erf":
            return _erf(x)
        if op == "log1p":
            return np.log1p(x)
        raise NotImplementedError(f"host backend has no unary op {op!r}")

    def binary(self, op: str, a, b) -> np.ndarray:
        """``op`` of each pair; ops: add sub mul div pow maximum minimum
        eq ne lt le gt ge (giving bool) and or, and the fused gradients
        relu_grad(g, x) tanh_grad(g, y) sigmoid_grad(g, y) gelu_grad(g, x).
        ``a`` or ``b`` may be a Python number; the result has the array's
        dtype (bool for comparisons)."""
        with np.errstate(all="ignore"):
            return self._binary(op, a, b)

    def _binary(self, op: str, a, b) -> np.ndarray:
        small = _small_dtype(a, b)
        if small is not None:
            a32 = a.astype(np.float32) if isinstance(a, np.ndarray) else a
            b32 = b.astype(np.float32) if isinstance(b, np.ndarray) else b
            out = self._binary(op, a32, b32)
            if out.dtype == np.bool_:
                return out
            with np.errstate(over="ignore"):  # overflow to inf is the answer
                return out.astype(small)
        fn = _BINARY.get(op)
        if fn is not None:
            out = np.asarray(fn(a, b))
            dt = _array_dtype(a, b)
            if out.dtype != dt and out.dtype != np.bool_:
                out = out.astype(dt)
            return out
        if op == "relu_grad":
            return np.where(b > 0, a, a.dtype.type(0))
        if op == "tanh_grad":
            return a * (1 - b * b)
        if op == "sigmoid_grad":
            return a * b * (1 - b)
        if op == "gelu_grad":
            cdf = 0.5 * (1.0 + _erf(b * b.dtype.type(1 / math.sqrt(2))))
            pdf = np.exp(-0.5 * b * b) * b.dtype.type(1 / math.sqrt(2 * math.pi))
            return a * (cdf + b * pdf)
        raise NotImplementedError(f"host backend has no binary op {op!r}")

    def where(self, cond: np.ndarray, a, b) -> np.ndarray:
        """``a`` where ``cond`` (bool) is true, else ``b``; ``a`` or ``b`` may
        be a Python number."""
        dt = _array_dtype(a, b)
        return np.where(cond, a, b).astype(dt, copy=False)

    def clamp(self, x: np.ndarray, lo, hi) -> np.ndarray:
        """Elements clipped to [lo, hi]; either bound may be None."""
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    # ---- reductions --------------------------------------------------------

    def reduce(self, op: str, x: np.ndarray, axes: tuple, keepdim: bool):
        """``op`` in sum, max, min, prod over ``axes`` (a tuple of
        non-negative ints, possibly empty meaning none); same dtype as ``x``.
        Float16 and bfloat16 sums accumulate in float32."""
        fn = {"sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod}[op]
        if x.dtype in _SMALL_FLOATS and op in ("sum", "prod"):
            return fn(x, axis=axes, keepdims=keepdim, dtype=np.float32).astype(x.dtype)
        return np.asarray(fn(x, axis=axes, keepdims=keepdim), dtype=x.dtype)

    def argreduce(self, op: str, x: np.ndarray, axis: int, keepdim: bool):
        """Index (int64) of the first max (``argmax``) or min (``argmin``)
        along ``axis``."""
        fn = np.argmax if op == "argmax" else np.argmin
        out = fn(x, axis=axis, keepdims=keepdim)
        return np.asarray(out, dtype=np.int64)

    # ---- linear algebra ----------------------------------------------------

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Batched product of ``a`` (..., M, K) and ``b`` (..., K, N) with
        equal batch shapes; inputs may be transposed views."""
        if a.dtype in _SMALL_FLOATS:
            out = np.matmul(a.astype(np.float32), b.astype(np.float32))
            return out.astype(a.dtype)
        return np.matmul(a, b)

    # ---- indexing ----------------------------------------------------------

    def take(self, x: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
        """Gather along ``axis`` with int64 ``idx`` (any shape, values already
        in range); the result's shape is x.shape[:axis] + idx.shape +
        x.shape[axis + 1:]."""
        return np.take(x, idx, axis=axis)

    def index_add(self, shape: tuple, axis: int, idx: np.ndarray, src: np.ndarray):
        """Zeros of ``shape`` with the slices of ``src`` added at ``idx`` along
        ``axis`` (the gradient of ``take``; repeated indices add up, in the
        order they appear)."""
        out = np.zeros(shape, src.dtype)
        moved = np.moveaxis(out, axis, 0)
        flat_idx = idx.reshape(-1)
        lead = axis
        src_m = src.reshape(
            src.shape[:lead] + (flat_idx.size,) + src.shape[lead + idx.ndim :]
        )
        src_m = np.moveaxis(src_m, lead, 0)
        np.add.at(moved, flat_idx, src_m)
        return out

    def assign(self, dst: np.ndarray, src) -> None:
        """Write ``src`` (an array of ``dst``'s shape and dtype, possibly a
        view, or a Python number) into ``dst``, which may be a view."""
        dst[...] = src

    def put(self, x: np.ndarray, flat_idx: np.ndarray, values) -> None:
        """Write ``values`` (1-D, one per index, or a number) at the C-order
        positions ``flat_idx`` of ``x``'s logical shape, in place."""
        x[np.unravel_index(flat_idx, x.shape)] = values

    # ---- neural-network kernels -------------------------------------------

    def im2col(self, x, kh, kw, stride, padding, dilation=(1, 1)):
        """Patches of ``x`` (N, C, H, W) as (N, C*kh*kw, OH*OW), channel-major
        then kernel row then kernel column, zero padding."""
        n, c, h, w = x.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        cols = np.empty((n, c, kh, kw, oh, ow), x.dtype)
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dh, j * dw
                cols[:, :, i, j] = xp[
                    :,
                    :,
                    r0 : r0 + sh * (oh - 1) + 1 : sh,
                    c0 : c0 + sw * (ow - 1) + 1 : sw,
                ]
        return cols.reshape(n, c * kh * kw, oh * ow)

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation=(1, 1)):
        """The adjoint of :meth:`im2col`: patch values summed back to
        (N, C, H, W)."""
        n, c, h, w = x_shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        cols = cols.reshape(n, c, kh, kw, oh, ow)
        xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dh, j * dw
                xp[
                    :,
                    :,
                    r0 : r0 + sh * (oh - 1) + 1 : sh,
                    c0 : c0 + sw * (ow - 1) + 1 : sw,
                ] += cols[:, :, i, j]
        return np.ascontiguousarray(xp[:, :, ph : ph + h, pw : pw + w])

    def max_pool2d(self, x, kernel, stride, padding):
        """Max over windows of ``x`` (N, C, H, W), padding with -inf.
        Returns (values, argmax) where argmax (int64) is the flat index
        h * W + w of each winner inside its (H, W) plane; ties take the first
        in row-major window order."""
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        oh = (h + 2 * ph - kh) // sh + 1
        ow = (w + 2 * pw - kw) // sw + 1
        floating = x.dtype.kind == "f" or x.dtype in _SMALL_FLOATS
        fill = -np.inf if floating else np.iinfo(x.dtype).min
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
        best = np.full((n, c, oh, ow), fill, x.dtype)
        arg = np.zeros((n, c, oh, ow), np.int64)
        rows = np.arange(oh)[:, None] * sh
        colsi = np.arange(ow)[None, :] * sw
        for i in range(kh):
            for j in range(kw):
                v = xp[
                    :, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw
                ]
                better = v > best
                best = np.where(better, v, best)
                pos = (rows + i - ph) * w + (colsi + j - pw)
                arg = np.where(better, pos, arg)
        return best, arg

    def max_pool2d_backward(self, g, argmax, x_shape):
        """Gradients ``g`` (N, C, OH, OW) sent to their argmax positions."""
        n, c, h, w = x_shape
        out = np.zeros((n * c, h * w), g.dtype)
        flat_g = g.reshape(n * c, -1)
        flat_a = argmax.reshape(n * c, -1)
        rows = np.repeat(np.arange(n * c), flat_a.shape[1])
        np.add.at(out, (rows, flat_a.reshape(-1)), flat_g.reshape(-1))
        return out.reshape(x_shape)

    def log_softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        """log(softmax(x)) along ``axis``, stable for large inputs."""
        if x.dtype in _SMALL_FLOATS:
            return self.log_softmax(x.astype(np.float32), axis).astype(x.dtype)
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def softmax(self, x: np.ndarray, axis: int) -> np.ndarray:
        if x.dtype in _SMALL_FLOATS:
            return self.softmax(x.astype(np.float32), axis).astype(x.dtype)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    # ---- optimizer updates (in place) --------------------------------------

    def sgd_step(self, p, g, buf, *, lr, momentum, dampening, nesterov, wd, first):
        """One SGD update of parameter ``p`` with gradient ``g`` in place, as
        PyTorch defines it. ``buf`` is the momentum buffer (ignored when
        ``momentum`` is 0); ``first`` marks the step that initialises it."""
        if wd:
            g = g + p * p.dtype.type(wd)
        if momentum:
            if first:
                np.copyto(buf, g)
            else:
                buf *= p.dtype.type(momentum)
                buf += g * p.dtype.type(1 - dampening)
            g = g + buf * p.dtype.type(momentum) if nesterov else buf
        p -= g * p.dtype.type(lr)

    def adam_step(self, p, g, m, v, *, lr, beta1, beta2, eps, wd, decoupled, step):
        """One Adam (``decoupled=False``, L2 penalty ``wd``) or AdamW
        (``decoupled=True``) update in place of ``p``, ``m`` and ``v``;
        ``step`` is the 1-based step count after this update."""
        t = p.dtype.type
        if wd and decoupled:
            p *= t(1 - lr * wd)
        elif wd:
            g = g + p * t(wd)
        m *= t(beta1)
        m += g * t(1 - beta1)
        v *= t(beta2)
        v += g * g * t(1 - beta2)
        bias1 = 1 - beta1**step
        bias2 = 1 - beta2**step
        denom = np.sqrt(v) / t(math.sqrt(bias2))
        denom += t(eps)
        p -= t(lr / bias1) * m / denom


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Two branches so neither exp overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def _array_dtype(a, b) -> np.dtype:
    return a.dtype if isinstance(a, (np.ndarray, np.generic)) else np.asarray(b).dtype


def _small_dtype(a, b):
    for v in (a, b):
        if isinstance(v, np.ndarray) and v.dtype in _SMALL_FLOATS:
            return v.dtype
    return None
