"""CheckpointManager: when to save, which checkpoints to keep, where to resume.

A training loop hands the manager its whole state every step; the manager
decides whether this step is due for a checkpoint, writes it (optionally on a
background thread), deletes old checkpoints, and on restart finds the newest
one that is sound::

    from netcl.io.manager import CheckpointManager

    with CheckpointManager("runs/mlp", keep_last=3, every_n_steps=500) as mgr:
        tree = mgr.restore()  # None on a fresh start
        if tree is not None:
            model.load_state_dict(tree["model"])
            ...
        for x, y in loader:
            ...
            mgr.save(step, {"model": model.state_dict(), "epoch": epoch, ...})

The directory
=============

Each checkpoint is written with :func:`netcl.io.checkpoint.save_checkpoint`
under the name ``step_<step>`` (at least eight digits: ``step_00000120``),
so it is the pair ``step_00000120.json`` + ``step_00000120.npys`` (or
``.npz`` / ``.pkl``). Steps are always compared as numbers, never as strings
and never by file times. Besides its checkpoints the manager keeps two small
files of its own:

``latest``
    JSON ``{"step": 120, "name": "step_00000120"}``, replaced atomically
    right after a checkpoint commits. It is a record for people and tools;
    the manager trusts it only when no committed checkpoint has a higher step,
    and otherwise (missing, damaged, or stale after a crash between the
    commit and the pointer) finds the latest by scanning.
``.lock``
    holds the process id of the manager that may write here (see below).

The names ``step_<digits>.json`` / ``.npz`` / ``.npys`` / ``.pkl`` are the
manager's to write. It deletes only files whose content shows they are its
own (a checkpoint record, an array file netcl wrote, its temporaries), so
every other file in the directory is left alone, including files whose names
merely look like checkpoints.

Each checkpoint stores, next to the caller's tree, the entry
``"__manager__"``: ``{"step", "epoch", "metrics", "best_by"}``. It sits in
the checkpoint's JSON record, so :meth:`CheckpointManager.list` and
:meth:`CheckpointManager.best` read it without touching the arrays, and a
restarted manager knows every checkpoint's metrics (and so the best one).
:meth:`CheckpointManager.restore` removes it from the returned tree.

Guarantees
==========

- A save commits completely or not at all (the record is written last). A
  save that was killed leaves at most temporary files or an array file
  without a record; they are ignored, never counted, removed when the next
  manager opens the directory, and never stop a later save of the same step.
- Retention runs only after a new checkpoint has committed, so a failed save
  never reduces the number of good checkpoints. It never deletes the
  checkpoint just written, the highest-numbered one, or one of the
  ``keep_best`` best.
- :meth:`~CheckpointManager.restore` verifies every checksum; a checkpoint
  that fails is skipped with a :class:`CheckpointManagerWarning` naming it
  and saying why, and the next older one is tried.
- Only one manager writes to a directory at a time: the second one (in this
  or another process) gets :class:`DirectoryLockedError` naming the holder's
  process id. The lock is an advisory ``flock`` that the operating system
  drops when its process dies, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import errno
import json
import logging
import math
import operator
import os
import re
import threading
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np

from netcl.io import _atomic, _load, _tree
from netcl.io._format import EXTENSIONS, array_path
from netcl.io.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "CheckpointInfo",
    "CheckpointManager",
    "CheckpointManagerWarning",
    "DirectoryLockedError",
]

log = logging.getLogger(__name__)
StrPath = str | os.PathLike

META_KEY = "__manager__"
POINTER = "latest"
LOCK = ".lock"

_NAME = re.compile(r"step_(\d{8,})")
_ARRAY_EXT = {ext: fmt for fmt, ext in EXTENSIONS.items()}
# Files an interrupted save leaves: hidden temporaries (netcl.io._atomic) and
# array files whose record never arrived.
_TEMP = re.compile(
    r"\.(step_\d{8,}(?:\.json|\.npz|\.npys|\.pkl)|latest)\.[0-9a-f]+\.tmp"
)
_ARRAY = re.compile(r"(step_\d{8,})(\.prev)?(\.npz|\.npys|\.pkl)")


class DirectoryLockedError(RuntimeError):
    """Another CheckpointManager is writing to the same directory."""


class CheckpointManagerWarning(UserWarning):
    """A checkpoint was skipped, or the manager could not finish a chore
    (writing the ``latest`` pointer, deleting an old checkpoint)."""


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """One committed checkpoint of a managed directory.

    Attributes:
        step: its step number.
        path: its name (``<directory>/step_00000120``), as accepted by
            :func:`~netcl.io.checkpoint.load_checkpoint`.
        epoch: ``state["epoch"]`` when it was saved, or None.
        metrics: the ``metrics`` given to :meth:`CheckpointManager.save`.
        size: bytes on disk (record and array file).
        valid: whether it passed the check that was asked for.
        error: why not, when ``valid`` is False.
        latest: it is the one :meth:`CheckpointManager.restore` would pick.
        best: it is the best by the manager's metric.
    """

    step: int
    path: str
    epoch: int | None
    metrics: dict
    size: int
    valid: bool
    error: str | None = None
    latest: bool = False
    best: bool = False


class CheckpointManager:
    """Save training state on a schedule, keep the right checkpoints, resume.

    Args:
        directory: where the checkpoints go (created if missing).
        keep_last: how many of the newest good checkpoints to keep (default
            3); None keeps every checkpoint.
        keep_best: also keep this many best checkpoints by ``metric``
            (default None: none beyond ``keep_last``); needs ``metric``.
        metric: the key of ``metrics`` (see :meth:`save`) that ranks
            checkpoints for :meth:`best` and ``keep_best``.
        mode: ``"min"`` (default) or ``"max"``: which end of ``metric`` is best.
        every_n_steps: save when ``step`` is a multiple of this (None: off).
        every_n_epochs: save when ``state["epoch"]`` has grown by at least
            this much since the last save (default 1; None: off). The count
            starts from the epoch of the checkpoint :meth:`restore` loaded,
            else of the newest one, else 0, so with the default a loop that
            calls :meth:`save` after each epoch saves once per epoch.
        async_save: write on a background thread; :meth:`save` returns as
            soon as it has copied every array to host memory.
        format: the array file format, ``"npy"`` (default: fastest),
            ``"npz"`` or ``"pickle"``; see :mod:`netcl.io.checkpoint`.

    Raises:
        ValueError: a bad argument (names it and the value).
        DirectoryLockedError: another manager writes to ``directory``.

    The manager is a context manager; leaving the block waits for a write in
    flight and releases the directory. With both cadences off, only
    ``save(..., force=True)`` saves.

    Example:
        >>> import tempfile, numpy as np
        >>> with CheckpointManager(tempfile.mkdtemp(), every_n_steps=100) as mgr:
        ...     mgr.save(99, {"w": np.zeros(3), "epoch": 0})
        ...     mgr.save(100, {"w": np.ones(3), "epoch": 0})
        ...     mgr.restore()["w"], mgr.latest()
        False
        True
        (array([1., 1., 1.]), 100)
    """

    def __init__(
        self,
        directory: StrPath,
        *,
        keep_last: int | None = 3,
        keep_best: int | None = None,
        metric: str | None = None,
        mode: str = "min",
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        async_save: bool = False,
        format: str = "npy",
    ) -> None:
        self.keep_last = _count_or_none("keep_last", keep_last)
        self.keep_best = _count_or_none("keep_best", keep_best)
        self.every_n_steps = _count_or_none("every_n_steps", every_n_steps)
        self.every_n_epochs = _count_or_none("every_n_epochs", every_n_epochs)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        if metric is not None and not isinstance(metric, str):
            raise ValueError(f"metric must be a string or None, not {metric!r}")
        if self.keep_best is not None and metric is None:
            raise ValueError("keep_best needs metric= (the metric that ranks them)")
        if format not in EXTENSIONS:
            raise ValueError(
                f"format must be one of {sorted(EXTENSIONS)}, not {format!r}"
            )
        self.metric, self.mode, self.format = metric, mode, format
        self.async_save = bool(async_save)

        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self._lock = _DirectoryLock(self.directory)
        self._closed = False
        self.last_restored: str | None = None

        # Scans of the directory and the chores after a commit take this
        # lock, so a background write never deletes under a listing.
        self._dir_lock = threading.Lock()
        self._cache: dict[str, tuple[Any, CheckpointInfo]] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._warned_no_epoch = self._warned_behind = False
        with self._dir_lock:
            _remove_half_written(self.directory)
            self._last_step, self._last_epoch = self._resume_cadence()
        _LIVE.add(self)

    # ---- saving ---------------------------------------------------------------

    def save(
        self,
        step: int,
        state: Mapping[str, Any],
        metrics: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> bool:
        """Save ``state`` as checkpoint ``step`` if the cadence says so.

        Args:
            step: the training step (a non-negative int); names the file.
            state: the training state, a mapping as accepted by
                :func:`~netcl.io.checkpoint.save_checkpoint`. Its ``"epoch"``
                entry, when present, drives ``every_n_epochs``.
            metrics: numbers to remember with this checkpoint (e.g.
                ``{"val_loss": 0.31}``); :meth:`best` ranks by them.
            force: save whatever the cadence says.

        Returns:
            True if a checkpoint was written (or, with ``async_save``, its
            write started), False if this step was not due.

        Raises:
            OSError: the write failed (names the path); the earlier
                checkpoints are intact and a later save may succeed. With
                ``async_save``, a failure of the previous background write
                is raised here instead, and this step is not saved.
            TypeError: a value in ``state`` or ``metrics`` cannot be stored.
        """
        self._check_open()
        step = _check_step(step)
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping, not {type(state).__name__}")
        if META_KEY in state:
            raise ValueError(f"state may not use the key {META_KEY!r}: it is reserved")
        self._raise_background_error()
        epoch = self._epoch_of(state)
        if not (force or self._due(step, epoch)):
            return False

        meta = {
            "step": step,
            "epoch": epoch,
            "metrics": _plain_metrics(metrics),
            "best_by": {"metric": self.metric, "mode": self.mode},
        }
        tree = {**state, META_KEY: meta}
        self.wait()
        self._warn_if_behind(step)
        if self.async_save:
            snapshot = _snapshot(tree, "")
            self._thread = threading.Thread(
                target=self._write_in_background,
                args=(step, snapshot),
                name=f"netcl-checkpoint-{step}",
                daemon=False,  # interpreter exit waits for the write in flight
            )
            self._thread.start()
        else:
            self._write(step, tree)
        self._last_step = step
        if epoch is not None:
            self._last_epoch = epoch
        return True

    def wait(self) -> None:
        """Wait for the background write in flight, if any.

        Raises:
            BaseException: whatever that write raised (e.g. OSError).
        """
        thread = self._thread
        if thread is not None:
            thread.join()
            self._thread = None
        self._raise_background_error()

    def close(self) -> None:
        """Wait for the write in flight, then release the directory.

        Calling it again does nothing.

        Raises:
            BaseException: what the background write raised, if it failed.
        """
        if self._closed:
            return
        try:
            self.wait()
        finally:
            self._closed = True
            self._lock.release()
            _LIVE.discard(self)

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ---- reading --------------------------------------------------------------

    def latest(self) -> int | None:
        """The step :meth:`restore` would try first: the newest committed
        checkpoint whose files are whole and belong together (checksums are
        not read); None if there is none. A background write counts only
        once it has committed."""
        for info in reversed(self.list()):
            if info.valid:
                return info.step
        return None

    def best(self) -> int | None:
        """The step of the best checkpoint by ``metric`` and ``mode`` (ties go
        to the earlier step), or None without a metric or checkpoints that
        have it. Known across restarts: it is read from the directory."""
        with self._dir_lock:
            infos = self._infos(verify=False)
        ranked = _ranked(infos, self.metric, self.mode)
        return ranked[0].step if ranked else None

    def list(self, verify: bool = False) -> list[CheckpointInfo]:
        """Every committed checkpoint in the directory, oldest first.

        Args:
            verify: also read every array and check its checksum (slow for
                big checkpoints). By default ``valid`` only says that the
                record is sound and the array file is whole and belongs to
                it.
        """
        with self._dir_lock:
            infos = self._infos(verify)
        return _mark(infos, self.metric, self.mode)

    def restore(self, queue: Any = None, step: int | None = None) -> dict | None:
        """Load the newest good checkpoint, or checkpoint ``step``.

        Args:
            queue: where tensors go: a ``pyopencl.CommandQueue`` or netcl
                Device; None for the host. See
                :func:`~netcl.io.checkpoint.load_checkpoint`.
            step: load exactly this step (no fallback) instead of the newest.

        Returns:
            The saved tree (as :meth:`save` was given it), or None when the
            directory holds no good checkpoint. Each checkpoint skipped on
            the way is named in a :class:`CheckpointManagerWarning`.
            :attr:`last_restored` then describes what was loaded.

        Raises:
            FileNotFoundError: ``step`` was given and there is no such
                checkpoint (lists the steps there are).
            CheckpointError: ``step`` was given and it is damaged.
            OSError: the background write in flight failed (``async_save``).
        """
        self.wait()
        if step is not None:
            step = _check_step(step)
            base = self._base(step)
            if not os.path.exists(base + ".json"):
                raise FileNotFoundError(
                    f"no checkpoint of step {step} in {self.directory}; steps "
                    f"there: {sorted(_committed(self.directory))}"
                )
            return self._load(queue, step, base)
        for candidate in self._newest_first():
            base = self._base(candidate)
            try:
                return self._load(queue, candidate, base)
            except (ValueError, OSError) as exc:  # CheckpointError is a ValueError
                warnings.warn(
                    f"skipped checkpoint {base}: {exc}",
                    CheckpointManagerWarning,
                    stacklevel=2,
                )
        self.last_restored = None
        return None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"CheckpointManager({self.directory!r}, keep_last={self.keep_last}, "
            f"keep_best={self.keep_best}, metric={self.metric!r}, "
            f"mode={self.mode!r}, every_n_steps={self.every_n_steps}, "
            f"every_n_epochs={self.every_n_epochs}, async_save={self.async_save}, "
            f"format={self.format!r}; {state})"
        )

    # ---- internals: cadence ---------------------------------------------------

    def _resume_cadence(self) -> tuple[int | None, int]:
        """The step and epoch of the newest checkpoint already on disk."""
        infos = self._infos(verify=False)
        if not infos:
            return None, 0
        newest = infos[-1]
        return newest.step, newest.epoch or 0

    def _epoch_of(self, state: Mapping[str, Any]) -> int | None:
        if "epoch" not in state:
            return None
        try:
            return operator.index(_as_scalar(state["epoch"]))
        except TypeError:
            raise TypeError(
                f"state['epoch'] must be an int, not {state['epoch']!r}"
            ) from None

    def _due(self, step: int, epoch: int | None) -> bool:
        """Whether the cadence asks for a checkpoint at ``step``."""
        if step == self._last_step:
            return False
        if self.every_n_steps is not None and step % self.every_n_steps == 0:
            return True
        if self.every_n_epochs is None:
            return False
        if epoch is None:
            if not self._warned_no_epoch:
                self._warned_no_epoch = True
                warnings.warn(
                    "every_n_epochs needs state['epoch'], which this state does "
                    "not have; only every_n_steps and force=True will save",
                    CheckpointManagerWarning,
                    stacklevel=3,
                )
            return False
        return epoch - self._last_epoch >= self.every_n_epochs

    def _warn_if_behind(self, step: int) -> None:
        later = [s for s in _committed(self.directory) if s > step]
        if later and not self._warned_behind:
            self._warned_behind = True
            warnings.warn(
                f"saving step {step} in {self.directory}, which already holds "
                f"later steps {sorted(later)}; those stay the newest, and "
                "restore() picks them, until they are overwritten or removed",
                CheckpointManagerWarning,
                stacklevel=3,
            )

    # ---- internals: writing ---------------------------------------------------

    def _write(self, step: int, tree: Mapping[str, Any]) -> None:
        """Save, then point ``latest`` at it and apply retention."""
        base = self._base(step)
        try:
            save_checkpoint(tree, base, format=self.format)
        except OSError as exc:
            raise _save_error(exc, step, base) from exc
        with self._dir_lock:
            self._point_to(step)
            self._retain(step)

    def _write_in_background(self, step: int, tree: Mapping[str, Any]) -> None:
        try:
            self._write(step, tree)
        except BaseException as exc:  # handed to the next save/wait/close
            self._error = exc

    def _raise_background_error(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _point_to(self, step: int) -> None:
        doc = {"step": step, "name": os.path.basename(self._base(step))}
        try:
            with _atomic.atomic_write(os.path.join(self.directory, POINTER)) as f:
                f.write(json.dumps(doc).encode() + b"\n")
        except OSError as exc:
            warnings.warn(
                f"checkpoint step {step} is saved, but the pointer "
                f"{exc.filename} could not be written ({exc.strerror}); the "
                "latest checkpoint will be found by scanning",
                CheckpointManagerWarning,
                stacklevel=2,
            )

    def _retain(self, saved: int) -> None:
        """Delete what neither keep_last nor keep_best protects."""
        if self.keep_last is None:
            return
        infos = self._infos(verify=False)
        keep = {saved, infos[-1].step} if infos else {saved}
        good = [i for i in infos if i.valid]
        keep.update(i.step for i in good[-self.keep_last :])
        if self.keep_best is not None:
            ranked = _ranked(good, self.metric, self.mode)
            keep.update(i.step for i in ranked[: self.keep_best])
        for info in infos:
            # A file that only borrows a checkpoint's name is not ours to delete.
            if info.step not in keep and (info.valid or _is_record(info.path)):
                self._delete(info)

    def _delete(self, info: CheckpointInfo) -> None:
        # The record goes first: without it the checkpoint no longer counts,
        # and a crash part-way leaves only a half-written leftover.
        paths = [info.path + ".json"]
        for fmt in EXTENSIONS:
            paths += [array_path(info.path, fmt), array_path(info.path, fmt, True)]
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                warnings.warn(
                    f"could not delete old checkpoint file {path}: {exc.strerror}",
                    CheckpointManagerWarning,
                    stacklevel=2,
                )
        self._cache.pop(info.path, None)
        log.info("retention removed checkpoint %s", info.path)

    # ---- internals: reading ---------------------------------------------------

    def _base(self, step: int) -> str:
        return os.path.join(self.directory, _name(step))

    def _infos(self, verify: bool) -> list[CheckpointInfo]:
        return _infos(self.directory, verify, self._cache)

    def _newest_first(self) -> list[int]:
        with self._dir_lock:
            steps = sorted(_committed(self.directory), reverse=True)
        pointed = _read_pointer(self.directory)
        if steps and pointed != steps[0]:
            log.info(
                "%s: the latest pointer names step %s, the newest checkpoint is "
                "step %d; going by the checkpoints",
                self.directory,
                pointed,
                steps[0],
            )
        return steps

    def _load(self, queue: Any, step: int, base: str) -> dict:
        tree = load_checkpoint(queue, None, base)
        meta = tree.pop(META_KEY, None)
        # Training goes on from here, so the cadence counts from here too
        # (this need not be the newest checkpoint on disk).
        if isinstance(meta, dict):
            self._last_step, self._last_epoch = step, meta.get("epoch") or 0
        self.last_restored = f"step {step} ({base})"
        log.info("restored checkpoint %s", base)
        return tree

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this CheckpointManager of {self.directory} is closed")


# ---- the directory lock ------------------------------------------------------


class _DirectoryLock:
    """An exclusive advisory lock on ``<directory>/.lock`` holding our pid.

    The lock belongs to the open file: closing it (or the process dying)
    releases it. The file itself stays, so no one ever races to recreate it.
    """

    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, LOCK)
        self.file = open(path, "a+b")  # held open until release()
        try:
            _try_lock(self.file.fileno())
        except OSError:
            holder = _read_holder(self.file)
            self.file.close()
            raise DirectoryLockedError(
                f"checkpoint directory {directory!r} is in use by another "
                f"CheckpointManager ({holder}); only one may write to it at a "
                "time. Close that manager or use another directory."
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n".encode())
        self.file.flush()

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()


def _try_lock(fd: int) -> None:
    """Lock ``fd`` without waiting; OSError when someone else holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(file: Any) -> str:
    with contextlib.suppress(OSError, ValueError):
        file.seek(0)
        pid = int(file.read(32).split()[0])
        if pid == os.getpid():
            return f"this process, pid {pid}"
        return f"process id {pid}"
    return "process id unknown"


