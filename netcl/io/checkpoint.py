"""Save and load complete training state: checkpoints that never lose a run.

A checkpoint holds everything needed to resume training: the model's
parameters, the optimizer's moments, the scheduler, the loss scaler, the step
counters and the random state. It is saved with :func:`save_checkpoint` and
restored with :func:`load_checkpoint`::

    from netcl.io.checkpoint import save_checkpoint, load_checkpoint
    from netcl.core.device import manager

    save_checkpoint(model.parameters(), "checkpoints/iter_1000",
                    optim_state={"lr": 1e-3, "step": 1000}, config={"epoch": 5},
                    names=["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
    q = manager.default("auto").queue
    state = load_checkpoint(q, model.parameters(), "checkpoints/iter_1000")
    print(state["config"], state["optim_state"])

or, for the whole training state::

    save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "epoch": 5, "rng": netcl.random.get_rng_state()},
                    "checkpoints/iter_1000")
    state = load_checkpoint(None, None, "checkpoints/iter_1000")

Guarantees: every dtype and bit pattern comes back exactly; writes are atomic
and durable (a crash at any moment leaves the complete old or the complete new
checkpoint); every array's checksum is verified on load; nothing in a file can
run code; a damaged, foreign or mismatched file raises :class:`CheckpointError`
saying which file, which array and what is wrong.


The on-disk format, version 1
=============================

A checkpoint called ``NAME`` is two files that are written as one unit:

- ``NAME.json``, the *record*: the tree of the checkpoint with its scalars,
  and a table of the arrays (dtype, shape, checksum). It is written last and
  is the commit point of a save.
- the *array file*, in one of three formats chosen at save time:
  ``NAME.npz`` (``format="npz"``, the default), ``NAME.npys``
  (``format="npy"``) or ``NAME.pkl`` (``format="pickle"``).

The format version (``1``) is numbered apart from netcl's own version and is
raised whenever a reader of an older version could misread a file. All
numbers in binary headers are little-endian; every array is stored in
little-endian byte order, C order, holding only its own elements.

The record
----------
UTF-8 JSON, one object with these fields (a reader ignores unknown fields):

``magic``
    the string ``"netcl-checkpoint"``.
``version``
    the format version, an integer.
``id``
    32 hexadecimal digits, fresh for each save; the array file carries the
    same id, so a reader can tell that the two files belong together.
``format``, ``compress``
    the array file's format (``"npz"``, ``"npy"``, ``"pickle"``) and whether
    its entries are deflated.
``array_file``, ``array_file_size``
    the array file's name (next to the record) and its exact size in bytes.
``created``, ``netcl_version``
    when and by which netcl it was written (informational).
``layout``
    ``"params"`` for the list-of-parameters form of :func:`save_checkpoint`
    (the tree is ``{"params": {name: array}, "optim_state": ..., "config":
    ...}``), ``"tree"`` for a saved mapping.
``tree``
    the checkpoint's skeleton; the encoding of each kind of value (tuples,
    non-string keys, NaN and infinities) is listed in :mod:`netcl.io._tree`.
    JSON never holds ``NaN`` or ``Infinity`` tokens.
``arrays``
    for each array, by its disk name: ``kind`` (``"tensor"`` or
    ``"ndarray"``), ``dtype`` (netcl / numpy name, e.g. ``"bfloat16"``),
    ``shape``, ``nbytes`` (of the data), ``crc32`` and, in the ``npy``
    format, ``offset``; ``device`` tells where a tensor was saved from.
``checksum``
    CRC-32 of the record without this field, serialised compactly
    (``separators=(",", ":")``, ASCII, keys in file order).

Disk names are key paths joined by ``/`` (``"model/fc1.weight"``); in the
parameter-list form the parameters keep their bare names.

Each array is stored as a *.npy record*: a standard .npy version 1.0 header
(``descr`` in little-endian form, ``fortran_order`` False, the shape) padded
to a multiple of 64 bytes, followed by the raw data. Element types numpy
cannot describe portably (``bfloat16`` and the other ``ml_dtypes`` types)
are stored as unsigned integers of their width (``<u2`` for bfloat16) holding
the raw bits; the record keeps the true dtype. ``crc32`` is the CRC-32 (zlib
polynomial) of the whole .npy record, header included.

``NAME.npz``
    a standard ZIP archive: one entry ``<disk name>.npy`` per array holding its
    .npy record, deflated (``compress=True``) or stored; names in UTF-8;
    ZIP64 records where sizes need them. ``numpy.load("NAME.npz")`` opens it
    and shows the arrays under their names. The archive comment is
    ``netcl-checkpoint id=<id>``. Stored entries begin on 64-byte boundaries.
``NAME.npys``
    a 64-byte header: magic ``b"NETCLNPS"``, version (uint32), flags (uint32,
    0), the id (16 raw bytes), 32 zero bytes; then each array's .npy record at
    the ``offset`` given in the record, each starting on a 64-byte boundary
    (``f.seek(offset); numpy.load(f)`` reads one array). Uncompressed, so it
    can be memory-mapped.
``NAME.pkl``
    one pickle (protocol 4) of ``{"magic": "netcl-checkpoint-arrays",
    "version": 1, "id": <id>, "arrays": {disk name: ndarray}}`` with arrays in
    their storage dtypes. It is only unpickled by a loader that resolves
    nothing but numpy's array and dtype constructors (see ``trusted``).

A reader must reject: a record without the magic, with a version above the
one it knows, or whose checksum does not match; an array file of the wrong
size, of the wrong kind, or whose id differs from the record's; a .npy header
that differs from the one the record implies; a checksum mismatch (unless
verification is turned off); object arrays and any pickle global outside the
allowed set.

How a save commits
------------------
1. Check the whole state (types, keys, dtypes, name collisions) and repair
   what an interrupted earlier save left (see below).
2. Write the array file and the record to temporary files in the target
   directory (``.NAME.npz.<random>.tmp``), flush and fsync both.
3. If ``NAME.<ext>`` exists, hard-link it as ``NAME.prev.<ext>``; fsync the
   directory.
4. ``os.replace`` the new array file into place; fsync the directory.
5. ``os.replace`` the new record into place; fsync the directory. This is the
   commit: from here on ``NAME`` is the new checkpoint.
6. Remove ``NAME.prev.<ext>`` and array files of other formats.

Between steps 4 and 5 the record names the old id but the array file has the
new one; a reader then takes the array file from ``NAME.prev.<ext>``, which
still is the old one. The next save first puts that file back. So at every
moment ``NAME`` loads as the complete old or the complete new checkpoint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from netcl.io import _load, _save
from netcl.io._format import CheckpointError
from netcl.io._load import CheckpointWarning, LoadedState, LoadReport

__all__ = [
    "CheckpointError",
    "CheckpointWarning",
    "LoadReport",
    "LoadedState",
    "load_checkpoint",
    "save_checkpoint",
]

log = logging.getLogger(__name__)
StrPath = str | os.PathLike


def save_checkpoint(
    state: Mapping[str, Any] | Iterable[Any],
    path: StrPath,
    optim_state: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    names: list[str] | None = None,
    *,
    format: str = "npz",
    compress: bool = True,
) -> None:
    """Save a checkpoint as ``path`` + ``.json`` and an array file.

    Args:
        state: either the training state as a mapping, nested to any depth
            with dicts, lists, tuples, strings, numbers, bools, None, tensors
            and numpy arrays; or an iterable of tensors (the parameters).
        path: the checkpoint's name without extension (an extension of
            netcl's is dropped); missing directories are created.
        optim_state: with an iterable ``state``: the optimizer's state.
        config: with an iterable ``state``: run configuration (epoch, ...).
            In both, numpy scalars and 0-d tensors are stored as numbers.
        names: with an iterable ``state``: one name per tensor
            (default ``"param_0"``, ``"param_1"``, ...).
        format: ``"npz"`` (portable, ``numpy.load`` opens it), ``"npy"``
            (fastest, uncompressed, memory-mappable) or ``"pickle"``.
        compress: deflate the ``npz`` entries (ignored by other formats).

    Raises:
        TypeError: a value cannot be stored safely (names its key path).
        ValueError: a bad argument, or two names that would collide on disk.
        OSError: writing failed (names the path); the previous checkpoint
            of that name is intact and no temporary file remains.

    Example:
        >>> save_checkpoint({"model": model.state_dict(), "epoch": 3},
        ...                 "runs/ckpt")  # doctest: +SKIP
    """
    if format not in _save.FORMATS:
        raise ValueError(
            f"format must be one of {sorted(_save.FORMATS)}, not {format!r}"
        )
    record, leaves = _save.build(state, optim_state, config, names)
    _save.write_pair(_save.base_path(path), record, leaves, format, bool(compress))


def load_checkpoint(
    queue: Any,
    params: Any,
    path: StrPath,
    *,
    strict: bool = True,
    verify: bool = True,
    mmap: bool = False,
    strip_prefix: str | None = None,
    trusted: bool = False,
) -> LoadedState:
    """Load a checkpoint, restoring parameters in place or returning it all.

    Args:
        queue: the ``pyopencl.CommandQueue`` (or netcl ``Device``) whose
            device receives new tensors when ``params`` is None; None means
            the host. Ignored when ``params`` is given: values are written
            into each parameter on its own device.
        params: None to return the whole saved tree; or where to restore the
            saved parameters (the ``names`` list of a parameter-list
            checkpoint, or the ``"model"`` entry of a mapping): an iterable
            of tensors (matched by position), a mapping of names to tensors
            or arrays (by name), or a module (by its ``state_dict()`` names).
        path: the checkpoint's name, with or without an extension.
        strict: if True, any missing or unexpected key, shape mismatch or
            refused dtype conversion raises before anything is modified;
            if False, what matches is loaded, the rest skipped with one
            warning, and the returned ``.report`` lists it.
        verify: check every array's checksum (default). Turn off only to
            skip the read for a lazily memory-mapped load.
        mmap: with ``params=None`` and an uncompressed file, return arrays as
            read-only numpy views of the file instead of tensors: nothing
            is read until used (with ``verify=False``).
        strip_prefix: removed from the front of saved parameter names before
            matching (e.g. ``"module."``).
        trusted: let a ``pickle`` file name any global. Only for files you
            wrote yourself: unpickling can run arbitrary code.

    Returns:
        A dict: with ``params``, everything else saved (``"config"``,
        ``"optim_state"``, ... ); without, the whole tree. Tensors come back
        as netcl tensors, numpy arrays as numpy arrays, every other value
        with its saved type. Its ``.report`` attribute says what was loaded,
        converted, skipped.

    Raises:
        FileNotFoundError: no checkpoint of that name (lists the names tried).
        CheckpointError: a damaged, foreign, newer or mismatched file, or
            (``strict``) saved parameters that do not fit ``params``.
    """
    base = _save.base_path(path)
    record, arrays = _load.open_pair(base, trusted)
    try:
        loader = _load.Loader(record, arrays, verify, strip_prefix)
        if params is None:
            return loader.whole_tree(queue, mmap)
        return loader.into(params, strict, queue)
    finally:
        if not mmap:
            arrays.close()
