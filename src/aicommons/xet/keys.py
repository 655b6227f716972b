"""Where Xet data lives in the blob store. Keys fan out like LFS keys (``xet/xorbs/ab/cd/abcd…``):
millions of xorbs in one folder would be slow on a local disk."""

from __future__ import annotations

XORB_PREFIX = "xet/xorbs/"
SHARD_PREFIX = "xet/shards/"


def xorb_key(hex_hash: str) -> str:
    return f"{XORB_PREFIX}{hex_hash[:2]}/{hex_hash[2:4]}/{hex_hash}"


def shard_key(sha256: str) -> str:
    return f"{SHARD_PREFIX}{sha256[:2]}/{sha256[2:4]}/{sha256}"


# A random name for this blob store's Xet data, made once and kept with it. It is part of the CAS URL
# the hub hands out, which hf_xet keys its local cache on: a hub started afresh at the same address
# (or on a wiped store) gets a new URL, so no client trusts a cache that says the xorbs are here.
STORE_ID_KEY = "xet/store-id"
