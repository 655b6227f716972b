"""The Xet read side without a server: xorb indexes, range -> terms planning, signed xorb URLs."""

from __future__ import annotations

import random

import pytest

from aicommons.errors import Forbidden, RangeNotSatisfiable
from aicommons.xet.fetch_urls import XorbRangeSigner, requested_range
from aicommons.xet.shard import FileSegment
from aicommons.xet.terms import EMPTY, ReconstructionError, Term, XorbFetch, plan
from aicommons.xet.xorb import (
    CHUNK_HEADER_BYTES,
    Scheme,
    XorbFormatError,
    XorbIndex,
    footer_length,
    read_index,
    read_layout,
    serialize_xorb,
)

# --- xorb indexes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", list(Scheme))
def test_xorb_index_from_the_footer_matches_the_chunk_layout(scheme):
    rng = random.Random(3)
    chunks = [rng.randbytes(20_000), b"z" * 30_000, rng.randbytes(5), bytes(range(256)) * 40]
    stored, _ = serialize_xorb(chunks, scheme, footer=True)
    length = footer_length(stored[-4:])
    index = read_index(stored[-4 - length:-4])
    layout = read_layout(stored)
    assert len(index) == 4
    for i, chunk in enumerate(layout.chunks):
        assert index.unpacked_size(i, i + 1) == len(chunks[i])
        assert index.byte_range(i, i + 1) == (chunk.offset, chunk.payload.stop - 1)
    assert index.unpacked_size(0, 4) == sum(map(len, chunks))
    first, last = index.byte_range(1, 3)  # what a fetch of chunks 1..2 downloads: headers included
    assert stored[first:first + CHUNK_HEADER_BYTES] == stored[layout.chunks[1].offset:layout.chunks[1].payload.start]
    assert last + 1 == layout.chunks[3].offset


def test_implausible_footers_are_refused():
    with pytest.raises(XorbFormatError):
        footer_length((10 ** 9).to_bytes(4, "little"))
    stored, _ = serialize_xorb([b"a" * 100], footer=True)
    with pytest.raises(XorbFormatError):
        read_index(stored[-4 - footer_length(stored[-4:]) + 1:-4])


# --- planning -------------------------------------------------------------------------------------

X, Y = b"\x01" * 32, b"\x02" * 32


def _index(sizes: list[int]) -> XorbIndex:
    """A xorb whose chunk i decompresses to sizes[i] and is stored as 8 + sizes[i] // 2 bytes."""
    stored, unpacked, s, u = [], [], 0, 0
    for size in sizes:
        s += CHUNK_HEADER_BYTES + size // 2
        u += size
        stored.append(s)
        unpacked.append(u)
    return XorbIndex(tuple(stored), tuple(unpacked))


INDEXES = {X: _index([100, 200, 300, 400]), Y: _index([50, 50])}
# The file: X chunks 1..2 (500 bytes), Y chunks 0..1 (100), X chunks 0..3 (1000) -> 1600 bytes.
SEGMENTS = [FileSegment(X, 500, 1, 3), FileSegment(Y, 100, 0, 2), FileSegment(X, 1000, 0, 4)]


def _plan(first, end):
    return plan(SEGMENTS, INDEXES.__getitem__, first, end)


def test_whole_file():
    rec = _plan(0, 1600)
    assert rec.offset_into_first_range == 0
    assert rec.terms == (Term(X, 1, 3, 500), Term(Y, 0, 2, 100), Term(X, 0, 4, 1000))
    # X's two chunk ranges overlap: one fetch covers both, and it is the whole xorb.
    assert rec.fetches == {X: [XorbFetch(0, 4, 0, INDEXES[X].stored_ends[3] - 1, whole_xorb=True)],
                           Y: [XorbFetch(0, 2, 0, INDEXES[Y].stored_ends[1] - 1, whole_xorb=True)]}


