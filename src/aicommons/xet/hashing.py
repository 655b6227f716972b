"""Xet hashes: keyed BLAKE3 chunk hashes, their Merkle aggregation into xorb and file hashes, and
the hex form the protocol writes them in.

A hash here is 32 raw bytes, as xorbs and shards store it. Xet reads those bytes as four
little-endian u64 words and prints each word as 16 big-endian hex digits, so the printed form
reverses the bytes inside every 8-byte group (``to_hex``/``from_hex``). URLs and the Merkle node
text use the printed form.

The aggregation is not a binary tree: a node's children are cut where a child hash is divisible by
4 (reading the last word), with at least 2 and at most 9 children per node, so that inserting data
changes only nearby nodes. A file hash is the Merkle root hashed once more with a (zero) salt key.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

from blake3 import blake3

# The protocol's fixed keys (xet-core merklehash and shard chunk-verification constants).
DATA_KEY = bytes([
    102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
    157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
])
INTERNAL_NODE_KEY = bytes([
    1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
    93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
])
VERIFICATION_KEY = bytes([
    127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
    164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
])
ZERO_HASH = bytes(32)
HEX_RE = re.compile(r"^[0-9a-f]{64}$")

_LITTLE, _BIG = struct.Struct("<4Q"), struct.Struct(">4Q")

# A node of the Merkle tree: (hash, number of data bytes under it).
Node = tuple[bytes, int]

_MEAN_BRANCHING = 4
_MAX_CHILDREN = 2 * _MEAN_BRANCHING + 1


def to_hex(raw: bytes) -> str:
    """The printed form of a raw 32-byte hash."""
    if len(raw) != 32:
        raise ValueError("a Xet hash is 32 bytes")
    return _BIG.pack(*_LITTLE.unpack(raw)).hex()  # four words, each byte-reversed (called per Merkle node)


def from_hex(text: str) -> bytes:
    """The raw bytes of a printed hash (64 lowercase hex digits)."""
    if not isinstance(text, str) or not HEX_RE.match(text):
        raise ValueError(f"not a Xet hash: {text!r}")
    return _LITTLE.pack(*_BIG.unpack(bytes.fromhex(text)))


def chunk_hash(data: bytes | memoryview) -> bytes:
    return blake3(data, key=DATA_KEY).digest()


def _divisible_cut(raw: bytes) -> bool:
    # The protocol tests the last little-endian word of the hash.
    return int.from_bytes(raw[24:32], "little") % _MEAN_BRANCHING == 0


def _children_count(nodes: Sequence[Node], start: int) -> int:
    """How many nodes from ``start`` on become the children of the next parent."""
    left = len(nodes) - start
    if left <= 2:
        return left
    end = min(_MAX_CHILDREN, left)
    for i in range(2, end):
        if _divisible_cut(nodes[start + i][0]):
            return i + 1
    return end


def _parent(children: Sequence[Node]) -> Node:
    text = "".join(f"{to_hex(h)} : {size}\n" for h, size in children)
    return blake3(text.encode(), key=INTERNAL_NODE_KEY).digest(), sum(size for _, size in children)


def merkle_root(nodes: Sequence[Node]) -> bytes:
    """The aggregated hash of a sequence of chunk nodes (all zeros for none)."""
    level = list(nodes)
    if not level:
        return ZERO_HASH
    while len(level) > 1:
        parents, start = [], 0
        while start < len(level):
            count = _children_count(level, start)
            parents.append(_parent(level[start:start + count]))
            start += count
        level = parents
    return level[0][0]


def xorb_hash(chunks: Sequence[Node]) -> bytes:
    return merkle_root(chunks)


def file_hash(chunks: Sequence[Node], salt: bytes = ZERO_HASH) -> bytes:
    """The file hash: the Merkle root keyed once more with ``salt``; all zeros for an empty file."""
    if not chunks:
        return ZERO_HASH
    return blake3(merkle_root(chunks), key=salt).digest()


def range_hash(chunk_hashes: Sequence[bytes]) -> bytes:
    """The verification hash a shard stores for each file segment: it proves the uploader knew the
    hashes of the chunks it references (and so, in practice, their content)."""
    return blake3(b"".join(chunk_hashes), key=VERIFICATION_KEY).digest()
