"""Differentiable operations that layers need beyond the core tensor ops.

Like :mod:`netcl.core.functions`, each class is a
:class:`~netcl.core.autograd.Function` written only against backend
primitives, so it runs unchanged on the host and on OpenCL devices.
:mod:`netcl.nn.functional` checks arguments and calls these.
"""

from __future__ import annotations

import numpy as np

from netcl.core.autograd import Function

__all__ = ["CrossEntropy", "HardCrossEntropy", "Im2col", "Linear", "MaxPool2d"]


class Linear(Function):
    """``x @ w.T + b`` for 2-D ``x`` (N, in), ``w`` (out, in), ``b`` (out,).

    One node instead of a transpose, a product, a broadcast and a sum: the
    weight gradient comes out as ``g.T @ x``, already (out, in) and
    contiguous, so the parameter adopts it without a copy.
    """

    fresh = (1, 2)

    def forward(self, x, w, b=None):
        B = self.B
        self.x, self.w = x, w
        out = B.matmul(x, B.permute(w, (1, 0)))
        if b is not None:
            bias = B.expand(B.reshape(b, (1, b.shape[0])), tuple(out.shape))
            out = B.binary("add", out, bias)
        return out

    def backward(self, g):
        B, needs = self.B, self.needs
        dx = B.matmul(g, self.w) if needs[0] else None
        dw = B.matmul(B.permute(g, (1, 0)), self.x) if needs[1] else None
        db = B.reduce("sum", g, (0,), False) if len(needs) > 2 and needs[2] else None
        return dx, dw, db


class Im2col(Function):
    """Patches of an (N, C, H, W) input as (N, C*kh*kw, OH*OW).

    The backward pass is the adjoint, ``col2im``, which sums each patch
    gradient back onto the pixels it was read from.
    """

    def forward(self, x, kh, kw, stride, padding):
        self.args = (tuple(x.shape), kh, kw, stride, padding)
        return self.B.im2col(x, kh, kw, stride, padding)

    def backward(self, g):
        x_shape, kh, kw, stride, padding = self.args
        return self.B.col2im(self.B.contiguous(g), x_shape, kh, kw, stride, padding)


class MaxPool2d(Function):
    """Max over 2-D windows; the gradient goes to each window's winner."""

    def forward(self, x, kernel, stride, padding):
        out, argmax = self.B.max_pool2d(x, kernel, stride, padding)
        self.argmax, self.x_shape = argmax, tuple(x.shape)
        return out

    def backward(self, g):
        return self.B.max_pool2d_backward(
            self.B.contiguous(g), self.argmax, self.x_shape
        )


class HardCrossEntropy(Function):
    """Cross-entropy of (N, C) logits against N class indices that are all in
    range, without label smoothing or ignored rows: the common case, in
    about half the kernels of :class:`CrossEntropy`.

    The loss picks ``log_softmax(x)[i, target[i]]`` through flat positions
    ``i * C + target[i]``; the backward pass is ``softmax`` with 1 taken off
    at those positions, scaled by the incoming gradient.
    """

    def forward(self, x, target, reduction):
        B = self.B
        n, c = x.shape
        logp = B.log_softmax(x, 1)
        flat = B.binary("add", _row_starts(B, n, c), target)
        picked = B.take(B.reshape(logp, (n * c,)), flat, 0)
        self.logp, self.flat, self.reduction = logp, flat, reduction
        if reduction == "none":
            return B.unary("neg", picked)
        total = B.reduce("sum", picked, (0,), False)
        return B.binary("mul", total, -1.0 / n if reduction == "mean" else -1.0)

    def backward(self, g):
        B = self.B
        n, c = self.logp.shape
        d = B.unary("exp", self.logp)
        picked = B.take(B.reshape(d, (n * c,)), self.flat, 0)
        B.put(d, self.flat, B.binary("sub", picked, 1.0))
        return _times_grad(B, d, g, self.reduction, n), None


_ROW_STARTS: dict = {}


def _row_starts(B, n: int, c: int):
    """The read-only array 0, c, 2c, ... (n of them) on B's device, made once
    per shape: a training loop asks for the same one every step."""
    key = (id(B), n, c)
    starts = _ROW_STARTS.get(key)
    if starts is None:
        if len(_ROW_STARTS) > 64:
            _ROW_STARTS.clear()
        starts = _ROW_STARTS[key] = B.arange(0, n * c, c, np.int64)
    return starts


class CrossEntropy(Function):
    """Softmax cross-entropy of (N, C) logits against N class indices, fused.

    Forward computes ``log_softmax`` once and the loss from it; backward is
    ``(softmax - q) * grad`` where ``q`` is the target distribution: the
    one-hot target, mixed with the uniform distribution when label smoothing
    is on. Rows whose target is ``ignore_index`` contribute nothing, and the
    mean divides by the number of other rows.
    """

    def forward(self, x, target, reduction, label_smoothing, ignore_index):
        B = self.B
        n, c = x.shape
        logp = B.log_softmax(x, 1)

        # One-hot targets: compare every class index with the row's target.
        classes = B.expand(B.reshape(B.arange(0, c, 1, np.int64), (1, c)), (n, c))
        wanted = B.expand(B.reshape(target, (n, 1)), (n, c))
        q = B.astype(B.binary("eq", classes, wanted), x.dtype)
        valid = B.astype(B.binary("ne", target, ignore_index), x.dtype)
        if label_smoothing:
            spread = B.binary("mul", B.reshape(valid, (n, 1)), label_smoothing / c)
            q = B.binary("mul", q, 1.0 - label_smoothing)
            q = B.binary("add", q, B.expand(spread, (n, c)))

        per_row = B.unary("neg", B.reduce("sum", B.binary("mul", q, logp), (1,), False))
        self.logp, self.q, self.valid, self.reduction = logp, q, valid, reduction
        if reduction == "none":
            return per_row
        total = B.reduce("sum", per_row, (0,), False)
        if reduction == "sum":
            return total
        self.count = B.reduce("sum", valid, (0,), False)
        return B.binary("div", total, self.count)

    def backward(self, g):
        B = self.B
        n, c = self.logp.shape

        # Each valid row's q sums to 1, so d(loss)/d(x) = softmax * valid - q.
        valid = B.expand(B.reshape(self.valid, (n, 1)), (n, c))
        d = B.binary("sub", B.binary("mul", B.unary("exp", self.logp), valid), self.q)
        count = getattr(self, "count", None)
        return _times_grad(B, d, g, self.reduction, count), None


def _times_grad(B, d, g, reduction: str, count):
    """The (N, C) row gradients ``d`` times the loss's incoming gradient ``g``:
    one value per row for ``"none"``, else one number, divided by ``count``
    (a number or a 0-d array) for ``"mean"``."""
    n, c = d.shape
    if reduction == "none":
        scale = B.reshape(B.contiguous(g), (n, 1))
    else:
        if reduction == "mean":
            g = B.binary("div", g, count)
        scale = B.reshape(B.contiguous(g), (1, 1))
    return B.binary("mul", d, B.expand(scale, (n, c)))
