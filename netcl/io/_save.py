"""Saving a checkpoint: build the record, then commit the pair of files.

The order of the steps, and why a crash at any moment leaves the old or the
new checkpoint, is set out in :mod:`netcl.io.checkpoint` ("How a save
commits"). The same module reads the pair back in :mod:`netcl.io._load`.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from netcl.io import _atomic, _format, _load, _tree
from netcl.io._format import EXTENSIONS, array_path, base_path

__all__ = ["FORMATS", "base_path", "build", "recover", "write_pair"]

log = logging.getLogger(__name__)
FORMATS = frozenset(EXTENSIONS)


def build(
    state: Any, optim_state: Any, config: Any, names: list[str] | None
) -> tuple[dict, list[_tree.Leaf]]:
    """Check everything and return the record (without its array table) and
    the arrays to write. Nothing is written."""
    if isinstance(state, Mapping):
        if optim_state is not None or config is not None or names is not None:
            raise TypeError(
                "optim_state, config and names go with a list of parameters; "
                "when saving a mapping, put them inside it"
            )
        skeleton, leaves = _tree.flatten(state)
        return {"layout": "tree", "tree": skeleton}, leaves
    if isinstance(state, (str, bytes)) or not isinstance(state, Iterable):
        raise TypeError(
            "state must be a mapping or an iterable of tensors, "
            f"not {type(state).__name__}"
        )
    return _build_params(list(state), optim_state, config, names)


def _build_params(params: list, optim_state: Any, config: Any, names: Any):
    names = [f"param_{i}" for i in range(len(params))] if names is None else names
    names = list(names)
    if len(names) != len(params) or not all(isinstance(n, str) for n in names):
        raise ValueError(
            f"names must be {len(params)} strings, one per tensor; got {names!r}"
        )
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"names must be unique; repeated: {twice!r}")
    parts = [
        _tree.flatten(p, root_name=n, path=f"[{n!r}]") for n, p in zip(names, params)
    ]
    for (node, _), name, param in zip(parts, names, params):
        if not (isinstance(node, dict) and "array" in node):
            raise TypeError(
                f"parameter {name!r} is a {type(param).__name__}, not a tensor"
            )
    for key, meta in (("optim_state", optim_state), ("config", config)):
        parts.append(
            _tree.flatten(meta, root_name=key, zero_d_as_number=True, path=key)
        )
    skeleton = {
        "dict": {
            "params": {"dict": dict(zip(names, (node for node, _ in parts)))},
            "optim_state": parts[-2][0],
            "config": parts[-1][0],
        }
    }
    return {"layout": "params", "tree": skeleton}, _tree.merge(parts)


def write_pair(base: str, record: dict, leaves: list, fmt: str, compress: bool) -> None:
    """Write and commit the array file and the record of checkpoint ``base``."""
    directory = os.path.dirname(base)
    if directory:
        os.makedirs(directory, exist_ok=True)
    recover(base)
    ckpt_id = uuid.uuid4().hex
    target = array_path(base, fmt)
    pending: list[_atomic.PendingFile] = []
    kept = False
    try:
        pending.append(_atomic.PendingFile(target))
        arrays = pending[0].file
        table = _format.write_arrays(arrays, fmt, leaves, ckpt_id, compress)
        size = arrays.tell()
        pending[0].finish()
        doc = _record(record, ckpt_id, fmt, compress, os.path.basename(target), size)
        pending.append(_atomic.PendingFile(base + ".json"))
        pending[1].file.write(_format.encode_record(doc | {"arrays": table}))
        pending[1].finish()
        kept = _keep_previous(target)
        pending[0].commit()
        pending[1].commit()
    except BaseException as exc:
        for item in pending:
            item.discard()
        if kept and _load.committed_id(base) != ckpt_id:
            _restore_previous(target)
        if isinstance(exc, OSError) and not exc.filename:
            raise _atomic.with_path(exc, target) from exc
        raise
    _remove_stale(base, fmt)
    log.info("saved checkpoint %s (%s, %d arrays)", base, fmt, len(leaves))


def _record(record: dict, ckpt_id: str, fmt: str, compress: bool, name: str, size: int):
    head = {
        "magic": _format.RECORD_MAGIC,
        "version": _format.FORMAT_VERSION,
        "id": ckpt_id,
        "format": fmt,
        "compress": compress and fmt == "npz",
        "array_file": name,
        "array_file_size": size,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "netcl_version": _netcl_version(),
    }
    return head | record


def _netcl_version() -> str:
    try:
        from importlib.metadata import version

        return version("netcl")
    except Exception:  # running from a source tree that is not installed
        return "unknown"


def _keep_previous(target: str) -> bool:
    """Keep the current array file as ``NAME.prev.<ext>`` until the commit."""
    if not os.path.exists(target):
        return False
    previous = _previous_of(target)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(previous)
    try:
        os.link(target, previous)
    except OSError:  # no hard links on this file system: move it instead
        os.replace(target, previous)
    _atomic.fsync_dir(os.path.dirname(target))
    return True


def _restore_previous(target: str) -> None:
    """Undo step 4 after a failure: put the kept array file back."""
    previous = _previous_of(target)
    with contextlib.suppress(OSError):
        if os.path.exists(previous):
            os.replace(previous, target)
            _atomic.fsync_dir(os.path.dirname(target))


def _previous_of(target: str) -> str:
    stem, ext = os.path.splitext(target)
    return f"{stem}.prev{ext}"


def _remove_stale(base: str, fmt: str) -> None:
    """After a commit: drop kept previous files and other formats' array files."""
    for other in FORMATS:
        stale = [array_path(base, other, previous=True)]
        if other != fmt:
            stale.append(array_path(base, other))
        for path in stale:
            if _load.is_array_file(path, other):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


def recover(base: str) -> None:
    """Repair what an interrupted save of ``base`` left, before a new save.

    Temporary files are deleted. If the record names an array file that was
    already replaced, the kept previous file is put back, so the pair on
    disk is consistent again.
    """
    for fmt in FORMATS:
        _atomic.remove_leftovers(array_path(base, fmt))
    _atomic.remove_leftovers(base + ".json")
    fmt = _load.committed_format(base)
    if fmt is None:
        return
    target = array_path(base, fmt)
    previous = array_path(base, fmt, previous=True)
    if os.path.exists(previous) and not _load.pair_matches(base, target):
        if _load.pair_matches(base, previous):
            os.replace(previous, target)
            _atomic.fsync_dir(os.path.dirname(base) or ".")
            log.warning("restored %s left by an interrupted save", target)
