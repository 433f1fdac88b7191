"""Loss scaling: keep small float16 gradients from flushing to zero."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from netcl.core.autograd import no_grad
from netcl.core.tensor import Tensor
from netcl.optim.optimizer import Optimizer

__all__ = ["GradScaler"]

# Where an optimizer is within one iteration, between two update() calls.
_READY, _UNSCALED, _STEPPED = 0, 1, 2


class GradScaler:
    """Scale the loss up before backward, the gradients down before the step.

    A float16 gradient smaller than about 6e-8 becomes zero. Multiplying the
    loss by a large ``scale`` multiplies every gradient by it too, lifting
    them into float16's range; :meth:`unscale_` divides the float32 master
    gradients back before the optimizer uses them. If the scale was too big,
    some gradient overflows to inf or NaN: then that step is skipped and the
    scale backs off. After ``growth_interval`` clean steps in a row the scale
    grows again, so it hovers near the largest safe value.

    One iteration::

        with netcl.amp.autocast():
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # unscales, then steps unless inf/NaN
        scaler.update()
        optimizer.zero_grad()

    Args:
        init_scale: the starting scale (default: 2**16).
        growth_factor: what the scale is multiplied by after
            ``growth_interval`` clean steps; > 1 (default: 2.0).
        backoff_factor: what the scale is multiplied by after an overflow;
            in (0, 1) (default: 0.5).
        growth_interval: clean steps in a row before growing (default: 2000).
        enabled: when False every method passes through: ``scale`` returns
            the loss, ``step`` just steps (default: True).

    Example:
        >>> import netcl
        >>> w = netcl.ones(2, requires_grad=True)
        >>> opt = netcl.optim.SGD([w], lr=0.1)
        >>> scaler = netcl.amp.GradScaler(init_scale=1024.0)
        >>> scaler.scale((w * w).sum()).backward()
        >>> w.grad.tolist()
        [2048.0, 2048.0]
        >>> scaler.step(opt)
        >>> scaler.update()
        >>> w.tolist()
        [0.800000011920929, 0.800000011920929]
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        _check_settings(init_scale, growth_factor, backoff_factor, growth_interval)
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        # id(optimizer) -> (stage, found_inf) for the current iteration.
        self._per_optimizer: dict[int, tuple[int, bool]] = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def scale(self, loss: Tensor) -> Tensor:
        """``loss * scale``, to call ``backward`` on (``loss`` when disabled)."""
        if not self._enabled:
            return loss
        if not isinstance(loss, Tensor):
            raise TypeError(f"scale() expects a Tensor, not {type(loss).__name__}")
        return loss * self._scale

    def unscale_(self, optimizer: Optimizer) -> None:
        """Divide the optimizer's gradients by the scale, in place.

        Call it yourself only to look at or clip the real gradients before
        :meth:`step`; otherwise :meth:`step` calls it. At most once per
        optimizer between two :meth:`update` calls. Also records whether any
        gradient is inf or NaN: on each device one reduction and one readback
        of a single number.

        Raises:
            RuntimeError: if called twice in one iteration, or after
                :meth:`step`.
        """
        if not self._enabled:
            return
        stage, _ = self._per_optimizer.get(id(optimizer), (_READY, False))
        if stage == _UNSCALED:
            raise RuntimeError(
                "unscale_() was already called on this optimizer since the last "
                "update()"
            )
        if stage == _STEPPED:
            raise RuntimeError("unscale_() was called after step(); call update()")
        found_inf = _unscale_grads(optimizer, 1.0 / self._scale)
        self._per_optimizer[id(optimizer)] = (_UNSCALED, found_inf)

    def step(self, optimizer: Optimizer, *args, **kwargs) -> Any:
        """Unscale (unless done) and step, skipping the step on inf/NaN.

        Args:
            optimizer: the optimizer to step.
            *args, **kwargs: passed on to ``optimizer.step``.

        Returns:
            What ``optimizer.step`` returned, or None when it was skipped.
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        stage, _ = self._per_optimizer.get(id(optimizer), (_READY, False))
        if stage == _STEPPED:
            raise RuntimeError(
                "step() was already called on this optimizer since the last update()"
            )
        if stage == _READY:
            self.unscale_(optimizer)
        _, found_inf = self._per_optimizer[id(optimizer)]
        self._per_optimizer[id(optimizer)] = (_STEPPED, found_inf)
        if found_inf:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | None = None) -> None:
        """Adjust the scale for the next iteration.

        Backs off (and restarts the count of clean steps) if any optimizer
        found inf/NaN since the last update; otherwise counts a clean step
        and grows the scale when the count reaches ``growth_interval``.

        Args:
            new_scale: set this scale instead (the clean-step count is kept).

        Raises:
            RuntimeError: if no optimizer was unscaled or stepped since the
                last update (and ``new_scale`` is None).
        """
        if not self._enabled:
            return
        if new_scale is not None:
            _check_scale(new_scale, "new_scale")
            self._scale = float(new_scale)
        else:
            if not self._per_optimizer:
                raise RuntimeError(
                    "update() found no unscale_() or step() since the last "
                    "update(); call scaler.step(optimizer) first"
                )
            found_inf = any(f for _, f in self._per_optimizer.values())
            self._update_scale(found_inf)
        self._per_optimizer.clear()

    def _update_scale(self, found_inf: bool) -> None:
        if found_inf:
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
            return
        self._growth_tracker += 1
        if self._growth_tracker == self._growth_interval:
            grown = self._scale * self._growth_factor
            if math.isfinite(grown):
                self._scale = grown
            self._growth_tracker = 0

    def state_dict(self) -> dict[str, Any]:
        """The scaler's settings and position as plain numbers ({} when
        disabled)."""
        if not self._enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        Raises:
            ValueError: if an entry is missing or out of range, or the dict
                is empty (saved by a disabled scaler) while this one is
                enabled.
        """
        if not self._enabled:
            return
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a dict, not {type(state_dict).__name__}"
            )
        if not state_dict:
            raise ValueError(
                "the GradScaler state dict is empty: it was saved by a disabled scaler"
            )
        keys = ("scale", "growth_factor", "backoff_factor", "growth_interval")
        for key in (*keys, "_growth_tracker"):
            if key not in state_dict:
                raise ValueError(f"GradScaler state dict has no {key!r} entry")
        scale, growth, backoff, interval = (state_dict[k] for k in keys)
        _check_settings(scale, growth, backoff, interval)
        tracker = state_dict["_growth_tracker"]
        if (
            isinstance(tracker, bool)
            or not isinstance(tracker, numbers.Integral)
            or not 0 <= tracker < interval
        ):
            raise ValueError(
                f"GradScaler _growth_tracker must be an int in [0, "
                f"growth_interval={interval}), got {tracker!r}"
            )

        self._scale = float(scale)
        self._growth_factor = float(growth)
        self._backoff_factor = float(backoff)
        self._growth_interval = int(interval)
        self._growth_tracker = int(tracker)


