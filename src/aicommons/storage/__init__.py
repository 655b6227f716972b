"""Blob storage behind one interface, chosen by URL: ``file://`` (local disk), ``s3://``, ``gs://``,
``az://`` (object storage through obstore; see ``object_store.py`` for its configuration).

A backend is a small module plus an entry in ``BACKENDS``; the contract tests in
``tests/contracts/test_blobstore.py`` run over every backend.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from aicommons.storage.base import BlobStore, StorageError

_OBJECT_STORE = "aicommons.storage.object_store:ObjectBlobStore"
BACKENDS = {
    "file": "aicommons.storage.local:LocalBlobStore",
    "s3": _OBJECT_STORE,
    "s3a": _OBJECT_STORE,
    "gs": _OBJECT_STORE,
    "az": _OBJECT_STORE,
    "abfs": _OBJECT_STORE,
    "abfss": _OBJECT_STORE,
}


def open_blob_store(url: str, tmp_dir: Path) -> BlobStore:
    scheme = urlparse(url).scheme or "file"
    target = BACKENDS.get(scheme)
    if target is None:
        raise ValueError(f"unsupported storage URL scheme {scheme!r} (supported: {sorted(BACKENDS)})")
    module_name, cls_name = target.split(":")
    import importlib

    cls = getattr(importlib.import_module(module_name), cls_name)
    store: BlobStore = cls.from_url(url, tmp_dir=tmp_dir)
    return store


__all__ = ["BlobStore", "StorageError", "open_blob_store", "BACKENDS"]
