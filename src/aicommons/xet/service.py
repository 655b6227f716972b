"""The hub side of Xet uploads: verified xorbs into the blob store, and shards that make files of them.

A xorb is stored only after its chunk hashes and Merkle hash check out (``xorb.verify_upload``). A
shard's files are checked against the stored xorbs (``reconstruct.py``): every segment's chunks
exist and its verification hash proves the uploader knew them, the chunks hash to the file hash,
and their bytes hash to the sha256 the client declared. Only when every file of the shard is good
is the shard stored and each file recorded (``xet_files``: file hash -> sha256 oid and shard) and
granted to the token's repo as an LFS object of that oid. The client's commit then names them by
sha256 in an ordinary ``lfsFile`` line, which our commit checks accept (``hub/objects.py`` says
where an oid's bytes are).

The xorbs are the only copy of the bytes: no whole-file object is rebuilt (issue 11). Plain HTTP,
LFS, scans and snapshots read a Xet file from its xorbs (``files.py``); GC marks xorbs and shards
from the files that refs reach (``hub/chunk_gc.py``). Eligible chunks of accepted files are indexed
for the global dedup query (``dedup.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from aicommons.db.repos import RepoRow, RepoStore
from aicommons.db.xet import VerifiedXorbStore, XetDedupStore, XetFileRow, XetFileStore, XetGrantStore, XetUsageStore
from aicommons.errors import (
    BadRequest,
    HubError,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
)
from aicommons.storage.base import BlobStore, StorageError, StorageFull
from aicommons.storage.staging import Body, StagedFile, Stager, receive
from aicommons.times import utcnow
from aicommons.xet.dedup import DedupIndex, stored_footer
from aicommons.xet.hashing import from_hex, to_hex
from aicommons.xet.keys import STORE_ID_KEY, shard_key, xorb_key
from aicommons.xet.reads import XetReads
from aicommons.xet.reconstruct import ShardRejected, check_xorb_entry, rebuild_file, unbacked
from aicommons.xet.shard import Shard, ShardFile, ShardFormatError, parse_shard
from aicommons.xet.tokens import ACCOUNT, ANONYMOUS, XetGrant, XetKeys, XetTokens
from aicommons.xet.xorb import MAX_XORB_BYTES, XorbFormatError, XorbLayout, XorbReceiver, read_layout, verify_upload

log = logging.getLogger(__name__)

# Amplification bounds (issue 9, finding 15). A shard may make the server rebuild (write as new LFS
# objects) at most REBUILD_FACTOR times the bytes of the distinct chunks its new files reference, or
# SHARD_REBUILD_FLOOR, whichever is more: a real client stores each distinct chunk once and files
# rarely repeat whole chunks, while 16 references to a 286 KB xorb of zeros used to make 1 GiB. Per
# account and hour, rebuilt bytes may exceed REBUILD_FACTOR times the xorb bytes it uploaded only by
# the ``xet_rebuild_allowance_bytes`` setting (an edit of a large file rebuilds all of it from a
# small upload). Files the hub already holds are checked, never rebuilt, and count for neither.
REBUILD_FACTOR = 8
SHARD_REBUILD_FLOOR = 64 * 1024 * 1024


def parse_hash(text: str, what: str) -> bytes:
    try:
        return from_hex(text)
    except ValueError:
        raise BadRequest(f"Invalid {what} hash {text!r}: expected 64 lowercase hex characters") from None


def _read_or_map(f: BinaryIO) -> bytes | mmap.mmap:
    """A stored xorb's bytes: mapped from a local file (read from the page cache, never copied into
    the process), else read."""
    try:
        fd = f.fileno()
    except (OSError, AttributeError, ValueError):
        return f.read()
    try:
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # an empty file cannot be mapped (and is no xorb)
        return f.read()


class RecentXorbs:
    """The xorbs this process verified and stored itself lately (bounded, thread-safe). Checking a
    shard against one of them skips re-hashing its chunks (which guards against bit rot in storage,
    not against the uploader, whose bytes were hashed as they arrived): a Xet upload's bytes are
    then hashed once with BLAKE3 (the chunk hashes) and once with sha256 (the file's LFS name)."""

    def __init__(self, limit: int = 4096, ttl: float = 3600.0, shared: VerifiedXorbStore | None = None):
        self.limit, self.ttl = limit, ttl
        # With ``shared``, what every replica verified (one row per xorb, ≤ 64 MiB each): a shard
        # checked on another replica than the one its xorbs reached skips re-hashing them too.
        self.shared = shared
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, xorb_hash: bytes, conn=None) -> None:
        """Remember a xorb as verified now; shared through the database (in ``conn``'s transaction
        if given)."""
        self._remember(xorb_hash, time.monotonic())
        if self.shared is not None:
            now = utcnow()
            self.shared.add(to_hex(xorb_hash), now, now - timedelta(seconds=2 * self.ttl), conn)

    def _remember(self, xorb_hash: bytes, when: float) -> None:
        with self._lock:
            self._seen[xorb_hash] = when
            self._seen.move_to_end(xorb_hash)
            while len(self._seen) > self.limit:
                self._seen.popitem(last=False)

    def __contains__(self, xorb_hash: object) -> bool:
        with self._lock:
            seen = self._seen.get(xorb_hash)  # type: ignore[call-overload]
        if seen is not None and time.monotonic() - seen < self.ttl:
            return True
        if self.shared is None or not isinstance(xorb_hash, bytes):
            return False
        verified_at = self.shared.verified_at(to_hex(xorb_hash))
        if verified_at is None:
            return False
        age = (utcnow() - verified_at).total_seconds()
        if not 0 <= age < self.ttl:
            return False
        self._remember(xorb_hash, time.monotonic() - age)
        return True




