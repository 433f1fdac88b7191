"""Loading a checkpoint: find the pair, check it, rebuild values or restore
parameters in place.

Restoring parameters is done in two phases so that a strict load either
changes every parameter or none: first every key, shape and dtype is matched
and every array read and verified; only then are values copied into the
parameters (each straight from host memory into its buffer).
"""

from __future__ import annotations

import errno
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netcl.io import _format, _tensors, _tree
from netcl.io._format import EXTENSIONS, ArrayFile, CheckpointError, array_path

__all__ = [
    "CheckpointWarning",
    "LoadReport",
    "LoadedState",
    "Loader",
    "open_pair",
]

log = logging.getLogger(__name__)


class CheckpointWarning(UserWarning):
    """A non-strict load skipped or converted some of the saved values."""


CheckpointWarning.__module__ = "netcl.io.checkpoint"


@dataclass
class LoadReport:
    """What a load into parameters did.

    Attributes:
        loaded: keys whose values were written into the parameters.
        missing: parameter keys the checkpoint has no value for.
        unexpected: saved keys no parameter asked for.
        mismatched: ``(key, saved shape, parameter shape)`` never loaded.
        converted: ``(key, saved dtype, parameter dtype)`` loaded converted.
        refused: ``(key, saved dtype, parameter dtype)`` not loaded because
            the conversion would change values.
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    converted: list[tuple[str, str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.refused)

    def describe(self) -> str:
        lines = [f"  missing key {k!r}" for k in self.missing]
        lines += [f"  unexpected key {k!r}" for k in self.unexpected]
        lines += [
            f"  shape mismatch for {k!r}: saved {tuple(a)}, parameter {tuple(b)}"
            for k, a, b in self.mismatched
        ]
        lines += [
            f"  dtype {a} of {k!r} does not convert exactly to the parameter's {b}"
            for k, a, b in self.refused
        ]
        hint = _prefix_hint(self.missing, self.unexpected)
        return "\n".join(lines + ([hint] if hint else []))


class LoadedState(dict):
    """The dict :func:`~netcl.io.checkpoint.load_checkpoint` returns; its
    ``report`` attribute is the :class:`LoadReport` of a load into
    parameters (None for a whole-tree load)."""

    report: LoadReport | None = None


# --- finding and checking the pair ------------------------------------------


def read_record(base: str) -> dict:
    """The checked JSON record of checkpoint ``base``.

    Raises:
        FileNotFoundError: no checkpoint files at all (lists the names tried).
        CheckpointError: the record is missing next to an array file, or bad.
    """
    path = base + ".json"
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        tried = [path] + [array_path(base, f) for f in EXTENSIONS]
        found = [p for p in tried[1:] if os.path.exists(p)]
        if found:
            raise CheckpointError(
                f"{path}: missing, but {found[0]} exists; the record is written "
                "last, so that save did not complete (or the record was removed)"
            ) from None
        raise FileNotFoundError(
            errno.ENOENT, f"no checkpoint here; looked for {', '.join(tried)}", base
        ) from None
    if not data:
        raise CheckpointError(f"{path}: the file is empty (zero bytes)")
    return _format.decode_record(data, path)


def open_pair(base: str, trusted: bool = False) -> tuple[dict, ArrayFile]:
    """The record and the array file that belongs to it.

    If the array file carries another id (a save was interrupted after
    replacing it), the previous array file kept for that case is used.
    """
    record = read_record(base)
    fmt = record.get("format")
    if fmt not in EXTENSIONS or not isinstance(record.get("arrays"), dict):
        raise CheckpointError(f"{base}.json: unknown array format {fmt!r}")
    try:
        return record, ArrayFile(array_path(base, fmt), record, trusted)
    except (CheckpointError, FileNotFoundError) as exc:
        previous = array_path(base, fmt, previous=True)
        if os.path.exists(previous):
            try:
                arrays = ArrayFile(previous, record, trusted)
            except CheckpointError:
                pass
            else:
                log.info(
                    "using %s: an interrupted save replaced the array file", previous
                )
                return record, arrays
        if isinstance(exc, FileNotFoundError):
            raise CheckpointError(
                f"{array_path(base, fmt)}: missing; the record {base}.json names it"
            ) from None
        raise


def committed_format(base: str) -> str | None:
    """The format the readable record of ``base`` names, or None."""
    try:
        return read_record(base).get("format")
    except (OSError, CheckpointError):
        return None


def committed_id(base: str) -> str | None:
    """The id the readable record of ``base`` names, or None."""
    try:
        return read_record(base).get("id")
    except (OSError, CheckpointError):
        return None


def pair_matches(base: str, path: str) -> bool:
    """Whether the array file ``path`` belongs to the record of ``base``."""
    try:
        ArrayFile(path, read_record(base)).close()
    except (OSError, CheckpointError):
        return False
    return True


def is_array_file(path: str, fmt: str) -> bool:
    """Whether ``path`` looks like an array file netcl wrote (cheap check)."""
    marks = {"npy": _format.NPYS_MAGIC, "pickle": _format.PICKLE_MAGIC.encode()}
    try:
        with open(path, "rb") as file:
            if fmt == "npz":
                file.seek(max(0, os.fstat(file.fileno()).st_size - 200))
                return _format.RECORD_MAGIC.encode() + b" id=" in file.read()
            return marks[fmt] in file.read(64)
    except OSError:
        return False


# --- rebuilding values ------------------------------------------------------


class Loader:
    """Reads the arrays of one opened checkpoint and builds values from them."""

    def __init__(
        self, record: dict, arrays: ArrayFile, verify: bool, strip_prefix: str | None
    ) -> None:
        self.record = record
        self.file = arrays
        self.verify = verify
        self.strip_prefix = strip_prefix
        self._cache: dict[str, Any] = {}

    def read(self, name: str) -> np.ndarray:
        """Array ``name`` in its true dtype, verified (a view into the file)."""
        info = self.file.arrays.get(name)
        if info is None:
            raise self.file.error("referenced by the tree but not in the table", name)
        return _tensors.from_storage(self.file.read(name, self.verify), info["dtype"])

    def value(self, name: str, device: Any, lazy: bool) -> Any:
        """The loaded value of array ``name``; one object per name, so shared
        arrays come back shared."""
        if name not in self._cache:
            data = self.read(name)
            if lazy:
                value = data
            elif self.file.arrays[name]["kind"] == "tensor":
                value = _tensors.make_tensor(
                    data, self.file.arrays[name]["dtype"], device
                )
            else:
                value = np.array(data)
            self._cache[name] = value
        return self._cache[name]

    def whole_tree(self, queue: Any, lazy: bool) -> LoadedState:
        """The full saved tree (``params=None``)."""
        device = _tensors.device_for(queue)
        tree = self._unflatten(self.record["tree"], device, lazy)
        if not isinstance(tree, dict):
            raise CheckpointError(f"{self.file.path}: the saved tree is not a dict")
        return LoadedState(tree)

    def _unflatten(self, node: Any, device: Any, lazy: bool) -> Any:
        try:
            return _tree.unflatten(node, lambda name: self.value(name, device, lazy))
        except RecursionError:
            raise CheckpointError(
                f"{self.file.path}: damaged tree (nested too deeply to be real)"
            ) from None
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{self.file.path}: damaged tree ({exc!r})") from None

    def into(self, params: Any, strict: bool, queue: Any) -> LoadedState:
        """Restore parameters in place; return everything else."""
        saved, rest_key = self._saved_params()
        targets = _targets(params, list(saved))
        report, plan = self._plan(saved, targets)
        if strict and not report.ok:
            raise CheckpointError(
                f"{self.file.path}: the checkpoint does not fit the parameters; "
                f"nothing was loaded:\n{report.describe()}"
            )
        if not report.ok:
            warnings.warn(
                f"{self.file.path}: loaded {len(plan)} values, skipped the rest:\n"
                f"{report.describe()}",
                CheckpointWarning,
                stacklevel=3,
            )
        for key, target, data in plan:
            _tensors.copy_into(target, data)
            report.loaded.append(key)
        tree = self.record["tree"]["dict"]
        rest = {k: v for k, v in tree.items() if k != rest_key}
        state = LoadedState(
            self._unflatten({"dict": rest}, _tensors.device_for(queue), False)
        )
        state.report = report
        return state

    def _saved_params(self) -> tuple[dict[str, str], str]:
        """``{saved key: disk name}`` of the parameters, and their tree key."""
        tree = self.record["tree"]
        entries = tree.get("dict", {}) if isinstance(tree, dict) else {}
        key = "params" if self.record.get("layout") == "params" else "model"
        node = entries.get(key)
        if not (isinstance(node, dict) and isinstance(node.get("dict"), dict)):
            raise CheckpointError(
                f"{self.file.path}: no parameters saved (no {key!r} mapping); "
                "load it with params=None to get the whole tree"
            )
        saved = {}
        for name, child in node["dict"].items():
            if isinstance(child, dict) and "array" in child:
                saved[_strip(name, self.strip_prefix)] = child["array"]
        return saved, key

    def _plan(self, saved: dict[str, str], targets: dict[str, Any]):
        """Match saved values to targets; read and check every value to load."""
        report = LoadReport()
        report.missing = [k for k in targets if k not in saved]
        report.unexpected = [k for k in saved if k not in targets]
        plan = []
        for key, target in targets.items():
            if key not in saved:
                continue
            info = self.file.arrays.get(saved[key]) or {}
            saved_shape = tuple(info.get("shape", ()))
            if saved_shape != tuple(target.shape):
                report.mismatched.append((key, saved_shape, tuple(target.shape)))
                continue
            data = self.read(saved[key])
            converted = _convert(data, _tensors.target_dtype(target))
            if converted is None:
                report.refused.append((key, info["dtype"], _dtype_name(target)))
                continue
            if converted is not data:
                report.converted.append((key, info["dtype"], _dtype_name(target)))
            plan.append((key, target, converted))
        return report, plan


def _targets(params: Any, saved_keys: list[str]) -> dict[str, Any]:
    """``{key: tensor or array}`` to restore, from any form of ``params``."""
    if not isinstance(params, Mapping) and callable(
        getattr(params, "state_dict", None)
    ):
        params = params.state_dict()
    if isinstance(params, Mapping):
        return dict(params)
    if isinstance(params, (str, bytes)):
        raise TypeError("params must be tensors, a mapping or a module, not a string")
    targets = {}
    for i, target in enumerate(params):
        key = saved_keys[i] if i < len(saved_keys) else f"#{i} (beyond the saved list)"
        targets[key] = target
    return targets


def _convert(data: np.ndarray, target: np.dtype) -> np.ndarray | None:
    """``data`` as ``target`` when allowed (both floating, or exact), else None."""
    if data.dtype == target:
        return data
    converted = data.astype(target)
    if _tensors.is_floating(data.dtype) and _tensors.is_floating(target):
        return converted
    with np.errstate(all="ignore"):
        back = converted.astype(data.dtype)
    return converted if np.array_equal(back, data) else None


def _dtype_name(target: Any) -> str:
    return (
        _tensors.target_dtype(target).name
        if not _tensors.is_tensor(target)
        else (target.dtype.name)
    )


def _strip(name: str, prefix: str | None) -> str:
    if prefix and name.startswith(prefix):
        return name[len(prefix) :]
    return name


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """A hint when the two key lists differ only by a common prefix."""
    for extra, lacking, side in (
        (unexpected, missing, "saved"),
        (missing, unexpected, "parameter"),
    ):
        if not extra or len(extra) != len(lacking):
            continue
        first = min(extra)
        wanted = set(lacking)
        for short in lacking:
            if first.endswith(short) and first != short:
                prefix = first[: -len(short)]
                if {k[len(prefix) :] for k in extra if k.startswith(prefix)} == wanted:
                    fix = f"; pass strip_prefix={prefix!r}" if side == "saved" else ""
                    return (
                        f"  (the keys differ only by the prefix {prefix!r} on the "
                        f"{side} side{fix})"
                    )
    return ""
