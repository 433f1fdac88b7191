"""Stochastic gradient descent, with momentum and Nesterov momentum."""

from __future__ import annotations

import numbers
from typing import Any

import netcl
from netcl.core.tensor import Tensor
from netcl.optim.optimizer import Optimizer, ParamsT

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum.

    With gradient ``g`` of parameter ``p`` at each step::

        g = g + weight_decay * p
        buf = g                                    (first step)
        buf = momentum * buf + (1 - dampening) * g (later steps)
        g = g + momentum * buf  if nesterov  else  buf
        p = p - lr * g

    The momentum lines apply only when ``momentum`` is not 0. Each
    parameter's update runs as one fused backend kernel.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: learning rate.
        momentum: momentum factor (default: 0).
        dampening: dampening of the gradient added to the momentum buffer
            (default: 0).
        weight_decay: L2 penalty added to the gradient (default: 0).
        nesterov: use Nesterov momentum (default: False); needs a positive
            ``momentum`` and zero ``dampening``.

    Example:
        >>> import netcl
        >>> w = netcl.ones(3, requires_grad=True)
        >>> opt = netcl.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.tolist()
        [0.800000011920929, 0.800000011920929, 0.800000011920929]

    - Momentum as PyTorch defines it: Sutskever et al., "On the importance of
      initialization and momentum in deep learning",
      http://proceedings.mlr.press/v28/sutskever13.html
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        _check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hyperparameters(group)

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        momentum = group["momentum"]
        state = self.state.setdefault(p, {})

        # The buffer starts as a copy of the first gradient; the backend
        # does that copy when `first` is set, so zeros are just storage.
        buf = None
        first = False
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = netcl.zeros_like(p)
                state["momentum_buffer"] = buf
                first = True

        p.device.backend.sgd_step(
            p._data,
            grad._data,
            None if buf is None else buf._data,
            lr=float(group["lr"]),
            momentum=float(momentum),
            dampening=float(group["dampening"]),
            nesterov=bool(group["nesterov"]),
            wd=float(group["weight_decay"]),
            first=first,
        )


def _check_hyperparameters(h: dict[str, Any]) -> None:
    for name in ("lr", "momentum", "dampening", "weight_decay"):
        value = h[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"SGD {name} must be a number, got {value!r}")
        if not value >= 0.0:  # also rejects nan
            raise ValueError(f"Invalid {name} value: {value!r} (must be >= 0)")
    if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
        raise ValueError(
            "Nesterov momentum requires a momentum > 0 and zero dampening, got "
            f"momentum={h['momentum']!r}, dampening={h['dampening']!r}"
        )