class _StoredXorbs:
    """Loads stored xorbs for one shard, shared by the threads that check its files (thread-safe).
    Each xorb is leased, opened and its layout parsed once per shard: the layouts (small) are kept
    for the whole shard, so that checking the shard's xorb list after its files reads no xorb
    again; the bytes (mapped from a local file, else read) of the last ``keep_data`` xorbs are
    kept, since a file's segments walk through its xorbs in order and the threads work on
    neighbouring files."""

    def __init__(self, blobs: BlobStore, keep_data: int = 2, recent: RecentXorbs | None = None):
        self.blobs, self.keep_data = blobs, keep_data
        self.recent = recent
        self._lock = threading.Lock()
        self._gates: dict[bytes, threading.Lock] = {}  # one loader per xorb at a time
        self._data: OrderedDict[bytes, bytes | mmap.mmap] = OrderedDict()
        self._layouts: dict[bytes, XorbLayout] = {}
        self._leased: set[bytes] = set()

    def _cached(self, xorb_hash: bytes) -> tuple[bytes | mmap.mmap, XorbLayout] | None:
        with self._lock:
            data = self._data.get(xorb_hash)
            if data is None:
                return None
            self._data.move_to_end(xorb_hash)
            return data, self._layouts[xorb_hash]

    def load(self, xorb_hash: bytes) -> tuple[bytes | mmap.mmap, XorbLayout]:
        found = self._cached(xorb_hash)
        if found is not None:
            return found
        with self._lock:
            gate = self._gates.setdefault(xorb_hash, threading.Lock())
        with gate:
            found = self._cached(xorb_hash)  # another thread loaded it meanwhile
            if found is not None:
                return found
            data = self._read(xorb_hash)
            layout = self._layouts.get(xorb_hash)
            if layout is None:
                try:
                    layout = read_layout(memoryview(data))
                except XorbFormatError as exc:
                    raise ShardRejected(f"stored xorb {to_hex(xorb_hash)} is unreadable: {exc}") from None
            with self._lock:
                self._layouts[xorb_hash] = layout
                self._data[xorb_hash] = data
                while len(self._data) > self.keep_data:
                    self._data.popitem(last=False)  # a thread still reading it keeps its own reference
        return data, layout

    def _read(self, xorb_hash: bytes) -> bytes | mmap.mmap:
        name = to_hex(xorb_hash)
        key = xorb_key(name)
        leases = getattr(self.blobs, "leases", None)
        if leases is not None and xorb_hash not in self._leased:
            # This shard may reference it: GC must not sweep it meanwhile (a lease lasts hours).
            leases.touch_lease(key, utcnow())
            self._leased.add(xorb_hash)
        if not self.blobs.exists(key):
            raise ShardRejected(f"the shard references xorb {name}, which was never uploaded")
        with self.blobs.open(key) as f:
            return _read_or_map(f)

    def verified_recently(self, xorb_hash: bytes) -> bool:
        return self.recent is not None and xorb_hash in self.recent

    def layout(self, xorb_hash: bytes) -> XorbLayout:
        layout = self._layouts.get(xorb_hash)
        return layout if layout is not None else self.load(xorb_hash)[1]


