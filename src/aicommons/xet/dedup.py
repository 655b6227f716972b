"""Global deduplication: ``GET /v1/chunks/default/{chunk}`` answered as the Xet protocol says.

While uploading, hf_xet asks about a few of its chunks (the first chunk of every file, and chunks
whose hash is 0 mod 1024, at least 4 MiB apart). If we hold the chunk we answer with a shard that
has no file section and, in its xorb section, the xorb holding that chunk plus the other xorbs the
same upload stored (a new revision of a file usually reuses all of them). The client then
references those xorbs' chunk ranges in its own shard instead of uploading them again.

The index keeps, per chunk, the newest upload that used it: a chain of checkpoints, each changing a
little of the last, dedups against the previous one, not only against the first.

What the answer may tell (and ``test_global_dedup`` tries to learn more):

- every chunk hash in it is keyed, ``blake3(key=K, raw chunk hash)`` with a random key K per
  answer (in the shard footer), so a client finds in it only chunks whose raw hash it already
  knows, that is chunks it has: the hashes of other people's chunks stay unknown to it, and two
  answers cannot be correlated;
- no file section: no file hash, no sha256, no repo, no sizes of anyone's files;
- only a client holding the chunk can ask about it (raw chunk hashes are never handed out), and
  "we hold it" is all it learns. Its shard must still prove, for every segment it references, that
  it knows the chunk hashes (verification entries, checked at ingest against the stored xorb), so
  keyed hashes cannot be replayed into a claim on chunks it does not have. Reading a xorb needs a
  reconstruction of a file the reader's repo references (``reads.py``).

The xorbs named in an answer are leased (GC keeps them through the grace period), and the answer
expires (``ANSWER_TTL``) before a lease does, so a client never references a xorb GC removed.
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Iterable

from blake3 import blake3

from aicommons.db.xet import XetDedupStore
from aicommons.storage.base import BlobStore, StorageError
from aicommons.times import utcnow
from aicommons.xet.hashing import from_hex, to_hex
from aicommons.xet.keys import shard_key, xorb_key
from aicommons.xet.shard import Shard, ShardChunk, ShardFormatError, ShardXorb, parse_shard, serialize_shard
from aicommons.xet.xorb import XorbFormatError, footer_length, read_footer

ELIGIBLE_MODULUS = 1024
MAX_XORBS_PER_ANSWER = 64
ANSWER_TTL = 6 * 3600  # seconds a client may dedup against an answer (less than GC's grace period)


def eligible(raw_hash: bytes) -> bool:
    """Whether hf_xet would ask about a chunk for its hash alone (the last little-endian word)."""
    return int.from_bytes(raw_hash[24:32], "little") % ELIGIBLE_MODULUS == 0


def keyed(raw_hash: bytes, key: bytes) -> bytes:
    return blake3(raw_hash, key=key).digest()


def stored_footer(blobs: BlobStore, xorb_hash: bytes) -> tuple[list[bytes], list[int], list[int], int] | None:
    """(chunk hashes, stored ends, unpacked ends, stored size) of a stored xorb, from its footer
    alone; None if the xorb is missing or unreadable."""
    key = xorb_key(to_hex(xorb_hash))
    size = blobs.size(key)
    if size is None or size < 4:
        return None
    try:
        with blobs.open(key) as f:
            f.seek(size - 4)
            length = footer_length(f.read(4))
            if length + 4 > size:
                return None
            f.seek(size - 4 - length)
            _declared, hashes, stored_ends, unpacked_ends = read_footer(f.read(length))
    except (XorbFormatError, struct.error, StorageError):
        return None
    return hashes, stored_ends, unpacked_ends, size


class DedupIndex:
    def __init__(self, store: XetDedupStore, blobs: BlobStore):
        self.store, self.blobs = store, blobs

    # --- indexing accepted uploads ----------------------------------------------------------------

    def index_shard(self, shard: Shard, shard_sha: str) -> int:
        """Index the chunks a client may ask about, pointing at this (the newest) upload: each file's
        first chunk and every eligible chunk its segments use (from the stored xorbs' footers), and
        the eligible chunks of the xorbs the shard describes (checked against the stored xorbs)."""
        rows: dict[str, tuple[str, str, str]] = {}
        footers: dict[bytes, list[bytes] | None] = {}

        def hashes_of(xorb_hash: bytes) -> list[bytes]:
            if xorb_hash not in footers:
                found = stored_footer(self.blobs, xorb_hash)
                footers[xorb_hash] = found[0] if found else None
            return footers[xorb_hash] or []

        for entry in shard.files:
            for n, segment in enumerate(entry.segments):
                hashes = hashes_of(segment.xorb_hash)
                for index in range(segment.chunk_start, min(segment.chunk_end, len(hashes))):
                    if (n == 0 and index == segment.chunk_start) or eligible(hashes[index]):
                        name = to_hex(hashes[index])
                        rows.setdefault(name, (name, to_hex(segment.xorb_hash), shard_sha))
        for xorb in shard.xorbs:
            for chunk in xorb.chunks:
                if eligible(chunk.hash):
                    name = to_hex(chunk.hash)
                    rows.setdefault(name, (name, to_hex(xorb.hash), shard_sha))
        if rows:
            self.store.add(list(rows.values()), utcnow())
        return len(rows)

    # --- answering -------------------------------------------------------------------------------

    def answer(self, chunk_hex: str) -> bytes | None:
        """The dedup shard for a chunk, or None if we do not hold it (the same 404 either way
        whether nobody ever uploaded it or it was collected)."""
        found = self.store.lookup(chunk_hex)
        if found is None:
            return None
        xorb_hex, shard_sha = found
        key = secrets.token_bytes(32)
        xorbs = []
        for xorb_hash in self._answer_xorbs(from_hex(xorb_hex), shard_sha):
            described = self._describe(xorb_hash, key)
            if described is not None:
                xorbs.append(described)
        if not xorbs or xorbs[0].hash != from_hex(xorb_hex):
            return None  # the chunk's own xorb is gone (collected): nothing to dedup against
        now = int(time.time())
        return serialize_shard((), xorbs, hmac_key=key, created=now, expiry=now + ANSWER_TTL)

    def _answer_xorbs(self, first: bytes, shard_sha: str) -> list[bytes]:
        """The chunk's xorb, then the other xorbs of the upload that stored it."""
        out = [first]
        try:
            with self.blobs.open(shard_key(shard_sha)) as f:
                shard = parse_shard(f.read())
        except (StorageError, ShardFormatError):
            return out
        for xorb_hash in _xorbs_of(shard):
            if xorb_hash not in out:
                out.append(xorb_hash)
            if len(out) >= MAX_XORBS_PER_ANSWER:
                break
        return out

    def _describe(self, xorb_hash: bytes, key: bytes) -> ShardXorb | None:
        """A xorb's entry for an answer, from our own stored footer (never the client's word), with
        keyed chunk hashes; the xorb is leased so that GC keeps it while the client may use it."""
        leases = getattr(self.blobs, "leases", None)
        if leases is not None:
            leases.touch_lease(xorb_key(to_hex(xorb_hash)), utcnow())
        found = stored_footer(self.blobs, xorb_hash)
        if found is None:
            return None
        hashes, _stored_ends, unpacked_ends, stored_size = found
        chunks, start = [], 0
        for raw, end in zip(hashes, unpacked_ends):
            chunks.append(ShardChunk(keyed(raw, key), start, end - start))
            start = end
        return ShardXorb(xorb_hash, tuple(chunks), start, stored_size)


def _xorbs_of(shard: Shard) -> Iterable[bytes]:
    for xorb in shard.xorbs:
        yield xorb.hash
    for entry in shard.files:
        for segment in entry.segments:
            yield segment.xorb_hash
