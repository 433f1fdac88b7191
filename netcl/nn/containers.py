"""Containers: modules that hold other modules.

Their children are named by position (``"0"``, ``"1"`` ...) or by key, and
those names become the first part of every ``state_dict()`` key below them.
A container's ``config()`` is ``{}``: to rebuild one, make it empty and
:meth:`~netcl.nn.Module.add_module` each child in order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from netcl.nn.module import Module, register

__all__ = ["ModuleDict", "ModuleList", "Sequential"]


class _Container(Module):
    is_container = True

    def config(self) -> dict:
        return {}


def _check_module(module, where: str) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"{where} takes Modules, got {type(module).__name__}")
    return module


class _Indexed(_Container):
    """Shared list behaviour of Sequential and ModuleList."""

    def _index(self, idx: int) -> int:
        n = len(self._modules)
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise TypeError(
                f"{type(self).__name__} indices must be ints or slices, "
                f"not {type(idx).__name__}"
            )
        if not -n <= idx < n:
            raise IndexError(
                f"index {idx} is out of range for {type(self).__name__} of length {n}"
            )
        return idx % n

    def _key(self, idx: int) -> str:
        return list(self._modules)[self._index(idx)]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __setitem__(self, idx: int, module: Module) -> None:
        self._modules[self._key(idx)] = _check_module(module, type(self).__name__)

    def __delitem__(self, idx: int | slice) -> None:
        keys = list(self._modules)
        doomed = keys[idx] if isinstance(idx, slice) else [self._key(idx)]
        for key in doomed:
            del self._modules[key]
        self._renumber()

    def _renumber(self) -> None:
        # Children named by position stay named 0, 1, 2 ... after a change;
        # children given names of their own keep them.
        if all(k.isdigit() for k in self._modules):
            items = list(self._modules.values())
            self._modules.clear()
            for i, m in enumerate(items):
                self._modules[str(i)] = m

    def append(self, module: Module) -> _Indexed:
        """Add ``module`` at the end (named by the next free position);
        returns self."""
        self.add_module(self._next_name(), _check_module(module, "append"))
        return self

    def extend(self, modules: Iterable[Module]) -> _Indexed:
        for m in modules:
            self.append(m)
        return self

    def _next_name(self) -> str:
        numbers = [int(k) for k in self._modules if k.isdigit()]
        return str(max(numbers) + 1 if numbers else 0)


@register
class Sequential(_Indexed):
    """Modules applied one after another.

    Args:
        *modules: the modules in order (named "0", "1", ...), or a single
            ordered mapping from names to modules.

    Example:
        >>> from netcl import nn
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> len(net), type(net[0]).__name__
        (2, 'Linear')
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():
                self.add_module(name, _check_module(m, "Sequential"))
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _check_module(m, "Sequential"))

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


@register
class ModuleList(_Indexed):
    """A list of modules whose parameters belong to the owner.

    Args:
        modules: an iterable of modules (named "0", "1", ...).
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._key(idx)]

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index`` and renumber."""
        items = list(self._modules.values())
        items.insert(index, _check_module(module, "insert"))
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m


@register
class ModuleDict(_Container):
    """A dict of modules, keyed by str, in insertion order.

    Args:
        modules: a mapping (or iterable of pairs) from names to modules.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module(module, "ModuleDict"))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules) -> None:
        """Add or replace entries from a mapping or an iterable of pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, m in pairs:
            self[key] = m
