"""The hub side of Xet downloads: which files are Xet files, and how to rebuild one from xorbs.

Every file uploaded through Xet keeps a row in ``xet_files`` (file hash -> sha256 LFS oid) and the
shard that described it. To download, hf_xet asks the CAS for the file's reconstruction (terms.py)
with a read token of one repo, then fetches byte ranges of stored xorbs from the URLs in the answer.

Access follows the LFS rule: a repo reads a file hash only if the LFS object it maps to is one the
repo references (``repo_lfs_objects``), so a file that only someone's private repo holds cannot be
reconstructed with a token of yours. Fetch URLs are signed per xorb byte range (fetch_urls.py);
a presigned object-store URL, which opens the whole xorb, is used only when the reader is entitled
to every chunk in it anyway.

Shards and xorbs never change once stored, so parsed file segments and xorb indexes are cached. A
file is always read as the shard recorded for it (``xet_files.shard``) defines it, never as another
shard that happens to name the same file hash.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import BinaryIO, Generic, TypeVar

from aicommons.db.repos import RepoStore
from aicommons.db.xet import XetFileRow, XetFileStore
from aicommons.errors import HubError, NotFound
from aicommons.storage.base import BlobStore, StorageError
from aicommons.xet.fetch_urls import XorbRangeSigner
from aicommons.xet.files import ChunkedFile, ChunkReadError
from aicommons.xet.hashing import to_hex
from aicommons.xet.keys import shard_key, xorb_key
from aicommons.xet.shard import FileSegment, ShardFormatError, parse_shard
from aicommons.xet.terms import EMPTY, Reconstruction, ReconstructionError, XorbFetch, plan
from aicommons.xet.xorb import XorbFormatError, XorbIndex, footer_length, read_index

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small thread-safe LRU map (requests run on a thread pool)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)


class XetReads:
    def __init__(self, files: XetFileStore, repos: RepoStore, blobs: BlobStore, range_url_key: bytes, ttl: int,
                 cached_files: int = 4096, cached_xorbs: int = 4096,
                 in_history: Callable[[int, str], bool] | None = None):
        self.files, self.repos, self.blobs = files, repos, blobs
        # (repo id, oid) -> whether the repo's history still points at the object (the hub's
        # hub/reachability.py, wired in by the hub: this layer does not know about git history).
        self.in_history = in_history
        self.signer = XorbRangeSigner(range_url_key, ttl)
        self._segments: _Lru[tuple[str, str], tuple[FileSegment, ...]] = _Lru(cached_files)
        self._indexes: _Lru[bytes, XorbIndex] = _Lru(cached_xorbs)

    # --- which files are Xet files ----------------------------------------------------------------

    def file_hashes(self, oids: Iterable[str]) -> dict[str, str]:
        """``{sha256 oid: Xet file hash}`` for the objects among ``oids`` that have one."""
        return self.files.hashes_for_oids(oids)

    def readable_file(self, repo_id: int, file_hex: str) -> XetFileRow:
        """The file ``file_hex`` if repo ``repo_id`` references its object; NotFound otherwise (the
        same answer whether or not the file exists elsewhere)."""
        row = self.files.get(file_hex)
        if (row is None or self.repos.repo_lfs_size(repo_id, row.oid) is None
                or (self.in_history is not None and not self.in_history(repo_id, row.oid))):
            raise NotFound(f"File {file_hex} not found")
        return row

    # --- reconstructions --------------------------------------------------------------------------

    def reconstruct(self, row: XetFileRow, first: int, end: int) -> Reconstruction:
        """Terms and fetches for the bytes ``[first, end)`` of ``row`` (``0 <= first < end <= size``,
        or an empty range)."""
        if first >= end:
            return EMPTY
        try:
            return plan(self._file_segments(row), self._index, first, end)
        except ReconstructionError as exc:
            raise HubError(f"Cannot reconstruct file {row.file_hash}: {exc}") from None

    def fetch_url(self, cas_url: str, xorb_hash: bytes, fetch: XorbFetch) -> str:
        xorb_hex = to_hex(xorb_hash)
        if fetch.whole_xorb:  # nothing in this xorb is hidden from the reader: the store may serve it
            presigned = self.blobs.presigned_url(xorb_key(xorb_hex), self.signer.ttl)
            if presigned is not None:
                return presigned
        return f"{cas_url}/v1/xorb-ranges/{xorb_hex}?{self.signer.query(xorb_hex, fetch.byte_start, fetch.byte_end)}"

    def _file_segments(self, row: XetFileRow) -> tuple[FileSegment, ...]:
        """The segments of ``row`` as its own shard (``row.shard``, the one checked when the file
        was recorded) defines them: cached by (shard, file), so that no other shard's entry for the
        same file hash can ever stand in for it, and the first entry of a file in a shard wins (the
        one ingest verified; shards stored before duplicates were refused may hold more)."""
        cached = self._segments.get((row.shard, row.file_hash))
        if cached is None:
            cached = self._load_segments(row)
        if sum(s.size for s in cached) != row.size:
            raise HubError(f"Stored shard {row.shard} describes file {row.file_hash} with the wrong size")
        return cached

    def _load_segments(self, row: XetFileRow) -> tuple[FileSegment, ...]:
        with self.blobs.open(shard_key(row.shard)) as f:
            data = f.read()
        try:
            shard = parse_shard(data)
        except ShardFormatError as exc:
            raise HubError(f"Stored shard {row.shard} is unreadable: {exc}") from None
        found = None
        seen: set[str] = set()
        for entry in shard.files:  # keep its siblings: a snapshot download asks for them next
            if entry.hex in seen:
                continue
            seen.add(entry.hex)
            self._segments.put((row.shard, entry.hex), entry.segments)
            if entry.hex == row.file_hash:
                found = entry.segments
        if found is None:
            raise HubError(f"Stored shard {row.shard} does not describe file {row.file_hash}")
        return found

    def _index(self, xorb_hash: bytes) -> XorbIndex:
        cached = self._indexes.get(xorb_hash)
        if cached is not None:
            return cached
        key = xorb_key(to_hex(xorb_hash))
        size = self.blobs.size(key)
        if size is None:
            raise HubError(f"Stored xorb {to_hex(xorb_hash)} is missing")
        try:  # only the footer: a xorb is up to 64 MiB
            with self.blobs.open(key) as f:
                f.seek(size - 4)
                length = footer_length(f.read(4))
                if length + 4 > size:
                    raise XorbFormatError("xorb footer length is implausible")
                f.seek(size - 4 - length)
                index = read_index(f.read(length))
        except (XorbFormatError, struct.error) as exc:
            raise HubError(f"Stored xorb {to_hex(xorb_hash)} is unreadable: {exc}") from None
        self._indexes.put(xorb_hash, index)
        return index

    # --- reading a file's bytes ------------------------------------------------------------------

    def chunked_file(self, row: XetFileRow) -> ChunkedFile:
        """The bytes of ``row``, read from its xorbs (plain HTTP, scans, snapshots)."""
        try:
            return ChunkedFile(self._file_segments(row), self._index,
                               lambda h: self.blobs.open(xorb_key(to_hex(h))), row.size)
        except ChunkReadError as exc:
            raise HubError(f"Cannot read file {row.file_hash}: {exc}") from None

    def file_for_oid(self, oid: str) -> XetFileRow | None:
        """The Xet file stored for the LFS object ``oid``: the first recorded, if several, the same one
        that ``file_hashes`` names."""
        rows = self.files.for_oid(oid)
        return rows[0] if rows else None

    # --- serving signed xorb ranges ---------------------------------------------------------------

    def open_xorb_at(self, xorb_hex: str, start: int) -> BinaryIO:
        """The stored xorb, opened and positioned at ``start`` (the caller reads and closes it). A
        xorb GC has swept (its files were deleted or purged from history) is 404, not a storage
        failure that the client would retry: its link outlived the data."""
        try:
            f = self.blobs.open(xorb_key(xorb_hex))
        except StorageError:
            if self.blobs.exists(xorb_key(xorb_hex)):
                raise
            raise NotFound("This xorb is no longer stored: ask the CAS for a new reconstruction") from None
        try:
            f.seek(start)
        except BaseException:
            f.close()
            raise
        return f
