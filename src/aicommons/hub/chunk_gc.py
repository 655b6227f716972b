"""Garbage collection of the chunk store: xorbs and shards that no referenced file needs, and
whole-file copies that the chunk store makes redundant. Part of every ``aicommons gc`` run
(``gc.py`` marks the LFS oids; this marks from them).

Mark: a Xet file (``xet_files`` row) is live if its oid is marked, that is if a repo references it
or any ref of any repo (PR refs included) points at it. Its shard is live, and so are the xorbs its
segments name (read from that shard's entry for the file: another file of the same shard may be
dead). Sweep, each only when unmarked, older than the grace period and not leased:

- ``xet/xorbs/…``: a xorb is leased when uploaded, when a shard being ingested references it
  (before the ingest checks that it exists) and when a global dedup answer offers it, so an upload
  in flight never loses a xorb it is about to reference; the dedup index forgets swept xorbs;
- dead files' rows (``lfs_objects``, which drops the ``xet_files`` row), then their shards;
- ``lfs/…`` whole-file copies of oids that the chunk store also holds (a Xet upload on a hub from
  before issue 11, or an LFS upload the hub has chunked): read back from the chunks and re-hashed
  first, and deleted only if they match; the object row stays, the chunks serve it from then on.

A shard that cannot be read while a live file needs it stops the xorb sweep (we could not know
which xorbs that file needs): the run reports the error and deletes no xorb.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aicommons.db.gc import BlobGcStore
from aicommons.db.xet import XetDedupStore, XetFileRow, XetFileStore
from aicommons.errors import HubError
from aicommons.storage.base import BlobInfo, BlobStore, StorageError
from aicommons.xet.files import ChunkReadError
from aicommons.xet.hashing import to_hex
from aicommons.xet.keys import SHARD_PREFIX, XORB_PREFIX, shard_key
from aicommons.xet.reads import XetReads
from aicommons.xet.shard import ShardFormatError, parse_shard

if TYPE_CHECKING:
    from aicommons.hub.gc import GcReport

log = logging.getLogger(__name__)
XORB_KEY_RE = re.compile(r"^xet/xorbs/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})$")
SHARD_KEY_RE = re.compile(r"^xet/shards/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})$")


def mark_chunks(rows: list[XetFileRow], marked_oids: set[str], blobs: BlobStore,
                errors: list[str]) -> tuple[set[str], set[str], bool]:
    """(live xorb hashes, live shard shas, whether the xorb marks are complete)."""
    xorbs: set[str] = set()
    shards: set[str] = set()
    complete = True
    needed: dict[str, set[str]] = {}  # shard -> live file hashes it describes
    for row in rows:
        if row.oid in marked_oids:
            shards.add(row.shard)
            needed.setdefault(row.shard, set()).add(row.file_hash)
    for shard_sha, files in needed.items():
        try:
            with blobs.open(shard_key(shard_sha)) as f:
                shard = parse_shard(f.read())
        except (StorageError, ShardFormatError) as exc:
            errors.append(f"shard {shard_sha} of live files cannot be read ({exc}): no xorb is swept")
            complete = False
            continue
        seen: set[str] = set()
        for entry in shard.files:
            if entry.hex in files and entry.hex not in seen:  # the first entry is the file (reads.py)
                seen.add(entry.hex)
                xorbs.update(to_hex(s.xorb_hash) for s in entry.segments)
        if seen != files:
            errors.append(f"shard {shard_sha} does not describe every file recorded for it: no xorb is swept")
            complete = False
    return xorbs, shards, complete


def collect_chunks(report: GcReport, store: BlobGcStore, blobs: BlobStore, files: XetFileStore, reads: XetReads,
                   marked_oids: set[str], *, cutoff: datetime, apply: bool,
                   lfs_listing: list[BlobInfo]) -> None:
    cutoff_aware = cutoff.replace(tzinfo=UTC)
    # Listing before marking, as for LFS blobs: what is written after the listing waits a run.
    xorb_listing = list(blobs.list_blobs(XORB_PREFIX))
    shard_listing = list(blobs.list_blobs(SHARD_PREFIX))
    rows = files.all_rows()
    live_xorbs, live_shards, complete = mark_chunks(rows, marked_oids, blobs, report.errors)

    def sweep(info: BlobInfo, name: str | None, live: set[str], what: str) -> bool:
        report.scanned += 1
        if name is None:
            return False
        if name in live:
            report.marked += 1
            return False
        if info.last_modified >= cutoff_aware:
            report.kept_young += 1
            return False
        if not apply:
            report.deleted.append(info.key)
            report.freed_bytes += info.size
            return True
        try:
            if store.delete_if_unreferenced(info.key, None, cutoff, functools.partial(blobs.delete, info.key)):
                report.deleted.append(info.key)
                report.freed_bytes += info.size
                log.info("gc: deleted %s %s (%d bytes)", what, info.key, info.size)
                return True
            report.kept_young += 1  # leased since the listing: an upload or a dedup answer needs it
        except StorageError as exc:
            report.errors.append(f"{info.key}: {exc}")
        return False

    # Dead files first: their object rows go (the xet_files rows with them), under the object's
    # lease, so that an upload naming the same file again either waits or records it afresh.
    whole = {m.group(1) for info in lfs_listing if (m := re.match(r"^lfs/../../([0-9a-f]{64})$", info.key))}
    if apply:
        for row in rows:
            if row.oid not in marked_oids and row.oid not in whole:
                store.delete_if_unreferenced(f"lfs/{row.oid[:2]}/{row.oid[2:4]}/{row.oid}", row.oid, cutoff,
                                             lambda: None)
    if complete:
        swept = [m.group(1) for info in xorb_listing
                 if (m := XORB_KEY_RE.match(info.key)) and sweep(info, m.group(1), live_xorbs, "xorb")]
        if apply and swept:
            XetDedupStore(store.engine).forget_xorbs(swept)
    else:
        report.scanned += len(xorb_listing)
    for info in shard_listing:
        m = SHARD_KEY_RE.match(info.key)
        sweep(info, m.group(1) if m else None, live_shards, "shard")
    # Whole-file copies the chunk store makes redundant.
    chunked = {row.oid: row for row in rows if row.oid in marked_oids and row.shard in live_shards}
    for info in lfs_listing:
        m = re.match(r"^lfs/../../([0-9a-f]{64})$", info.key)
        copy = chunked.get(m.group(1)) if m else None
        if copy is None or info.last_modified >= cutoff_aware or not complete:
            continue
        if not apply:
            report.redundant.append(info.key)
            report.freed_bytes += info.size
            continue
        if not _chunks_match(reads, copy, report.errors):
            continue
        try:
            if store.delete_redundant(info.key, cutoff, functools.partial(blobs.delete, info.key)):
                report.redundant.append(info.key)
                report.freed_bytes += info.size
                log.info("gc: deleted %s, a whole-file copy of chunk-stored file %s", info.key, copy.file_hash)
        except StorageError as exc:
            report.errors.append(f"{info.key}: {exc}")


def _chunks_match(reads: XetReads, row: XetFileRow, errors: list[str]) -> bool:
    """Whether the chunk store gives back exactly the object (read and re-hashed)."""
    digest, size = hashlib.sha256(), 0
    try:
        for piece in reads.chunked_file(row).iter_range(0, row.size):
            digest.update(piece)
            size += len(piece)
    except (HubError, ChunkReadError, StorageError) as exc:
        errors.append(f"object {row.oid}: its chunks are unreadable ({exc}); its whole-file copy is kept")
        return False
    if digest.hexdigest() != row.oid or size != row.size:
        errors.append(f"object {row.oid}: its chunks hash to {digest.hexdigest()}; its whole-file copy is kept")
        return False
    return True
