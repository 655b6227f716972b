"""Reading a chunk-stored file's bytes straight from its xorbs: plain HTTP downloads, scans, snapshots.

A file uploaded through Xet is stored once, as the xorbs its client sent (``service.py``); there is
no whole-file copy. Its shard lists segments (a chunk range of one xorb each); the xorb footers say
where each chunk lies in the stored xorb and how long it is once decompressed. So any byte range
of the file is: find the segment (bisect over segment offsets), the first chunk inside it (bisect
over the xorb's unpacked ends), read the stored bytes of the chunks that cover the range in one
read, and decompress each chunk (most are stored uncompressed: hf_xet keeps a chunk as it is when
LZ4 does not make it smaller, as with trained weights).

The xorbs were verified chunk by chunk when they were uploaded and are never rewritten, so reads
do not hash again (``aicommons fsck`` re-hashes at rest).

Plain HTTP downloads take ``iter_parts``: a chunk stored uncompressed is the file's bytes as they are,
at a known offset of the xorb file after its 8-byte header, so on local disk it is handed to the
server as a span of that file (``StoredSpan``: sendfile, ``api/zerocopy_server.py``) and never
enters Python; only compressed chunks are read and decoded. Every chunk header is still read and
checked against the footer, and a xorb shorter than its footer says is refused before any of its
spans is handed out. Nothing here decides access: callers get
a ``ChunkedFile`` only for a file their repo may read (``hub/objects.py``).
"""

from __future__ import annotations

import io
import mmap
import os
import stat
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from aicommons.xet.shard import FileSegment
from aicommons.xet.xorb import CHUNK_HEADER_BYTES, XorbChunk, XorbFormatError, XorbIndex, _chunk_at, chunk_bytes

READ_BYTES = 4 * 1024 * 1024  # stored bytes fetched per read: a few dozen chunks
PART_BYTES = 16 * 1024 * 1024  # file bytes per list of parts from ``iter_parts`` (one hand-off to the server)


class ChunkReadError(RuntimeError):
    """The stored xorbs do not hold what the file's segments say (a missing or damaged xorb)."""


class StoredSpan(NamedTuple):
    """``size`` bytes of the open xorb file ``file`` from ``offset``: (part of) a chunk stored
    uncompressed, i.e. file bytes as they are, to be sent straight from the file (a tuple, as the
    zero-copy send takes it)."""

    file: BinaryIO
    offset: int
    size: int


@dataclass(frozen=True)
class _Segment:
    start: int  # file offset of the segment's first byte
    xorb_hash: bytes
    chunk_start: int
    chunk_end: int
    index: XorbIndex


