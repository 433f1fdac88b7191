"""Module and Parameter: the building blocks every layer and model is made of.

A :class:`Module` owns three kinds of state, each registered by plain
attribute assignment:

- parameters (:class:`Parameter`): the tensors an optimizer trains;
- buffers (:meth:`Module.register_buffer`): other tensors that belong to the
  model, such as batch-norm running statistics;
- submodules: other Modules, whose state is nested under the attribute name.

``state_dict()`` names all of it with dotted keys (``"0.weight"``,
``"encoder.norm.running_mean"``) and ``load_state_dict()`` writes it back
into the same memory. Every module can also describe its constructor
arguments with :meth:`Module.config`, and classes recorded with
:func:`register` can be found again by name, so a model's architecture can be
stored as plain data and rebuilt.
"""

from __future__ import annotations

import inspect
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from netcl.core import dtypes as D
from netcl.core.autograd import no_grad
from netcl.core.device import Device, get_device
from netcl.core.tensor import Tensor, empty, tensor

__all__ = [
    "IncompatibleKeys",
    "Module",
    "Parameter",
    "StateDictError",
    "StateDictWarning",
    "module_registry",
    "register",
    "registered_name",
]


class Parameter(Tensor):
    """A tensor that is a trainable parameter of a :class:`Module`.

    Assigning a Parameter to a module attribute registers it, so it shows up
    in ``parameters()`` and ``state_dict()``. A Parameter made from a tensor
    shares that tensor's memory.

    Args:
        data: a Tensor (shared, not copied), or anything :func:`netcl.tensor`
            accepts (copied). None gives an empty float32 parameter.
        requires_grad: whether backward fills ``.grad`` (default: True).

    Raises:
        TypeError: if ``requires_grad`` and the data is not floating point.

    Example:
        >>> import netcl
        >>> w = Parameter(netcl.zeros(2, 3))
        >>> w.requires_grad, w.shape
        (True, (2, 3))
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            src = empty(0)
        elif isinstance(data, Tensor):
            src = data.detach()
        else:
            src = tensor(data)
        if requires_grad and not src.dtype.is_floating:
            raise TypeError(
                f"a Parameter that requires grad must be floating point, got "
                f"{src.dtype.name}; pass float data or requires_grad=False"
            )
        self._data, self.device, self.dtype = src._data, src.device, src.dtype
        self.requires_grad, self.grad, self._ctx = requires_grad, None, None

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(RuntimeError):
    """``load_state_dict(strict=True)`` found keys or shapes that do not fit.

    Nothing was loaded. The attributes list every problem found.

    Attributes:
        missing_keys: keys the module has but the state dict lacks.
        unexpected_keys: keys the state dict has but the module lacks.
        mismatched: ``(key, expected, found)`` for each value of the wrong
            shape, dtype kind or type.
    """

    def __init__(self, message: str, missing, unexpected, mismatched) -> None:
        super().__init__(message)
        self.missing_keys = list(missing)
        self.unexpected_keys = list(unexpected)
        self.mismatched = list(mismatched)


class StateDictWarning(UserWarning):
    """``load_state_dict(strict=False)`` skipped some keys."""


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` did not load."""

    missing_keys: list[str]
    unexpected_keys: list[str]


# ---- the registry of module classes -------------------------------------------

_REGISTRY: dict[str, type] = {}


def register(name_or_cls: str | type | None = None):
    """Record a Module class by name so a saved architecture can find it.

    Use as ``@register`` (the class's own name) or ``@register("name")``.
    Registering a redefinition of the same class (same module and qualified
    name) replaces the old entry.

    Args:
        name_or_cls: the class itself, or the name to record it under.

    Returns:
        The class unchanged, or a decorator that records and returns it.

    Raises:
        TypeError: if the class is not a Module subclass.
        ValueError: if the name already belongs to a different class.
    """
    if isinstance(name_or_cls, type):
        return _register(name_or_cls, name_or_cls.__name__)
    if name_or_cls is not None and not isinstance(name_or_cls, str):
        raise TypeError(
            f"register takes a class or a name, not {type(name_or_cls).__name__}"
        )

    def decorator(cls: type) -> type:
        return _register(cls, name_or_cls or cls.__name__)

    return decorator