def _unscale_grads(optimizer: Optimizer, inv_scale: float) -> bool:
    """Multiply every gradient by ``inv_scale``; True if any is inf or NaN.

    Per gradient, ``sum(g * 0)`` is 0 when every element is finite and NaN
    otherwise (inf * 0 is NaN, and NaN survives any sum), whatever order the
    backend adds in. Those sums are added up on the device, and only that one
    number per device is read back.
    """
    totals: dict[int, tuple[Any, Any]] = {}  # id(device) -> (backend, raw sum)
    # inf * 0 is the point here, so the host must not warn about it.
    with no_grad(), np.errstate(invalid="ignore", over="ignore"):
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                B = g.device.backend
                g._data = B.binary("mul", g._data, inv_scale)
                zeros = B.binary("mul", g._data, 0.0)
                bad = B.reduce("sum", zeros, tuple(range(g.ndim)), False)
                if bad.dtype != np.float32:
                    bad = B.astype(bad, np.dtype(np.float32))
                key = id(g.device)
                if key in totals:
                    bad = B.binary("add", totals[key][1], bad)
                totals[key] = (B, bad)

    found = False
    for B, total in totals.values():
        value = float(np.asarray(B.to_numpy(total)).reshape(()))
        found = found or not math.isfinite(value)
    return found


def _check_scale(value, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"GradScaler {name} must be a finite number > 0, got {value!r}"
        )


def _check_settings(init_scale, growth_factor, backoff_factor, growth_interval):
    _check_scale(init_scale, "init_scale")
    _check_scale(growth_factor, "growth_factor")
    if not growth_factor > 1.0:
        raise ValueError(f"GradScaler growth_factor must be > 1, got {growth_factor!r}")
    _check_scale(backoff_factor, "backoff_factor")
    if not backoff_factor < 1.0:
        raise ValueError(
            f"GradScaler backoff_factor must be in (0, 1), got {backoff_factor!r}"
        )
    if (
        isinstance(growth_interval, bool)
        or not isinstance(growth_interval, numbers.Integral)
        or growth_interval < 1
    ):
        raise ValueError(
            f"GradScaler growth_interval must be a positive int, got "
            f"{growth_interval!r}"
        )
