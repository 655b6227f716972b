"""Single compressed streams (``.pkl.gz``, ``.tar.gz``, joblib's zlib files): decompressed on the
fly, never whole, so what comes out is read through the same bounds as any other stream."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from typing import BinaryIO

from .archive_rules import expansion_problem
from .bounded_io import LimitExceeded
from .limits import ScanLimits

_CHUNK = 64 * 1024
DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError)

# Suffix -> what the name becomes once decompressed (the name still routes the inner stream).
_INNER_SUFFIXES = {".tgz": ".tar", ".tbz2": ".tar", ".txz": ".tar", ".gz": "", ".bz2": "", ".xz": "", ".z": ""}


def inner_name(name: str) -> str:
    for suffix, replacement in _INNER_SUFFIXES.items():
        if name.endswith(suffix):
            return name[: -len(suffix)] + replacement
    return name


class ZlibReader:
    """A raw zlib stream as a file (the standard library has gzip/bz2/lzma files, not zlib ones).
    Never inflates more than asked for: ``max_length`` bounds each step."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._inflater = zlib.decompressobj()
        self._buffer = b""
        self._done = False

    def _fill(self, want: int) -> None:
        while len(self._buffer) < want and not self._done:
            data = self._inflater.unconsumed_tail or self._stream.read(_CHUNK)
            if not data:
                if not self._inflater.eof:
                    raise EOFError("zlib stream ends early")
                self._done = True
                break
            self._buffer += self._inflater.decompress(data, want - len(self._buffer))
            if self._inflater.eof:
                self._done = True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        self._fill(n)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        out = b""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                cut = newline + 1
            elif self._done:
                cut = len(self._buffer)
            else:
                cut = -1
            if size is not None and size >= 0 and (cut < 0 or len(out) + cut > size):
                room = size - len(out)
                if len(self._buffer) >= room:
                    cut = room
            if cut >= 0:
                out += self._buffer[:cut]
                self._buffer = self._buffer[cut:]
                return out
            out += self._buffer
            self._buffer = b""
            self._fill(_CHUNK)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def zlib_sniff(head: bytes) -> bool:
    """Do the first bytes start a valid zlib stream? (``joblib.load`` tries zlib on any file whose
    first byte is 0x78, whatever its name; the header check alone also matches text like ``"x "``.)"""
    if len(head) < 2 or head[0] != 0x78 or (head[0] * 256 + head[1]) % 31:
        return False
    try:
        zlib.decompressobj().decompress(head, 4096)
    except zlib.error:
        return False
    return True


class MeteredStream:
    """The decompressed side of a stream, counting what really comes out of it (not what headers
    declare): past ``max_tar_expanded_bytes``, or once the output/input ratio makes a bomb, reads
    raise ``LimitExceeded``; ``bomb`` then says why, for the caller to report it ``unsafe``."""

    def __init__(self, stream: BinaryIO, compressed_size: int, limits: ScanLimits):
        self._stream = stream
        self._compressed = compressed_size
        self._limits = limits
        self.expanded = 0
        self.bomb: str | None = None
        self.stopped = False  # a read was refused: the LimitExceeded is this stream's

    def _count(self, data: bytes) -> bytes:
        self.expanded += len(data)
        bomb = expansion_problem(self._compressed, self.expanded, self._limits)
        if bomb:
            self.bomb, self.stopped = bomb, True
            raise LimitExceeded(f"decompression bomb: the stream {bomb}")
        if self.expanded > self._limits.max_tar_expanded_bytes:
            self.stopped = True
            raise LimitExceeded(f"decompresses past the {self._limits.max_tar_expanded_bytes}-byte limit "
                                "this scanner reads")
        return data

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        return self._count(self._stream.read(n))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(self._stream.readline(-1 if size is None else size))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass


def open_decompressed(kind: str, stream: BinaryIO):
    """A readable file object yielding the decompressed bytes of ``stream``."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(stream, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(stream, mode="rb")
    if kind == "zlib":
        return ZlibReader(stream)
    raise ValueError(f"unknown compression {kind!r}")
