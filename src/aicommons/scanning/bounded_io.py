"""Reading untrusted streams with a bound: every byte a scanner reads goes through a
``BoundedReader``, which refuses to read past its limit (``LimitExceeded``) and never allocates
more than the limit, whatever length a hostile header claims."""

from __future__ import annotations

import tempfile
from typing import BinaryIO

_CHUNK = 1024 * 1024


class LimitExceeded(Exception):
    """A scan would read or build more than a ``ScanLimits`` bound: reported as ``error``."""


class ByteBudget:
    """Bytes that several readers share (everything read out of one archive's members)."""

    def __init__(self, limit: int, what: str):
        self.limit = limit
        self.used = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def charge(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise LimitExceeded(f"{self.what}: more than the {self.limit}-byte limit")


class BoundedReader:
    """A read-only view of ``stream`` that may yield at most ``limit`` bytes.

    ``read(n)`` with a huge ``n`` (a pickle's BINBYTES8 length, a GGUF string length) does not
    allocate ``n`` bytes: past the limit it raises ``LimitExceeded``, and a stream that ends first
    just returns short (the caller sees a truncated file). ``unread`` pushes bytes back, so that a
    caller can peek at what follows a pickle's STOP.
    """

    def __init__(self, stream: BinaryIO, limit: int, what: str, budget: ByteBudget | None = None):
        self._stream = stream
        self.limit = limit
        self.what = what
        self._budget = budget
        self.consumed = 0
        self._pending = b""

    def _allowed(self) -> int:
        allowed = self.limit - self.consumed
        if self._budget is not None:
            allowed = min(allowed, self._budget.remaining)
        return allowed

    def _account(self, data: bytes) -> bytes:
        self.consumed += len(data)
        if self._budget is not None:
            self._budget.charge(len(data))
        if self.consumed > self.limit:
            raise LimitExceeded(f"{self.what}: more than the {self.limit}-byte limit")
        return data

    def _take_pending(self, n: int) -> bytes:
        data, self._pending = self._pending[:n], self._pending[n:]
        return data

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._allowed() + 1  # "everything": as much as the limit allows, plus one to notice
        data = self._take_pending(n)
        want = n - len(data)
        if want <= 0:
            return self._account(data)
        allowed = self._allowed() - len(data)
        if want <= allowed:
            return self._account(data + _read_fully(self._stream, want))
        # More than the limit was asked for: read on in chunks (memory stays bounded) to tell a
        # stream that really holds that much (limit exceeded) from one that ends first (truncated).
        self._account(data)
        while True:
            chunk = self._stream.read(min(_CHUNK, self._allowed() + 1))
            self._account(chunk)  # raises once past the limit
            if not chunk:
                return b""  # the stream ended before n bytes: the caller reports it truncated

    def readline(self, size: int | None = -1) -> bytes:
        cap = self._allowed() + 1
        if size is not None and size >= 0:
            cap = min(cap, size)
        newline = self._pending.find(b"\n")
        if newline >= 0 and newline < cap:
            return self._account(self._take_pending(newline + 1))
        data = self._take_pending(cap)
        if len(data) < cap:
            data += self._stream.readline(cap - len(data))
        return self._account(data)

    def tell(self) -> int:
        return self.consumed

    def unread(self, data: bytes) -> None:
        """Push back bytes just read (they are not counted twice)."""
        self._pending = data + self._pending
        self.consumed -= len(data)
        if self._budget is not None:
            self._budget.used -= len(data)

    def at_eof(self) -> bool:
        try:
            data = self.read(1)
        except LimitExceeded:
            return False  # more data past the limit: not the end
        if data:
            self.unread(data)
        return not data


def _read_fully(stream: BinaryIO, n: int) -> bytes:
    """``n`` bytes, or fewer only at the end of the stream (raw streams may return short reads)."""
    parts = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def read_head(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes from the start (short streams return short)."""
    return _read_fully(stream, n)


def spooled_copy(stream: BinaryIO, budget: ByteBudget, what: str) -> BinaryIO:
    """A seekable copy of ``stream`` (in memory, on disk past 32 MiB), charged to ``budget``.

    Archives inside archives are copied rather than read in place: zip needs to seek, a streamed
    tar member cannot, and seeking back in a compressed zip member decompresses it again from the
    start (unbounded work that no budget would see)."""
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    reader = BoundedReader(stream, budget.remaining, what, budget)
    while True:
        chunk = reader.read(_CHUNK)
        if not chunk:
            break
        spool.write(chunk)
    spool.seek(0)
    return spool


class PrefixedStream:
    """``head`` (bytes already read for sniffing) followed by the rest of ``stream``: a forward-only
    stream that starts at the beginning again, for streams that cannot seek back."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head = head
        self._stream = stream
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            data, self._head = self._head, b""
            return data + self._stream.read()
        data, self._head = self._head[:n], self._head[n:]
        if len(data) < n:
            data += _read_fully(self._stream, n - len(data))
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        newline = self._head.find(b"\n")
        if newline >= 0 and (limit is None or newline < limit):
            data, self._head = self._head[:newline + 1], self._head[newline + 1:]
            return data
        if limit is not None and len(self._head) >= limit:
            data, self._head = self._head[:limit], self._head[limit:]
            return data
        data, self._head = self._head, b""
        rest = self._stream.readline(-1 if limit is None else limit - len(data))
        return data + rest

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
