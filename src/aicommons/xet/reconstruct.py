"""Rebuild a file that a shard describes from stored xorbs, checking the shard's claims on the way.

The shard is the client's word; the stored xorbs were verified when they were uploaded. A file is
accepted only if, for every segment, the chunk range exists in the stored xorb, its sizes add up,
and its verification hash matches the hashes of those chunks (proving the uploader knew them), and
if all its chunks together hash to the file hash. The bytes are written while checking, so that the
caller can hash and stage them in the same pass; the caller discards the output if we raise.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Protocol

from aicommons.xet.hashing import chunk_hash, file_hash, range_hash, to_hex
from aicommons.xet.shard import ShardFile, ShardXorb
from aicommons.xet.xorb import Scheme, XorbFormatError, XorbLayout, chunk_bytes


class ShardRejected(ValueError):
    """The shard claims something the stored xorbs do not back."""


class XorbSource(Protocol):
    def load(self, xorb_hash: bytes) -> tuple[bytes | mmap.mmap, XorbLayout]:
        """The stored xorb's bytes and layout; raises ShardRejected if it was never uploaded."""

    def layout(self, xorb_hash: bytes) -> XorbLayout:
        """Just the layout (a source may answer it without reading the xorb again)."""

    def verified_recently(self, xorb_hash: bytes) -> bool:
        """Whether this process hashed the xorb's chunks itself lately (no need to again)."""


def unbacked(name: str, index: int, xorb: bytes) -> ShardRejected:
    # One answer whether the xorb is missing, shorter, of other sizes or of other chunks: a shard must
    # not tell its uploader anything about a xorb it cannot prove it knows (a private file's xorb).
    return ShardRejected(f"file {name} segment {index} cannot be verified against xorb {to_hex(xorb)}: "
                         "upload the xorb, and describe its chunks as they are")


def rebuild_file(entry: ShardFile, source: XorbSource, write: Callable[[bytes | memoryview], object] | None) -> None:
    """Check ``entry`` against the stored xorbs, passing its bytes to ``write`` (if given) in order."""
    name = entry.hex
    if entry.verification is None or len(entry.verification) != len(entry.segments):
        raise ShardRejected(f"file {name} has no verification entries: upload it with a current hf_xet")
    nodes: list[tuple[bytes, int]] = []
    for index, (segment, proof) in enumerate(zip(entry.segments, entry.verification)):
        try:
            data, layout = source.load(segment.xorb_hash)
        except ShardRejected:
            raise unbacked(name, index, segment.xorb_hash) from None
        chunks = layout.chunks[segment.chunk_start:segment.chunk_end]
        if (segment.chunk_end > len(layout.chunks) or range_hash([c.hash for c in chunks]) != proof
                or sum(c.size for c in chunks) != segment.size):
            raise unbacked(name, index, segment.xorb_hash)
        nodes.extend((c.hash, c.size) for c in chunks)
        if write is not None:
            # A xorb this process verified lately was hashed as it arrived; others are checked again
            # (bit rot in storage: never hand out wrong bytes).
            recheck = not source.verified_recently(segment.xorb_hash)
            view = memoryview(data)
            for chunk in chunks:
                try:
                    content = view[chunk.payload] if chunk.scheme == Scheme.NONE else chunk_bytes(view, chunk)
                except XorbFormatError as exc:
                    raise ShardRejected(f"stored xorb {to_hex(segment.xorb_hash)} is unreadable: {exc}") from None
                if len(content) != chunk.size or (recheck and chunk_hash(content) != chunk.hash):
                    raise ShardRejected(f"stored xorb {to_hex(segment.xorb_hash)} is corrupt")
                write(content)
    if file_hash(nodes) != entry.hash:
        raise ShardRejected(f"file {name} does not match the hash of its chunks")


def check_xorb_entry(entry: ShardXorb, source: XorbSource) -> None:
    """The shard's description of an uploaded xorb must be the stored xorb's (later dedup trusts it).
    One answer for a missing xorb and a wrong description, like ``rebuild_file``."""
    refused = ShardRejected(f"the shard's description of xorb {to_hex(entry.hash)} does not match an uploaded xorb")
    try:
        layout = source.layout(entry.hash)
    except ShardRejected:
        raise refused from None
    if len(entry.chunks) != len(layout.chunks):
        raise refused
    offset = 0
    for claimed, stored in zip(entry.chunks, layout.chunks):
        if claimed.hash != stored.hash or claimed.size != stored.size or claimed.offset != offset:
            raise refused
        offset += stored.size
