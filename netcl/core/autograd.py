"""Reverse-mode automatic differentiation.

Every differentiable operation is a :class:`Function`: ``forward`` computes
the result from raw backend arrays, ``backward`` turns the gradient of the
result into gradients of the inputs, again on raw arrays, through the same
backend primitives. Tensors that need gradients remember the Function that
made them; :func:`backward` walks that graph once in reverse topological
order and accumulates into the ``.grad`` of leaf tensors.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netcl.core.tensor import Tensor

__all__ = ["Function", "backward", "enable_grad", "is_grad_enabled", "no_grad"]


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether new operations record the graph for backward."""
    return _mode.enabled


class _SetGrad:
    enabled: bool

    def __enter__(self):
        self._prev = _mode.enabled
        _mode.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _mode.enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_SetGrad):
    """Context manager (and decorator) under which no graph is recorded."""

    enabled = False


class enable_grad(_SetGrad):
    """Context manager (and decorator) that turns recording back on."""

    enabled = True


class Function:
    """One differentiable operation.

    Subclasses define ``forward(self, *raw_inputs, **options)`` returning a
    raw output and ``backward(self, grad)`` returning one raw gradient (or
    None) per tensor input. ``self.B`` is the backend of the inputs' device;
    ``self.needs`` tells which inputs want a gradient.

    ``fresh`` lists the inputs whose gradient ``backward`` returns as a newly
    allocated, contiguous array that nothing else refers to; a leaf with no
    gradient yet adopts such an array instead of copying it.
    """

    __slots__ = ("B", "parents", "needs", "saved", "__dict__")
    fresh: tuple = ()

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs) -> Tensor:
        """Run the operation on tensors and record it when a gradient is due."""
        from netcl.core.tensor import Tensor

        first = inputs[0]
        device = first.device
        for t in inputs[1:]:
            if t.device is not device:
                raise RuntimeError(
                    f"{cls.__name__} got tensors on {device.name} and "
                    f"{t.device.name}; move them with .to() first"
                )
        ctx = cls()
        ctx.B = device.backend
        needs = [t.requires_grad for t in inputs]
        record = _mode.enabled and any(needs)
        ctx.needs = needs
        out = Tensor._wrap(ctx.forward(*[t._data for t in inputs], **kwargs), device)
        if record:
            ctx.parents = inputs
            out.requires_grad = True
            out._ctx = ctx
        return out


def _topological(root: Tensor) -> list[Tensor]:
    order: list[Tensor] = []
    seen: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:
            for p in ctx.parents:
                if p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``.

    Args:
        root: the tensor to differentiate; must require a gradient.
        grad: the gradient of some scalar with respect to ``root``; may be
            omitted when ``root`` holds one element.
        retain_graph: keep the graph so backward can run through it again.
    """
    from netcl.core.tensor import Tensor

    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: no input of "
            "its graph has requires_grad=True, or it was made under no_grad()"
        )
    B = root.device.backend
    if grad is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward() needs a gradient argument for a tensor of shape "
                f"{root.shape}; only one-element tensors get the implicit 1"
            )
        g = B.full(root.shape, 1, root.dtype.np)
    else:
        g = grad._data if isinstance(grad, Tensor) else B.from_numpy(grad)
        if tuple(g.shape) != root.shape:
            raise ValueError(
                f"gradient shape {tuple(g.shape)} != tensor shape {root.shape}"
            )

    grads = {id(root): g}
    with no_grad():
        for node in reversed(_topological(root)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            ctx = node._ctx
            if ctx is None:
                _accumulate(node, g)
                continue
            in_grads = ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for k, (parent, need, pg) in enumerate(
                zip(ctx.parents, ctx.needs, in_grads)
            ):
                if not need or pg is None:
                    continue
                if parent._ctx is None and k in ctx.fresh and parent.grad is None:
                    if id(parent) not in grads and pg.dtype == parent.dtype.np:
                        parent.grad = Tensor._wrap(pg, parent.device)
                        continue
                prev = grads.get(id(parent))
                if prev is not None:
                    pg = parent.device.backend.binary("add", prev, pg)
                grads[id(parent)] = pg
            if not retain_graph:
                node._ctx = None


def _accumulate(leaf: Tensor, g) -> None:
    from netcl.core.tensor import Tensor

    B = leaf.device.backend
    if leaf.grad is None:
        # astype always copies: the leaf's grad must not share memory with a
        # gradient that other tensors of the graph also received.
        leaf.grad = Tensor._wrap(B.astype(g, leaf.dtype.np), leaf.device)
    else:
        if g.dtype != leaf.dtype.np:
            g = B.astype(g, leaf.dtype.np)
        leaf.grad._data = B.binary("add", leaf.grad._data, g)
