"""A small ZIP writer for ``.npz`` files, fast and standard.

``numpy.savez_compressed`` deflates with zlib in one thread (about 30 MB/s on
weights). This writer produces the same kind of archive (standard deflate,
read by ``numpy.load`` and any unzip tool) but deflates with ISA-L, in
independent pieces on several threads, and computes the CRC-32 with ISA-L
too. Pieces are joined with a sync flush, which ends each on a byte boundary
without ending the stream, so the result is one ordinary deflate stream.

Stored (uncompressed) entries start their data on a 64-byte boundary, so a
reader can memory-map them. ZIP64 records are written when sizes, offsets or
the number of entries pass the limits of the original format.

Only what the checkpoint needs is written: no directories, no encryption,
names in UTF-8 (general-purpose flag bit 11).
"""

from __future__ import annotations

import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from isal import isal_zlib

__all__ = ["ZipWriter", "byte_view", "crc32"]

crc32 = isal_zlib.crc32

STORED, DEFLATED = 0, 8
PIECE = 8 << 20  # bytes deflated per task
ZIP64_LIMIT = 0xFFFFFFFF - (1 << 20)  # margin: deflate may grow a piece a little
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_PAD_ID = 0x6E63  # extra-field id of the alignment padding; readers skip it
_ALIGN = 64


@dataclass
class _Entry:
    name: bytes
    method: int
    offset: int
    crc: int = 0
    csize: int = 0
    usize: int = 0
    zip64: bool = False


def byte_view(array) -> memoryview:
    """The bytes of a C-contiguous array as a flat view (no copy)."""
    return memoryview(array.reshape(-1).view("u1"))


def _dos_time() -> tuple[int, int]:
    t = time.localtime()
    date = ((max(t.tm_year, 1980) - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), date


def _deflate(piece: memoryview, last: bool, level: int) -> bytes:
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    out = compressor.compress(piece)
    return out + compressor.flush(
        isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH
    )


class ZipWriter:
    """Writes entries one after another into a seekable binary file.

    Args:
        file: opened for writing, positioned at 0.
        level: ISA-L deflate level (0-3) used for compressed entries.
        threads: deflate threads (default: the CPU count, at most 8).
    """

    def __init__(self, file: BinaryIO, level: int = 1, threads: int | None = None):
        self.file = file
        self.level = level
        self.entries: list[_Entry] = []
        self.time, self.date = _dos_time()
        self.threads = threads or min(os.cpu_count() or 1, 8)
        self.pool = ThreadPoolExecutor(self.threads)

    def add(self, name: str, pieces: list[memoryview], compress: bool) -> int:
        """Add one entry whose content is ``pieces`` joined; return its CRC-32."""
        usize = sum(p.nbytes for p in pieces)
        entry = _Entry(
            name.encode("utf-8"),
            DEFLATED if compress else STORED,
            self.file.tell(),
            usize=usize,
            zip64=usize > ZIP64_LIMIT,
        )
        self._local_header(entry)
        start = self.file.tell()
        if compress:
            entry.crc = self._write_deflated(pieces)
        else:
            entry.crc = self._write_stored(pieces)
        entry.csize = self.file.tell() - start
        self._patch_local_header(entry)
        self.entries.append(entry)
        return entry.crc

    def close(self, comment: bytes = b"") -> None:
        """Write the central directory and the end records."""
        start = self.file.tell()
        for entry in self.entries:
            self._central_header(entry)
        self._end_records(start, self.file.tell() - start, comment)

    def shutdown(self) -> None:
        """Stop the deflate threads (call once, after :meth:`close` or a failure)."""
        self.pool.shutdown(cancel_futures=True)

    def _write_stored(self, pieces: list[memoryview]) -> int:
        crc = 0
        for piece in pieces:
            crc = crc32(piece, crc)
            self.file.write(piece)
        return crc

    def _write_deflated(self, pieces: list[memoryview]) -> int:
        tasks = [p[i : i + PIECE] for p in pieces for i in range(0, p.nbytes, PIECE)]
        crc = 0
        window = []
        for i, task in enumerate(tasks):
            last = i == len(tasks) - 1
            window.append(self.pool.submit(_deflate, task, last, self.level))
            crc = crc32(task, crc)
            if len(window) > 2 * self.threads:
                self.file.write(window.pop(0).result())
        for future in window:
            self.file.write(future.result())
        if not tasks:
            self.file.write(_deflate(memoryview(b""), True, self.level))
        return crc

    def _local_header(self, entry: _Entry) -> None:
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if entry.zip64 else b""
        if entry.method == STORED:
            used = entry.offset + _LOCAL.size + len(entry.name) + len(extra) + 4
            extra += struct.pack("<HH", _PAD_ID, -used % _ALIGN) + bytes(-used % _ALIGN)
        self.file.write(self._local_fields(entry, len(extra)) + entry.name + extra)

    def _local_fields(self, entry: _Entry, extra_len: int) -> bytes:
        big = 0xFFFFFFFF
        sizes = (big, big) if entry.zip64 else (entry.csize, entry.usize)
        version = 45 if entry.zip64 else 20
        return _LOCAL.pack(
            0x04034B50,
            version,
            0x800,
            entry.method,
            self.time,
            self.date,
            entry.crc,
            *sizes,
            len(entry.name),
            extra_len,
        )

    def _patch_local_header(self, entry: _Entry) -> None:
        end = self.file.tell()
        self.file.seek(entry.offset + 14)
        if entry.zip64:
            self.file.write(struct.pack("<I", entry.crc))
            self.file.seek(entry.offset + _LOCAL.size + len(entry.name) + 4)
            self.file.write(struct.pack("<QQ", entry.usize, entry.csize))
        else:
            self.file.write(struct.pack("<III", entry.crc, entry.csize, entry.usize))
        self.file.seek(end)

    def _central_header(self, entry: _Entry) -> None:
        big = 0xFFFFFFFF
        values = [entry.usize, entry.csize, entry.offset]
        wide = [v if v > ZIP64_LIMIT or entry.zip64 else None for v in values]
        extra = b"".join(struct.pack("<Q", v) for v in wide if v is not None)
        if extra:
            extra = struct.pack("<HH", 1, len(extra)) + extra
        usize, csize, offset = (
            big if w is not None else v for v, w in zip(values, wide)
        )
        version = 45 if extra else 20
        fields = _CENTRAL.pack(
            0x02014B50,
            version,
            version,
            0x800,
            entry.method,
            self.time,
            self.date,
            entry.crc,
            csize,
            usize,
            len(entry.name),
            len(extra),
            0,
            0,
            0,
            0o644 << 16,
            offset,
        )
        self.file.write(fields + entry.name + extra)

    def _end_records(self, start: int, size: int, comment: bytes) -> None:
        count = len(self.entries)
        if count >= 0xFFFF or start > ZIP64_LIMIT or size > ZIP64_LIMIT:
            end64 = self.file.tell()
            self.file.write(
                _END64.pack(0x06064B50, 44, 45, 45, 0, 0, count, count, size, start)
            )
            self.file.write(_LOCATOR64.pack(0x07064B50, 0, end64, 1))
            count, start, size = 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF
        self.file.write(
            _END.pack(0x06054B50, 0, 0, count, count, size, start, len(comment))
            + comment
        )