def test_a_range_starting_and_ending_inside_chunks_keeps_whole_chunks():
    rec = _plan(150, 520)  # starts in X chunk 1 (file 0..199), ends in Y chunk 0 (file 500..549)
    assert rec.offset_into_first_range == 150
    assert rec.terms == (Term(X, 1, 3, 500), Term(Y, 0, 1, 50))
    rec = _plan(250, 551)  # X chunk 2 (file 200..499) from byte 50, then Y chunks 0 and 1
    assert rec.offset_into_first_range == 50
    assert rec.terms == (Term(X, 2, 3, 300), Term(Y, 0, 2, 100))
    assert rec.fetches[X] == [XorbFetch(2, 3, INDEXES[X].stored_ends[1], INDEXES[X].stored_ends[2] - 1, False)]


def test_a_range_inside_one_chunk_and_on_chunk_boundaries():
    assert _plan(750, 751).terms == (Term(X, 1, 2, 200),)  # file 700..899 is X chunk 1 again
    assert _plan(750, 751).offset_into_first_range == 50
    rec = _plan(600, 900)  # exactly X chunks 0 and 1 of the third segment
    assert rec.offset_into_first_range == 0 and rec.terms == (Term(X, 0, 2, 300),)
    assert rec.fetches[X][0].whole_xorb is False
    assert _plan(1599, 1600).terms == (Term(X, 3, 4, 400),)


def test_adjacent_ranges_of_a_xorb_merge_into_one_fetch_and_disjoint_ones_do_not():
    index = _index([10] * 6)
    segments = [FileSegment(X, 20, 0, 2), FileSegment(X, 20, 2, 4), FileSegment(X, 10, 5, 6)]
    rec = plan(segments, {X: index}.__getitem__, 0, 50)
    assert [(f.chunk_start, f.chunk_end) for f in rec.fetches[X]] == [(0, 4), (5, 6)]
    assert all(not f.whole_xorb for f in rec.fetches[X])


def test_empty_ranges_and_inconsistent_data():
    assert _plan(5, 5) is EMPTY
    with pytest.raises(ReconstructionError):
        _plan(1600, 1700)  # past the segments
    with pytest.raises(ReconstructionError):
        plan([FileSegment(X, 999, 0, 4)], INDEXES.__getitem__, 0, 10)  # sizes disagree
    with pytest.raises(ReconstructionError):
        plan([FileSegment(Y, 100, 0, 3)], INDEXES.__getitem__, 0, 10)  # past the xorb's chunks


def test_every_range_of_a_random_file_covers_exactly_its_bytes():
    rng = random.Random(9)
    xorbs = {bytes([i]) * 32: [rng.randint(1, 50) for _ in range(rng.randint(1, 8))] for i in range(3)}
    indexes = {h: _index(s) for h, s in xorbs.items()}
    segments, data = [], []  # data: (xorb, chunk) per file byte
    for _ in range(6):
        h = rng.choice(list(xorbs))
        start = rng.randrange(len(xorbs[h]))
        end = rng.randint(start + 1, len(xorbs[h]))
        segments.append(FileSegment(h, sum(xorbs[h][start:end]), start, end))
        data += [(h, c) for c in range(start, end) for _ in range(xorbs[h][c])]
    for _ in range(200):
        first = rng.randrange(len(data))
        end = rng.randint(first + 1, len(data))
        rec = plan(segments, indexes.__getitem__, first, end)
        covered = [(t.xorb_hash, c) for t in rec.terms for c in range(t.chunk_start, t.chunk_end)
                   for _ in range(xorbs[t.xorb_hash][c])]
        off = rec.offset_into_first_range
        assert covered[off:off + end - first] == data[first:end]
        assert len(covered) - off - (end - first) < max(max(s) for s in xorbs.values())  # at most a chunk past
        for t in rec.terms:
            assert sum(1 for f in rec.fetches[t.xorb_hash]
                       if f.chunk_start <= t.chunk_start and t.chunk_end <= f.chunk_end) == 1


# --- signed xorb URLs -----------------------------------------------------------------------------


def _params(query: str) -> dict:
    return dict(part.split("=", 1) for part in query.split("&"))


