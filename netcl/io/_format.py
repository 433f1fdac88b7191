"""Reading and writing the files of one checkpoint (the layout is specified in
the docstring of :mod:`netcl.io.checkpoint`).

The JSON record is encoded and checked here, and each array file format has
a writer (``write_arrays``) and a reader (:class:`ArrayFile`). Every problem
found in a file raises :class:`CheckpointError` naming the file, the array
where it applies, and what is wrong.
"""

from __future__ import annotations

import json
import mmap
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np
from isal import isal_zlib

from netcl.io import _pickle, _tensors
from netcl.io._tree import Leaf
from netcl.io._zip import ZipWriter, byte_view, crc32

__all__ = [
    "ArrayFile",
    "array_path",
    "base_path",
    "CheckpointError",
    "EXTENSIONS",
    "FORMAT_VERSION",
    "decode_record",
    "encode_record",
    "npy_header",
    "write_arrays",
]

FORMAT_VERSION = 1
RECORD_MAGIC = "netcl-checkpoint"
NPYS_MAGIC = b"NETCLNPS"
NPYS_HEADER = struct.Struct("<8sII16s32x")  # magic, version, flags, id: 64 bytes
PICKLE_MAGIC = "netcl-checkpoint-arrays"
EXTENSIONS = {"npz": ".npz", "npy": ".npys", "pickle": ".pkl"}


class CheckpointError(ValueError):
    """A checkpoint file is damaged, foreign, from a newer netcl, or does not
    belong with the rest of its checkpoint."""


CheckpointError.__module__ = "netcl.io.checkpoint"


def base_path(path: Any) -> str:
    """``path`` as a string without any extension netcl's checkpoints use."""
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    for ext in (".json", *EXTENSIONS.values()):
        if path.endswith(ext) and len(path) > len(ext):
            path = path[: -len(ext)]
            break
    if os.path.basename(path) in ("", ".", ".."):
        raise ValueError(
            f"checkpoint path {path!r} names a folder, not a checkpoint; "
            "give a name such as 'checkpoints/step_100'"
        )
    return path


def array_path(base: str, fmt: str, previous: bool = False) -> str:
    """Where the array file of format ``fmt`` lives (or its kept previous one)."""
    return f"{base}{'.prev' if previous else ''}{EXTENSIONS[fmt]}"


# --- the .npy record of one array ------------------------------------------


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The .npy (version 1.0) header of a C-ordered array, padded to 64 bytes."""
    shape_text = (
        f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"
    )
    text = (
        f"{{'descr': '{dtype.str}', 'fortran_order': False, 'shape': {shape_text}, }}"
    )
    if len(text) > 65000:
        raise ValueError(f"an array of {len(shape)} dimensions is not supported")
    pad = -(10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def _record_parts(leaf: Leaf) -> tuple[bytes, np.ndarray]:
    """The .npy header and the storage array of ``leaf`` (at most one copy)."""
    stored = _tensors.storage_array(_tensors.to_host(leaf.value), leaf.dtype)
    if tuple(stored.shape) != leaf.shape:
        raise RuntimeError(f"{leaf.path} changed shape while being saved")
    return npy_header(stored.dtype, leaf.shape), stored


# --- the JSON record --------------------------------------------------------


def _canonical(doc: dict) -> bytes:
    return json.dumps(
        doc, ensure_ascii=True, separators=(",", ":"), allow_nan=False
    ).encode()


def encode_record(doc: dict) -> bytes:
    """The JSON text of ``doc`` with its ``checksum`` field added."""
    doc = dict(doc, checksum=crc32(_canonical(doc)))
    return json.dumps(doc, ensure_ascii=True, indent=1, allow_nan=False).encode()


def decode_record(data: bytes, path: str) -> dict:
    """Parse and check a JSON record.

    Raises:
        CheckpointError: not a netcl checkpoint record, damaged, or written by
            a newer format version.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a netcl checkpoint record ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("magic") != RECORD_MAGIC:
        raise CheckpointError(f"{path}: not a netcl checkpoint record (no magic)")
    version = doc.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{path}: written in checkpoint format version {version!r}, but this "
            f"netcl reads versions up to {FORMAT_VERSION}; upgrade netcl to load it"
        )
    stored = doc.pop("checksum", None)
    if stored != crc32(_canonical(doc)):
        raise CheckpointError(f"{path}: the record is damaged (checksum mismatch)")
    return doc


# --- writers ----------------------------------------------------------------


