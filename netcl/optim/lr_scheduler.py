"""Learning-rate schedules: change each group's ``lr`` as training advances.

A scheduler counts epochs (or iterations: whatever you call
:meth:`LRScheduler.step` once per) in ``last_epoch`` and, on every step,
writes the learning rate for the new count into the optimizer's parameter
groups. Call ``optimizer.step()`` first, then ``scheduler.step()``.

Every netcl schedule is a closed-form function of the group's starting
learning rate (``base_lrs``, kept in each group as ``"initial_lr"``) and
``last_epoch``; it does not read back the current ``lr``. So a schedule
resumed from :meth:`LRScheduler.state_dict` gives exactly the values an
uninterrupted run would have, and the values equal PyTorch's for the same
settings (up to the last bit: PyTorch's ``step`` updates the current ``lr``
step by step, which rounds differently). The flip side: two schedulers on
one optimizer do not compose; the one that steps last wins.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from netcl.optim.optimizer import Optimizer

__all__ = ["CosineAnnealingLR", "LRScheduler", "LinearLR", "MultiStepLR", "StepLR"]


class LRScheduler:
    """Base class of the schedules.

    Constructing a scheduler takes its first step: ``last_epoch`` goes from
    -1 to 0 and the groups get the schedule's value at epoch 0.

    Subclasses implement :meth:`_lr_at` and list their own settings in
    ``_settings`` so that :meth:`state_dict` saves them.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets.
        last_epoch: the epoch count to resume from; -1 (the default) starts
            a new schedule from each group's current ``lr``. Any other value
            needs ``"initial_lr"`` in every group, as a previous scheduler
            leaves there.
    """

    _settings: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a netcl Optimizer, not {type(optimizer).__name__}"
            )
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral):
            raise ValueError(f"last_epoch must be an int, got {last_epoch!r}")
        if last_epoch < -1:
            raise ValueError(f"Invalid last_epoch value: {last_epoch} (must be >= -1)")
        self.optimizer = optimizer

        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"param group {i} has no 'initial_lr'; it is needed to "
                        f"resume a schedule at last_epoch={last_epoch}"
                    )
        self.base_lrs = [float(g["initial_lr"]) for g in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._last_lr: list[float] = []
        self.step()

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        """The learning rate of a group starting at ``base_lr`` at ``epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set every group's ``lr`` for it."""
        self.last_epoch += 1
        lrs = [float(self._lr_at(b, self.last_epoch)) for b in self.base_lrs]
        self._set_lrs(lrs)

    def _set_lrs(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group as this scheduler last set it."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's position and settings as plain numbers.

        Returns:
            ``last_epoch``, ``base_lrs``, ``_last_lr`` and the schedule's own
            settings (``step_size``, ``gamma``, ...). The optimizer is not
            included; save its own state dict next to this one.
        """
        out: dict[str, Any] = {
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "_last_lr": list(self._last_lr),
        }
        for name in self._settings:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, (list, tuple)) else value
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a schedule saved by :meth:`state_dict`.

        Also sets each group's ``lr`` (and ``initial_lr``) to the loaded
        values, so training resumes at the learning rate it stopped with
        even before the next :meth:`step`.

        Raises:
            ValueError: if an entry is missing, or the number of learning
                rates differs from the optimizer's number of groups.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a dict, not {type(state_dict).__name__}"
            )
        name = type(self).__name__
        for key in ("last_epoch", "base_lrs", "_last_lr", *self._settings):
            if key not in state_dict:
                raise ValueError(f"{name} state dict has no {key!r} entry")
        n = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr"):
            value = state_dict[key]
            if not isinstance(value, (list, tuple)) or len(value) != n:
                raise ValueError(
                    f"{name} state dict {key!r}: expected a list of {n} learning "
                    f"rates (one per param group), found {value!r}"
                )
        settings = {k: state_dict[k] for k in self._settings}
        self._check_settings(**settings)

        for key, value in settings.items():
            setattr(self, key, list(value) if isinstance(value, tuple) else value)
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lrs = [float(b) for b in state_dict["base_lrs"]]
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["initial_lr"] = base
        self._set_lrs([float(lr) for lr in state_dict["_last_lr"]])

    def _check_settings(self, **settings) -> None:
        """Raise ValueError if a setting of the schedule is out of range."""


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr = base_lr * gamma ** (epoch // step_size)``.

    Args:
        optimizer: the optimizer to schedule.
        step_size: epochs between decays (a positive int).
        gamma: decay factor (default: 0.1).
        last_epoch: see :class:`LRScheduler` (default: -1).

    Example:
        >>> import netcl
        >>> opt = netcl.optim.SGD([netcl.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = netcl.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        >>> for _ in range(4):
        ...     opt.step()
        ...     sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    _settings = ("step_size", "gamma")

    def __init__(
        self,
        optimizer: Optimizer,
        step_size: int,
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self._check_settings(step_size=step_size, gamma=gamma)
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _check_settings(self, step_size, gamma) -> None:
        _check_positive_int("StepLR", "step_size", step_size)
        _check_number("StepLR", "gamma", gamma)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone epoch.

    ``lr = base_lr * gamma ** (number of milestones <= epoch)``; a milestone
    listed twice counts twice.

    Args:
        optimizer: the optimizer to schedule.
        milestones: epochs at which to decay (non-negative ints).
        gamma: decay factor (default: 0.1).
        last_epoch: see :class:`LRScheduler` (default: -1).
    """

    _settings = ("milestones", "gamma")

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        milestones = list(milestones)
        self._check_settings(milestones=milestones, gamma=gamma)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _check_settings(self, milestones, gamma) -> None:
        if not isinstance(milestones, (list, tuple)):
            raise ValueError(
                f"MultiStepLR milestones must be a list of ints, got {milestones!r}"
            )
        for m in milestones:
            if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 0:
                raise ValueError(
                    f"MultiStepLR milestones must be non-negative ints, got {m!r}"
                )
        _check_number("MultiStepLR", "gamma", gamma)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.milestones = sorted(int(m) for m in self.milestones)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rate along half a cosine to ``eta_min``.

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``,
    so ``lr`` falls from ``base_lr`` at epoch 0 to ``eta_min`` at ``T_max``
    (and, past ``T_max``, rises again along the same cosine). This is the
    annealing part of SGDR, without restarts.

    Args:
        optimizer: the optimizer to schedule.
        T_max: epochs from the start to the minimum (a positive int).
        eta_min: the smallest learning rate (default: 0).
        last_epoch: see :class:`LRScheduler` (default: -1).

    - Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
      Restarts", https://arxiv.org/abs/1608.03983
    """

    _settings = ("T_max", "eta_min")

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: int,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self._check_settings(T_max=T_max, eta_min=eta_min)
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def _check_settings(self, T_max, eta_min) -> None:
        _check_positive_int("CosineAnnealingLR", "T_max", T_max)
        _check_number("CosineAnnealingLR", "eta_min", eta_min)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2


class LinearLR(LRScheduler):
    """Scale the learning rate by a factor that moves linearly, then holds.

    The factor goes from ``start_factor`` at epoch 0 to ``end_factor`` at
    ``total_iters`` and stays there:
    ``lr = base_lr * (start_factor + (end_factor - start_factor) *
    min(epoch, total_iters) / total_iters)``. The usual use is warm-up.

    Args:
        optimizer: the optimizer to schedule.
        start_factor: factor at epoch 0, in (0, 1] (default: 1/3).
        end_factor: factor from ``total_iters`` on, in [0, 1] (default: 1).
        total_iters: epochs over which the factor moves (default: 5).
        last_epoch: see :class:`LRScheduler` (default: -1).
    """

    _settings = ("start_factor", "end_factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self._check_settings(
            start_factor=start_factor, end_factor=end_factor, total_iters=total_iters
        )
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def _check_settings(self, start_factor, end_factor, total_iters) -> None:
        _check_number("LinearLR", "start_factor", start_factor)
        _check_number("LinearLR", "end_factor", end_factor)
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(
                f"LinearLR start_factor must be in (0, 1], got {start_factor!r}"
            )
        if not 0.0 <= end_factor <= 1.0:
            raise ValueError(
                f"LinearLR end_factor must be in [0, 1], got {end_factor!r}"
            )
        _check_positive_int("LinearLR", "total_iters", total_iters)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        span = self.end_factor - self.start_factor
        done = min(epoch, self.total_iters)
        return base_lr * (self.start_factor + span * done / self.total_iters)


def _check_positive_int(scheduler: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{scheduler} {name} must be a positive int, got {value!r}")


def _check_number(scheduler: str, name: str, value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
    ):
        raise ValueError(f"{scheduler} {name} must be a finite number, got {value!r}")
