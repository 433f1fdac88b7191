"""Mixed-precision training: float16 matmuls with float32 master weights.

The scheme:

- The model's parameters and the optimizer's state stay float32 (the
  "master weights"); the optimizer updates them in float32.
- Under :class:`autocast`, matrix products (linear and convolution layers)
  cast their operands to float16 and produce float16, which halves their
  memory traffic. Everything else keeps its inputs' dtype.
- Compute the loss in float32 (cast the logits with ``.float()`` if needed).
  Gradients flow back through the float16 products and land in float32
  ``.grad`` tensors, because a gradient takes its parameter's dtype.
- Small gradients of the float16 products would flush to zero, so
  :class:`GradScaler` multiplies the loss by a large scale before
  ``backward`` and divides the gradients by it before the optimizer steps.
  A step whose gradients overflowed (inf or NaN) is skipped and the scale
  backs off; after a run of clean steps it grows again.

Example:
    >>> import netcl
    >>> w = netcl.randn(4, 3, requires_grad=True)
    >>> x = netcl.randn(8, 4)
    >>> opt = netcl.optim.SGD([w], lr=0.1)
    >>> scaler = netcl.amp.GradScaler(init_scale=256.0)
    >>> with netcl.amp.autocast():
    ...     loss = (x @ w).float().pow(2).mean()
    >>> scaler.scale(loss).backward()
    >>> scaler.step(opt)
    >>> scaler.update()
    >>> w.grad.dtype
    netcl.float32
"""

from __future__ import annotations

from netcl.amp.autocast import autocast, is_autocast_enabled
from netcl.amp.grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "is_autocast_enabled"]
