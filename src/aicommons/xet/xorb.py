"""Xorbs: the containers Xet uploads chunk data in, and how we check one before storing it.

Layout of a stored xorb (all integers little-endian):

    chunk*        8-byte header (version 0, stored length u24, scheme u8, length u24) + stored bytes
    footer        "XETBLOB" v1, xorb hash
                  "XBLBHSH" v0, n, n chunk hashes
                  "XBLBBND" v1, n, n cumulative stored ends, n cumulative unpacked ends
                  n, offset of the hash section from the end, offset of the boundary section from
                  the end, 16 reserved bytes (an upload nonce, not hashed)
    info_length   u32: the footer's length

Current clients upload the chunks only and leave the footer to the server (older ones sent it). A
stored chunk is raw, LZ4 (one frame), or LZ4 of its bytes grouped by position modulo 4 ("bg4",
which compresses tensors of 4-byte floats better). ``verify_upload`` decompresses and hashes every
chunk, recomputes the Merkle hash, refuses any disagreement with the URL (or an uploaded footer),
and gives the xorb's stored form: the chunks with a footer we wrote from what we computed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum

import lz4.frame  # type: ignore[import-untyped]  # lz4 has no type information

from aicommons.xet.hashing import chunk_hash, to_hex, xorb_hash

MAX_CHUNK_BYTES = 128 * 1024  # the chunker's hard maximum (2 x the 64 KiB target)
MAX_STORED_CHUNK_BYTES = 2 * MAX_CHUNK_BYTES  # compression may grow incompressible data a little
MAX_XORB_CHUNKS = 8192
MAX_XORB_DATA_BYTES = 64 * 1024 * 1024
CHUNK_HEADER_BYTES = 8

IDENT = b"XETBLOB"
IDENT_HASHES = b"XBLBHSH"
IDENT_BOUNDARIES = b"XBLBBND"
FOOTER_VERSION = 1
HASHES_VERSION = 0
BOUNDARIES_VERSION = 1
RESERVED_BYTES = 16
# Everything in a footer except the per-chunk arrays.
_FOOTER_FIXED_BYTES = 3 * 7 + 3 + 32 + 5 * 4 + RESERVED_BYTES
# The largest footer a valid xorb can have: bounds what we read before trusting any count.
MAX_FOOTER_BYTES = _FOOTER_FIXED_BYTES + MAX_XORB_CHUNKS * (32 + 4 + 4)
MAX_XORB_BYTES = MAX_XORB_DATA_BYTES + MAX_XORB_CHUNKS * CHUNK_HEADER_BYTES + MAX_FOOTER_BYTES + 4


class XorbFormatError(ValueError):
    """The bytes are not a well-formed xorb, or do not hash to what they claim."""


class Scheme(IntEnum):
    NONE = 0
    LZ4 = 1
    BG4_LZ4 = 2


@dataclass(frozen=True)
class XorbChunk:
    offset: int  # where the chunk's header starts in the xorb
    stored_size: int  # bytes after the header
    scheme: Scheme
    size: int  # bytes once decompressed
    hash: bytes  # the chunk hash: stated by the footer, or computed when verifying an upload

    @property
    def payload(self) -> slice:
        start = self.offset + CHUNK_HEADER_BYTES
        return slice(start, start + self.stored_size)


@dataclass(frozen=True)
class XorbLayout:
    hash: bytes
    chunks: tuple[XorbChunk, ...]

    @property
    def size(self) -> int:
        """Bytes of all chunks once decompressed."""
        return sum(c.size for c in self.chunks)


class _Reader:
    """Sequential little-endian reads from a byte slice, refusing to run past its end."""

    def __init__(self, data: memoryview, what: str):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise XorbFormatError(f"xorb {self.what} is truncated")
        part = self.data[self.pos:self.pos + n]
        self.pos += n
        return part

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u32s(self, n: int) -> list[int]:
        return list(struct.unpack(f"<{n}I", self.take(4 * n)))

    def hashes(self, n: int) -> list[bytes]:
        raw = bytes(self.take(32 * n))
        return [raw[i:i + 32] for i in range(0, len(raw), 32)]

    def expect(self, ident: bytes, version: int, section: str) -> None:
        if bytes(self.take(len(ident))) != ident:
            raise XorbFormatError(f"xorb {section} has a wrong magic tag")
        found = self.u8()
        if found != version:
            raise XorbFormatError(f"xorb {section} has unsupported version {found} (expected {version})")


def _parse_footer(footer: memoryview) -> tuple[bytes, list[bytes], list[int], list[int]]:
    r = _Reader(footer, "footer")
    r.expect(IDENT, FOOTER_VERSION, "footer")
    declared_hash = bytes(r.take(32))
    hashes_start = r.pos
    r.expect(IDENT_HASHES, HASHES_VERSION, "hash section")
    count = r.u32()
    if count > MAX_XORB_CHUNKS:
        raise XorbFormatError(f"xorb has {count} chunks, more than the maximum of {MAX_XORB_CHUNKS}")
    hashes = r.hashes(count)
    boundaries_start = r.pos
    r.expect(IDENT_BOUNDARIES, BOUNDARIES_VERSION, "boundary section")
    if r.u32() != count:
        raise XorbFormatError("xorb sections disagree on the number of chunks")
    stored_ends = r.u32s(count)
    unpacked_ends = r.u32s(count)
    if r.u32() != count:
        raise XorbFormatError("xorb sections disagree on the number of chunks")
    hashes_from_end, boundaries_from_end = r.u32(), r.u32()
    r.take(RESERVED_BYTES)
    if r.pos != len(footer):
        raise XorbFormatError("xorb footer has trailing bytes")
    if hashes_from_end != len(footer) - hashes_start or boundaries_from_end != len(footer) - boundaries_start:
        raise XorbFormatError("xorb footer section offsets are wrong")
    return declared_hash, hashes, stored_ends, unpacked_ends


def _chunk_at(view: memoryview, pos: int, index: int, limit: int) -> XorbChunk:
    """The chunk whose header starts at ``pos`` (hash left empty), checked against the protocol's
    limits and against ``limit``, where the chunk data ends."""
    if pos + CHUNK_HEADER_BYTES > limit:
        raise XorbFormatError(f"xorb chunk {index} is truncated")
    header = view[pos:pos + CHUNK_HEADER_BYTES]
    version, stored_size, scheme, size = header[0], _u24(header[1:4]), header[4], _u24(header[5:8])
    if version != 0:
        raise XorbFormatError(f"xorb chunk {index} has unsupported header version {version}")
    try:
        scheme = Scheme(scheme)
    except ValueError:
        raise XorbFormatError(f"xorb chunk {index} has unknown compression scheme {scheme}") from None
    if size > MAX_CHUNK_BYTES or stored_size > MAX_STORED_CHUNK_BYTES:
        raise XorbFormatError(f"xorb chunk {index} is larger than the protocol allows")
    if pos + CHUNK_HEADER_BYTES + stored_size > limit:
        raise XorbFormatError(f"xorb chunk {index} is truncated")
    return XorbChunk(pos, stored_size, scheme, size, b"")


def read_layout(data: bytes | memoryview) -> XorbLayout:
    """Parse the structure of a stored xorb (footer and chunk headers) without decompressing.

    Checks that the chunk headers and the footer's boundary tables agree and that the chunks end
    exactly where the footer begins; only ``verify_upload`` checks hashes.
    """
    view = memoryview(data)
    if len(view) < 4:
        raise XorbFormatError("xorb is truncated")
    if len(view) > MAX_XORB_BYTES:
        raise XorbFormatError(f"xorb is larger than the maximum of {MAX_XORB_BYTES} bytes")
    info_length = struct.unpack("<I", view[-4:])[0]
    if info_length > min(MAX_FOOTER_BYTES, len(view) - 4):
        raise XorbFormatError("xorb footer length is implausible")
    data_end = len(view) - 4 - info_length
    declared_hash, hashes, stored_ends, unpacked_ends = _parse_footer(view[data_end:len(view) - 4])
    chunks: list[XorbChunk] = []
    pos, unpacked = 0, 0
    for index, (stored_end, unpacked_end) in enumerate(zip(stored_ends, unpacked_ends)):
        chunk = _chunk_at(view, pos, index, data_end)
        pos = chunk.payload.stop
        unpacked += chunk.size
        if pos != stored_end or unpacked != unpacked_end:
            raise XorbFormatError(f"xorb chunk {index} does not match the footer's boundary table")
        chunks.append(replace(chunk, hash=hashes[index]))
    if pos != data_end:
        raise XorbFormatError("xorb has bytes between its last chunk and its footer")
    if unpacked > MAX_XORB_DATA_BYTES:
        raise XorbFormatError(f"xorb holds more than {MAX_XORB_DATA_BYTES} bytes of data")
    return XorbLayout(declared_hash, tuple(chunks))


@dataclass(frozen=True)
class XorbIndex:
    """Where each chunk of a stored xorb lies, read from its footer alone: all that planning a
    download needs, without reading (or decompressing) any chunk."""

    stored_ends: tuple[int, ...]  # end of chunk i (header + payload) in the stored xorb
    unpacked_ends: tuple[int, ...]  # decompressed bytes of chunks 0..i together

    def __len__(self) -> int:
        return len(self.stored_ends)

    def unpacked_size(self, start: int, end: int) -> int:
        """Decompressed bytes of chunks ``[start, end)``."""
        return (self.unpacked_ends[end - 1] if end else 0) - (self.unpacked_ends[start - 1] if start else 0)

    def byte_range(self, start: int, end: int) -> tuple[int, int]:
        """First and last (inclusive, as in an HTTP Range) stored byte of chunks ``[start, end)``."""
        return (self.stored_ends[start - 1] if start else 0), self.stored_ends[end - 1] - 1


def footer_length(last_four: bytes) -> int:
    """The footer length a stored xorb ends with (its last 4 bytes), checked for plausibility."""
    length = struct.unpack("<I", last_four)[0]
    if length > MAX_FOOTER_BYTES:
        raise XorbFormatError("xorb footer length is implausible")
    return length


def read_footer(footer: bytes | memoryview) -> tuple[bytes, list[bytes], list[int], list[int]]:
    """(xorb hash, chunk hashes, stored ends, unpacked ends) of a stored xorb's footer (without the
    trailing length)."""
    return _parse_footer(memoryview(footer))


def read_index(footer: bytes | memoryview) -> XorbIndex:
    """The chunk index of a stored xorb from its footer (without the trailing length)."""
    _hash, _hashes, stored_ends, unpacked_ends = _parse_footer(memoryview(footer))
    for ends in (stored_ends, unpacked_ends):  # every chunk has a header and at least one byte
        if not ends or any(b <= a for a, b in zip([0, *ends], ends)):
            raise XorbFormatError("xorb boundary table is not increasing")
    return XorbIndex(tuple(stored_ends), tuple(unpacked_ends))


def _u24(three: memoryview) -> int:
    return three[0] | three[1] << 8 | three[2] << 16


def _lz4_decompress(payload: memoryview, size: int) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:  # read in place (the binding takes any buffer): no copy of the payload first
        out = decompressor.decompress(payload, max_length=size + 1)
    except RuntimeError as exc:  # the lz4 binding's error for a corrupt frame
        raise XorbFormatError(f"corrupt LZ4 data: {exc}") from None
    if len(out) != size or not decompressor.eof or decompressor.unused_data:
        raise XorbFormatError("LZ4 data does not decompress to the declared chunk length")
    return out


def bg4_split(data: bytes) -> bytes:
    """Group the bytes by position modulo 4: all bytes 0, 4, 8, ..., then 1, 5, 9, ..., and so on."""
    return b"".join(data[k::4] for k in range(4))


def bg4_join(grouped: bytes) -> bytes:
    out = bytearray(len(grouped))
    pos = 0
    for k in range(4):
        count = len(range(k, len(grouped), 4))
        out[k::4] = grouped[pos:pos + count]
        pos += count
    return bytes(out)


def chunk_bytes(data: bytes | memoryview, chunk: XorbChunk) -> bytes:
    """The decompressed bytes of one chunk (its length is checked, its hash is not)."""
    payload = memoryview(data)[chunk.payload]
    if chunk.scheme == Scheme.NONE:
        if len(payload) != chunk.size:
            raise XorbFormatError("uncompressed chunk length does not match its header")
        return bytes(payload)
    raw = _lz4_decompress(payload, chunk.size)
    return bg4_join(raw) if chunk.scheme == Scheme.BG4_LZ4 else raw


@dataclass(frozen=True)
class VerifiedXorb:
    """An uploaded xorb that checked out. Its stored form is ``chunk_data`` (the uploaded chunks,
    not copied: xorbs are up to 64 MiB) followed by ``footer``, which we wrote from what we hashed."""

    layout: XorbLayout
    chunk_data: memoryview
    footer: bytes

    def stored(self) -> bytes:
        return bytes(self.chunk_data) + self.footer


def verify_upload(data: bytes | memoryview, expected_hash: bytes) -> VerifiedXorb:
    """Check an uploaded xorb held whole: decompress and hash every chunk, recompute the xorb's Merkle
    hash and compare it with ``expected_hash`` (the hash it is uploaded under) and with the footer, if
    the client sent one (``XorbReceiver`` does it as the bytes arrive)."""
    view = memoryview(data)
    if len(view) > MAX_XORB_BYTES:
        raise XorbFormatError(f"xorb is larger than the maximum of {MAX_XORB_BYTES} bytes")
    receiver = XorbReceiver(expected_hash)
    receiver.feed(view)
    layout, footer = receiver.finish()
    return VerifiedXorb(layout, view[:receiver.chunk_bytes], footer)


class XorbReceiver:
    """``verify_upload`` for a xorb that is still arriving: fed the upload's bytes in pieces, it
    decompresses and hashes each chunk as soon as it is whole and passes its stored bytes (header and
    payload, as received) to ``write``, holding at most one chunk in memory. ``finish`` checks the
    Merkle hash (and the client's footer, if it sent one) and returns the footer to store after the
    chunks. One pass over each byte: nothing is hashed or decompressed again before it is stored."""

    def __init__(self, expected_hash: bytes, write: Callable[[memoryview], object] | None = None):
        self.expected_hash = expected_hash
        self._write = write
        self._buffer = bytearray()
        self._footer: bytearray | None = None  # the client's footer, once its tag was seen
        self.chunks: list[XorbChunk] = []
        self.received = 0
        self._offset = 0  # where the next chunk's header starts in the xorb
        self._unpacked = 0

    def feed(self, data: bytes | memoryview) -> None:
        self.received += len(data)
        if self.received > MAX_XORB_BYTES:
            raise XorbFormatError(f"xorb is larger than the maximum of {MAX_XORB_BYTES} bytes")
        view = memoryview(data)
        while view:
            if self._footer is not None:
                self._footer += view
                return
            if not self._buffer:
                # The chunks that lie whole in this piece are read where they are (no copy); only
                # a chunk cut by the piece's end waits in the buffer for the next piece.
                used = self._take_chunks(view)
                if self._footer is None:
                    self._buffer += view[used:]
                return
            # Complete the chunk (or footer tag) begun in an earlier piece, copying only its missing bytes.
            missing = self._missing()
            self._buffer += view[:missing]
            view = view[missing:]
            with memoryview(self._buffer) as buffered:
                used = self._take_chunks(buffered)
            if self._footer is None:
                del self._buffer[:used]
            else:
                self._buffer.clear()

    def _missing(self) -> int:
        """Bytes the buffer still lacks to hold the header, then the whole chunk, it begins with."""
        buffer = self._buffer
        if len(buffer) < CHUNK_HEADER_BYTES:
            return CHUNK_HEADER_BYTES - len(buffer)
        stored_size = buffer[1] | buffer[2] << 8 | buffer[3] << 16  # checked by _chunk_at
        return max(1, CHUNK_HEADER_BYTES + stored_size - len(buffer))

    def _take_chunks(self, view: memoryview) -> int:
        """Verify and write every whole chunk at the start of ``view``; how many bytes they took (all of
        them once the client's footer starts: it is kept in ``_footer``)."""
        pos = 0
        while len(view) - pos >= CHUNK_HEADER_BYTES:
            if view[pos] == IDENT[0]:  # a chunk header starts with version 0: this is a footer
                if bytes(view[pos:pos + len(IDENT)]) == IDENT:
                    self._footer = bytearray(view[pos:])
                    self._write_verified(view[:pos])
                    return len(view)
            index = len(self.chunks)
            if index == MAX_XORB_CHUNKS:
                raise XorbFormatError(f"xorb has more than the maximum of {MAX_XORB_CHUNKS} chunks")
            header = _chunk_at(view, pos, index, len(view) + MAX_STORED_CHUNK_BYTES + CHUNK_HEADER_BYTES)
            end = pos + CHUNK_HEADER_BYTES + header.stored_size
            if end > len(view):
                break  # the rest of this chunk is still on its way
            self._unpacked += header.size
            if self._unpacked > MAX_XORB_DATA_BYTES:
                raise XorbFormatError(f"xorb holds more than {MAX_XORB_DATA_BYTES} bytes of data")
            stored = view[pos:end]
            if header.scheme == Scheme.NONE:
                content: bytes | memoryview = stored[CHUNK_HEADER_BYTES:]
                if len(content) != header.size:
                    raise XorbFormatError("uncompressed chunk length does not match its header")
            else:
                content = chunk_bytes(stored, replace(header, offset=0))
            self.chunks.append(XorbChunk(self._offset, header.stored_size, header.scheme, header.size,
                                         chunk_hash(content)))
            self._offset += end - pos
            pos = end
        self._write_verified(view[:pos])
        return pos

    def _write_verified(self, stored: memoryview) -> None:
        """The stored bytes of the chunks just verified, in one write (the stager cuts it into
        page-cache-friendly pieces)."""
        if self._write is not None and stored:
            self._write(stored)

    @property
    def chunk_bytes(self) -> int:
        """Bytes of the whole chunks verified so far (where the client's footer starts, if any)."""
        return self._offset

    def finish(self) -> tuple[XorbLayout, bytes]:
        """(layout, footer to store) of the whole xorb, once every byte was fed."""
        if self._buffer:
            if self._footer is None and self._buffer[:1] == IDENT[:1] and len(self._buffer) < len(IDENT):
                raise XorbFormatError("xorb footer is truncated")
            raise XorbFormatError(f"xorb chunk {len(self.chunks)} is truncated")
        if not self.chunks:
            raise XorbFormatError("xorb has no chunks")
        computed = xorb_hash([(c.hash, c.size) for c in self.chunks])
        if computed != self.expected_hash:
            raise XorbFormatError(f"xorb content hashes to {to_hex(computed)}, not to {to_hex(self.expected_hash)} "
                                  "it was uploaded as")
        footer = _footer(computed, self.chunks)
        # The client sent a footer: it must describe exactly these chunks.
        if self._footer is not None and not self._same_description(bytes(self._footer), computed):
            raise XorbFormatError("xorb footer does not match its chunks")
        return XorbLayout(computed, tuple(self.chunks)), footer

    def _same_description(self, sent: bytes, computed: bytes) -> bool:
        """Whether the footer the client sent (with its trailing length) describes our chunks."""
        if len(sent) < 4 or struct.unpack("<I", sent[-4:])[0] != len(sent) - 4:
            raise XorbFormatError("xorb footer length is implausible")
        declared_hash, hashes, stored_ends, unpacked_ends = _parse_footer(memoryview(sent)[:-4])
        ours_stored = [c.offset + CHUNK_HEADER_BYTES + c.stored_size for c in self.chunks]
        ours_unpacked, total = [], 0
        for c in self.chunks:
            total += c.size
            ours_unpacked.append(total)
        if stored_ends != ours_stored or unpacked_ends != ours_unpacked:
            raise XorbFormatError("xorb chunk 0 does not match the footer's boundary table")
        return declared_hash == computed and hashes == [c.hash for c in self.chunks]


def _footer(digest: bytes, chunks: Sequence[XorbChunk]) -> bytes:
    """The footer (and trailing length) of a xorb holding ``chunks``, which start at offset 0."""
    n = len(chunks)
    stored_ends = [c.payload.stop for c in chunks]
    unpacked_ends, total = [], 0
    for c in chunks:
        total += c.size
        unpacked_ends.append(total)
    hash_section = IDENT_HASHES + bytes([HASHES_VERSION]) + struct.pack("<I", n) + b"".join(c.hash for c in chunks)
    boundaries = (IDENT_BOUNDARIES + bytes([BOUNDARIES_VERSION]) + struct.pack("<I", n)
                  + struct.pack(f"<{n}I", *stored_ends) + struct.pack(f"<{n}I", *unpacked_ends))
    boundaries_from_end = len(boundaries) + 3 * 4 + RESERVED_BYTES
    hashes_from_end = len(hash_section) + boundaries_from_end
    footer = (IDENT + bytes([FOOTER_VERSION]) + digest + hash_section + boundaries
              + struct.pack("<III", n, hashes_from_end, boundaries_from_end) + bytes(RESERVED_BYTES))
    return footer + struct.pack("<I", len(footer))


def serialize_xorb(chunks: Sequence[bytes], scheme: Scheme = Scheme.LZ4,
                   footer: bool = False) -> tuple[bytes, bytes]:
    """(serialized xorb, xorb hash) for ``chunks``, as a client uploads it (``footer=False``) or as
    we store it. A chunk that does not shrink is stored raw. Used by tests and tools."""
    if not 0 < len(chunks) <= MAX_XORB_CHUNKS:
        raise ValueError("a xorb holds 1 to 8192 chunks")
    body, parsed = bytearray(), []
    for chunk in chunks:
        if len(chunk) > MAX_CHUNK_BYTES:
            raise ValueError("chunk too large")
        stored, used = bytes(chunk), Scheme.NONE
        if scheme != Scheme.NONE:
            grouped = bg4_split(chunk) if scheme == Scheme.BG4_LZ4 else bytes(chunk)
            packed = lz4.frame.compress(grouped)
            if len(packed) < len(chunk):
                stored, used = packed, scheme
        parsed.append(XorbChunk(len(body), len(stored), used, len(chunk), chunk_hash(chunk)))
        body += bytes([0]) + len(stored).to_bytes(3, "little") + bytes([used]) + len(chunk).to_bytes(3, "little")
        body += stored
    digest = xorb_hash([(c.hash, c.size) for c in parsed])
    return bytes(body) + (_footer(digest, parsed) if footer else b""), digest
