"""Tensor: an n-dimensional array on one device, with autograd.

A tensor's values live on exactly one device: a numpy array on the host, an
OpenCL buffer on an OpenCL device. Every operation runs on the device of its
inputs through that device's backend (:mod:`netcl.backends`), so the same
code runs on the host and on any OpenCL device. Operations on tensors that
require a gradient are recorded for :meth:`Tensor.backward`.
"""

from __future__ import annotations

import builtins
import contextlib
import numbers
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from netcl.core import dtypes as D
from netcl.core import functions as F
from netcl.core import indexing
from netcl.core.autocast import compute_dtype
from netcl.core.autograd import backward as _backward
from netcl.core.autograd import is_grad_enabled, no_grad
from netcl.core.device import Device, get_device
from netcl.core.random import Generator, default_generator

__all__ = [
    "Tensor",
    "arange",
    "broadcast_shapes",
    "cat",
    "empty",
    "full",
    "full_like",
    "matmul",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "stack",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]

_COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")


class Tensor:
    """An n-dimensional array of one dtype on one device.

    Create tensors with :func:`tensor`, :func:`zeros`, :func:`randn` and
    friends; ``Tensor(data, ...)`` is the same as ``tensor(data, ...)``.

    Attributes:
        device: the :class:`~netcl.core.device.Device` holding the values.
        dtype: the :class:`~netcl.core.dtypes.DType` of the elements.
        requires_grad: whether operations on it are recorded for backward.
        grad: the accumulated gradient (a Tensor) after ``backward()``.
    """

    __slots__ = (
        "_data",
        "device",
        "dtype",
        "requires_grad",
        "grad",
        "_ctx",
        "__weakref__",
    )
    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        t = tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
        self._data, self.device, self.dtype = t._data, t.device, t.dtype
        self.requires_grad, self.grad, self._ctx = requires_grad, None, None

    @classmethod
    def _wrap(cls, raw, device: Device, requires_grad: bool = False) -> Tensor:
        t = object.__new__(cls)
        t._data = raw
        t.device = device
        t.dtype = D._BY_NP[raw.dtype]
        t.requires_grad = requires_grad
        t.grad = None
        t._ctx = None
        return t

    # ---- properties ---------------------------------------------------------

    def __reduce__(self):
        # copy.deepcopy and pickle: the values travel as a host array and come
        # back on a device of the same name (the grad and graph do not).
        values = np.array(self.numpy(), copy=True)
        return (_rebuild, (type(self), values, self.device.name, self.requires_grad))

    @property
    def shape(self) -> tuple:
        return tuple(self._data.shape)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        """Number of elements (like numpy's ``size``; see also ``numel``)."""
        return int(self._data.size)

    def numel(self) -> int:
        return int(self._data.size)

    def dim(self) -> int:
        return self._data.ndim

    @property
    def buffer(self):
        """The OpenCL buffer holding the values, or None on the host."""
        return getattr(self._data, "buffer", None)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    @property
    def _B(self):
        return self.device.backend

    # ---- conversion ---------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """The values as a host array (shares memory with host tensors)."""
        return self._B.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        """The single value as a Python number."""
        if self.size != 1:
            raise ValueError(
                f"item() needs a one-element tensor, got shape {self.shape}"
            )
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, target=None, dtype=None) -> Tensor:
        """A copy on another device and/or of another dtype (``self`` if
        nothing changes). ``target`` may be a device spec, a Device, a dtype,
        or a dtype name."""
        device = None
        if target is not None:
            if isinstance(target, (D.DType, np.dtype, type)) or (
                isinstance(target, str) and target in D._BY_NAME
            ):
                dtype = target
            else:
                device = (
                    get_device(target) if isinstance(target, (str, Device)) else None
                )
                if device is None:
                    raise TypeError(f"to() expects a device or dtype, got {target!r}")
        out = self
        if dtype is not None and D.dtype(dtype) is not self.dtype:
            out = F.Cast.apply(out, dtype=D.dtype(dtype).np)
        if device is not None and device is not out.device:
            out = _Transfer.apply_to(out, device)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def float(self) -> Tensor:
        return self.to(D.float32)

    def double(self) -> Tensor:
        return self.to(D.float64)

    def half(self) -> Tensor:
        return self.to(D.float16)

    def long(self) -> Tensor:
        return self.to(D.int64)

    def int(self) -> Tensor:
        return self.to(D.int32)

    def bool(self) -> Tensor:
        return self.to(D.bool_)

    def detach(self) -> Tensor:
        """The same values, sharing memory, cut from the graph."""
        return Tensor._wrap(self._data, self.device)

    def clone(self) -> Tensor:
        """A copy with its own memory (differentiable)."""
        return F.Cast.apply(self, dtype=self.dtype.np)  # astype always copies

    def contiguous(self) -> Tensor:
        return F.Contiguous.apply(self)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not self.dtype.is_floating:
            raise RuntimeError(
                f"only floating tensors can require grad, not {self.dtype}"
            )
        self.requires_grad = flag
        return self

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate gradients of this tensor into the leaves' ``.grad``."""
        _backward(self, gradient, retain_graph)

    # ---- in-place -----------------------------------------------------------

    def _check_inplace(self) -> None:
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                "in-place change of a tensor that requires grad; wrap it in "
                "netcl.no_grad() or use .detach()"
            )

    def copy_(self, src) -> Tensor:
        """Write ``src`` (a tensor, array or number broadcastable to this
        shape) into this tensor's memory, converting its dtype."""
        self._check_inplace()
        B = self._B
        if isinstance(src, Tensor):
            if src.device is not self.device:
                src = src.numpy()
            else:
                src = src.to(self.dtype)
                B.assign(self._data, B.expand(_lift(src, self.ndim)._data, self.shape))
                return self
        if isinstance(src, numbers.Number):
            B.assign(self._data, src)
            return self
        host = np.asarray(src)
        if host.dtype != self.dtype.np:
            host = host.astype(self.dtype.np)
        if host.shape != self.shape:
            host = np.broadcast_to(host, self.shape)
        B.write(self._data, np.asarray(host, order="C"))
        return self

    def fill_(self, value) -> Tensor:
        self._check_inplace()
        self._B.assign(self._data, value)
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def _inplace(self, op: str, other) -> Tensor:
        self._check_inplace()
        with no_grad():
            out = _binary(self, other, op)
        if out.shape != self.shape:
            raise ValueError(
                f"in-place {op}: result shape {out.shape} != tensor shape {self.shape}"
            )
        self._B.assign(self._data, out.to(self.dtype)._data)
        return self

    def add_(self, other) -> Tensor:
        return self._inplace("add", other)

    def sub_(self, other) -> Tensor:
        return self._inplace("sub", other)

    def mul_(self, other) -> Tensor:
        return self._inplace("mul", other)

    def div_(self, other) -> Tensor:
        return self._inplace("div", other)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    # ---- arithmetic ---------------------------------------------------------

    def __add__(self, o):
        return _binary(self, o, "add")

    def __radd__(self, o):
        return _binary(self, o, "add", reverse=True)

    def __sub__(self, o):
        return _binary(self, o, "sub")

    def __rsub__(self, o):
        return _binary(self, o, "sub", reverse=True)

    def __mul__(self, o):
        return _binary(self, o, "mul")

    def __rmul__(self, o):
        return _binary(self, o, "mul", reverse=True)

    def __truediv__(self, o):
        return _binary(self, o, "div")

    def __rtruediv__(self, o):
        return _binary(self, o, "div", reverse=True)

    def __pow__(self, o):
        return _binary(self, o, "pow")

    def __rpow__(self, o):
        return _binary(self, o, "pow", reverse=True)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(_as_tensor(o, self), self)

    def __neg__(self):
        return self._unary("neg")

    def __abs__(self):
        return self._unary("abs")

    def __eq__(self, o):
        return _binary(self, o, "eq")

    def __ne__(self, o):
        return _binary(self, o, "ne")

    def __lt__(self, o):
        return _binary(self, o, "lt")

    def __le__(self, o):
        return _binary(self, o, "le")

    def __gt__(self, o):
        return _binary(self, o, "gt")

    def __ge__(self, o):
        return _binary(self, o, "ge")

    def __and__(self, o):
        return _logical(self, o, "and", "&")

    def __or__(self, o):
        return _logical(self, o, "or", "|")

    def __invert__(self):
        if self.dtype is not D.bool_:
            raise TypeError(f"~ is defined for bool tensors, not {self.dtype}")
        return Tensor._wrap(self._B.unary("not", self._data), self.device)

    __hash__ = object.__hash__

    def __bool__(self):
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.is_floating:
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = f", device='{self.device.name}'" if not self.device.is_host else ""
        if self.dtype not in (D.float32, D.int64, D.bool_):
            extra += f", dtype={self.dtype.name}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- elementwise functions ---------------------------------------------

    def _unary(self, op: str) -> Tensor:
        x = (
            self
            if self.dtype.is_floating or op in ("neg", "abs", "sign")
            else self.float()
        )
        return F.Unary.apply(x, op=op)

    def exp(self):
        return self._unary("exp")

    def log(self):
        return self._unary("log")

    def log1p(self):
        return self._unary("log1p")

    def sqrt(self):
        return self._unary("sqrt")

    def abs(self):
        return self._unary("abs")

    def sign(self):
        return self._unary("sign")

    def neg(self):
        return self._unary("neg")

    def sin(self):
        return self._unary("sin")

    def cos(self):
        return self._unary("cos")

    def tanh(self):
        return self._unary("tanh")

    def sigmoid(self):
        return self._unary("sigmoid")

    def relu(self):
        return F.Unary.apply(self, op="relu")

    def gelu(self):
        return self._unary("gelu")

    def pow(self, exponent):
        return _binary(self, exponent, "pow")

    def maximum(self, other):
        return _binary(self, other, "maximum")

    def minimum(self, other):
        return _binary(self, other, "minimum")

    def clamp(self, min=None, max=None) -> Tensor:
        """Values limited to [min, max]; either bound may be None."""
        if min is None and max is None:
            raise ValueError("clamp needs min, max or both")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self
            if min is not None:
                out = out.maximum(min)
            if max is not None:
                out = out.minimum(max)
            return out
        return F.Clamp.apply(self, lo=min, hi=max)

    clip = clamp

    def softmax(self, dim: int = -1) -> Tensor:
        return F.Softmax.apply(self._floating(), axis=_axis(dim, self.ndim))

    def log_softmax(self, dim: int = -1) -> Tensor:
        return F.LogSoftmax.apply(self._floating(), axis=_axis(dim, self.ndim))

    def _floating(self) -> Tensor:
        return self if self.dtype.is_floating else self.float()

    # ---- reductions ---------------------------------------------------------

    def sum(self, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
        x = self if dtype is None else self.to(dtype)
        if not x.dtype.is_floating and x.dtype is not D.int64 and dtype is None:
            x = x.to(D.int64)
        return F.Sum.apply(x, axes=_axes(dim, self.ndim), keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> Tensor:
        """Mean over ``dim`` (all dims when None); NaN over no elements.
        Float16 and bfloat16 are summed in float32."""
        x, low = self._accumulating()
        axes = _axes(dim, self.ndim)
        count = self._count(axes)
        out = x.sum(axes, keepdim) * (1.0 / count if count else float("nan"))
        return out if low is None else out.to(low)

    def var(self, dim=None, correction: int = 1, keepdim: bool = False) -> Tensor:
        """Variance over ``dim`` with ``correction`` (1: unbiased, 0: biased);
        NaN when there are no more elements than ``correction``."""
        x, low = self._accumulating()
        axes = _axes(dim, self.ndim)
        count = self._count(axes)
        centered = x - x.mean(axes, keepdim=True)
        sq = (centered * centered).sum(axes, keepdim)
        dof = count - correction
        out = sq * (1.0 / dof if dof > 0 else float("nan"))
        return out if low is None else out.to(low)

    def _accumulating(self) -> tuple[Tensor, D.DType | None]:
        """This tensor in a dtype fit for sums, and the dtype to go back to."""
        if self.dtype in (D.float16, D.bfloat16):
            return self.float(), self.dtype
        return self._floating(), None

    def _count(self, axes: tuple) -> int:
        return int(np.prod([self.shape[a] for a in axes])) if axes else 1

    def std(self, dim=None, correction: int = 1, keepdim: bool = False) -> Tensor:
        return self.var(dim, correction, keepdim).sqrt()

    def max(self, dim=None, keepdim: bool = False) -> Tensor:
        """Largest values over ``dim`` (all dims when None); use
        :meth:`argmax` for their positions."""
        return self._maxmin("max", dim, keepdim)

    def min(self, dim=None, keepdim: bool = False) -> Tensor:
        return self._maxmin("min", dim, keepdim)

    def _maxmin(self, op, dim, keepdim):
        if self.size == 0:
            raise ValueError(f"{op}() of an empty tensor")
        return F.MaxMin.apply(self, op=op, axes=_axes(dim, self.ndim), keepdim=keepdim)

    def argmax(self, dim=None, keepdim: bool = False) -> Tensor:
        return self._argreduce("argmax", dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False) -> Tensor:
        return self._argreduce("argmin", dim, keepdim)

    def _argreduce(self, op, dim, keepdim):
        if self.size == 0:
            raise ValueError(f"{op}() of an empty tensor")
        if dim is None:
            flat = self.reshape(-1)
            out = self._B.argreduce(op, flat._data, 0, False)
            if keepdim:
                out = self._B.reshape(out, (1,) * self.ndim)
            return Tensor._wrap(out, self.device)
        out = self._B.argreduce(op, self._data, _axis(dim, self.ndim), keepdim)
        return Tensor._wrap(out, self.device)

    def all(self, dim=None, keepdim: bool = False) -> Tensor:
        """Whether every element is non-zero (True over no elements)."""
        with no_grad():
            hits = self.bool().to(D.int64).sum(dim, keepdim)
            return hits == self._count(_axes(dim, self.ndim))

    def any(self, dim=None, keepdim: bool = False) -> Tensor:
        """Whether some element is non-zero (False over no elements)."""
        with no_grad():
            return self.bool().to(D.int64).sum(dim, keepdim) > 0

    # ---- shape --------------------------------------------------------------

    def reshape(self, *shape) -> Tensor:
        shape = _infer_shape(_shape_arg(shape), self.size, self.shape)
        if shape == self.shape:
            return self
        return F.Reshape.apply(self, shape=shape)

    def view(self, *shape) -> Tensor:
        """Like :meth:`reshape`, but always shares memory: a tensor whose
        elements are not laid out in order (a transpose, a strided slice)
        raises instead of being copied."""
        if not _is_contiguous(self._data):
            raise RuntimeError(
                f"view() of a non-contiguous tensor (shape {self.shape}) would "
                "copy; use reshape() or call contiguous() first"
            )
        return self.reshape(*shape)

    def permute(self, *dims) -> Tensor:
        dims = tuple(_axis(d, self.ndim) for d in _shape_arg(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(
                f"permute needs each of the {self.ndim} dims once, got {dims}"
            )
        if dims == tuple(range(self.ndim)):
            return self
        return F.Permute.apply(self, axes=dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        dims = list(range(self.ndim))
        a, b = _axis(dim0, self.ndim), _axis(dim1, self.ndim)
        dims[a], dims[b] = dims[b], dims[a]
        return self.permute(*dims)

    def squeeze(self, dim=None) -> Tensor:
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axes = _axes(dim, self.ndim)
        shape = tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1))
        return self.reshape(shape)

    def unsqueeze(self, dim: int) -> Tensor:
        dim = _axis(dim, self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _axis(start_dim, self.ndim), _axis(end_dim, self.ndim)
        if s > e:
            raise ValueError(
                f"flatten: start_dim {start_dim} comes after end_dim {end_dim}"
            )
        mid = int(np.prod(self.shape[s : e + 1]))
        return self.reshape(self.shape[:s] + (mid,) + self.shape[e + 1 :])

    def expand(self, *sizes) -> Tensor:
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(
                f"expand to {sizes}: fewer dims than the tensor's {self.shape}"
            )
        lead = len(sizes) - self.ndim
        target = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n
            for i, n in enumerate(sizes)
        )
        return _broadcast_to(self, target)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def split(self, split_size_or_sections, dim: int = 0) -> tuple:
        dim = _axis(dim, self.ndim)
        n = self.shape[dim]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step <= 0:
                raise ValueError(f"split size must be positive, got {step}")
            sizes = [builtins.min(step, n - s) for s in range(0, n, step)]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(
                    f"split sections {sizes} do not add up to {n} (dim {dim})"
                )
        out, start = [], 0
        for size in sizes:
            index = (slice(None),) * dim + (slice(start, start + size),)
            out.append(self[index])
            start += size
        return tuple(out)

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        n = self.shape[_axis(dim, self.ndim)]
        return self.split(-(-n // chunks), dim)

    # ---- indexing -----------------------------------------------------------

    def __getitem__(self, index) -> Tensor:
        basic, advanced = indexing.parse(index, self.shape)
        if advanced is None:
            return indexing.apply_basic(self, basic)
        flat = indexing.flat_positions(advanced, self.shape)
        src = self.reshape(-1)
        idx = Tensor._wrap(self._B.from_numpy(flat.reshape(-1)), self.device)
        out = F.Take.apply(src, idx, axis=0)
        return out.reshape(flat.shape)

    def __setitem__(self, index, value) -> None:
        self._check_inplace()
        B = self._B
        basic, advanced = indexing.parse(index, self.shape)
        if advanced is None:
            view = B.slice(self._data, basic.raw) if basic.raw else self._data
            target = tuple(view.shape)
            B.assign(view, indexing.value_raw(value, self, target))
            return
        flat = indexing.flat_positions(advanced, self.shape)
        values = indexing.value_raw(value, self, flat.shape)
        if not _is_num(values):
            values = B.reshape(B.contiguous(values), (flat.size,))
        B.put(self._data, B.from_numpy(flat.reshape(-1)), values)


def _is_contiguous(raw) -> bool:
    flags = getattr(raw, "flags", None)
    return flags.c_contiguous if flags is not None else raw.is_contiguous()


def _logical(a: Tensor, b, op: str, symbol: str) -> Tensor:
    b = _as_tensor(b, a)
    if a.dtype is not D.bool_ or b.dtype is not D.bool_:
        raise TypeError(
            f"{symbol} is defined for bool tensors (got {a.dtype.name} and "
            f"{b.dtype.name}); netcl has no bitwise integer ops"
        )
    return _binary(a, b, op)


def _rebuild(cls, values: np.ndarray, device: str, requires_grad: bool) -> Tensor:
    dev = get_device(device)
    t = cls._wrap(dev.backend.from_numpy(values), dev)
    t.requires_grad = requires_grad
    return t


class _Transfer:
    """Copy between devices; the gradient flows back across."""

    @staticmethod
    def apply_to(x: Tensor, device: Device) -> Tensor:
        out = Tensor._wrap(device.backend.from_numpy(x.numpy()), device)
        if x.requires_grad and is_grad_enabled():
            out.requires_grad = True
            out._ctx = _TransferCtx(x, device)
        return out


class _TransferCtx:
    fresh = (0,)  # from_numpy makes a new array

    def __init__(self, x: Tensor, device: Device):
        self.parents, self.needs = (x,), [True]
        self.src, self.dst = x.device, device

    def backward(self, g):
        return (self.src.backend.from_numpy(self.dst.backend.to_numpy(g)),)


# ---- helpers: arguments -----------------------------------------------------


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def _new_shape(shape) -> tuple:
    """A shape for a new tensor: non-negative sizes only, and within the
    limit :func:`limit_new_tensors` may have set."""
    shape = _shape_arg(shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"a tensor's sizes must be 0 or more, got {shape}")
    cap = _limit.elements
    if cap is not None and int(np.prod(shape, dtype=np.float64)) > cap:
        raise MemoryError(
            f"a new tensor of shape {shape} is larger than the {cap:,} elements "
            "allowed here"
        )
    return shape


class _Limit(threading.local):
    elements: int | None = None


_limit = _Limit()


@contextlib.contextmanager
def limit_new_tensors(max_elements: int):
    """Refuse, with MemoryError, any new tensor of more than ``max_elements``
    elements made in this thread inside the block. Rebuilding a model from a
    file uses it so that a crafted size fails before it allocates."""
    prev, _limit.elements = _limit.elements, int(max_elements)
    try:
        yield
    finally:
        _limit.elements = prev


def _axis(dim: int, ndim: int) -> int:
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % n


def _axes(dim, ndim: int) -> tuple:
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, Iterable):
        return tuple(sorted({_axis(d, ndim) for d in dim}))
    return (_axis(dim, ndim),)


def _infer_shape(shape: tuple, size: int, old: tuple) -> tuple:
    if shape.count(-1) > 1:
        raise ValueError(f"reshape to {shape}: only one dim may be -1")
    if -1 in shape:
        known = int(np.prod([n for n in shape if n != -1]))
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape {old} ({size} elements) to {shape}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if int(np.prod(shape)) != size:
        raise ValueError(f"cannot reshape {old} ({size} elements) to {shape}")
    return shape


def broadcast_shapes(*shapes) -> tuple:
    """The shape that all ``shapes`` broadcast to (numpy's rules)."""
    ndim = builtins.max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ValueError(
                f"shapes {' and '.join(map(str, shapes))} do not broadcast"
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _lift(x: Tensor, ndim: int) -> Tensor:
    if x.ndim == ndim:
        return x
    if x.ndim > ndim:
        raise ValueError(f"cannot broadcast shape {x.shape} to {ndim} dims")
    return x.reshape((1,) * (ndim - x.ndim) + x.shape)


def _broadcast_to(x: Tensor, shape: tuple) -> Tensor:
    if x.shape == shape:
        return x
    broadcast_shapes(x.shape, shape)
    x = _lift(x, len(shape))
    if x.shape == shape:
        return x
    for a, b in zip(x.shape, shape):
        if a != 1 and a != b:
            raise ValueError(f"cannot broadcast shape {x.shape} to {shape}")
    return F.Expand.apply(x, shape=shape)


def _is_num(v) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, np.ndarray)


def _as_tensor(o, like: Tensor) -> Tensor:
    if isinstance(o, Tensor):
        return o
    if isinstance(o, np.ndarray) or isinstance(o, (list, tuple)):
        return tensor(np.asarray(o), device=like.device)
    return tensor(o, device=like.device)


def _scalar_dtype(x: Tensor, s) -> D.DType:
    if isinstance(s, (bool, np.bool_)):
        return x.dtype
    if isinstance(s, (float, np.floating)) and not x.dtype.is_floating:
        return D.float32
    if x.dtype is D.bool_:
        return D.int64
    return x.dtype


def _binary(a: Tensor, b, op: str, reverse: bool = False) -> Tensor:
    if _is_num(b):
        dt = _scalar_dtype(a, b)
        if op == "div" and not dt.is_floating:
            dt = D.float32
        x = a if a.dtype is dt else a.to(dt)
        s = b.item() if isinstance(b, np.generic) else b
        if op in _COMPARISONS:
            return Tensor._wrap(x._B.binary(op, x._data, s), a.device)
        return F.BinaryScalar.apply(x, op=op, scalar=s, reverse=reverse)
    b = _as_tensor(b, a)
    if reverse:
        a, b = b, a
    if a.device is not b.device:
        raise RuntimeError(
            f"operands are on different devices ({a.device.name} and "
            f"{b.device.name}); move one with .to()"
        )
    dt = D.promote(a.dtype, b.dtype)
    if op == "div" and not dt.is_floating:
        dt = D.float32
    a, b = a.to(dt), b.to(dt)
    shape = broadcast_shapes(a.shape, b.shape)
    a, b = _broadcast_to(a, shape), _broadcast_to(b, shape)
    if op in _COMPARISONS or op in ("and", "or"):
        return Tensor._wrap(a._B.binary(op, a._data, b._data), a.device)
    return F.Binary.apply(a, b, op=op)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with numpy's rules: 1-D operands are vectors, leading
    dims broadcast."""
    b = _as_tensor(b, a)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs tensors of at least 1 dim; use * for scalars")
    dt = compute_dtype(D.promote(a.dtype, b.dtype))
    a, b = a.to(dt), b.to(dt)
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = a.reshape(1, -1)
    if vb:
        b = b.reshape(-1, 1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not fit "
            f"({a.shape[-1]} != {b.shape[-2]})"
        )
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = _broadcast_to(a, batch + a.shape[-2:])
    b = _broadcast_to(b, batch + b.shape[-2:])
    out = F.Matmul.apply(a, b)
    if va:
        out = out.squeeze(-2)
    if vb:
        out = out.squeeze(-1)
    return out


# ---- creation -----------------------------------------------------------------


def _default_dtype(data) -> D.DType:
    if isinstance(data, (np.ndarray, np.generic)):
        return D.dtype(data.dtype)
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return D.bool_
    if arr.dtype == np.uint64:  # Python ints past 2**63 - 1
        raise OverflowError(f"{data!r} does not fit in int64, netcl's integer type")
    if arr.dtype.kind in "iu":
        return D.int64
    if arr.dtype.kind == "f":
        return D.float32
    raise TypeError(f"cannot make a tensor from {type(data).__name__} ({arr.dtype})")


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Args:
        data: a number, nested lists, a numpy array or a Tensor.
        dtype: a netcl dtype or name; by default numpy arrays keep theirs,
            Python floats give float32, ints int64, bools bool.
        device: a device spec (``"cpu"``, ``"cl"``, ``"cl:1"``, ``"auto"``)
            or Device; the host when None.
        requires_grad: record operations for backward (floating only).

    Example:
        >>> import netcl
        >>> netcl.tensor([[1.0, 2.0]]).shape
        (1, 2)
    """
    if isinstance(data, Tensor):
        dev = get_device(device) if device is not None else data.device
        out = data.detach().to(dtype or data.dtype).to(dev)
        if out is data or out._data is data._data:
            out = Tensor._wrap(dev.backend.from_numpy(data.numpy()), dev)
        return out.requires_grad_(requires_grad) if requires_grad else out
    dt = D.dtype(dtype) if dtype is not None else _default_dtype(data)
    host = np.asarray(data)
    if host.dtype == object:
        raise TypeError("cannot make a tensor from ragged or non-numeric data")
    host = host.astype(dt.np, copy=False)
    dev = get_device(device)
    t = Tensor._wrap(dev.backend.from_numpy(host), dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


def empty(*shape, dtype=D.float32, device=None, requires_grad=False) -> Tensor:
    shape, dev, dt = _new_shape(shape), get_device(device), D.dtype(dtype)
    t = Tensor._wrap(dev.backend.empty(shape, dt.np), dev)
    return t.requires_grad_(True) if requires_grad else t


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape = _new_shape((shape,) if isinstance(shape, int) else (tuple(shape),))
    dt = D.dtype(dtype) if dtype is not None else _default_dtype(fill_value)
    dev = get_device(device)
    t = Tensor._wrap(dev.backend.full(shape, fill_value, dt.np), dev)
    return t.requires_grad_(True) if requires_grad else t


def zeros(*shape, dtype=D.float32, device=None, requires_grad=False) -> Tensor:
    return full(_shape_arg(shape), 0, dtype, device, requires_grad)


def ones(*shape, dtype=D.float32, device=None, requires_grad=False) -> Tensor:
    return full(_shape_arg(shape), 1, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = D.int64 if ints else D.float32
    dt, dev = D.dtype(dtype), get_device(device)
    return Tensor._wrap(dev.backend.arange(start, end, step, dt.np), dev)


def _random(draw, shape, dtype, device, generator, requires_grad) -> Tensor:
    dev = get_device(device)
    gen = generator if generator is not None else default_generator(dev)
    if not isinstance(gen, Generator):
        raise TypeError(
            f"generator must be a netcl Generator, not {type(gen).__name__}"
        )
    host = draw(gen, _new_shape(shape)).astype(D.dtype(dtype).np)
    t = Tensor._wrap(dev.backend.from_numpy(host), dev)
    return t.requires_grad_(True) if requires_grad else t


def rand(*shape, dtype=D.float32, device=None, generator=None, requires_grad=False):
    """Uniform samples in [0, 1) from ``generator`` (the device's default)."""
    return _random(Generator.random, shape, dtype, device, generator, requires_grad)


def randn(*shape, dtype=D.float32, device=None, generator=None, requires_grad=False):
    """Standard normal samples from ``generator`` (the device's default)."""
    return _random(Generator.normal, shape, dtype, device, generator, requires_grad)


def randint(low, high=None, size=(), dtype=D.int64, device=None, generator=None):
    """Integers in [low, high) (or [0, low) when ``high`` is None)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint needs low < high, got [{low}, {high})")
    return _random(
        lambda g, s: g.integers(low, high, s), size, dtype, device, generator, False
    )


def zeros_like(x: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(x.shape, 0, dtype or x.dtype, device or x.device, requires_grad)


def ones_like(x: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(x.shape, 1, dtype or x.dtype, device or x.device, requires_grad)


def full_like(x: Tensor, fill_value, dtype=None, device=None) -> Tensor:
    return full(x.shape, fill_value, dtype or x.dtype, device or x.device)


def rand_like(x: Tensor, dtype=None, device=None, generator=None) -> Tensor:
    return rand(
        x.shape, dtype=dtype or x.dtype, device=device or x.device, generator=generator
    )


def randn_like(x: Tensor, dtype=None, device=None, generator=None) -> Tensor:
    return randn(
        x.shape, dtype=dtype or x.dtype, device=device or x.device, generator=generator
    )


# ---- joining ------------------------------------------------------------------


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of equal shape except along ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    first = tensors[0]
    axis = _axis(dim, first.ndim)
    dt = first.dtype
    for t in tensors[1:]:
        dt = D.promote(dt, t.dtype)
        if t.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis
        ):
            raise ValueError(
                f"cat: shapes {first.shape} and {t.shape} differ off dim {dim}"
            )
    tensors = [t.to(dt) for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    return F.Cat.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: shapes {tensors[0].shape} and {t.shape} differ")
    axis = _axis(dim, tensors[0].ndim + 1)
    return cat([t.unsqueeze(axis) for t in tensors], axis)


def where(cond: Tensor, a, b) -> Tensor:
    """Elements of ``a`` where ``cond`` holds, else of ``b`` (broadcasting)."""
    like = cond if isinstance(cond, Tensor) else (a if isinstance(a, Tensor) else b)
    cond = _as_tensor(cond, like).bool()
    a, b = _as_tensor(a, cond), _as_tensor(b, cond)
    dt = D.promote(a.dtype, b.dtype)
    a, b = a.to(dt), b.to(dt)
    shape = broadcast_shapes(cond.shape, a.shape, b.shape)
    cond = _broadcast_to(cond, shape)
    return F.Where.apply(cond, _broadcast_to(a, shape), _broadcast_to(b, shape))
