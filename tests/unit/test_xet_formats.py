"""Xet formats without a server: hashes against known vectors, xorbs, shards, reconstruction, tokens."""

from __future__ import annotations

import os
import random

import pytest

from aicommons.errors import Unauthorized
from aicommons.xet.hashing import chunk_hash, file_hash, from_hex, range_hash, to_hex, xorb_hash
from aicommons.xet.reconstruct import ShardRejected, check_xorb_entry, rebuild_file
from aicommons.xet.shard import (
    FileSegment,
    ShardChunk,
    ShardFile,
    ShardFormatError,
    ShardXorb,
    parse_shard,
    serialize_shard,
)
from aicommons.xet.tokens import XetTokens
from aicommons.xet.xorb import (
    CHUNK_HEADER_BYTES,
    Scheme,
    XorbFormatError,
    XorbReceiver,
    bg4_join,
    bg4_split,
    chunk_bytes,
    read_layout,
    serialize_xorb,
    verify_upload,
)

# Eight node hashes and the xorb / file hashes of sequences of them: reference vectors published in
# xet-core's merklehash tests (node i has size 100 * i).
REFERENCE_NODES = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
    "c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72",
    "0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37",
    "adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784",
    "4ac202caf347fc1e9c874b1ef6a1c5e619141eb775a6f43f0f0124ccd0060d9e",
    "b3b28636f65c149ea52eb1f94669466f70f033b54cea792824c696ba6ef3c389",
    "0e2c1a002aae913d2c0fc8ddfa4e9e14b7b311b3b0d458726d5d9f6a6318013c",
]


def _nodes(indices):
    return [(from_hex(REFERENCE_NODES[i]), 100 * i) for i in indices]


# --- hashing ------------------------------------------------------------------------------------


def test_hex_form_reverses_each_8_byte_word():
    raw = bytes(range(32))
    assert to_hex(raw) == "0706050403020100" "0f0e0d0c0b0a0908" "1716151413121110" "1f1e1d1c1b1a1918"
    assert from_hex(to_hex(raw)) == raw
    for bad in ("ab", "G" * 64, "A" * 64):
        with pytest.raises(ValueError):
            from_hex(bad)


@pytest.mark.parametrize("indices, xorb, file", [
    ([1], "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
     "8e16257caa3fe079d484d872a8975264b2ff683b0d6db9028cc7c0f968a45661"),
    (list(range(8)), "f62abe77e3fb9c954fe52b0028027ddc90c064c45951a4fd2211d87e5c0011db",
     "d1b068be5bbdb38992269e8efe61f601881e39f7a7585fd76883cc6ea5c23b44"),
    ([i % 8 for i in range(64)], "6554007c9b5d0a5e7918f79596a1b68815c1407535585435f5735db761f21b88",
     "a8640ab81d48854e00078e12b1ea8be5d90be0ffb5f73a15b7009981d093ddd8"),
])
def test_merkle_aggregation_matches_reference_vectors(indices, xorb, file):
    assert to_hex(xorb_hash(_nodes(indices))) == xorb
    assert to_hex(file_hash(_nodes(indices))) == file


def test_empty_file_hash_is_zero():
    assert file_hash([]) == bytes(32)


def test_file_hash_of_small_files_matches_hf_xet(tmp_path):
    """hf_xet's own client-side hashing (public API) agrees with ours on single-chunk files."""
    hf_xet = pytest.importorskip("hf_xet")
    assert to_hex(file_hash([(chunk_hash(b"hello world"), 11)])) == \
        "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f"
    contents = [os.urandom(n) for n in (1, 1000, 7000)]
    paths = []
    for i, content in enumerate(contents):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(content)
    for content, info in zip(contents, hf_xet.hash_files([str(p) for p in paths])):
        assert info.hash == to_hex(file_hash([(chunk_hash(content), len(content))]))


# --- xorbs --------------------------------------------------------------------------------------


def _chunks():
    rng = random.Random(7)
    return [rng.randbytes(70_000), b"a" * 65_536, bytes(range(256)) * 100 + b"xyz", b"q"]


@pytest.mark.parametrize("scheme", list(Scheme))
@pytest.mark.parametrize("with_footer", [False, True])  # current clients send no footer; older ones did
def test_xorb_round_trip(scheme, with_footer):
    chunks = _chunks()
    data, digest = serialize_xorb(chunks, scheme, footer=with_footer)
    assert digest == xorb_hash([(chunk_hash(c), len(c)) for c in chunks])
    verified = verify_upload(data, digest)
    stored, layout = verified.stored(), verified.layout
    assert read_layout(stored) == layout  # the stored form carries the footer we wrote
    assert layout.hash == digest and layout.size == sum(map(len, chunks))
    assert [chunk_bytes(stored, c) for c in layout.chunks] == chunks
    if scheme != Scheme.NONE:
        assert {c.scheme for c in layout.chunks} == {Scheme.NONE, scheme}  # random data stays raw


