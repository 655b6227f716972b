"""Where the bytes of a large file (an LFS object, named by its sha256) are, and how to read them.

One object, two possible homes:

- a whole-file blob under ``lfs/`` (uploaded through the LFS batch API, ``git lfs push``, a direct
  upload, or a Xet upload on a hub from before issue 11, which rebuilt one next to the xorbs);
- the chunk store: the xorbs a Xet upload sent, and the shard that lists which chunk ranges make
  the file (``xet_files``: oid -> file hash and shard). Read through ``xet/files.py``.

The whole-file blob wins when both exist (it can be served with sendfile or a presigned redirect);
``aicommons gc`` removes such redundant copies, after which the chunk store serves the file. Every
reader of LFS bytes goes through here (resolve, the LFS download link, scans, snapshots, fsck,
commit checks), so none of them needs to know which home an object has. Access is decided before:
callers pass an oid their repo references.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aicommons.db.xet import XetFileRow
from aicommons.storage.base import BlobStore, StorageError
from aicommons.storage.keys import blob_key
from aicommons.xet.files import ChunkedFile
from aicommons.xet.keys import shard_key
from aicommons.xet.reads import XetReads


@dataclass(frozen=True)
class StoredObject:
    oid: str
    size: int
    key: str | None  # the whole-file blob, when there is one (served in preference to the chunks)
    xet: XetFileRow | None  # the chunk-stored file, when there is one (``locate`` also keeps it next to a blob)


class ObjectReader:
    def __init__(self, blobs: BlobStore, reads: XetReads):
        self.blobs, self.reads = blobs, reads

    def find(self, oid: str) -> StoredObject | None:
        key = blob_key(oid)
        size = self.blobs.size(key)
        if size is not None:
            return StoredObject(oid, size, key, None)
        row = self.reads.file_for_oid(oid)
        if row is not None and self.blobs.exists(shard_key(row.shard)):
            return StoredObject(oid, row.size, None, row)
        return None

    def locate(self, oid: str, size: int) -> StoredObject:
        """Where to serve ``oid`` (of ``size`` bytes, from its pointer) from, with no storage request
        for an object that was never chunk-stored (a presigned redirect needs none): downloads of
        whole-file objects cost what they did before the chunk store. The Xet file is kept even when
        a whole-file blob is served, so that the caller can offer a Xet download without asking again."""
        row = self.reads.file_for_oid(oid)
        key = blob_key(oid)
        if row is None or self.blobs.exists(key):
            return StoredObject(oid, size, key, row)
        return StoredObject(oid, row.size, None, row)

    def chunk_stored_bytes(self, oid: str) -> Iterator[bytes] | None:
        """The bytes of ``oid`` rebuilt from its chunks, if it is stored only as chunks (the download
        cache's source, hub/download_cache.py); None otherwise."""
        found = self.find(oid)
        if found is None or found.key is not None:
            return None
        return self.chunked(found).iter_range(0, found.size)

    def exists(self, oid: str) -> bool:
        return self.find(oid) is not None

    def size(self, oid: str) -> int | None:
        found = self.find(oid)
        return found.size if found else None

    def chunked(self, found: StoredObject) -> ChunkedFile:
        assert found.xet is not None
        return self.reads.chunked_file(found.xet)

    def open(self, oid: str) -> BinaryIO:
        """A readable (seekable) file object of the object's bytes; StorageError if missing."""
        found = self.find(oid)
        if found is None:
            raise StorageError(f"LFS object {oid} is not stored")
        if found.key is not None:
            return self.blobs.open(found.key)
        return self.chunked(found).open()

    def local_path(self, found: StoredObject) -> Path | None:
        """A whole file on local disk (sendfile, hard links), if this object has one."""
        return self.blobs.local_path(found.key) if found.key is not None else None