def write_arrays(
    file: BinaryIO, fmt: str, leaves: list[Leaf], ckpt_id: str, compress: bool
) -> dict[str, dict]:
    """Write every array of ``leaves`` to ``file`` in format ``fmt``.

    Returns:
        For each disk name, what the JSON record keeps about it: dtype,
        shape, kind, nbytes, crc32 and, in the ``npy`` format, offset.
    """
    writer = {"npz": _write_npz, "npy": _write_npys, "pickle": _write_pickle}[fmt]
    table = {}
    for leaf, extra in zip(leaves, writer(file, leaves, ckpt_id, compress)):
        info = {"kind": leaf.kind, "dtype": leaf.dtype, "shape": list(leaf.shape)}
        if leaf.kind == "tensor":
            info["device"] = str(leaf.value.device)
        table[leaf.name] = info | extra
    return table


def _write_npys(file, leaves, ckpt_id, compress) -> list[dict]:
    file.write(NPYS_HEADER.pack(NPYS_MAGIC, FORMAT_VERSION, 0, bytes.fromhex(ckpt_id)))
    infos = []
    for leaf in leaves:
        header, stored = _record_parts(leaf)
        offset = file.tell()
        data = byte_view(stored)
        file.write(header)
        file.write(data)
        file.write(bytes(-file.tell() % 64))
        crc = crc32(data, crc32(header))
        infos.append({"nbytes": stored.nbytes, "crc32": crc, "offset": offset})
    return infos


def _write_npz(file, leaves, ckpt_id, compress) -> list[dict]:
    writer = ZipWriter(file)
    try:
        infos = []
        for leaf in leaves:
            header, stored = _record_parts(leaf)
            pieces = [memoryview(header), byte_view(stored)]
            crc = writer.add(leaf.name + ".npy", pieces, compress)
            infos.append({"nbytes": stored.nbytes, "crc32": crc})
        writer.close(f"{RECORD_MAGIC} id={ckpt_id}".encode())
    finally:
        writer.shutdown()
    return infos


def _write_pickle(file, leaves, ckpt_id, compress) -> list[dict]:
    # NOTE: pickle needs every array at once, so device tensors are all copied
    # to the host before the file is written; the other formats go one by one.
    arrays, infos = {}, []
    for leaf in leaves:
        header, stored = _record_parts(leaf)
        arrays[leaf.name] = stored
        crc = crc32(byte_view(stored), crc32(header))
        infos.append({"nbytes": stored.nbytes, "crc32": crc})
    doc = {"magic": PICKLE_MAGIC, "version": FORMAT_VERSION, "id": ckpt_id}
    pickle.dump(doc | {"arrays": arrays}, file, protocol=4)
    return infos


# --- readers ----------------------------------------------------------------


