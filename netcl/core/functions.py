"""The differentiable primitives that every tensor operation is built from.

Each class is a :class:`~netcl.core.autograd.Function` over raw backend
arrays. Inputs of elementwise functions already have one shape and dtype:
:mod:`netcl.core.tensor` broadcasts (with :class:`Expand`) and casts first,
so the gradient of a broadcast is summed back in exactly one place.
"""

from __future__ import annotations

import math

from netcl.core.autograd import Function

# ---- elementwise ----------------------------------------------------------


class Binary(Function):
    """``op(a, b)`` for tensors of one shape; ``op`` is a backend binary op."""

    def forward(self, a, b, op):
        self.op = op
        if op in ("mul", "div", "pow", "maximum", "minimum"):
            self.saved = (a, b)
        out = self.B.binary(op, a, b)
        if op == "pow":
            self.out = out
        return out

    def backward(self, g):
        B, op = self.B, self.op
        if op == "add":
            return g, g
        if op == "sub":
            return g, B.unary("neg", g)
        a, b = self.saved
        if op == "mul":
            return B.binary("mul", g, b), B.binary("mul", g, a)
        if op == "div":
            ga = B.binary("div", g, b)
            gb = B.unary("neg", B.binary("div", B.binary("mul", ga, a), b))
            return ga, gb
        if op == "pow":
            ga = B.binary(
                "mul", g, B.binary("mul", b, B.binary("pow", a, B.binary("sub", b, 1)))
            )
            gb = None
            if self.needs[1]:
                gb = B.binary("mul", B.binary("mul", g, self.out), B.unary("log", a))
            return ga, gb
        # maximum / minimum: the winner takes the gradient, ties share it.
        cmp = "gt" if op == "maximum" else "lt"
        win_a = B.astype(B.binary(cmp, a, b), g.dtype)
        tie = B.astype(B.binary("eq", a, b), g.dtype)
        share_a = B.binary("add", win_a, B.binary("mul", tie, 0.5))
        ga = B.binary("mul", g, share_a)
        return ga, B.binary("sub", g, ga)


class BinaryScalar(Function):
    """``op(x, s)``, or ``op(s, x)`` when ``reverse``, with a Python number."""

    def forward(self, x, op, scalar, reverse):
        self.op, self.s, self.reverse = op, scalar, reverse
        out = self.B.binary(op, scalar, x) if reverse else self.B.binary(op, x, scalar)
        self.x, self.out = x, out
        return out

    def backward(self, g):
        B, op, s, x = self.B, self.op, self.s, self.x
        if op == "add":
            return g
        if op == "sub":
            return B.unary("neg", g) if self.reverse else g
        if op == "mul":
            return B.binary("mul", g, s)
        if op == "div":
            if not self.reverse:
                return B.binary("div", g, s)
            return B.unary("neg", B.binary("div", B.binary("mul", g, self.out), x))
        if op == "pow":
            if self.reverse:  # s ** x
                return B.binary("mul", B.binary("mul", g, self.out), math.log(s))
            if s == 0:  # x ** 0 is 1 everywhere, 0 ** 0 included
                return B.binary("mul", g, 0.0)
            if s == 2:
                return B.binary("mul", g, B.binary("mul", x, 2.0))
            return B.binary("mul", g, B.binary("mul", B.binary("pow", x, s - 1), s))
        if op in ("maximum", "minimum"):
            cmp = "gt" if op == "maximum" else "lt"
            keep = B.astype(B.binary(cmp, x, s), g.dtype)
            tie = B.astype(B.binary("eq", x, s), g.dtype)
            return B.binary("mul", g, B.binary("add", keep, B.binary("mul", tie, 0.5)))
        raise NotImplementedError(f"no gradient for {op!r} with a scalar")


class Unary(Function):
    """A backend unary op with its derivative."""

    def forward(self, x, op):
        self.op = op
        out = self.B.unary(op, x)
        self.x, self.out = x, out
        return out

    def backward(self, g):
        B, op, x, y = self.B, self.op, self.x, self.out
        if op == "neg":
            return B.unary("neg", g)
        if op == "exp":
            return B.binary("mul", g, y)
        if op == "log":
            return B.binary("div", g, x)
        if op == "sqrt":
            return B.binary("div", g, B.binary("mul", y, 2.0))
        if op == "abs":
            return B.binary("mul", g, B.unary("sign", x))
        if op == "tanh":
            return B.binary("tanh_grad", g, y)
        if op == "sigmoid":
            return B.binary("sigmoid_grad", g, y)
        if op == "relu":
            return B.binary("relu_grad", g, x)
        if op == "gelu":
            return B.binary("gelu_grad", g, x)
        if op == "sin":
            return B.binary("mul", g, B.unary("cos", x))
        if op == "cos":
            return B.unary("neg", B.binary("mul", g, B.unary("sin", x)))
        if op == "log1p":
            return B.binary("div", g, B.binary("add", x, 1.0))
        if op == "sign":
            return B.binary("mul", g, 0.0)
        raise NotImplementedError(f"no gradient for unary {op!r}")


class Clamp(Function):
    def forward(self, x, lo, hi):
        self.x, self.lo, self.hi = x, lo, hi
        return self.B.clamp(x, lo, hi)

    def backward(self, g):
        B, x = self.B, self.x
        inside = None
        if self.lo is not None:
            inside = B.binary("ge", x, self.lo)
        if self.hi is not None:
            below = B.binary("le", x, self.hi)
            inside = below if inside is None else B.binary("and", inside, below)
        if inside is None:
            return g
        return B.where(inside, g, 0)


