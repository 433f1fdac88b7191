"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled decay."""

from __future__ import annotations

import numbers
from typing import Any

import netcl
from netcl.core.tensor import Tensor
from netcl.optim.optimizer import Optimizer, ParamsT

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam: per-element step sizes from running moments of the gradient.

    With gradient ``g`` of parameter ``p`` and ``t`` the parameter's step
    count after this step (1 on the first)::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``m`` and ``v`` start at zero; the ``1 - beta**t`` factors correct the
    bias that gives them. The state of each parameter is ``step`` (an int),
    ``exp_avg`` (``m``) and ``exp_avg_sq`` (``v``). Each parameter's update
    runs as one fused backend kernel.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: learning rate (default: 1e-3).
        betas: decay rates ``(beta1, beta2)`` of the two moments
            (default: (0.9, 0.999)).
        eps: added to the denominator for stability (default: 1e-8).
        weight_decay: L2 penalty added to the gradient (default: 0).

    Example:
        >>> import netcl
        >>> w = netcl.ones(2, requires_grad=True)
        >>> opt = netcl.optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(x, 6) for x in w.tolist()]
        [0.9, 0.9]

    - Kingma and Ba, "Adam: A Method for Stochastic Optimization",
      https://arxiv.org/abs/1412.6980
    """

    _decoupled = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay"):
            _check_non_negative(name, key, group[key])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name} betas must be a pair of numbers, got {betas!r}")
        for i, beta in enumerate(betas):
            if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
                raise ValueError(f"{name} betas[{i}] must be a number, got {beta!r}")
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"Invalid beta parameter at index {i}: {beta!r} (must be in [0, 1))"
                )
        # A checkpoint may hand the pair back as a list.
        group["betas"] = tuple(betas)

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self.state.setdefault(p, {})
        if not state:
            state["step"] = 0
            state["exp_avg"] = netcl.zeros_like(p)
            state["exp_avg_sq"] = netcl.zeros_like(p)
        state["step"] += 1

        beta1, beta2 = group["betas"]
        p.device.backend.adam_step(
            p._data,
            grad._data,
            state["exp_avg"]._data,
            state["exp_avg_sq"]._data,
            lr=float(group["lr"]),
            beta1=float(beta1),
            beta2=float(beta2),
            eps=float(group["eps"]),
            wd=float(group["weight_decay"]),
            decoupled=self._decoupled,
            step=state["step"],
        )


class AdamW(Adam):
    """Adam with decoupled weight decay.

    Instead of adding ``weight_decay * p`` to the gradient (which Adam then
    rescales per element), each step first shrinks the parameter directly::

        p = p * (1 - lr * weight_decay)

    and then takes the Adam step of :class:`Adam` with no L2 term. State and
    arguments are those of :class:`Adam`; only the default ``weight_decay``
    differs.

    Args:
        params: tensors to optimize, or parameter-group dicts.
        lr: learning rate (default: 1e-3).
        betas: decay rates ``(beta1, beta2)`` of the two moments
            (default: (0.9, 0.999)).
        eps: added to the denominator for stability (default: 1e-8).
        weight_decay: decoupled decay rate (default: 1e-2).

    Example:
        >>> import netcl
        >>> w = netcl.ones(2, requires_grad=True)
        >>> opt = netcl.optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(x, 6) for x in w.tolist()]
        [0.85, 0.85]

    - Loshchilov and Hutter, "Decoupled Weight Decay Regularization",
      https://arxiv.org/abs/1711.05101
    """

    _decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def _check_non_negative(optimizer: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{optimizer} {name} must be a number, got {value!r}")
    if not value >= 0.0:  # also rejects nan
        raise ValueError(f"Invalid {name} value: {value!r} (must be >= 0)")