def test_signed_xorb_urls():
    signer = XorbRangeSigner(b"secret", ttl_seconds=60)
    params = _params(signer.query("ab" * 32, 100, 5000, now=1000))
    assert signer.check("ab" * 32, params, now=1059) == (100, 5000)
    with pytest.raises(Forbidden, match="Expired"):
        signer.check("ab" * 32, params, now=1061)
    for tampered in ({**params, "bytes": "0-5000"}, {**params, "expires": "999999"}, {**params, "signature": "x"},
                     {k: v for k, v in params.items() if k != "bytes"}):
        with pytest.raises(Forbidden):
            signer.check("ab" * 32, tampered, now=1000)
    with pytest.raises(Forbidden):
        signer.check("cd" * 32, params, now=1000)  # another xorb
    with pytest.raises(Forbidden):
        XorbRangeSigner(b"other", 60).check("ab" * 32, params, now=1000)


def test_requested_range_must_lie_within_the_signed_one():
    assert requested_range(None, 10, 99) == (10, 99)
    assert requested_range("bytes=10-99", 10, 99) == (10, 99)
    assert requested_range("bytes=20-30", 10, 99) == (20, 30)
    for bad in ("bytes=9-99", "bytes=10-100", "bytes=10-", "bytes=-5", "bytes=10-20,30-40", "items=10-20"):
        with pytest.raises(RangeNotSatisfiable):
            requested_range(bad, 10, 99)


# --- which shard a read trusts ----------------------------------------------------------------------


def test_reads_take_a_file_only_from_its_own_shard_first_entry_first(tmp_path):
    """Shards stored before ingest refused duplicates (issue 9, finding 13) may name another repo's
    file again with other bytes; reading any file of such a shard must not let that entry stand in
    for the file's own definition, in its shard or in any other."""
    import hashlib

    from aicommons.db.xet import XetFileRow
    from aicommons.storage.local import LocalBlobStore
    from aicommons.xet.hashing import chunk_hash, file_hash, range_hash, to_hex
    from aicommons.xet.keys import shard_key, xorb_key
    from aicommons.xet.reads import XetReads
    from aicommons.xet.shard import ShardFile, serialize_shard

    blobs = LocalBlobStore(tmp_path)
    good, evil = b"GOOD" * 1000, b"EVIL" * 1000
    entries = {}
    for content in (good, evil):
        stored, digest = serialize_xorb([content], footer=True)
        (tmp_path / "x").write_bytes(stored)
        blobs.put_file(xorb_key(to_hex(digest)), tmp_path / "x")
        nodes = [(chunk_hash(content), len(content))]
        entries[content] = ShardFile(file_hash(nodes), (FileSegment(digest, len(content), 0, 1),),
                                     (range_hash([nodes[0][0]]),), hashlib.sha256(content).hexdigest())
    forged = ShardFile(entries[good].hash, entries[evil].segments, entries[evil].verification, None)
    shards = {}
    for name, files in (("victim", [entries[good]]), ("attacker", [entries[evil], entries[good], forged])):
        data = serialize_shard(files)
        shards[name] = hashlib.sha256(data).hexdigest()
        (tmp_path / "s").write_bytes(data)
        blobs.put_file(shard_key(shards[name]), tmp_path / "s")
    reads = XetReads(files=None, repos=None, blobs=blobs, range_url_key=b"k" * 32, ttl=60)
    victim = XetFileRow(entries[good].hex, "0" * 64, len(good), shards["victim"])
    own = XetFileRow(entries[evil].hex, "1" * 64, len(evil), shards["attacker"])
    assert reads.reconstruct(own, 0, len(evil)).terms[0].xorb_hash == entries[evil].segments[0].xorb_hash
    assert reads.reconstruct(victim, 0, len(good)).terms[0].xorb_hash == entries[good].segments[0].xorb_hash
    # Even read through the attacker's shard, the file is its first (checked) entry there.
    via_attacker = XetFileRow(entries[good].hex, "0" * 64, len(good), shards["attacker"])
    assert reads.reconstruct(via_attacker, 0, len(good)).terms[0].xorb_hash == entries[good].segments[0].xorb_hash