class ChunkedFile:
    """The bytes of one file described by ``segments``, read from xorbs through ``open_xorb``."""

    def __init__(self, segments: Sequence[FileSegment], index_of: Callable[[bytes], XorbIndex],
                 open_xorb: Callable[[bytes], BinaryIO], size: int):
        self.size = size
        self._open_xorb = open_xorb
        self._segments: list[_Segment] = []
        pos = 0
        for s in segments:
            index = index_of(s.xorb_hash)
            if s.chunk_end > len(index) or index.unpacked_size(s.chunk_start, s.chunk_end) != s.size:
                raise ChunkReadError("a segment of the file does not match its stored xorb")
            self._segments.append(_Segment(pos, s.xorb_hash, s.chunk_start, s.chunk_end, index))
            pos += s.size
        if pos != size:
            raise ChunkReadError(f"the file's segments add up to {pos} bytes, not {size}")
        self._starts = [s.start for s in self._segments]

    def iter_range(self, first: int, end: int, piece: int = READ_BYTES) -> Iterator[bytes]:
        """The file bytes ``[first, end)``, in pieces of about ``piece`` stored bytes."""
        end = min(end, self.size)
        if first >= end:
            return
        i = bisect_right(self._starts, first) - 1
        handles: dict[bytes, BinaryIO] = {}
        try:
            pos = first
            while pos < end:
                seg = self._segments[i]
                data = self._read_segment(seg, pos - seg.start, min(end, seg.start + seg.index.unpacked_size(
                    seg.chunk_start, seg.chunk_end)) - seg.start, handles, piece)
                for block in data:
                    yield block
                    pos += len(block)
                i += 1
        finally:
            for f in handles.values():
                f.close()

    def iter_parts(self, first: int, end: int, batch: int = PART_BYTES,
                   handles: dict[bytes, BinaryIO] | None = None) -> Generator[list[bytes | StoredSpan]]:
        """The file bytes ``[first, end)`` as lists of parts of about ``batch`` file bytes each, in
        order: ``StoredSpan`` for the uncompressed chunks of xorbs that are local files, bytes for
        the rest (decoded chunks; everything, for xorbs in an object store: then lists of about
        ``READ_BYTES``, so memory stays flat). The xorbs opened go into ``handles``, which the
        caller closes (``close_all``) once every span is sent; without it, they are closed when
        the iterator is exhausted or closed."""
        if handles is None:
            handles = {}
            try:
                yield from self.iter_parts(first, end, batch, handles)
            finally:
                close_all(handles)
            return
        end = min(end, self.size)
        if first >= end:
            return
        i = bisect_right(self._starts, first) - 1
        parts: list[bytes | StoredSpan] = []
        gathered = held = 0  # file bytes in ``parts``, and of them bytes read into memory
        pos = first
        while pos < end:
            seg = self._segments[i]
            seg_end = min(end, seg.start + seg.index.unpacked_size(seg.chunk_start, seg.chunk_end)) - seg.start
            f = handles.get(seg.xorb_hash)
            if f is None:
                f = handles[seg.xorb_hash] = self._open_xorb(seg.xorb_hash)
            fd = _local_fd(f)
            pieces: Iterator[bytes | StoredSpan] = (
                self._segment_spans(seg, pos - seg.start, seg_end, f, fd) if fd is not None
                else self._read_segment(seg, pos - seg.start, seg_end, handles, READ_BYTES))
            for piece in pieces:
                if isinstance(piece, StoredSpan):
                    n = piece.size
                else:
                    n = len(piece)
                    held += n
                parts.append(piece)
                pos += n
                gathered += n
                if gathered >= batch or held >= READ_BYTES:  # memory stays flat whatever the spans
                    yield parts
                    parts, gathered, held = [], 0, 0
            i += 1
        if parts:
            yield parts

    def _segment_spans(self, seg: _Segment, first: int, end: int, f: BinaryIO,
                       fd: int) -> Iterator[bytes | StoredSpan]:
        """Bytes ``[first, end)`` of one segment (relative to it) from a local xorb file: a span
        of the file for each uncompressed chunk (its header read and checked), decoded bytes for
        the others."""
        index = seg.index
        base = index.unpacked_ends[seg.chunk_start - 1] if seg.chunk_start else 0
        chunk = bisect_right(index.unpacked_ends, base + first, seg.chunk_start, seg.chunk_end)
        skip = base + first - (index.unpacked_ends[chunk - 1] if chunk else 0)
        left = end - first
        last = bisect_right(index.unpacked_ends, base + end - 1, chunk, seg.chunk_end)  # the chunk holding the end
        if os.fstat(fd).st_size < index.stored_ends[last]:
            raise ChunkReadError(f"stored xorb {seg.xorb_hash.hex()} is shorter than its footer says")
        while left > 0:
            stored_start = index.stored_ends[chunk - 1] if chunk else 0
            header = os.pread(fd, CHUNK_HEADER_BYTES, stored_start)
            if len(header) < CHUNK_HEADER_BYTES:
                raise ChunkReadError(f"stored xorb {seg.xorb_hash.hex()} is shorter than its footer says")
            info = _checked_chunk(memoryview(header), 0, chunk, index, stored_start)
            take = min(info.size - skip, left)
            if info.scheme == 0:
                yield StoredSpan(f, stored_start + CHUNK_HEADER_BYTES + skip, take)
            else:
                stored = memoryview(os.pread(fd, index.stored_ends[chunk] - stored_start, stored_start))
                yield bytes(_decode_one(stored, 0, chunk, index, stored_start)[skip:skip + take])
            skip = 0
            left -= take
            chunk += 1

    def _read_segment(self, seg: _Segment, first: int, end: int, handles: dict[bytes, BinaryIO],
                      piece: int) -> Iterator[bytes]:
        """Bytes ``[first, end)`` of one segment (offsets relative to the segment)."""
        index = seg.index
        base = index.unpacked_ends[seg.chunk_start - 1] if seg.chunk_start else 0
        # The chunk holding ``first``: unpacked_ends are ends, so the first end beyond the offset.
        chunk = bisect_right(index.unpacked_ends, base + first, seg.chunk_start, seg.chunk_end)
        skip = base + first - (index.unpacked_ends[chunk - 1] if chunk else 0)
        left = end - first
        f = handles.get(seg.xorb_hash)
        if f is None:
            f = handles[seg.xorb_hash] = self._open_xorb(seg.xorb_hash)
        while left > 0 and chunk < seg.chunk_end:
            stored_start = index.stored_ends[chunk - 1] if chunk else 0
            last = chunk  # read whole chunks up to about ``piece`` stored bytes, or to what is needed
            while (last + 1 < seg.chunk_end and index.stored_ends[last] - stored_start < piece
                   and (index.unpacked_ends[last] - (index.unpacked_ends[chunk - 1] if chunk else 0)) - skip < left):
                last += 1
            f.seek(stored_start)
            stored = f.read(index.stored_ends[last] - stored_start)
            if len(stored) != index.stored_ends[last] - stored_start:
                raise ChunkReadError(f"stored xorb {seg.xorb_hash.hex()} is shorter than its footer says")
            out = _decode(memoryview(stored), last + 1 - chunk, index, chunk)
            block = out[skip:skip + left] if skip or len(out) > left else out
            skip = 0
            left -= len(block)
            yield block
            chunk = last + 1

    def write_to(self, fd: int) -> None:
        """Write the whole file to the file descriptor ``fd`` (the Parquet conversion's checkout):
        each segment's stored bytes are mapped (a local xorb) or read in one read, and each chunk is
        written as it is decoded, without joining the file's bytes in memory."""
        written = 0
        for seg in self._segments:
            index = seg.index
            stored_start = index.stored_ends[seg.chunk_start - 1] if seg.chunk_start else 0
            stored_end = index.stored_ends[seg.chunk_end - 1]
            with self._open_xorb(seg.xorb_hash) as f, _stored_range(f, stored_start, stored_end) as stored:
                if len(stored) < stored_end - stored_start:
                    raise ChunkReadError(f"stored xorb {seg.xorb_hash.hex()} is shorter than its footer says")
                pos = 0
                for n in range(seg.chunk_start, seg.chunk_end):
                    written += _write_all(fd, _decode_one(stored, pos, n, index, stored_start))
                    pos = index.stored_ends[n] - stored_start
        if written != self.size:
            raise ChunkReadError(f"the file's chunks hold {written} bytes, not {self.size}")

    def open(self) -> BinaryIO:
        """A seekable, read-only file object over the whole file (for scanners and copies)."""
        return io.BufferedReader(_RawChunkedFile(self), buffer_size=1024 * 1024)