def _register(cls: type, name: str) -> type:
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"only Module subclasses can be registered, not {cls!r}")
    old = _REGISTRY.get(name)
    if old is not None and old is not cls and _qualname(old) != _qualname(cls):
        raise ValueError(
            f"module name {name!r} is already registered to {_qualname(old)}; "
            f"register {_qualname(cls)} under another name"
        )
    _REGISTRY[name] = cls
    cls._netcl_registered_name = name
    return cls


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def module_registry() -> dict[str, type]:
    """A copy of the registry: registered name -> Module class."""
    return dict(_REGISTRY)


def registered_name(module_or_cls) -> str | None:
    """The name a Module class (or a module's class) was registered under,
    or None if that exact class was never registered."""
    cls = module_or_cls if isinstance(module_or_cls, type) else type(module_or_cls)
    name = cls.__dict__.get("_netcl_registered_name")
    return name if name is not None and _REGISTRY.get(name) is cls else None


# ---- Module -----------------------------------------------------------------------


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, then assign Parameters,
    submodules and buffers as attributes, and define ``forward``. Calling the
    module runs ``forward``.

    Attributes:
        training: True in training mode (the default), False after
            :meth:`eval`; dropout and batch norm behave differently.
        is_container: True for container classes (Sequential, ModuleList,
            ModuleDict), whose children are not made by their constructor:
            to rebuild one, call ``type(m)(**m.config())`` and then
            :meth:`add_module` each child in ``named_children()`` order.

    Example:
        >>> import netcl
        >>> from netcl import nn
        >>> class Affine(nn.Module):
        ...     def __init__(self, n):
        ...         super().__init__()
        ...         self.n = n
        ...         self.scale = nn.Parameter(netcl.ones(n))
        ...     def forward(self, x):
        ...         return x * self.scale
        ...     def config(self):
        ...         return {"n": self.n}
        >>> list(Affine(3).state_dict())
        ['scale']
    """

    is_container = False

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- registration ---------------------------------------------------------

    def _state(self, kind: str) -> dict:
        try:
            return self.__dict__[kind]
        except KeyError:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() "
                "before assigning parameters, buffers or submodules"
            ) from None

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._forget(name)
            self._state("_parameters")[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter {name!r}; "
                    "assign a netcl.nn.Parameter or None"
                )
            params[name] = None
        elif isinstance(value, Module):
            self._forget(name)
            self._state("_modules")[name] = value
        elif name in self.__dict__.get("_modules", ()):
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to submodule {name!r}; "
                    "assign a Module or None"
                )
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} to buffer {name!r}; "
                    "assign a Tensor or None"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        # An attribute name lives in exactly one place.
        self.__dict__.pop(name, None)
        for kind in ("_parameters", "_buffers", "_modules"):
            self.__dict__.get(kind, {}).pop(name, None)
        self.__dict__.get("_non_persistent", set()).discard(name)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: look in the registered state.
        for kind in ("_parameters", "_buffers", "_modules"):
            store = self.__dict__.get(kind)
            if store is not None and name in store:
                return store[name]
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    def __delattr__(self, name: str) -> None:
        for kind in ("_parameters", "_buffers", "_modules"):
            store = self.__dict__.get(kind)
            if store is not None and name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder) under ``name``.

        Raises:
            TypeError: if ``param`` is neither a Parameter nor None.
            KeyError: if ``name`` is empty, dotted, or already an attribute.
        """
        self._check_new_name(name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"parameter {name!r} must be a netcl.nn.Parameter or None, "
                f"not {type(param).__name__}"
            )
        self._forget(name)
        self._state("_parameters")[name] = param

    def register_buffer(
        self, name: str, tensor: Tensor | None, persistent: bool = True
    ) -> None:
        """Add a buffer: a tensor that belongs to the module but is not trained.

        Args:
            name: the attribute name.
            tensor: the buffer, or None for a placeholder.
            persistent: whether ``state_dict()`` includes it (default: True).

        Raises:
            TypeError: if ``tensor`` is neither a Tensor nor None.
            KeyError: if ``name`` is empty, dotted, or already an attribute.
        """
        self._check_new_name(name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"buffer {name!r} must be a Tensor or None, not {type(tensor).__name__}"
            )
        self._forget(name)
        self._state("_buffers")[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a submodule (or a None placeholder) under ``name``.

        Raises:
            TypeError: if ``module`` is neither a Module nor None.
            KeyError: if ``name`` is empty, dotted, or already an attribute.
        """
        self._check_new_name(name, "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"submodule {name!r} must be a Module or None, "
                f"not {type(module).__name__}"
            )
        self._forget(name)
        self._state("_modules")[name] = module

    def _check_new_name(self, name: str, kind: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(
                f"attribute name must be a non-empty str without '.', got {name!r}"
            )
        if name in self._state(kind):
            return  # replacing an entry of the same kind is allowed
        others = [k for k in ("_parameters", "_buffers", "_modules") if k != kind]
        taken = name in self.__dict__ or hasattr(type(self), name)
        if taken or any(name in self.__dict__[k] for k in others):
            raise KeyError(f"{type(self).__name__} already has an attribute {name!r}")

    # ---- iteration ---------------------------------------------------------------

    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every descendant with its dotted name, depth first;
        a module reachable twice is yielded once unless ``remove_duplicate``
        is False."""
        seen: set[int] = set()

        def walk(module: Module, name: str):
            if remove_duplicate:
                if id(module) in seen:
                    return
                seen.add(id(module))
            yield name, module
            for child_name, child in module._modules.items():
                if child is not None:
                    yield from walk(child, _join(name, child_name))

        yield from walk(self, prefix)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules with their attribute names."""
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a parameter shared by several
        modules is yielded once, under the first name found."""
        return self._named_tensors("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """Every buffer (persistent or not) with its dotted name, each once."""
        return self._named_tensors("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def _named_tensors(self, kind: str, prefix: str, recurse: bool):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        seen: set[int] = set()
        for mod_name, module in modules:
            for name, t in module.__dict__[kind].items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield _join(mod_name, name), t

    # ---- modes and devices ----------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all descendants; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient recording on or off for every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self) -> None:
        """Drop the gradient of every parameter (``.grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every descendant and then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, target=None, dtype=None) -> Module:
        """Move every parameter and buffer to a device and/or cast the floating
        ones to a floating dtype, in place; returns self.

        Parameters keep their identity (only their storage is replaced), so
        optimizers built on ``parameters()`` stay valid. Gradients move too.

        Args:
            target: a device spec (``"cpu"``, ``"cl:0"``...), a Device, or a
                dtype.
            dtype: a floating dtype (also accepted as ``target``).

        Raises:
            TypeError: if ``dtype`` is not floating or ``target`` is neither a
                device nor a dtype.
        """
        device, dtype = _parse_to_args(target, dtype)
        with no_grad():
            for t in self._all_tensors():
                _move_in_place(t, device, dtype)
        return self

    def cpu(self) -> Module:
        """Move everything to the host; returns self."""
        return self.to("cpu")

    def _all_tensors(self) -> list[Tensor]:
        return list(self.parameters()) + list(self.buffers())

    # ---- state ------------------------------------------------------------------

    def state_dict(self, prefix: str = "") -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name.

        The values are detached tensors sharing memory with the module (until
        the module is moved with :meth:`to`). A parameter shared by several
        modules appears under each of its names.

        Args:
            prefix: prepended to every key.

        Returns:
            An ordered dict: each module's parameters, then its persistent
            buffers, then its submodules' entries, in registration order.
        """
        out: OrderedDict[str, Tensor] = OrderedDict()
        self._save_to(out, prefix)
        return out

    def _save_to(self, out: dict, prefix: str) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m._save_to(out, prefix + name + ".")

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's tensors in place.

        Every key is checked before anything is written. Values may be Tensors
        on any device or numpy arrays; they are converted to each target's
        dtype (float to float, integer to integer). A value of the wrong shape
        is never loaded, broadcast or resized.

        Args:
            state_dict: a mapping from dotted names to values, as returned by
                :meth:`state_dict`.
            strict: if True (default), any missing key, unexpected key or
                mismatched value raises and nothing is loaded. If False, the
                values that fit are loaded and a :class:`StateDictWarning`
                names what was skipped.

        Returns:
            ``IncompatibleKeys(missing_keys, unexpected_keys)`` (both empty
            after a strict load).

        Raises:
            StateDictError: with ``strict=True``, listing every missing key,
                every unexpected key and every mismatch (key, expected, found).
            TypeError: if ``state_dict`` is not a mapping with str keys.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict expects a mapping, not {type(state_dict).__name__}"
            )
        bad_keys = [k for k in state_dict if not isinstance(k, str)]
        if bad_keys:
            raise TypeError(f"state dict keys must be str, found {bad_keys[:5]!r}")

        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for key, target in own.items():
            if key in state_dict:
                problem = _value_problem(state_dict[key], target)
                if problem is not None:
                    mismatched.append((key, *problem))

        if strict and (missing or unexpected or mismatched):
            message = _load_error_message(self, missing, unexpected, mismatched)
            raise StateDictError(message, missing, unexpected, mismatched)
        if missing or unexpected or mismatched:
            warnings.warn(
                _skip_message(self, missing, unexpected, mismatched),
                StateDictWarning,
                stacklevel=2,
            )

        skip = {k for k, *_ in mismatched}
        with no_grad():
            for key, target in own.items():
                if key in state_dict and key not in skip:
                    target.copy_(state_dict[key])
        return IncompatibleKeys(missing, unexpected)

    # ---- description ------------------------------------------------------------

    def config(self) -> dict:
        """The constructor arguments as JSON-able plain values, such that
        ``type(self)(**self.config())`` builds an equivalent module.

        Built-in layers implement this; a module whose ``__init__`` takes no
        arguments gets ``{}``. Other classes must override it.

        Raises:
            NotImplementedError: if the class takes constructor arguments but
                does not describe them.
        """
        params = list(inspect.signature(type(self).__init__).parameters.values())[1:]
        if not params:
            return {}
        raise NotImplementedError(
            f"{type(self).__name__} does not describe its constructor arguments; "
            f"implement config() returning a dict of them (e.g. "
            f"{{{params[0].name!r}: ...}}) so the model can be rebuilt"
        )

    def extra_repr(self) -> str:
        """Text shown inside the parentheses of this module's repr."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [(n, m) for n, m in self._modules.items() if m is not None]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [extra] if extra else []
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        inner = "\n  ".join(lines)
        return f"{type(self).__name__}(\n  {inner}\n)"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# ---- helpers: to() ---------------------------------------------------------------


def _parse_to_args(target, dtype) -> tuple[Device | None, D.DType | None]:
    device = None
    if target is not None:
        if isinstance(target, (D.DType, np.dtype, type)) or (
            isinstance(target, str) and target in D._BY_NAME
        ):
            dtype = target
        elif isinstance(target, (str, Device)):
            device = get_device(target)
        else:
            raise TypeError(f"to() expects a device or a dtype, got {target!r}")
    if dtype is not None:
        dtype = D.dtype(dtype)
        if not dtype.is_floating:
            raise TypeError(
                f"Module.to() only casts to floating dtypes, got {dtype.name}"
            )
    return device, dtype


def _convert(t: Tensor, device: Device | None, dtype: D.DType | None) -> Tensor:
    out = t.detach()
    if dtype is not None and out.dtype.is_floating:
        out = out.to(dtype)
    if device is not None:
        out = out.to(device)
    return out


def _move_in_place(t: Tensor, device, dtype) -> None:
    new = _convert(t, device, dtype)
    if new._data is not t._data:
        t._data, t.device, t.dtype = new._data, new.device, new.dtype
    if t.grad is not None:
        t.grad = _convert(t.grad, device, dtype)


# ---- helpers: load_state_dict --------------------------------------------------


def _value_problem(value, target: Tensor):
    """None if ``value`` can be loaded into ``target``, else (expected, found)."""
    if isinstance(value, Tensor):
        shape, dt = value.shape, value.dtype
    elif isinstance(value, (np.ndarray, np.generic)):
        shape = tuple(value.shape)
        try:
            dt = D.dtype(value.dtype)
        except TypeError:
            return f"a {target.dtype.name} array", f"numpy dtype {value.dtype}"
    else:
        return "a Tensor or numpy array", type(value).__name__
    if shape != target.shape:
        return f"shape {target.shape}", f"shape {shape}"
    if dt.is_floating != target.dtype.is_floating:
        return f"dtype {target.dtype.name}", f"dtype {dt.name}"
    return None


def _problem_lines(missing, unexpected, mismatched) -> list[str]:
    lines = [f"  missing key: {k!r}" for k in missing]
    lines += [f"  unexpected key: {k!r}" for k in unexpected]
    lines += [
        f"  mismatch for {k!r}: expected {expected}, found {found}"
        for k, expected, found in mismatched
    ]
    return lines


def _load_error_message(module, missing, unexpected, mismatched) -> str:
    head = (
        f"error loading state_dict into {type(module).__name__}; nothing was "
        f"loaded ({len(missing)} missing, {len(unexpected)} unexpected, "
        f"{len(mismatched)} mismatched):"
    )
    tail = "pass strict=False to load the keys that fit and skip the rest"
    return "\n".join([head, *_problem_lines(missing, unexpected, mismatched), tail])


def _skip_message(module, missing, unexpected, mismatched) -> str:
    head = f"load_state_dict into {type(module).__name__} skipped some keys:"
    return "\n".join([head, *_problem_lines(missing, unexpected, mismatched)])
