"""The OpenCL backend: netcl's primitive operations on :class:`CLArray`.

:class:`OpenCLBackend` implements every method of
:class:`netcl.backends.host.HostBackend` with the same signature and meaning
(see that module's docstring for the shared rules), running generated OpenCL
kernels on one device's in-order queue. Work is queued, not waited for: only
``to_numpy``, ``synchronize`` and the few ops that must read indices on the
host block. Memory comes from a ``pyopencl.tools.MemoryPool``, so the
short-lived arrays of a training step reuse the same buffers.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pyopencl as cl
import pyopencl.tools

from netcl.backends.opencl import clc, kernels_nn, matmul, ops, reduce
from netcl.backends.opencl.array import CLArray, contiguous_strides
from netcl.backends.opencl.compiler import KernelCache
from netcl.backends.opencl.elementwise import launch_elementwise

__all__ = ["OpenCLBackend"]

_BOOL_RESULT = {"eq", "ne", "lt", "le", "gt", "ge", "and", "or"}

# Same-size unsigned dtypes, so copies move bits without converting values.
_BITS = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32)}
_BITS[8] = np.dtype(np.uint64)


class OpenCLBackend:
    """Primitive operations on one OpenCL device (see the module docstring).

    Args:
        device: a :class:`netcl.core.device.Device` for an OpenCL device; its
            context and queue are used for everything.
    """

    name = "opencl"

    def __init__(self, device) -> None:
        self.device = device
        self.context = device.context
        self.queue = device.queue
        self.kernels = KernelCache(device)
        allocator = cl.tools.ImmediateAllocator(self.queue)
        self.pool = cl.tools.MemoryPool(allocator)

    def __repr__(self) -> str:
        return f"OpenCLBackend({self.device.name!r})"

    # ---- creation and transfer -------------------------------------------

    def empty(self, shape: tuple, dtype: np.dtype) -> CLArray:
        """A new contiguous array with unspecified contents."""
        dtype = np.dtype(dtype)
        clc.storage_type(dtype)
        shape = tuple(int(n) for n in shape)
        nbytes = math.prod(shape) * dtype.itemsize
        return CLArray(self.pool.allocate(max(nbytes, 8)), shape, dtype)

    def from_numpy(self, a: np.ndarray) -> CLArray:
        """A new contiguous array holding a copy of host array ``a``."""
        a = np.asarray(a, order="C")  # keeps 0-d arrays 0-d
        out = self.empty(a.shape, a.dtype)
        if a.size:
            cl.enqueue_copy(self.queue, out.base, _bytes_of(a), is_blocking=True)
        return out

    def to_numpy(self, x: CLArray) -> np.ndarray:
        """A new host array with ``x``'s values (waits for queued work)."""
        x = self.contiguous(x)
        host = np.empty(x.nbytes, np.uint8)
        if x.size:
            cl.enqueue_copy(
                self.queue,
                host,
                x.base,
                src_offset=x.offset * x.dtype.itemsize,
                is_blocking=True,
            )
        return host.view(x.dtype).reshape(x.shape)

    def write(self, x: CLArray, a: np.ndarray) -> None:
        """Copy host array ``a`` (same shape, same dtype) into ``x`` in place."""
        a = np.asarray(a)
        if a.shape != x.shape or a.dtype != x.dtype:
            raise ValueError(
                f"write: host array {a.shape} {a.dtype} does not match the "
                f"device array {x.shape} {x.dtype}"
            )
        if not x.is_contiguous():
            self.assign(x, self.from_numpy(a))
        elif x.size:
            cl.enqueue_copy(
                self.queue,
                x.base,
                _bytes_of(np.asarray(a, order="C")),
                dst_offset=x.offset * x.dtype.itemsize,
                is_blocking=True,
            )

    def full(self, shape: tuple, value, dtype: np.dtype) -> CLArray:
        """A new array of ``shape`` with every element ``value``."""
        out = self.empty(shape, dtype)
        self._fill(out, value)
        return out

    def _fill(self, out: CLArray, value) -> None:
        """Set every element of contiguous ``out`` to ``value``."""
        if out.size:
            pattern = np.array(value).astype(out.dtype).reshape(1)
            cl.enqueue_fill_buffer(
                self.queue,
                out.base,
                pattern.view(_BITS[out.dtype.itemsize]),
                out.offset * out.dtype.itemsize,
                out.nbytes,
            )

    def zeros(self, shape: tuple, dtype: np.dtype) -> CLArray:
        """A new array of zeros (a convenience beyond the contract)."""
        return self.full(shape, 0, dtype)

    def arange(self, start, stop, step, dtype: np.dtype) -> CLArray:
        """``start, start + step, ...`` below ``stop``, computed on the host
        so the values match numpy exactly."""
        return self.from_numpy(np.arange(start, stop, step).astype(dtype))

    def astype(self, x: CLArray, dtype: np.dtype) -> CLArray:
        """A new array of ``x``'s values converted to ``dtype`` (C casting)."""
        dtype = np.dtype(dtype)
        if dtype == x.dtype:
            return self._copy(x)
        out = self.empty(x.shape, dtype)
        ct = clc.compute_type(x.dtype)
        return launch_elementwise(self, "astype", "x0", [x], ct, ct, out)

    def contiguous(self, x: CLArray) -> CLArray:
        """``x`` itself if contiguous, else a contiguous copy."""
        return x if x.is_contiguous() else self._copy(x)

    def _copy(self, x: CLArray) -> CLArray:
        out = self.empty(x.shape, x.dtype)
        self._copy_into(out, x)
        return out

    def _copy_into(self, dst: CLArray, src: CLArray) -> None:
        """Copy ``src`` into ``dst`` (same shape and dtype) bit for bit."""
        bits = _BITS[dst.dtype.itemsize]
        t = clc.storage_type(bits)
        d = CLArray(dst.base, dst.shape, bits, dst.strides, dst.offset)
        s = CLArray(src.base, src.shape, bits, src.strides, src.offset)
        launch_elementwise(self, "copy", "x0", [s], t, t, d)

    def synchronize(self) -> None:
        """Wait for all queued work."""
        self.queue.finish()

    # ---- views -------------------------------------------------------------

    def reshape(self, x: CLArray, shape: tuple) -> CLArray:
        """A view when ``x`` is contiguous, else a contiguous copy."""
        shape = _resolve_shape(tuple(shape), x.size)
        if not x.is_contiguous():
            x = self._copy(x)
        return x.view(shape, contiguous_strides(shape), x.offset)

    def permute(self, x: CLArray, axes: tuple) -> CLArray:
        axes = tuple(a % x.ndim for a in axes) if x.ndim else tuple(axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of {x.ndim} axes")
        shape = tuple(x.shape[a] for a in axes)
        strides = tuple(x.strides[a] for a in axes)
        return x.view(shape, strides, x.offset)

    def expand(self, x: CLArray, shape: tuple) -> CLArray:
        """Broadcast ``x`` to ``shape`` (same ndim) with zero strides."""
        shape = tuple(int(n) for n in shape)
        if len(shape) != x.ndim:
            raise ValueError(f"expand: {x.shape} to {shape} changes the ndim")
        strides = []
        for have, want, s in zip(x.shape, shape, x.strides):
            if have == want:
                strides.append(s)
            elif have == 1:
                strides.append(0)
            else:
                raise ValueError(f"expand: cannot broadcast {x.shape} to {shape}")
        return x.view(shape, tuple(strides), x.offset)

    def slice(self, x: CLArray, index: tuple) -> CLArray:
        """A view of ``x`` through ``index``: one ``slice`` or int per axis,
        ints dropping the axis; missing trailing axes are taken whole."""
        if not isinstance(index, tuple):
            index = (index,)
        if len(index) > x.ndim:
            raise IndexError(f"slice: {len(index)} indices for {x.ndim} axes")
        offset, shape, strides = x.offset, [], []
        for axis, n in enumerate(x.shape):
            s = x.strides[axis]
            item = index[axis] if axis < len(index) else slice(None)
            if isinstance(item, slice):
                start, stop, step = item.indices(n)
                shape.append(len(range(start, stop, step)))
                strides.append(s * step)
                offset += start * s if shape[-1] else 0
            elif isinstance(item, numbers.Integral):
                i = int(item) + n if item < 0 else int(item)
                if not 0 <= i < n:
                    raise IndexError(f"slice: index {item} out of range for {n}")
                offset += i * s
            else:
                raise TypeError(
                    f"slice: index items must be slice or int, not {item!r}"
                )
        return x.view(tuple(shape), tuple(strides), offset)

    # ---- elementwise -------------------------------------------------------

    def unary(self, op: str, x: CLArray) -> CLArray:
        """``op`` of each element (ops as in HostBackend.unary)."""
        ct = clc.compute_type(x.dtype)
        found = ops.unary_expr(op, ct)
        if found is None:
            raise NotImplementedError(f"OpenCL backend has no unary op {op!r}")
        if op in ops.FLOAT_ONLY_UNARY and not clc.is_float(x.dtype):
            raise TypeError(
                f"unary {op!r} needs a floating dtype, got {x.dtype} "
                f"on {self.device.name}; cast first"
            )
        expr, rt = found
        out = self.empty(x.shape, np.bool_ if op == "not" else x.dtype)
        return launch_elementwise(self, op, expr, [x], ct, rt, out)

    def binary(self, op: str, a, b) -> CLArray:
        """``op`` of each pair (ops as in HostBackend.binary); ``a`` or ``b``
        may be a Python number."""
        arr = a if isinstance(a, CLArray) else b
        if not isinstance(arr, CLArray):
            raise TypeError(f"binary {op!r}: at least one operand must be a CLArray")
        other = b if arr is a else a
        if isinstance(other, CLArray) and (
            other.dtype != arr.dtype or other.shape != arr.shape
        ):
            raise ValueError(
                f"binary {op!r}: operands differ: {arr.shape} {arr.dtype} and "
                f"{other.shape} {other.dtype}"
            )
        ct = self._compute_type_with(arr.dtype, a, b)
        found = ops.binary_expr(op, ct, arr.dtype == np.bool_)
        if found is None:
            raise NotImplementedError(f"OpenCL backend has no binary op {op!r}")
        expr, rt = found
        out = self.empty(arr.shape, np.bool_ if op in _BOOL_RESULT else arr.dtype)
        operands = [_operand(v, ct) for v in (a, b)]
        return launch_elementwise(self, op, expr, operands, ct, rt, out)

    def _compute_type_with(self, dt: np.dtype, *values) -> str:
        """The compute type of ``dt``, widened to floating point when an
        integer array meets a Python float (numpy computes those in
        float64 and the result is cast back)."""
        ct = clc.compute_type(dt)
        if not clc.is_float(dt) and any(_is_float_number(v) for v in values):
            return "double" if self.kernels.has_fp64 else "float"
        return ct

    def where(self, cond: CLArray, a, b) -> CLArray:
        """``a`` where ``cond`` (bool) is true, else ``b``; either may be a
        Python number."""
        if isinstance(a, CLArray):
            dt = a.dtype
        elif isinstance(b, CLArray):
            dt = b.dtype
        else:
            dt = np.asarray(b).dtype
        ct = clc.compute_type(dt)
        operands = [cond, _operand(a, ct), _operand(b, ct)]
        out = self.empty(cond.shape, dt)
        expr = "((x0 != 0) ? x1 : x2)"
        return launch_elementwise(self, "where", expr, operands, ct, ct, out)

    def clamp(self, x: CLArray, lo, hi) -> CLArray:
        """Elements clipped to [lo, hi]; either bound may be None."""
        ct = self._compute_type_with(x.dtype, lo, hi)
        if ct not in ("float", "double"):
            ct = "long"  # so a bound outside the dtype's range still orders right
        expr, operands = "x0", [x]
        if lo is not None:
            operands.append((lo, ct))
            expr = f"({expr} < x{len(operands) - 1} ? x{len(operands) - 1} : {expr})"
        if hi is not None:
            operands.append((hi, ct))
            k = len(operands) - 1
            expr = f"({expr} > x{k} ? x{k} : {expr})"
        out = self.empty(x.shape, x.dtype)
        return launch_elementwise(self, "clamp", expr, operands, ct, ct, out)

    # ---- reductions --------------------------------------------------------

    def reduce(self, op: str, x: CLArray, axes: tuple, keepdim: bool) -> CLArray:
        """``op`` in sum, max, min, prod over ``axes``; same dtype as ``x``.
        Deterministic: a fixed order of accumulation for each shape."""
        return reduce.reduce(self, op, x, axes, keepdim)

    def argreduce(self, op: str, x: CLArray, axis: int, keepdim: bool) -> CLArray:
        """Index (int64) of the first max (``argmax``) or min (``argmin``)."""
        return reduce.argreduce(self, op, x, axis, keepdim)

    # ---- linear algebra ----------------------------------------------------

    def matmul(self, a: CLArray, b: CLArray) -> CLArray:
        """Batched (..., M, K) @ (..., K, N); transposed views are read in
        place, without a copy."""
        return matmul.matmul(self, a, b)

    # ---- indexing ----------------------------------------------------------

    def take(self, x: CLArray, idx: CLArray, axis: int) -> CLArray:
        """Gather along ``axis`` with int64 ``idx`` (values in range)."""
        return kernels_nn.take(self, x, idx, axis)

    def index_add(self, shape: tuple, axis: int, idx: CLArray, src: CLArray):
        """Zeros of ``shape`` with the slices of ``src`` added at ``idx`` along
        ``axis``, repeated indices summed in order of appearance."""
        return kernels_nn.index_add(self, shape, axis, idx, src)

    def assign(self, dst: CLArray, src) -> None:
        """Write ``src`` (an array of ``dst``'s shape and dtype, possibly a
        view, or a Python number) into ``dst``, which may be a view."""
        if not isinstance(src, CLArray):
            if dst.is_contiguous():
                self._fill(dst, src)
                return
            ct = clc.compute_type(dst.dtype)
            launch_elementwise(self, "assign", "x0", [(src, ct)], ct, ct, dst)
            return
        if src.shape != dst.shape or src.dtype != dst.dtype:
            raise ValueError(
                f"assign: source {src.shape} {src.dtype} does not match the "
                f"destination {dst.shape} {dst.dtype}"
            )
        if src.base is dst.base:
            src = self._copy(src)
        self._copy_into(dst, src)

    def put(self, x: CLArray, flat_idx: CLArray, values) -> None:
        """Write ``values`` (1-D, one per index, or a number) at the C-order
        positions ``flat_idx`` of ``x``'s logical shape, in place."""
        kernels_nn.put(self, x, flat_idx, values)

    # ---- neural-network kernels -------------------------------------------

    def im2col(self, x, kh, kw, stride, padding, dilation=(1, 1)):
        """Patches of ``x`` (N, C, H, W) as (N, C*kh*kw, OH*OW)."""
        return kernels_nn.im2col(self, x, kh, kw, stride, padding, dilation)

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation=(1, 1)):
        """The adjoint of :meth:`im2col`: patches summed back to (N, C, H, W)."""
        return kernels_nn.col2im(self, cols, x_shape, kh, kw, stride, padding, dilation)

    def max_pool2d(self, x, kernel, stride, padding):
        """Window maxima of ``x`` (N, C, H, W) and their flat h * W + w
        positions (int64); ties keep the first in row-major window order."""
        return kernels_nn.max_pool2d(self, x, kernel, stride, padding)

    def max_pool2d_backward(self, g, argmax, x_shape):
        """Gradients ``g`` (N, C, OH, OW) sent to their argmax positions."""
        return kernels_nn.max_pool2d_backward(self, g, argmax, x_shape)

    def log_softmax(self, x: CLArray, axis: int) -> CLArray:
        """log(softmax(x)) along ``axis``, stable for large inputs."""
        return kernels_nn.softmax(self, x, axis, log=True)

    def softmax(self, x: CLArray, axis: int) -> CLArray:
        return kernels_nn.softmax(self, x, axis, log=False)

    # ---- optimizer updates (in place) --------------------------------------

    def sgd_step(self, p, g, buf, *, lr, momentum, dampening, nesterov, wd, first):
        """One SGD update of ``p`` in place (see HostBackend.sgd_step)."""
        kernels_nn.sgd_step(
            self,
            p,
            g,
            buf,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            wd=wd,
            first=first,
        )

    def adam_step(self, p, g, m, v, *, lr, beta1, beta2, eps, wd, decoupled, step):
        """One Adam or AdamW update of ``p``, ``m``, ``v`` in place (see
        HostBackend.adam_step)."""
        kernels_nn.adam_step(
            self,
            p,
            g,
            m,
            v,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            wd=wd,
            decoupled=decoupled,
            step=step,
        )


def _bytes_of(a: np.ndarray) -> np.ndarray:
    """``a``'s bytes as a flat uint8 array (pyopencl cannot take every numpy
    dtype, bfloat16 included, through the buffer protocol)."""
    return a.reshape(-1).view(np.uint8)


def _is_float_number(v) -> bool:
    return isinstance(v, (float, np.floating))


def _operand(v, ct: str):
    """A CLArray as is, a Python number as a scalar argument of type ``ct``."""
    if isinstance(v, CLArray):
        return v
    if isinstance(v, (bool, np.bool_)):
        v = int(v)
    return (v, ct)


def _resolve_shape(shape: tuple, size: int) -> tuple:
    """``shape`` with a single -1 replaced so the sizes match."""
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        if shape.count(-1) > 1 or known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape {size} elements to {shape}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if math.prod(shape) != size:
        raise ValueError(f"reshape: cannot reshape {size} elements to {shape}")
    return tuple(int(n) for n in shape)