def _write_all(fd: int, data: memoryview | bytes) -> int:
    view = memoryview(data)
    with view:
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:])
    return done


class _stored_range:
    """The stored bytes ``[start, end)`` of an open xorb, as a memoryview: mapped when the xorb is a
    local file, else read in one read (what a short xorb gives: the caller checks the length)."""

    def __init__(self, f: BinaryIO, start: int, end: int):
        self.f, self.start, self.end = f, start, end
        self.map: mmap.mmap | None = None
        self.view: memoryview | None = None

    def __enter__(self) -> memoryview:
        fileno = _local_fd(self.f)
        if fileno is not None and os.fstat(fileno).st_size >= self.end > self.start:
            self.map = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
            self.view = memoryview(self.map)[self.start:self.end]
        else:
            self.f.seek(self.start)
            self.view = memoryview(self.f.read(self.end - self.start))
        return self.view

    def __exit__(self, *exc: object) -> None:
        if self.view is not None:
            self.view.release()
        if self.map is not None:
            self.map.close()


def close_all(handles: dict[bytes, BinaryIO]) -> None:
    for f in handles.values():
        f.close()
    handles.clear()


def _local_fd(f: BinaryIO) -> int | None:
    """The descriptor of ``f`` if it is a regular file on local disk (sendfile can read it)."""
    try:
        fd = f.fileno()
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _checked_chunk(stored: memoryview, pos: int, n: int, index: XorbIndex, base: int) -> XorbChunk:
    """The header of chunk ``n`` of a xorb, at ``pos`` of ``stored`` (which starts at stored byte
    ``base``; it may end after the header), checked against the footer."""
    chunk_end = index.stored_ends[n] - base
    try:
        chunk = _chunk_at(stored, pos, n, chunk_end)
        if chunk.payload.stop != chunk_end:
            raise XorbFormatError("chunk header does not match the footer")
        if chunk.size != index.unpacked_size(n, n + 1):
            raise XorbFormatError("chunk length does not match the footer")
        if chunk.scheme == 0 and chunk.stored_size != chunk.size:
            raise XorbFormatError("uncompressed chunk length does not match its header")
        return chunk
    except XorbFormatError as exc:
        raise ChunkReadError(f"a stored xorb is unreadable: {exc}") from None


def _decode_one(stored: memoryview, pos: int, n: int, index: XorbIndex, base: int) -> memoryview | bytes:
    """Chunk ``n`` of a xorb, its header at ``pos`` of ``stored`` (which starts at stored byte
    ``base``), decompressed and checked against the footer."""
    chunk = _checked_chunk(stored, pos, n, index, base)
    if chunk.scheme == 0:
        return stored[pos + CHUNK_HEADER_BYTES:index.stored_ends[n] - base]
    try:
        return chunk_bytes(stored, chunk)
    except XorbFormatError as exc:
        raise ChunkReadError(f"a stored xorb is unreadable: {exc}") from None


def _decode(stored: memoryview, count: int, index: XorbIndex, first_chunk: int) -> bytes:
    """The decompressed bytes of ``count`` consecutive chunks read as ``stored`` from a xorb."""
    base = index.stored_ends[first_chunk - 1] if first_chunk else 0
    parts, pos = [], 0
    for n in range(first_chunk, first_chunk + count):
        parts.append(_decode_one(stored, pos, n, index, base))
        pos = index.stored_ends[n] - base
    return b"".join(parts)


class _RawChunkedFile(io.RawIOBase):
    def __init__(self, source: ChunkedFile):
        self.source = source
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self.pos + offset
        elif whence == io.SEEK_END:
            target = self.source.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        self.pos = target
        return target

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self.source.size - self.pos)
        if want <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        got = 0
        for block in self.source.iter_range(self.pos, self.pos + want, piece=max(want, 64 * 1024)):
            view[got:got + len(block)] = block
            got += len(block)
        self.pos += got
        return got