# ---- scanning a directory (shared by the manager and the listing) ------------


def _name(step: int) -> str:
    return f"step_{step:08d}"


def _step_of(name: str) -> int | None:
    """The step of a checkpoint name, or None if netcl would not write it."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    step = int(match.group(1))
    return step if _name(step) == name else None


def _committed(directory: str) -> dict[int, str]:
    """``{step: base path}`` of every checkpoint whose record exists."""
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            stem, ext = os.path.splitext(entry.name)
            step = _step_of(stem) if ext == ".json" else None
            if step is not None:
                found[step] = os.path.join(directory, stem)
    return found


def _remove_half_written(directory: str) -> list[str]:
    """Delete what killed saves left: temporaries and records never written."""
    removed = []
    for entry in os.scandir(directory):
        match = _ARRAY.fullmatch(entry.name)
        if _TEMP.fullmatch(entry.name):
            doomed = True
        elif match and _step_of(match.group(1)) is not None:
            base = os.path.join(directory, match.group(1))
            fmt = _ARRAY_EXT[match.group(3)]
            doomed = not os.path.exists(base + ".json") and _load.is_array_file(
                entry.path, fmt
            )
        else:
            doomed = False
        if doomed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.path)
    if removed:
        log.info(
            "removed %d file(s) of interrupted saves in %s", len(removed), directory
        )
    return removed


def _read_pointer(directory: str) -> int | None:
    try:
        with open(os.path.join(directory, POINTER), "rb") as f:
            step = json.loads(f.read(4096))["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) else None


def _infos(directory: str, verify: bool, cache: dict) -> list[CheckpointInfo]:
    """What each committed checkpoint is, oldest first."""
    infos = []
    for step, base in sorted(_committed(directory).items()):
        info = _inspect(step, base, verify, cache)
        if info is not None:
            infos.append(info)
    return infos


def _inspect(step: int, base: str, verify: bool, cache: dict) -> CheckpointInfo | None:
    """Read one checkpoint's record and check its files; None if it vanished.

    A quick check (the default) is remembered until the files change.
    """
    key = _file_key(base)
    if key is None:
        return None
    hit = cache.get(base)
    if not verify and hit is not None and hit[0] == key:
        return hit[1]
    meta, size, error = {}, 0, None
    try:
        meta = _meta_of(_load.read_record(base))  # readable even if arrays are not
        record, arrays = _load.open_pair(base)
        try:
            size = os.path.getsize(base + ".json") + os.path.getsize(arrays.path)
            if verify:
                for name in record["arrays"]:
                    arrays.read(name, verify=True)
        finally:
            arrays.close()
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as exc:  # CheckpointError is a ValueError
        error = str(exc)
        size = sum(_size_of(p) for p in _files_of(base))
    info = CheckpointInfo(
        step=step,
        path=base,
        epoch=meta.get("epoch"),
        metrics=meta.get("metrics") or {},
        size=size,
        valid=error is None,
        error=error,
    )
    if not verify:
        cache[base] = (key, info)
    return info


def _file_key(base: str) -> tuple | None:
    """What changes when a checkpoint's files change (for the quick cache)."""
    key = []
    for path in _files_of(base):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if path.endswith(".json"):
                return None
            key.append(None)
            continue
        key.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(key)


