"""Durable, atomic file writes: a file appears complete or not at all.

A file is written under a temporary name in the directory of its target,
flushed and fsynced, then moved over the target with ``os.replace`` (atomic on
POSIX and Windows), and finally the directory itself is fsynced so the rename
survives a power loss. A reader therefore sees the old file or the new one,
never a half-written mix.

Two levels are offered:

- :func:`atomic_write` for one file: ``with atomic_write(path) as f: ...``.
- :class:`PendingFile` when several files must be prepared first and then
  committed in a chosen order (a checkpoint's array file and its JSON record).

Temporary files are named ``.<target name>.<random>.tmp``; a save that is
killed leaves them behind, and :func:`remove_leftovers` (which the next save
calls) deletes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "PendingFile",
    "atomic_write",
    "fsync_dir",
    "remove_leftovers",
    "temp_name",
    "with_path",
]

log = logging.getLogger(__name__)
StrPath = str | os.PathLike


def temp_name(target: StrPath) -> str:
    """A fresh temporary path next to ``target``, hidden and ending in ``.tmp``."""
    head, tail = os.path.split(os.fspath(target))
    return os.path.join(head, f".{tail}.{secrets.token_hex(6)}.tmp")


def fsync_dir(path: StrPath) -> None:
    """Flush a directory's entries (new names, renames) to stable storage.

    Windows cannot open a directory for fsync; there the call does nothing.
    """
    if os.name == "nt":
        return
    fd = os.open(os.fspath(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(target: StrPath) -> list[str]:
    """Delete temporary files that an interrupted write of ``target`` left.

    Returns:
        The paths removed.
    """
    head, tail = os.path.split(os.fspath(target))
    prefix = f".{tail}."
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(head or "."):
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    if removed:
        log.info("removed %d leftover temporary file(s) of %s", len(removed), target)
    return removed


class PendingFile:
    """A temporary file that becomes ``target`` when committed.

    Write through :attr:`file`, then call :meth:`finish` (flush, fsync, close)
    and :meth:`commit` (replace the target, fsync the directory). On any
    failure call :meth:`discard`, which removes the temporary file. Every
    ``OSError`` raised names the target.

    Example:
        >>> pending = PendingFile("out/data.bin")  # doctest: +SKIP
        >>> pending.file.write(b"...")             # doctest: +SKIP
        >>> pending.finish(); pending.commit()     # doctest: +SKIP
    """

    def __init__(self, target: StrPath) -> None:
        self.target = os.fspath(target)
        self.path = temp_name(self.target)
        try:
            self.file: BinaryIO = open(self.path, "xb")
        except OSError as exc:
            raise with_path(exc, self.target) from exc

    def finish(self) -> None:
        """Flush the data to stable storage and close the file."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
        except OSError as exc:
            raise with_path(exc, self.target) from exc

    def commit(self, sync_dir: bool = True) -> None:
        """Move the finished file over the target (atomically) and make it last."""
        try:
            os.replace(self.path, self.target)
            if sync_dir:
                fsync_dir(os.path.dirname(self.target))
        except OSError as exc:
            raise with_path(exc, self.target) from exc

    def discard(self) -> None:
        """Close and delete the temporary file; never raises."""
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@contextlib.contextmanager
def atomic_write(target: StrPath) -> Iterator[BinaryIO]:
    """Open ``target`` for binary writing so that it changes all at once.

    The target keeps its old content (or stays absent) until the block ends
    without an exception; then the new file replaces it durably. On an
    exception the temporary file is removed and the exception propagates.

    Example:
        >>> with atomic_write("model.bin") as f:  # doctest: +SKIP
        ...     f.write(payload)
    """
    pending = PendingFile(target)
    try:
        yield pending.file
        pending.finish()
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def with_path(exc: OSError, path: str) -> OSError:
    """The same kind of OSError, naming ``path`` as the file it concerns."""
    if exc.filename == path:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), path)
