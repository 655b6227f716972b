"""Where Xet data lives in the blob store. Keys fan out like LFS keys (``xet/xorbs/ab/cd/abcd…``):
millions of xorbs in one folder would be slow on a local disk."""

from __future__ import annotations

XORB_PREFIX = "xet/xorbs/"
SHARD_PREFIX = "xet/shards/"


def xorb_key(hex_hash: str) -> str:
    return f"{XORB_PREFIX}{hex_hash[:2]}/{hex_hash[2:4]}/{hex_hash}"


def shard_key(sha256: str) -> str:
    return f"{SHARD_PREFIX}{sha256[:2]}/{sha256[2:4]}/{sha256}"