def _size_of(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _is_record(base: str) -> bool:
    """Whether ``base.json`` is a netcl checkpoint record, even a damaged one."""
    try:
        with open(base + ".json", "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return b'"magic": "netcl-checkpoint"' in head


def _files_of(base: str) -> list[str]:
    return [base + ".json"] + [array_path(base, fmt) for fmt in EXTENSIONS]


def _meta_of(record: dict) -> dict:
    """The manager's entry of a checkpoint record, read without the arrays."""
    tree = record.get("tree")
    node = tree.get("dict", {}).get(META_KEY) if isinstance(tree, dict) else None
    if node is None:
        return {}
    meta = _tree.unflatten(node, lambda name: None)
    return meta if isinstance(meta, dict) else {}


def _ranked(infos: list[CheckpointInfo], metric: str | None, mode: str) -> list:
    """Checkpoints that have ``metric``, best first (ties: earlier step)."""
    if metric is None:
        return []
    scored = []
    for info in infos:
        value = info.metrics.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isnan(value):
                scored.append((value if mode == "min" else -value, info.step, info))
    return [info for *_, info in sorted(scored, key=lambda t: (t[0], t[1]))]


def _mark(infos: list[CheckpointInfo], metric: str | None, mode: str) -> list:
    """The same infos with ``latest`` and ``best`` set."""
    good = [i for i in infos if i.valid]
    latest = good[-1].step if good else None
    ranked = _ranked(good, metric, mode)
    best = ranked[0].step if ranked else None
    return [
        dataclasses.replace(i, latest=i.step == latest, best=i.step == best)
        for i in infos
    ]


# ---- values ----------------------------------------------------------------


def _count_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int >= 1 or None, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 (or None), not {value}")
    return int(value)


def _check_step(step: Any) -> int:
    if isinstance(step, bool):
        raise TypeError(f"step must be an int, not {step!r}")
    try:
        step = operator.index(_as_scalar(step))
    except TypeError:
        raise TypeError(f"step must be an int, not {step!r}") from None
    if step < 0:
        raise ValueError(f"step must be >= 0, not {step}")
    return step


def _as_scalar(value: Any) -> Any:
    """A one-element tensor or array as a numpy scalar; anything else as is."""
    if hasattr(value, "numpy") and getattr(value, "size", None) == 1:
        return value.numpy().reshape(())[()]
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.reshape(())[()]
    return value


def _plain_metrics(metrics: Mapping[str, Any] | None) -> dict:
    """``metrics`` as ``{str: number, str or None}``, checked."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping, not {type(metrics).__name__}")
    out = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, not {key!r}")
        value = _as_scalar(value)
        if isinstance(value, np.generic):
            value = value.item()
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(
                f"metric {key!r} must be a number, string or None, not "
                f"{type(value).__name__}"
            )
        out[key] = value
    return out


def _snapshot(value: Any, path: str, memo: dict | None = None) -> Any:
    """A copy of ``value`` whose arrays the caller can no longer change.

    Tensors become host tensors with their own memory (``Tensor.numpy()``
    shares memory on the host, so that alone would not do); the same object
    reached twice is copied once, so sharing survives into the checkpoint.
    """
    from netcl.core.tensor import Tensor, tensor

    memo = {} if memo is None else memo
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return value
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, Tensor):
        data = value.detach()
        copy = tensor(data) if data.device.is_host else data.to("cpu")
    elif isinstance(value, np.ndarray):
        copy = value.copy()
    elif isinstance(value, Mapping):
        copy = {k: _snapshot(v, f"{path}[{k!r}]", memo) for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        items = [_snapshot(v, f"{path}[{i}]", memo) for i, v in enumerate(value)]
        copy = items if isinstance(value, list) else tuple(items)
    else:
        raise TypeError(
            f"checkpoint value at {path or 'the top'} is a {type(value).__name__}, "
            "which cannot be stored; use dicts, lists, tuples, strings, numbers, "
            "bools, None, tensors or numpy arrays"
        )
    memo[id(value)] = copy
    return copy


def _save_error(exc: OSError, step: int, base: str) -> OSError:
    """The OSError a failed save raises: what, where, and that nothing is lost."""
    hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
    message = (
        f"could not save checkpoint step {step} to {base}: "
        f"{exc.strerror or exc}{hint}; earlier checkpoints are intact"
    )
    return type(exc)(exc.errno, message, exc.filename or base)


# ---- interpreter exit --------------------------------------------------------

_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _report_unraised() -> None:
    # Background writes in flight have finished by now: the interpreter waits
    # for non-daemon threads before running atexit hooks. A failure that no
    # save/wait/close got to raise can only be reported here.
    for mgr in list(_LIVE):
        if mgr._error is not None:
            log.error(
                "the background save into %s failed and nothing raised it: %s",
                mgr.directory,
                mgr._error,
            )