class Where(Function):
    """``a`` where ``cond`` else ``b``; ``cond`` gets no gradient."""

    def forward(self, cond, a, b):
        self.cond = cond
        return self.B.where(cond, a, b)

    def backward(self, g):
        B = self.B
        ga = B.where(self.cond, g, 0) if self.needs[1] else None
        gb = B.where(self.cond, 0, g) if self.needs[2] else None
        return None, ga, gb


class Cast(Function):
    def forward(self, x, dtype):
        self.src = x.dtype
        return self.B.astype(x, dtype)

    def backward(self, g):
        return self.B.astype(g, self.src)


# ---- reductions -----------------------------------------------------------


def _keepdim_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, x, axes, keepdim):
        self.shape, self.axes = tuple(x.shape), axes
        return self.B.reduce("sum", x, axes, keepdim)

    def backward(self, g):
        B = self.B
        g = B.reshape(g, _keepdim_shape(self.shape, self.axes))
        return B.expand(g, self.shape)


class MaxMin(Function):
    """max or min over axes; ties share the gradient evenly."""

    def forward(self, x, op, axes, keepdim):
        self.x, self.axes = x, axes
        out = self.B.reduce(op, x, axes, keepdim)
        self.out = out
        return out

    def backward(self, g):
        B, x = self.B, self.x
        kshape = _keepdim_shape(tuple(x.shape), self.axes)
        y = B.expand(B.reshape(self.out, kshape), tuple(x.shape))
        hit = B.astype(B.binary("eq", x, y), g.dtype)
        count = B.reduce("sum", hit, self.axes, True)
        share = B.binary("div", B.reshape(g, kshape), count)
        return B.binary("mul", hit, B.expand(share, tuple(x.shape)))


# ---- movement -------------------------------------------------------------


class Reshape(Function):
    def forward(self, x, shape):
        self.shape = tuple(x.shape)
        return self.B.reshape(x, shape)

    def backward(self, g):
        return self.B.reshape(g, self.shape)


class Permute(Function):
    def forward(self, x, axes):
        self.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return self.B.permute(x, axes)

    def backward(self, g):
        return self.B.permute(g, self.inverse)


class Expand(Function):
    """Broadcast to ``shape`` (same number of dims); backward sums back."""

    def forward(self, x, shape):
        self.shape = tuple(x.shape)
        return self.B.expand(x, shape)

    def backward(self, g):
        axes = tuple(
            i for i, (a, b) in enumerate(zip(self.shape, g.shape)) if a == 1 and b != 1
        )
        if not axes:
            return g
        return self.B.reduce("sum", g, axes, True)


class Slice(Function):
    """A basic-indexing view (see ``HostBackend.slice``)."""

    def forward(self, x, index):
        self.shape, self.index, self.dtype = tuple(x.shape), index, x.dtype
        return self.B.slice(x, index)

    def backward(self, g):
        B = self.B
        out = B.full(self.shape, 0, self.dtype)
        B.assign(B.slice(out, self.index), g)
        return out


class Take(Function):
    """Gather along one axis with an int64 index array (no gradient)."""

    def forward(self, x, idx, axis):
        self.shape, self.axis, self.idx = tuple(x.shape), axis, idx
        return self.B.take(x, idx, axis)

    def backward(self, g):
        return self.B.index_add(self.shape, self.axis, self.idx, g), None


class Cat(Function):
    def forward(self, *xs, axis):
        B = self.B
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        shape = list(xs[0].shape)
        shape[axis] = sum(self.sizes)
        out = B.empty(tuple(shape), xs[0].dtype)
        start = 0
        for x, n in zip(xs, self.sizes):
            B.assign(B.slice(out, self._index(start, start + n)), x)
            start += n
        return out

    def _index(self, start: int, stop: int) -> tuple:
        return (slice(None),) * self.axis + (slice(start, stop, 1),)

    def backward(self, g):
        grads, start = [], 0
        for n in self.sizes:
            grads.append(self.B.slice(g, self._index(start, start + n)))
            start += n
        return tuple(grads)


class Contiguous(Function):
    def forward(self, x):
        return self.B.contiguous(x)

    def backward(self, g):
        return g


# ---- linear algebra and fused ops -----------------------------------------


def _swap_last(B, x):
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return B.permute(x, axes)


class Matmul(Function):
    """Batched (..., M, K) @ (..., K, N) with equal batch shapes."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return self.B.matmul(a, b)

    def backward(self, g):
        B = self.B
        ga = B.matmul(g, _swap_last(B, self.b)) if self.needs[0] else None
        gb = B.matmul(_swap_last(B, self.a), g) if self.needs[1] else None
        return ga, gb


class LogSoftmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        self.out = self.B.log_softmax(x, axis)
        return self.out

    def backward(self, g):
        B = self.B
        total = B.expand(B.reduce("sum", g, (self.axis,), True), tuple(g.shape))
        return B.binary("sub", g, B.binary("mul", B.unary("exp", self.out), total))


class Softmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        self.out = self.B.softmax(x, axis)
        return self.out

    def backward(self, g):
        B, y = self.B, self.out
        gy = B.binary("mul", g, y)
        total = B.expand(B.reduce("sum", gy, (self.axis,), True), tuple(g.shape))
        return B.binary("sub", gy, B.binary("mul", y, total))