@pytest.mark.parametrize("length", range(10))
def test_bg4_regroups_any_length(length):
    data = bytes(range(100, 100 + length))
    assert bg4_join(bg4_split(data)) == data


def test_xorb_with_a_tampered_chunk_is_refused():
    data, digest = serialize_xorb([b"x" * 5000, b"y" * 5000], Scheme.NONE)
    tampered = bytearray(data)
    tampered[CHUNK_HEADER_BYTES + 10] ^= 1
    with pytest.raises(XorbFormatError, match="hashes to"):
        verify_upload(bytes(tampered), digest)


def test_xorb_under_the_wrong_hash_is_refused():
    data, _ = serialize_xorb([b"x" * 5000])
    other = xorb_hash([(chunk_hash(b"other"), 5)])
    with pytest.raises(XorbFormatError, match="not to"):
        verify_upload(data, other)


@pytest.mark.parametrize("damage", ["truncate", "bad-scheme", "bad-version", "bad-lz4", "oversize", "empty"])
def test_malformed_xorbs_are_refused(damage):
    data, digest = serialize_xorb([b"abc" * 2000, b"def" * 2000], Scheme.LZ4)
    raw = bytearray(data)
    if damage == "truncate":
        raw = raw[:-5]
    elif damage == "bad-scheme":
        raw[4] = 7
    elif damage == "bad-version":
        raw[0] = 1
    elif damage == "bad-lz4":
        raw[CHUNK_HEADER_BYTES + 8] ^= 0xFF
    elif damage == "oversize":
        raw[5:8] = (200_000).to_bytes(3, "little")
    else:
        raw = bytearray()
    with pytest.raises(XorbFormatError):
        verify_upload(bytes(raw), digest)


def test_uploaded_footer_must_match_the_chunks():
    chunks = _chunks()
    data, digest = serialize_xorb(chunks, footer=True)
    other, _ = serialize_xorb(chunks[:2] + [b"z" * 10, chunks[3]], footer=True)
    body = data[:read_layout(data).chunks[-1].payload.stop]
    forged = body + other[read_layout(other).chunks[-1].payload.stop:]  # right chunks, someone else's footer
    with pytest.raises(XorbFormatError):
        verify_upload(forged, digest)


def _fed(data: bytes, digest: bytes, pieces: list[int]) -> tuple[bytes, XorbReceiver]:
    """The stored form of ``data`` as a XorbReceiver writes it when fed in pieces of these sizes."""
    written = bytearray()
    receiver = XorbReceiver(digest, written.extend)
    pos, sizes = 0, iter(pieces)
    while pos < len(data):
        step = next(sizes, len(data))
        receiver.feed(data[pos:pos + step])
        pos += step
    _layout, footer = receiver.finish()
    return bytes(written) + footer, receiver


