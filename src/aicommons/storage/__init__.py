"""Blob storage behind one interface, chosen by URL (``file://`` now; object stores plug in here).

A backend is a small module plus an entry in ``BACKENDS``; the contract tests in
``tests/contracts/test_blobstore.py`` run over every backend.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from aicommons.storage.base import BlobStore, StorageError

BACKENDS = {
    "file": "aicommons.storage.local:LocalBlobStore",
}


def open_blob_store(url: str, tmp_dir: Path) -> BlobStore:
    scheme = urlparse(url).scheme or "file"
    target = BACKENDS.get(scheme)
    if target is None:
        raise ValueError(f"unsupported storage URL scheme {scheme!r} (supported: {sorted(BACKENDS)})")
    module_name, cls_name = target.split(":")
    import importlib

    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls.from_url(url, tmp_dir=tmp_dir)


__all__ = ["BlobStore", "StorageError", "open_blob_store", "BACKENDS"]
