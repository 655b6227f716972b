"""Shards: how a Xet client tells the CAS which files it uploaded and which xorbs hold them.

A shard is a 48-byte header followed by two sections of fixed 48-byte entries, each section ended by
a "bookend" entry whose hash is all 0xFF bytes (integers little-endian):

    header        32-byte magic tag, version u64 (2), footer size u64
    file info     per file: header (file hash, flags u32, n u32, 8 unused bytes)
                            n segments (xorb hash, flags u32, bytes u32, first chunk u32, end chunk u32)
                            n verification entries (range hash, 16 unused) if flag bit 31
                            one metadata entry (sha256, 16 unused) if flag bit 30
    xorb info     per xorb: header (xorb hash, flags u32, n u32, data bytes u32, stored bytes u32)
                            n chunks (chunk hash, byte offset u32, bytes u32, flags u32, unused u32)
    (lookup tables and a footer follow; we read the sections sequentially and need neither)

A segment names the chunk range ``[first, end)`` of one xorb. The file hash is the Merkle hash of
all those chunks in order, and each verification entry hashes the chunk hashes of its segment: the
server checks both against the stored xorbs (``reconstruct.py``). The sha256 is stored like a Xet
hash, so its printed (word-reversed) form is the usual sha256 hex.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from aicommons.xet.hashing import from_hex, to_hex

MAX_SHARD_BYTES = 64 * 1024 * 1024
HEADER_TAG = b"HFRepoMetaData" + bytes([0, 85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205,
                                        209, 74, 169])
HEADER_VERSION = 2
FOOTER_VERSION = 1
FOOTER_BYTES = 200
ENTRY_BYTES = 48
BOOKEND = b"\xff" * 32
FLAG_VERIFICATION = 1 << 31
FLAG_METADATA = 1 << 30


class ShardFormatError(ValueError):
    """The bytes are not a well-formed shard."""


@dataclass(frozen=True)
class FileSegment:
    xorb_hash: bytes
    size: int  # bytes of the chunk range once decompressed
    chunk_start: int
    chunk_end: int  # exclusive


@dataclass(frozen=True)
class ShardFile:
    hash: bytes
    segments: tuple[FileSegment, ...]
    verification: tuple[bytes, ...] | None  # one range hash per segment
    sha256: str | None  # hex, when the client sent it

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def hex(self) -> str:
        return to_hex(self.hash)


@dataclass(frozen=True)
class ShardChunk:
    hash: bytes
    offset: int  # start of the chunk in the xorb's decompressed data
    size: int


@dataclass(frozen=True)
class ShardXorb:
    hash: bytes
    chunks: tuple[ShardChunk, ...]
    size: int  # bytes of data in the xorb, decompressed
    stored_size: int  # bytes of the serialized xorb (0 when the client did not say)


@dataclass(frozen=True)
class Shard:
    files: tuple[ShardFile, ...]
    xorbs: tuple[ShardXorb, ...]


class _Entries:
    """Reads consecutive 48-byte entries, refusing to run past the end of the shard."""

    def __init__(self, data: memoryview, pos: int):
        self.data, self.pos = data, pos

    def next(self, what: str) -> memoryview:
        if self.pos + ENTRY_BYTES > len(self.data):
            raise ShardFormatError(f"shard is truncated in the {what}")
        entry = self.data[self.pos:self.pos + ENTRY_BYTES]
        self.pos += ENTRY_BYTES
        return entry

    def left(self) -> int:
        return (len(self.data) - self.pos) // ENTRY_BYTES


def _parse_file(entries: _Entries, header: memoryview) -> ShardFile:
    file_hash = bytes(header[:32])
    flags, count = struct.unpack_from("<II", header, 32)
    has_verification, has_metadata = bool(flags & FLAG_VERIFICATION), bool(flags & FLAG_METADATA)
    needed = count * (2 if has_verification else 1) + has_metadata
    if needed > entries.left():
        raise ShardFormatError(f"shard file {to_hex(file_hash)} declares more entries than the shard holds")
    segments = []
    for _ in range(count):
        entry = entries.next("file info section")
        size, start, end = struct.unpack_from("<III", entry, 36)
        if start >= end:
            raise ShardFormatError(f"shard file {to_hex(file_hash)} has an empty or reversed chunk range")
        segments.append(FileSegment(bytes(entry[:32]), size, start, end))
    verification = None
    if has_verification:
        verification = tuple(bytes(entries.next("file info section")[:32]) for _ in range(count))
    sha256 = None
    if has_metadata:
        sha256 = to_hex(bytes(entries.next("file info section")[:32]))
    return ShardFile(file_hash, tuple(segments), verification, sha256)


def _parse_xorb(entries: _Entries, header: memoryview) -> ShardXorb:
    xorb_hash = bytes(header[:32])
    _flags, count, size, stored_size = struct.unpack_from("<IIII", header, 32)
    if count > entries.left():
        raise ShardFormatError(f"shard xorb {to_hex(xorb_hash)} declares more chunks than the shard holds")
    chunks = []
    for _ in range(count):
        entry = entries.next("xorb info section")
        offset, chunk_size = struct.unpack_from("<II", entry, 32)
        chunks.append(ShardChunk(bytes(entry[:32]), offset, chunk_size))
    return ShardXorb(xorb_hash, tuple(chunks), size, stored_size)


def parse_shard(data: bytes | memoryview) -> Shard:
    view = memoryview(data)
    if len(view) > MAX_SHARD_BYTES:
        raise ShardFormatError(f"shard is larger than the maximum of {MAX_SHARD_BYTES} bytes")
    if len(view) < 48 or bytes(view[:32]) != HEADER_TAG:
        raise ShardFormatError("not a Xet shard (wrong magic tag)")
    version = struct.unpack_from("<Q", view, 32)[0]
    if version != HEADER_VERSION:
        raise ShardFormatError(f"unsupported shard version {version} (expected {HEADER_VERSION})")
    entries = _Entries(view, 48)
    files, xorbs = [], []
    while (header := entries.next("file info section"))[:32] != BOOKEND:
        files.append(_parse_file(entries, header))
    while (header := entries.next("xorb info section"))[:32] != BOOKEND:
        xorbs.append(_parse_xorb(entries, header))
    return Shard(tuple(files), tuple(xorbs))


def serialize_shard(files: Sequence[ShardFile], xorbs: Sequence[ShardXorb] = (), *, hmac_key: bytes = bytes(32),
                    created: int = 0, expiry: int = 2 ** 64 - 1) -> bytes:
    """A shard holding ``files`` and ``xorbs`` (no lookup tables: readers scan the sections), as a
    client uploads it, or, with ``hmac_key`` (its chunk hashes keyed with it) and an ``expiry``, as
    the global dedup answer (``dedup.py``)."""
    out = bytearray(HEADER_TAG + struct.pack("<QQ", HEADER_VERSION, FOOTER_BYTES))
    file_info_offset = len(out)
    for f in files:
        flags = (FLAG_VERIFICATION if f.verification is not None else 0) | (FLAG_METADATA if f.sha256 else 0)
        out += f.hash + struct.pack("<IIQ", flags, len(f.segments), 0)
        for s in f.segments:
            out += s.xorb_hash + struct.pack("<IIII", 0, s.size, s.chunk_start, s.chunk_end)
        for range_hash in f.verification or ():
            out += range_hash + bytes(16)
        if f.sha256:
            out += from_hex(f.sha256) + bytes(16)
    out += BOOKEND + bytes(16)
    xorb_info_offset = len(out)
    for x in xorbs:
        out += x.hash + struct.pack("<IIII", 0, len(x.chunks), x.size, x.stored_size)
        for c in x.chunks:
            out += c.hash + struct.pack("<IIII", c.offset, c.size, 0, 0)
    out += BOOKEND + bytes(16)
    end = len(out)
    # Footer: version, section offsets, empty lookup tables at the end of the sections, the chunk
    # HMAC key (zeros: none), creation and expiry times, reserved words, byte counts, footer offset.
    out += struct.pack("<9Q", FOOTER_VERSION, file_info_offset, xorb_info_offset, end, 0, end, 0, end, 0)
    out += hmac_key + struct.pack("<QQ", created, expiry) + bytes(48)
    data_bytes = sum(x.size for x in xorbs)
    out += struct.pack("<4Q", sum(x.stored_size for x in xorbs), data_bytes, data_bytes, end)
    return bytes(out)