@pytest.mark.parametrize("scheme", list(Scheme))
@pytest.mark.parametrize("with_footer", [False, True])
@pytest.mark.parametrize("piece", [1, 7, 8, 9, 4096, 65_536, 10**7])
def test_xorb_verified_as_it_arrives_is_stored_as_if_received_whole(scheme, with_footer, piece):
    """The streaming check (the upload route's) writes exactly what ``verify_upload`` of the whole
    body stores, however the body is cut: inside a chunk header, a payload or the client's footer."""
    data, digest = serialize_xorb(_chunks(), scheme, footer=with_footer)
    stored, receiver = _fed(data, digest, [piece] * (len(data) // piece + 1))
    assert stored == verify_upload(data, digest).stored()
    assert receiver.received == len(data)


def test_xorb_cut_at_random_points_verifies_the_same():
    rng = random.Random(3)
    data, digest = serialize_xorb(_chunks(), Scheme.LZ4, footer=True)
    for _ in range(20):
        stored, _ = _fed(data, digest, [rng.randint(1, 20_000) for _ in range(100)])
        assert stored == verify_upload(data, digest).stored()


@pytest.mark.parametrize("damage", ["truncate-chunk", "truncate-footer", "tamper", "forged-footer", "wrong-hash"])
def test_xorb_receiver_refuses_what_verify_upload_refuses(damage):
    chunks = _chunks()
    data, digest = serialize_xorb(chunks, Scheme.NONE, footer=True)
    end = read_layout(data).chunks[-1].payload.stop
    raw = bytearray(data)
    if damage == "truncate-chunk":
        raw = raw[:end - 5]
    elif damage == "truncate-footer":
        raw = raw[:end + 3]
    elif damage == "tamper":
        raw[CHUNK_HEADER_BYTES + 3] ^= 1
    elif damage == "forged-footer":
        other, _ = serialize_xorb(chunks[:2] + [b"z" * 10, chunks[3]], footer=True)
        raw = raw[:end] + other[read_layout(other).chunks[-1].payload.stop:]
    else:
        digest = xorb_hash([(chunk_hash(b"other"), 5)])
    with pytest.raises(XorbFormatError):
        _fed(bytes(raw), digest, [1000] * 1000)


# --- shards -------------------------------------------------------------------------------------


def _file_entry(segments, chunk_lists, sha256="ab" * 32, verification=True):
    """A ShardFile whose hashes are right for ``chunk_lists`` (one list of chunk bytes per segment)."""
    nodes = [(chunk_hash(c), len(c)) for chunks in chunk_lists for c in chunks]
    proofs = tuple(range_hash([chunk_hash(c) for c in chunks]) for chunks in chunk_lists) if verification else None
    return ShardFile(file_hash(nodes), tuple(segments), proofs, sha256)


def test_shard_round_trip():
    entry = _file_entry([FileSegment(b"\x01" * 32, 30, 0, 2), FileSegment(b"\x02" * 32, 5, 3, 4)],
                        [[b"a" * 10, b"b" * 20], [b"c" * 5]])
    xorb = ShardXorb(b"\x03" * 32, (ShardChunk(b"\x04" * 32, 0, 10), ShardChunk(b"\x05" * 32, 10, 20)), 30, 50)
    plain = ShardFile(b"\x06" * 32, (FileSegment(b"\x01" * 32, 7, 4, 5),), None, None)
    shard = parse_shard(serialize_shard([entry, plain], [xorb]))
    assert shard.files == (entry, plain)
    assert shard.xorbs == (xorb,)
    assert shard.files[0].size == 35 and shard.files[0].sha256 == "ab" * 32


@pytest.mark.parametrize("damage", ["magic", "version", "truncate", "count", "range"])
def test_malformed_shards_are_refused(damage):
    entry = _file_entry([FileSegment(b"\x01" * 32, 30, 0, 2)], [[b"a" * 10, b"b" * 20]])
    raw = bytearray(serialize_shard([entry]))
    if damage == "magic":
        raw[0] ^= 1
    elif damage == "version":
        raw[32] = 3
    elif damage == "truncate":
        raw = raw[:48 + 48 * 2]
    elif damage == "count":
        raw[48 + 36:48 + 40] = (10_000).to_bytes(4, "little")  # file header: number of segments
    else:
        raw[48 + 48 + 40:48 + 48 + 44] = (9).to_bytes(4, "little")  # segment: first chunk past its end
    with pytest.raises(ShardFormatError):
        parse_shard(bytes(raw))


# --- reconstruction -----------------------------------------------------------------------------


class DictSource:
    def __init__(self, *xorbs):
        self.stored = {}
        for chunks in xorbs:
            data, digest = serialize_xorb(chunks, Scheme.BG4_LZ4)
            verified = verify_upload(data, digest)
            self.stored[digest] = (verified.stored(), verified.layout)

    def load(self, xorb_hash):
        if xorb_hash not in self.stored:
            raise ShardRejected("never uploaded")
        return self.stored[xorb_hash]

    def layout(self, xorb_hash):
        return self.load(xorb_hash)[1]

    def verified_recently(self, xorb_hash):
        return False  # every chunk re-hashed when read back


def _two_xorbs():
    first = [bytes([i]) * 3000 + os.urandom(100) for i in range(4)]
    second = [os.urandom(2000) for _ in range(3)]
    source = DictSource(first, second)
    h1, h2 = list(source.stored)
    return source, first, second, h1, h2


def test_rebuild_a_file_spanning_two_xorbs():
    source, first, second, h1, h2 = _two_xorbs()
    parts = [first[1:3], second[0:3]]
    segments = [FileSegment(h1, sum(map(len, parts[0])), 1, 3), FileSegment(h2, sum(map(len, parts[1])), 0, 3)]
    entry = _file_entry(segments, parts)
    out = bytearray()
    rebuild_file(entry, source, out.extend)
    assert bytes(out) == b"".join(first[1:3] + second)
    rebuild_file(entry, source, None)  # checking alone needs no output


@pytest.mark.parametrize("lie", ["proof", "file-hash", "size", "range", "missing-xorb", "no-proof"])
def test_rebuild_refuses_a_shard_the_xorbs_do_not_back(lie):
    source, first, _, h1, _ = _two_xorbs()
    parts = [first[0:2]]
    segment = FileSegment(h1, sum(map(len, parts[0])), 0, 2)
    entry = _file_entry([segment], parts, verification=lie != "no-proof")
    if lie == "proof":
        entry = ShardFile(entry.hash, entry.segments, (range_hash([chunk_hash(first[0])]),), None)
    elif lie == "file-hash":
        entry = ShardFile(b"\x09" * 32, entry.segments, entry.verification, None)
    elif lie == "size":
        entry = ShardFile(entry.hash, (FileSegment(h1, segment.size + 1, 0, 2),), entry.verification, None)
    elif lie == "range":
        entry = ShardFile(entry.hash, (FileSegment(h1, segment.size, 0, 9),), entry.verification, None)
    elif lie == "missing-xorb":
        entry = ShardFile(entry.hash, (FileSegment(b"\x07" * 32, segment.size, 0, 2),), entry.verification, None)
    with pytest.raises(ShardRejected):
        rebuild_file(entry, source, bytearray().extend)


def test_shard_xorb_entries_must_describe_the_stored_xorb():
    source, first, _, h1, _ = _two_xorbs()
    offsets = [sum(map(len, first[:i])) for i in range(len(first))]
    good = ShardXorb(h1, tuple(ShardChunk(chunk_hash(c), o, len(c)) for c, o in zip(first, offsets)), 0, 0)
    check_xorb_entry(good, source)
    bad = ShardXorb(h1, good.chunks[:-1] + (ShardChunk(b"\x01" * 32, offsets[-1], len(first[-1])),), 0, 0)
    with pytest.raises(ShardRejected):
        check_xorb_entry(bad, source)


# --- tokens -------------------------------------------------------------------------------------


def test_tokens_sign_repo_operation_account_minter_and_expiry():
    tokens = XetTokens(b"token key", b"binding key", ttl_seconds=60)
    minter = tokens.token_minter(7, "h" * 64)
    token, expires = tokens.issue("0123abcd" * 4, "write", 3, minter, now=1000)
    assert expires == 1060
    grant = tokens.check(token, "write", now=1030)
    assert (grant.storage_key, grant.operation, grant.account_id, grant.expires) == ("0123abcd" * 4, "write", 3, 1060)
    assert grant.token_id == 7 and tokens.binding_matches(grant, "h" * 64)
    assert not tokens.binding_matches(grant, "i" * 64)  # token id 7 reused by another token
    with pytest.raises(Unauthorized, match="Expired"):
        tokens.check(token, "write", now=1061)
    with pytest.raises(Unauthorized, match="does not allow"):
        tokens.check(token, "read", now=1030)
    forged = token.replace(".0123abcd", ".f123abcd")
    with pytest.raises(Unauthorized, match="signature"):
        tokens.check(forged, "write", now=1030)
    with pytest.raises(Unauthorized):
        XetTokens(b"other key", b"binding key", 60).check(token, "write", now=1030)
    for junk in (None, "", "hf_abc", "xet1.1.write.1.1", "xet2.write.k.1.a.1"):
        with pytest.raises(Unauthorized):
            tokens.check(junk, "write", now=1030)
    anonymous = tokens.check(tokens.issue("k" * 32, "read", 0, "-", now=1000)[0], "read", now=1000)
    assert anonymous.token_id is None and anonymous.minter == "-"


def test_a_stored_xorb_gone_bad_is_refused_unless_this_process_just_verified_it():
    """Shard checks re-hash the chunks of stored xorbs (bit rot: never hand out wrong bytes), except
    those this process hashed as they arrived, lately (issue 21: each byte hashed once)."""
    source, _first, second, _h1, h2 = _two_xorbs()
    stored, layout = source.stored[h2]
    rotten = bytearray(stored)
    rotten[layout.chunks[1].payload.start + 5] ^= 1  # random bytes: stored raw, so the flip survives
    source.stored[h2] = (bytes(rotten), layout)
    entry = _file_entry([FileSegment(h2, sum(map(len, second)), 0, 3)], [second])
    with pytest.raises(ShardRejected, match="corrupt"):
        rebuild_file(entry, source, bytearray().extend)
    source.verified_recently = lambda xorb_hash: True
    rebuild_file(entry, source, bytearray().extend)  # trusted: hashed on the way in, written by us


def test_recent_xorbs_forget_after_their_time_and_beyond_their_limit(monkeypatch):
    from aicommons.xet import service

    clock = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    recent = service.RecentXorbs(limit=2, ttl=60)
    for name in (b"a", b"b", b"c"):
        recent.add(name)
    assert b"a" not in recent and b"b" in recent and b"c" in recent
    clock[0] += 61
    assert b"b" not in recent


def test_xorbs_verified_by_one_replica_are_known_to_the_others_for_their_time(isolated_hub, monkeypatch):
    """The "recently verified" memory is shared through the database: a shard checked on another
    replica than the one its xorbs reached does not hash their chunks again, within the same hour."""
    from datetime import timedelta

    from aicommons.xet import service

    hub = isolated_hub()
    replica_a = hub.xet.recently_verified
    replica_b = service.RecentXorbs(shared=replica_a.shared)
    assert replica_a.shared is not None
    h = bytes(range(32))
    assert h not in replica_b
    replica_a.add(h)
    assert h in replica_b and bytes(32) not in replica_b
    later = service.utcnow() + timedelta(seconds=3601)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    assert h not in service.RecentXorbs(shared=replica_a.shared)  # an hour on: re-hashed again


@pytest.mark.parametrize("local", [True, False])  # a xorb on local disk is mapped; others are read once
def test_chunked_file_written_whole_matches_its_ranges(tmp_path, local):
    """``ChunkedFile.write_to`` (the Parquet conversion's checkout) writes what ``iter_range`` reads:
    segments over two xorbs (LZ4, byte-grouped LZ4 and raw chunks), starting mid-xorb; a stored xorb
    shorter than its footer says is refused."""
    import io

    from aicommons.xet.files import ChunkedFile, ChunkReadError, StoredSpan
    from aicommons.xet.xorb import read_index

    rng = random.Random(15)
    first = [b"abc" * 20_000, rng.randbytes(30_000), b"z" * 40_000, bytes(range(256)) * 90]
    second = [rng.randbytes(1000), b"row,1,2\n" * 5000]
    stored, indexes = {}, {}
    for chunks, scheme in ((first, Scheme.LZ4), (second, Scheme.BG4_LZ4)):
        verified = verify_upload(*serialize_xorb(chunks, scheme))
        stored[verified.layout.hash] = verified.stored()
        indexes[verified.layout.hash] = read_index(verified.footer[:-4])  # less its length
    h1, h2 = stored
    for h, data in stored.items():
        (tmp_path / to_hex(h)).write_bytes(data)

    def open_xorb(h):
        return open(tmp_path / to_hex(h), "rb") if local else io.BytesIO(stored[h])

    segments = [FileSegment(h1, sum(map(len, first[1:4])), 1, 4), FileSegment(h2, sum(map(len, second)), 0, 2)]
    expected = b"".join(first[1:4] + second)
    chunked = ChunkedFile(segments, indexes.__getitem__, open_xorb, len(expected))
    with open(tmp_path / "out", "wb", buffering=0) as out:
        chunked.write_to(out.fileno())
    assert (tmp_path / "out").read_bytes() == expected == b"".join(chunked.iter_range(0, len(expected)))

    def sent(a, b, batch=1 << 24):  # what a download sends: spans of local xorb files read back here
        got, kinds = [], set()
        for listed in chunked.iter_parts(a, b, batch):  # (the spans' files stay open until the end)
            got += [os.pread(p.file.fileno(), p.size, p.offset) if isinstance(p, StoredSpan) else p for p in listed]
            kinds |= {isinstance(p, StoredSpan) for p in listed}
        return b"".join(got), kinds

    for a, b in [(0, len(expected)), (1, 2), (29_999, 30_001), (30_000, 70_000), (len(expected) - 1, len(expected)),
                 *((rng.randrange(len(expected)), rng.randrange(len(expected) + 1)) for _ in range(50))]:
        assert sent(a, b, rng.choice([1, 40_000, 1 << 24]))[0] == expected[a:b], (a, b)
    # Raw chunks of a local xorb are spans of its file; the rest (and everything from a store) decoded.
    assert sent(0, len(expected))[1] == ({True, False} if local else {False})

    for damaged in (stored[h2][:indexes[h2].stored_ends[-1] - 10], b""):  # a stored xorb cut short, or empty
        stored[h2] = damaged
        (tmp_path / to_hex(h2)).write_bytes(damaged)
        with open(tmp_path / "out", "wb", buffering=0) as out, pytest.raises(ChunkReadError):
            chunked.write_to(out.fileno())
        with pytest.raises(ChunkReadError):
            sent(len(expected) - 1, len(expected))