@dataclass
class _Accepted:
    entry: ShardFile
    oid: str
    replaces: bool = False  # the file was recorded before, but its chunks were collected since


class XetService:
    def __init__(self, files: XetFileStore, repos: RepoStore, blobs: BlobStore, keys: XetKeys, tmp_dir: Path,
                 max_file_bytes: int, token_ttl: int, rebuild_allowance: int = 20 * 1024 ** 3,
                 in_history: Callable[[int, str], bool] | None = None):
        self.files = files
        self.repos = repos
        self.blobs = blobs
        self.tmp_dir = tmp_dir
        self.max_file_bytes = max_file_bytes
        self.tokens = XetTokens(keys.token, keys.token_binding, token_ttl)
        self.grants = XetGrantStore(files.engine)
        self.usage = XetUsageStore(files.engine)
        self._store_id: str | None = None
        self.rebuild_allowance = rebuild_allowance
        self.reads = XetReads(files, repos, blobs, keys.range_url, token_ttl, in_history=in_history)  # downloads
        self.dedup = DedupIndex(XetDedupStore(files.engine), blobs)  # global dedup (dedup.py)
        self.recently_verified = RecentXorbs(shared=VerifiedXorbStore(files.engine))
        # The hub's storage quota: called with (repo, new bytes) before a xorb or shard is stored; raises to refuse.
        self.admit: Callable[[RepoRow, int], None] | None = None
        # The same, holding the bytes against the quota until ``release`` (uploads in flight).
        self.reserve: Callable[[RepoRow, int], int | None] | None = None
        self.release: Callable[[int], None] | None = None

    # --- where the CAS is -----------------------------------------------------------------------

    def store_id(self) -> str:
        """The random name of this blob store's Xet data (``keys.STORE_ID_KEY``), created on first
        use with create-once semantics (two replicas racing keep the first one written)."""
        if self._store_id is None:
            for _ in range(2):
                if self.blobs.exists(STORE_ID_KEY):
                    with self.blobs.open(STORE_ID_KEY) as f:
                        found = f.read(64).decode("ascii", "replace").strip()
                    if re.fullmatch(r"[0-9a-f]{16}", found):
                        self._store_id = found
                        break
                    raise RuntimeError(f"{STORE_ID_KEY} in the blob store is not a store id")
                self._put(STORE_ID_KEY, self._stage(secrets.token_hex(8).encode()))
        if self._store_id is None:
            raise RuntimeError(f"cannot read back {STORE_ID_KEY}")
        return self._store_id

    # --- tokens ---------------------------------------------------------------------------------

    def mint(self, storage_key: str, operation: str, principal) -> tuple[str, int]:
        """A Xet token for the repo with ``storage_key``, bound to what ``principal`` signed in with."""
        account = principal.account
        if account is None:
            return self.tokens.issue(storage_key, operation, 0, ANONYMOUS)
        if principal.key.startswith("token:"):
            token_id = int(principal.key.split(":", 1)[1])
            token_hash = self.grants.token_hash(token_id, account.id)
            if token_hash is None:
                raise Unauthorized("This access token was revoked")
            return self.tokens.issue(storage_key, operation, account.id, self.tokens.token_minter(token_id, token_hash))
        return self.tokens.issue(storage_key, operation, account.id, ACCOUNT)

    def grant(self, token: str | None, operation: str) -> XetGrant:
        """The grant of a Xet token that is valid now: well signed and unexpired, its repo still the
        one it was minted for, and the credential that minted it not revoked."""
        grant = self.tokens.check(token, operation)
        repo_id = self.grants.repo_id(grant.storage_key)
        if repo_id is None:
            raise Unauthorized("The repository this Xet token was issued for no longer exists")
        if grant.token_id is not None:
            token_hash = self.grants.token_hash(grant.token_id, grant.account_id)
            if token_hash is None or not self.tokens.binding_matches(grant, token_hash):
                raise Unauthorized("The access token that this Xet token was issued to has been revoked")
        elif grant.minter == ACCOUNT:
            if not self.grants.account_exists(grant.account_id):
                raise Unauthorized("The account this Xet token was issued to no longer exists")
        elif grant.account_id != 0:
            raise Unauthorized("Invalid Xet access token")
        return replace(grant, repo_id=repo_id)

    # --- xorbs ----------------------------------------------------------------------------------

    def admit_xorb(self, repo_id: int, size: int, account_id: int) -> int | None:
        """Refuse (the hub's storage quota) a xorb of ``size`` bytes for repo ``repo_id``'s owner, or
        reserve them against the quota while the xorb arrives (the reservation to ``release_xorb``;
        parallel xorbs cannot together pass it). The hub's own chunking of LFS objects (account 0)
        re-stores bytes it holds already: not refused."""
        repo = self.repos.get_by_id(repo_id) if account_id else None
        if repo is None:
            return None
        if self.reserve is not None:
            return self.reserve(repo, size)
        if self.admit is not None:
            self.admit(repo, size)
        return None

    def release_xorb(self, reservation: int | None) -> None:
        if reservation is not None and self.release is not None:
            self.release(reservation)

    def store_xorb(self, hex_hash: str, data: bytes, account_id: int = 0) -> bool:
        """Verify an uploaded xorb and store it (with our footer); False if it was stored already.
        Nothing is stored on error. The bytes count as received from ``account_id`` either way."""
        expected = parse_hash(hex_hash, "xorb")
        try:
            verified = verify_upload(data, expected)
        except XorbFormatError as exc:
            raise BadRequest(f"Rejected xorb {hex_hash}: {exc}") from None
        self.usage.add_received(account_id, _hour(), len(data))
        key = xorb_key(hex_hash)
        if self.blobs.exists(key):
            return False
        self._put(key, self._stage(verified.chunk_data, verified.footer))
        self.recently_verified.add(expected)
        log.info("xet: stored xorb %s (%d chunks)", hex_hash, len(verified.layout.chunks))
        return True

    async def receive_xorb(self, hex_hash: str, pieces: Body, account_id: int = 0) -> bool:
        """``store_xorb`` for an upload still arriving: each chunk is decompressed and hashed as it
        comes (in the xorb receiving thread, while the event loop reads the next pieces) and its bytes
        written to the staging file in the same pass; the file is published only once the whole xorb
        checked out. Memory holds a few MiB of the body, never the xorb."""
        import anyio

        expected = parse_hash(hex_hash, "xorb")
        key = xorb_key(hex_hash)
        stored = await anyio.to_thread.run_sync(self.blobs.exists, key)
        try:
            with contextlib.ExitStack() as stack:
                stager = None if stored else stack.enter_context(Stager(self.tmp_dir, hash=False))
                receiver = XorbReceiver(expected, stager.write if stager is not None else None)

                def consume(batch: list[bytes]) -> None:
                    for piece in batch:
                        if receiver.received + len(piece) > MAX_XORB_BYTES:
                            raise PayloadTooLarge(f"Request body is larger than the limit of {MAX_XORB_BYTES} bytes")
                        receiver.feed(piece)

                await receive(pieces, consume)

                def finish() -> bool:
                    """Check the whole xorb, then make it durable and publish it, in one hop to a
                    worker thread (fsyncs and database commits never hold up the event loop)."""
                    _layout, footer = receiver.finish()
                    if stager is None:
                        self.usage.add_received(account_id, _hour(), receiver.received)
                        return False
                    stager.write(footer)
                    try:
                        self._put(key, stager.finish())
                    except BaseException:
                        self.usage.add_received(account_id, _hour(), receiver.received)
                        raise
                    # One commit for the bytes received and the xorb verified lately (a shard's
                    # check on any replica skips re-hashing it), not one each.
                    self.usage.add_received(account_id, _hour(), receiver.received,
                                            then=lambda conn: self.recently_verified.add(expected, conn))
                    return True

                stored_now = await anyio.to_thread.run_sync(finish)
        except XorbFormatError as exc:
            raise BadRequest(f"Rejected xorb {hex_hash}: {exc}") from None
        except StorageFull as exc:
            raise InsufficientStorage(str(exc)) from None
        if stored_now:
            log.info("xet: stored xorb %s (%d chunks)", hex_hash, len(receiver.chunks))
        return stored_now

    # --- shards ---------------------------------------------------------------------------------

    def ingest_shard(self, repo_id: int, data: bytes, account_id: int = 0) -> int:
        """Check a shard against the stored xorbs, rebuild its new files, and make each file an LFS
        object of repo ``repo_id``. All or nothing: any bad file rejects the shard. Returns the
        number of distinct files."""
        repo = self.repos.get_by_id(repo_id)
        if repo is None:
            raise NotFound("The repository of this Xet token no longer exists")
        try:
            shard = parse_shard(data)
        except ShardFormatError as exc:
            raise BadRequest(f"Rejected shard: {exc}") from None
        source = _StoredXorbs(self.blobs, keep_data=self._workers(len(shard.files)) + 2,
                              recent=self.recently_verified)
        accepted: list[_Accepted] = []
        hour, reserved = _hour(), 0
        try:
            defined: dict[bytes, ShardFile] = {}
            for entry in shard.files:
                first = defined.setdefault(entry.hash, entry)
                if first is not entry and first != entry:  # one definition per file hash, checked
                    raise ShardRejected(f"the shard defines file {entry.hex} twice, differently")
            known, new = [], []
            recorded = self.files.get_many(entry.hex for entry in defined.values())
            for entry in defined.values():
                row = recorded.get(entry.hex)
                if row is not None and self._hold(shard_key(row.shard)):
                    known.append((entry, row))
                else:
                    new.append(entry)
            if self.admit is not None and account_id:  # files new to the repo, before anything is stored
                self.admit(repo, sum(e.size for e, row in known if self.repos.repo_lfs_size(repo_id, row.oid) is None)
                           + sum(e.size for e in new))
            rebuild = sum(entry.size for entry in new)
            self._check_shard_amplification(new, rebuild)
            if rebuild and not self.usage.reserve_rebuild(account_id, hour, rebuild, self.rebuild_allowance,
                                                          REBUILD_FACTOR):
                retry = 3600 - int(time.time()) % 3600
                raise TooManyRequests(f"This account has made the server rebuild as many Xet file bytes this hour "
                                      f"as its uploads allow; try again in {retry} seconds",
                                      headers={"Retry-After": str(retry)})
            reserved = rebuild
            for entry, row in known:
                if self._still_stored(row):
                    accepted.append(self._accept_known(entry, row, source))
                elif row.size != entry.size or (entry.sha256 and entry.sha256 != row.oid):
                    raise ShardRejected(f"file {entry.hex} is not the file the hub knows by that hash")
                else:  # recorded, but GC swept its chunks since: proven and recorded anew from this shard
                    accepted.append(replace(self._accept_file(entry, source), replaces=True))
            accepted.extend(self._accept_files(new, source))
            for xorb in shard.xorbs:  # after the files, which loaded most of these xorbs already
                check_xorb_entry(xorb, source)
        except ShardRejected as exc:
            self._release(account_id, hour, reserved)
            raise BadRequest(f"Rejected shard: {exc}") from None
        except BaseException:
            self._release(account_id, hour, reserved)
            raise
        self._publish(repo_id, data, shard, accepted)
        return len(accepted)

    def _hold(self, key: str) -> bool:
        """Whether the blob ``key`` exists, leased first (hub/gc.py) when the store leases writes, so
        that GC cannot sweep an object this shard is about to grant to its repo without rewriting."""
        leases = getattr(self.blobs, "leases", None)
        if leases is not None:
            leases.touch_lease(key, utcnow())
        return self.blobs.exists(key)

    def _release(self, account_id: int, hour: int, reserved: int) -> None:
        if reserved:
            self.usage.release_rebuild(account_id, hour, reserved)

    def _check_shard_amplification(self, new: list[ShardFile], rebuild: int) -> None:
        """Refuse, before rebuilding anything, a shard whose new files add up to far more than the
        distinct chunks they reference (read from the xorb footers alone)."""
        if rebuild <= SHARD_REBUILD_FLOOR:
            return
        spans: dict[bytes, list[tuple[int, int]]] = {}
        first_use: dict[bytes, tuple[str, int]] = {}
        for entry in new:
            for index, segment in enumerate(entry.segments):
                spans.setdefault(segment.xorb_hash, []).append((segment.chunk_start, segment.chunk_end))
                first_use.setdefault(segment.xorb_hash, (entry.hex, index))
        chunks: dict[bytes, int] = {}  # distinct chunk hash -> size
        for xorb_hash, ranges in spans.items():
            try:
                hashes, sizes = self._xorb_chunks(xorb_hash)
            except ShardRejected:
                raise unbacked(*first_use[xorb_hash], xorb_hash) from None
            for start, end in ranges:
                for i in range(start, min(end, len(hashes))):
                    chunks[hashes[i]] = sizes[i]
        referenced = sum(chunks.values())
        if rebuild > REBUILD_FACTOR * referenced:
            raise PayloadTooLarge(f"Rejected shard: its files add up to {rebuild} bytes but reference only {referenced} "
                                  f"bytes of distinct chunks; a shard may make the server rebuild at most "
                                  f"{REBUILD_FACTOR} times that (or {SHARD_REBUILD_FLOOR} bytes)")

    def _xorb_chunks(self, xorb_hash: bytes) -> tuple[list[bytes], list[int]]:
        """Chunk hashes and sizes of a stored xorb, from its footer (not its up to 64 MiB of data)."""
        found = stored_footer(self.blobs, xorb_hash)
        if found is None:
            raise ShardRejected("no such xorb")
        hashes, _stored_ends, unpacked_ends, _size = found
        sizes = [end - start for start, end in zip([0, *unpacked_ends], unpacked_ends)]
        return hashes, sizes

    def _still_stored(self, row: XetFileRow) -> bool:
        """Whether every xorb the recorded file needs is still stored (read from their footers)."""
        try:
            self.reads.chunked_file(row)
        except (HubError, StorageError):
            return False
        return True

    def _accept_known(self, entry: ShardFile, row: XetFileRow, source: _StoredXorbs) -> _Accepted:
        """A file the hub holds already: the uploader proves it knows the chunks (verification
        hashes, file hash), nothing is read, and the repo gains the existing object."""
        rebuild_file(entry, source, None)  # the file hash covers every chunk hash and size
        if entry.size != row.size or (entry.sha256 and entry.sha256 != row.oid):
            raise ShardRejected(f"file {entry.hex} is not the file the hub knows by that hash")
        return _Accepted(entry, row.oid)

    @staticmethod
    def _workers(files: int) -> int:
        return max(1, min(files, os.cpu_count() or 1, 4))

    def _accept_files(self, entries: list[ShardFile], source: _StoredXorbs) -> list[_Accepted]:
        """``_accept_file`` of each new file; several files are hashed in parallel (hashlib leaves the
        GIL while it hashes), all threads sharing the shard's loaded xorbs."""
        workers = self._workers(len(entries))
        if workers <= 1:
            return [self._accept_file(entry, source) for entry in entries]
        with ThreadPoolExecutor(workers, thread_name_prefix="xet-shard") as pool:
            return list(pool.map(lambda entry: self._accept_file(entry, source), entries))

    def _accept_file(self, entry: ShardFile, source: _StoredXorbs) -> _Accepted:
        """A new file: its chunks are checked and their bytes hashed with sha256 (the name LFS and
        plain HTTP clients know it by), never written anywhere: the xorbs are its only copy."""
        if entry.size > self.max_file_bytes:
            raise PayloadTooLarge(f"File {entry.hex} is larger than the maximum of {self.max_file_bytes} bytes")
        digest = hashlib.sha256()
        rebuild_file(entry, source, digest.update)
        oid = digest.hexdigest()
        if entry.sha256 and oid != entry.sha256:
            raise ShardRejected(f"file {entry.hex} rebuilds to sha256 {oid}, not the declared {entry.sha256}")
        return _Accepted(entry, oid)

    def _publish(self, repo_id: int, data: bytes, shard: Shard, accepted: list[_Accepted]) -> None:
        """Everything checked: store the shard durably, then record its files (and index their
        chunks for global dedup)."""
        shard_sha = hashlib.sha256(data).hexdigest()
        if accepted and not self._hold(shard_key(shard_sha)):
            self._put(shard_key(shard_sha), self._stage(data))
        # Every file's object and record in one transaction (one commit, not two per file).
        self.files.record_all(repo_id, ((item.entry.hex, item.oid, item.entry.size, item.replaces)
                                        for item in accepted), shard_sha, utcnow())
        for item in accepted:
            log.info("xet: file %s = lfs %s (%d bytes) in repo %d", item.entry.hex, item.oid, item.entry.size,
                     repo_id)
        if accepted:
            self.dedup.index_shard(shard, shard_sha)

    # --- blob plumbing --------------------------------------------------------------------------

    def _stage(self, *parts: bytes | memoryview) -> StagedFile:
        try:
            with Stager(self.tmp_dir, hash=False) as stager:  # named by another hash, or none
                for part in parts:
                    stager.write(part)
                return stager.finish()
        except StorageFull as exc:
            raise InsufficientStorage(str(exc)) from None

    def _put(self, key: str, staged: StagedFile) -> None:
        try:
            self.blobs.put_file(key, staged.path)
        except StorageError as exc:
            staged.discard()
            if isinstance(exc, StorageFull):
                raise InsufficientStorage(str(exc)) from None
            raise


def _hour() -> int:
    return int(time.time()) // 3600
