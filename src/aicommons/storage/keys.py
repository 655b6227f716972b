"""Where LFS objects live in the blob store: ``lfs/ab/cd/abcd…`` (sha256, fanned out so that no
folder of a local disk holds millions of files). Xet data has its own keys (``xet/keys.py``).

Here, below every package that stores or reads LFS objects (hub, xet), so that none of them needs
another for it."""

from __future__ import annotations


def blob_key(oid: str) -> str:
    return f"lfs/{oid[:2]}/{oid[2:4]}/{oid}"
