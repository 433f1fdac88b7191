"""The optimizer base class: parameter groups, per-parameter state, state dicts.

An optimizer holds its parameters in ``param_groups``, a list of dicts. Each
group has a ``"params"`` list of tensors and its own hyperparameters (``lr``,
``weight_decay``, ...), so layers can train at different rates. Whatever an
optimizer remembers between steps about one parameter (a step count, moment
estimates) lives in ``state[param]``, a dict of plain ints and tensors on the
parameter's device.

:meth:`Optimizer.state_dict` turns all of this into plain nested data that a
checkpoint can hold. Parameters are not saved; they are referred to by their
position in the groups (0, 1, 2, ... across all groups in order), which is
how a resumed run matches the saved state to the new, equal-shaped model.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

import netcl
from netcl.core.autograd import enable_grad
from netcl.core.tensor import Tensor

__all__ = ["Optimizer", "ParamsT"]

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]
"""What optimizers accept as parameters: tensors, or dicts each holding a
``"params"`` list of tensors and the hyperparameters that differ for them."""


class Optimizer:
    """Base class of netcl's optimizers.

    Subclasses pass their default hyperparameters to ``__init__``, check a
    group's values in :meth:`_check_group` and update the parameters in
    :meth:`step`.

    Args:
        params: tensors to optimize, or dicts that each hold a ``"params"``
            list and hyperparameters overriding ``defaults`` for that group.
        defaults: the hyperparameters every group starts from.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (a list of
            tensors) and its hyperparameters.
        state: per-parameter dict (keyed by the parameter tensor) of what the
            optimizer keeps between steps.
        defaults: the hyperparameters new groups start from.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}

        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of tensors or dicts, not a single "
                "Tensor; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ---- groups ---------------------------------------------------------------

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters.

        Useful to start training layers that were frozen. Hyperparameters the
        group does not name take the optimizer's defaults.

        Args:
            param_group: a dict with ``"params"`` (a tensor or an iterable of
                tensors) and any hyperparameters to override.

        Raises:
            TypeError: if a parameter is not a floating Tensor.
            ValueError: if a parameter is already in another group, or a
                hyperparameter is out of range.
        """
        if not isinstance(param_group, Mapping):
            raise TypeError(
                f"a parameter group must be a dict, not {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"parameter {i} of the group is a {type(p).__name__}, not a Tensor"
                )
            if not p.dtype.is_floating:
                raise TypeError(
                    f"parameter {i} of the group has dtype {p.dtype.name}; only "
                    "floating tensors can be optimized"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {
            id(p) for p in params
        }:
            raise ValueError(
                "a parameter appears twice (in this group or in an earlier one); "
                "each tensor may belong to one group only"
            )
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError if a hyperparameter of ``group`` is out of range."""

    # ---- stepping -------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter.

        Args:
            set_to_none: drop the gradient tensors (the default; the next
                backward allocates fresh ones) instead of filling them with 0.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient.

        Args:
            closure: optional function that recomputes the loss (calling
                ``backward``) and returns it; it runs with gradients enabled.

        Returns:
            What ``closure`` returned, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with netcl.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._check_state_device(p)
                        self._update(p, _grad_of(p), group)
        return loss

    def _check_state_device(self, p: Tensor) -> None:
        for key, value in self.state.get(p, {}).items():
            if isinstance(value, Tensor) and value.device is not p.device:
                raise RuntimeError(
                    f"optimizer state {key!r} is on {value.device.name} but its "
                    f"parameter is now on {p.device.name}; move the model before "
                    "making the optimizer, or save its state_dict() and load it "
                    "into a new optimizer"
                )

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        """Update one parameter in place from its gradient."""
        raise NotImplementedError

    # ---- state dicts ----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain nested data.

        Returns:
            ``{"state": {index: {key: value}}, "param_groups": [group]}``.
            ``index`` is the parameter's position counted across all groups;
            each group holds its hyperparameters and ``"params"``, the list of
            its parameters' indices. State tensors are the optimizer's own
            (not copies), so save or copy them before the next step changes
            them.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                ids.append(index.setdefault(id(p), len(index)))
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = ids
            groups.append(saved)

        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore state and hyperparameters saved by :meth:`state_dict`.

        Everything is checked before anything changes: the number of groups,
        the number of parameters per group, each state entry's index and each
        state array's shape against its parameter. State arrays may be
        tensors on any device or numpy arrays; they are copied onto the
        parameter's device and dtype. Loading never takes a step.

        Args:
            state_dict: a dict as returned by :meth:`state_dict`.

        Raises:
            ValueError: naming the group, parameter index and key that does
                not fit, with the expected and found values.
        """
        groups, state = _split_state_dict(state_dict)
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(groups)} parameter groups, the "
                f"optimizer has {len(self.param_groups)}"
            )

        # Saved index -> current parameter, matching groups position by position.
        by_index: dict[int, Tensor] = {}
        new_groups = []
        for g, (saved, current) in enumerate(zip(groups, self.param_groups)):
            saved_ids = _group_indices(saved, g)
            if len(saved_ids) != len(current["params"]):
                raise ValueError(
                    f"loaded parameter group {g} has {len(saved_ids)} parameters, "
                    f"the optimizer's group {g} has {len(current['params'])}"
                )
            by_index.update(zip(saved_ids, current["params"]))
            group = {**current, **saved, "params": current["params"]}
            try:
                self._check_group(group)
            except ValueError as exc:
                raise ValueError(f"loaded parameter group {g}: {exc}") from exc
            new_groups.append(group)

        new_state = {}
        for key, entry in state.items():
            i = _state_index(key)
            if i not in by_index:
                raise ValueError(
                    f"loaded state has an entry for parameter {i}, but the "
                    f"groups only hold parameters {sorted(by_index)}"
                )
            new_state[by_index[i]] = _check_entry(entry, by_index[i], i)
        new_state = {p: _materialize(entry, p) for p, entry in new_state.items()}

        self.param_groups[:] = new_groups
        self.state = new_state


def _grad_of(p: Tensor) -> Tensor:
    """``p.grad``, checked to fit ``p`` and cast to its dtype if needed."""
    g = p.grad
    if g.shape != p.shape:
        raise RuntimeError(f"gradient of shape {g.shape} for a parameter {p.shape}")
    if g.device is not p.device:
        raise RuntimeError(
            f"gradient on {g.device.name} for a parameter on {p.device.name}"
        )
    if g.dtype is not p.dtype:
        g = g.to(p.dtype)
    return g


def _split_state_dict(state_dict) -> tuple[list, Mapping]:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a dict, not {type(state_dict).__name__}")
    for key in ("state", "param_groups"):
        if key not in state_dict:
            raise ValueError(f"optimizer state dict has no {key!r} entry")
    groups = state_dict["param_groups"]
    state = state_dict["state"]
    if not isinstance(groups, (list, tuple)):
        raise ValueError(f"'param_groups' must be a list, not {type(groups).__name__}")
    if not isinstance(state, Mapping):
        raise ValueError(f"'state' must be a dict, not {type(state).__name__}")
    return list(groups), state


def _group_indices(saved, g: int) -> list[int]:
    if not isinstance(saved, Mapping) or "params" not in saved:
        raise ValueError(f"loaded parameter group {g} is not a dict with 'params'")
    ids = saved["params"]
    if not isinstance(ids, (list, tuple)) or not all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids
    ):
        raise ValueError(
            f"loaded parameter group {g}: 'params' must be a list of int "
            f"indices, found {ids!r}"
        )
    return [int(i) for i in ids]


def _state_index(key) -> int:
    # Keys are ints; a checkpoint format that only has string keys may hand
    # them back as "0", "1", ...
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return int(key)
    if isinstance(key, str) and key.isdigit():
        return int(key)
    raise ValueError(f"loaded state key {key!r} is not a parameter index")


def _is_array(value) -> bool:
    return isinstance(value, (Tensor, np.ndarray))


def _check_entry(entry, p: Tensor, i: int) -> Mapping:
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"loaded state of parameter {i} must be a dict, not {type(entry).__name__}"
        )
    for key, value in entry.items():
        if key == "step":
            if not _is_step(_scalar(value)):
                raise ValueError(
                    f"loaded state of parameter {i}, key 'step': expected a "
                    f"non-negative int, found {value!r}"
                )
        elif _is_array(value):
            shape = tuple(value.shape)
            if shape != p.shape:
                raise ValueError(
                    f"loaded state of parameter {i}, key {key!r}: expected shape "
                    f"{p.shape} (the parameter's), found {shape}"
                )
    return entry


def _scalar(value):
    """A one-element array as the number it holds; anything else as is."""
    if _is_array(value) and int(np.prod(value.shape)) == 1:
        return np.asarray(value.numpy() if isinstance(value, Tensor) else value).item()
    return value


def _is_step(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return value >= 0
    # A float that holds a whole number (a step saved by a format that keeps
    # only floats) is accepted too.
    return (
        isinstance(value, numbers.Real)
        and math.isfinite(value)
        and value >= 0
        and float(value).is_integer()
    )


def _materialize(entry: Mapping, p: Tensor) -> dict[str, Any]:
    """A fresh state dict for ``p``: arrays copied onto its device and dtype."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "step":
            out[key] = int(_scalar(value))
        elif _is_array(value):
            out[key] = _copy_to(value, p)
        else:
            out[key] = value
    return out


def _copy_to(value, p: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        if value.device is p.device:
            return netcl.tensor(value, dtype=p.dtype)
        value = value.numpy()
    return netcl.tensor(np.asarray(value), dtype=p.dtype, device=p.device)