class ArrayFile:
    """The array file of one checkpoint, opened for reading.

    Opening checks that the file is whole (its size), that it is of the
    expected format, and that it carries the record's id. :meth:`read` then
    returns each array in its storage dtype, checking its .npy header against
    the record and, with ``verify``, its CRC-32.
    """

    def __init__(self, path: str, record: dict, trusted: bool = False) -> None:
        self.path = path
        self.record = record
        self.arrays: dict[str, dict] = record["arrays"]
        self.fmt = record["format"]
        self._map: mmap.mmap | None = None
        self._entries: dict[str, zipfile.ZipInfo] = {}
        self._pickled: dict[str, np.ndarray] = {}
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            self._check_size(size)
            if size and self.fmt != "pickle":
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            {
                "npz": self._open_npz,
                "npy": self._open_npys,
                "pickle": self._open_pickle,
            }[self.fmt](file, trusted)

    def error(self, what: str, name: str | None = None) -> CheckpointError:
        where = f" (array {name!r})" if name is not None else ""
        return CheckpointError(f"{self.path}{where}: {what}")

    def _check_size(self, size: int) -> None:
        expected = self.record.get("array_file_size")
        if size == 0:
            raise self.error("the file is empty (zero bytes)")
        if size != expected:
            raise self.error(
                f"the file has {size} bytes but its record says {expected}; it is "
                "truncated, extended, or from another save"
            )

    def _check_id(self, found: str) -> None:
        if found != self.record["id"]:
            raise self.error(
                f"belongs to checkpoint id {found!r}, not to the record's "
                f"{self.record['id']!r}: the two files are from different saves"
            )

    def _open_npys(self, file, trusted) -> None:
        if len(self._map) < NPYS_HEADER.size:
            raise self.error("not a netcl npys array file (too short)")
        magic, version, _, raw_id = NPYS_HEADER.unpack_from(self._map, 0)
        if magic != NPYS_MAGIC or self._map[32:64].count(0) != 32:
            raise self.error(f"not a netcl npys array file (magic {magic!r})")
        if version > FORMAT_VERSION:
            raise self.error(
                f"format version {version} is newer than this netcl reads "
                f"({FORMAT_VERSION}); upgrade netcl"
            )
        self._check_id(raw_id.hex())

    def _open_npz(self, file, trusted) -> None:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise self.error(f"not a readable zip archive ({exc})") from exc
        comment = archive.comment.decode("latin1")
        if not comment.startswith(RECORD_MAGIC + " id="):
            raise self.error("not an npz written by netcl (no checkpoint id)")
        self._check_id(comment.split("id=", 1)[1])
        self._entries = {info.filename: info for info in archive.infolist()}

    def _open_pickle(self, file, trusted) -> None:
        try:
            doc = pickle.load(file) if trusted else _pickle.restricted_load(file)
        except _pickle.UnsafePickleError as exc:
            raise self.error(
                f"refused to load: the file names the global {exc.global_name}, "
                "which could run code; only arrays, containers, numbers and "
                "strings are accepted from untrusted files"
            ) from None
        except Exception as exc:
            raise self.error(f"damaged or not a netcl array file ({exc!r})") from None
        if not isinstance(doc, dict) or doc.get("magic") != PICKLE_MAGIC:
            raise self.error("not a netcl pickle array file (no magic)")
        self._check_id(doc.get("id"))
        self._pickled = doc.get("arrays")
        if not isinstance(self._pickled, dict):
            raise self.error("damaged: no table of arrays")

    def read(self, name: str, verify: bool = True) -> np.ndarray:
        """The array ``name`` in its storage dtype (a view into the file when
        the format allows; copy it before the file goes away)."""
        info = self.arrays[name]
        shape = tuple(info["shape"])
        storage = _tensors.storage_dtype(info["dtype"])
        header = npy_header(storage, shape)
        record = self._record_bytes(name, len(header) + info["nbytes"], info)
        if bytes(record[: len(header)]) != header:
            raise self.error("damaged: its .npy header does not match the record", name)
        if verify and crc32(record) != info["crc32"]:
            raise self.error("damaged: checksum mismatch (bytes changed on disk)", name)
        if verify and self.fmt == "npy":
            self._check_padding(name, info["offset"] + len(record))
        count = info["nbytes"] // storage.itemsize
        data = np.frombuffer(record, storage, count=count, offset=len(header))
        return data.reshape(shape)

    def _check_padding(self, name: str, end: int) -> None:
        """The bytes between a record and the next 64-byte boundary are zero."""
        padding = self._map[end : min(end + (-end % 64), len(self._map))]
        if padding.count(0) != len(padding):
            raise self.error("damaged: non-zero bytes after the array's data", name)

    def _record_bytes(self, name: str, size: int, info: dict) -> Any:
        if self.fmt == "npy":
            start = info["offset"]
            if start < NPYS_HEADER.size or start + size > len(self._map):
                raise self.error("damaged: the array lies outside the file", name)
            return memoryview(self._map)[start : start + size]
        if self.fmt == "npz":
            return self._zip_record(name, size)
        stored = self._pickled.get(name)
        storage = _tensors.storage_dtype(info["dtype"])
        if not isinstance(stored, np.ndarray) or stored.dtype != storage:
            raise self.error(
                "damaged: missing from the array file or the wrong type", name
            )
        if stored.shape != tuple(info["shape"]):
            raise self.error("damaged: stored with the wrong shape", name)
        header = npy_header(storage, stored.shape)
        return memoryview(header + np.ascontiguousarray(stored).tobytes())

    def _zip_record(self, name: str, size: int) -> Any:
        entry = self._entries.get(name + ".npy")
        if entry is None:
            raise self.error("missing from the npz archive", name)
        if entry.file_size != size or entry.compress_type not in (0, 8):
            raise self.error(
                "damaged: the zip entry has the wrong size or method", name
            )
        start = entry.header_offset
        fixed = self._map[start : start + 30]
        if len(fixed) < 30 or fixed[:4] != b"PK\x03\x04":
            raise self.error("damaged: bad zip entry header", name)
        name_len, extra_len = struct.unpack("<HH", fixed[26:30])
        begin = start + 30 + name_len + extra_len
        raw = memoryview(self._map)[begin : begin + entry.compress_size]
        if entry.compress_type == 0:
            return raw
        try:
            data = isal_zlib.decompress(raw, -15, size)
        except isal_zlib.error as exc:
            raise self.error(
                f"damaged: its compressed data is corrupt ({exc})", name
            ) from None
        if len(data) != size:
            raise self.error("damaged: its compressed data has the wrong length", name)
        return memoryview(data)

    def close(self) -> None:
        """Release the file (arrays still viewing it keep the mapping alive)."""
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass
            self._map = None
