"""Large files: the Git LFS batch API's decisions, signed transfer URLs and verified uploads.

An object is stored once (key = sha256) but readable through a repo only if that repo holds a
reference to it (``repo_lfs_objects``): uploading it through the repo, or committing it. The batch
API never tells a repo that an object "already exists" unless that repo references it, so the
existence of objects in other (private) repos does not leak.

Transfer links (``/lfs-transfer/<repo storage key>/<oid>/<size>?exp&who&sig``) name the repo by its
storage key — random and never reused, unlike the database id SQLite hands out again after a
deletion — and the principal that minted them (``who``: its token, its user, or ``anon``). The HMAC
covers all of it. A link is only a capability to *ask*: every use re-checks that the repo still
exists, that the principal still exists (a revoked token ends its links) and may still read (or
upload to) the repo, and for downloads that the repo still references the object.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from aicommons.db.repos import RepoRow, RepoStore
from aicommons.errors import BadRequest, EntryNotFound, InsufficientStorage, PayloadTooLarge, Unauthorized
from aicommons.hub.reachability import LfsHistory
from aicommons.storage.base import BlobStore, StorageFull
from aicommons.storage.keys import blob_key
from aicommons.storage.staging import Body, Stager, receive
from aicommons.times import utcnow

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from aicommons.hub.access import Principal
    from aicommons.hub.objects import ObjectReader

OID_RE = re.compile(r"^[0-9a-f]{64}$")


class LfsService:
    def __init__(self, repos: RepoStore, blobs: BlobStore, key: bytes, tmp_dir: Path,
                 max_object_bytes: int, url_ttl: int, history: LfsHistory | None = None,
                 objects: ObjectReader | None = None):
        """``key``: the LFS transfer-link key (``hub/keys.py``), for this and nothing else."""
        self.repos = repos
        self.history = history  # None: every object the repo holds counts as in its history
        self.objects = objects  # hub/objects.py: a Xet-uploaded object has no lfs/ blob
        # Called with (repo id, oid) after an object is verified and stored (hub/chunking.py).
        self.stored_listeners: list[Callable[[int, str], None]] = []
        self.blobs = blobs
        self._key = key
        self.tmp_dir = tmp_dir
        self.max_object_bytes = max_object_bytes
        self.url_ttl = url_ttl
        # Uploads being received now, and when the last one ended: background work that re-reads
        # uploads (chunking) waits for a quiet moment rather than compete with them (issue 21).
        self._receiving = 0
        self._last_received = 0.0
        self._quiet = threading.Condition()

    # --- signing --------------------------------------------------------------------------------

    def sign(self, action: str, storage_key: str, oid: str, size: int, expires: int, who: str) -> str:
        msg = f"lfs-link:{action}:{storage_key}:{oid}:{size}:{expires}:{who}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    @staticmethod
    def link_holder(principal: Principal) -> str:
        """Who a link is minted for: the principal's key, or ``anon`` for any anonymous caller."""
        return "anon" if principal.is_anonymous else principal.key

    def signed_query(self, action: str, repo: RepoRow, oid: str, size: int, principal: Principal) -> str:
        expires = int(time.time()) + self.url_ttl
        who = self.link_holder(principal)
        return (f"exp={expires}&who={quote(who, safe='')}"
                f"&sig={self.sign(action, repo.storage_key, oid, size, expires, who)}")

    def check_signature(self, action: str, storage_key: str, oid: str, size: int, exp: str | None,
                        who: str | None, sig: str | None) -> int:
        """The link's expiry time, if its signature is good and it has not expired."""
        try:
            expires = int(exp or "")
        except (TypeError, ValueError):
            raise Unauthorized("Invalid or expired transfer URL") from None
        good = self.sign(action, storage_key, oid, size, expires, who or "")
        if expires < time.time() or not who or not hmac.compare_digest(good, sig or ""):
            raise Unauthorized("Invalid or expired transfer URL")
        return expires

    # --- batch ----------------------------------------------------------------------------------

    def check_object(self, obj: object) -> tuple[str, int] | str:
        """(oid, size), or an error message for this object."""
        if not isinstance(obj, dict):
            return "Each object must be a JSON object with 'oid' and 'size'"
        oid, size = obj.get("oid"), obj.get("size")
        if not isinstance(oid, str) or not OID_RE.match(oid):
            return f"Invalid object id {oid!r}: expected 64 lowercase hex characters (sha256)"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return f"Invalid size {size!r} for object {oid}"
        if size > self.max_object_bytes:
            return f"Object {oid} is larger than the maximum of {self.max_object_bytes} bytes"
        return oid, size

    def is_available(self, repo: RepoRow, oid: str, size: int) -> bool:
        """Whether the repo holds the object (uploaded through it or committed to it): an upload of
        it is not needed, a commit may point at it."""
        return self.repos.repo_lfs_size(repo.id, oid) == size and self._stored(oid)

    def _stored(self, oid: str) -> bool:
        return self.objects.exists(oid) if self.objects is not None else self.blobs.exists(blob_key(oid))

    def orphaned(self, repo: RepoRow, oid: str) -> bool:
        """Whether ``oid`` was in the repo's history once and no ref's history points at it now (a
        force-push or squash dropped it; GC has not purged it yet): a commit by someone without
        write access may not bring it back (hub/push.py ``OrphanGuard``, hub/commits.py)."""
        return self.readable_size(repo, oid) is None and self.repos.lfs_committed(repo.id, oid)

    def readable_size(self, repo: RepoRow, oid: str) -> int | None:
        """The size of ``oid`` if readers of the repo may download it: the repo holds it and, once its
        history was rewritten, some ref still points at it (a squashed-away file is not served until
        GC deletes it; hub/reachability.py)."""
        size = self.repos.repo_lfs_size(repo.id, oid)
        if size is None or (self.history is not None and not self.history.references(repo.storage_key, oid)):
            return None
        return size

    def is_downloadable(self, repo: RepoRow, oid: str, size: int) -> bool:
        return self.readable_size(repo, oid) == size and self._stored(oid)

    # --- transfers ------------------------------------------------------------------------------

    async def receive(self, repo: RepoRow, oid: str, size: int, chunks: Body) -> None:
        """Stage the upload, check its hash and size, then make it durable and visible."""

        repo_id = repo.id
        with self._quiet:
            self._receiving += 1
        try:
            await self._receive(repo_id, oid, size, chunks)
        finally:
            with self._quiet:
                self._receiving -= 1
                self._last_received = time.monotonic()
                self._quiet.notify_all()

    def wait_until_quiet(self, settle: float = 2.0, limit: float = 600.0) -> None:
        """Block until no upload has been received for ``settle`` seconds (at most ``limit``): how a
        background job that re-reads uploads yields to the uploads themselves (in this process)."""
        deadline = time.monotonic() + limit
        with self._quiet:
            while (now := time.monotonic()) < deadline:
                if not self._receiving and now - self._last_received >= settle:
                    return
                self._quiet.wait(min(settle, deadline - now))

    async def _receive(self, repo_id: int, oid: str, size: int, chunks: Body) -> None:
        import anyio

        try:
            # Around the page cache: hashed as it arrives, nothing reads the object back soon.
            with Stager(self.tmp_dir, max_bytes=size, direct=True) as stager:
                # Hashed and written once, by the receiving pool, while the next pieces arrive.
                await receive(chunks, stager.write_all)
                # The rest in one more hop to a worker thread: the fsync, the link and the database
                # commit (synchronous=FULL: another fsync) never hold up the event loop, which reads
                # the other uploads of an upload_folder meanwhile.
                await anyio.to_thread.run_sync(self._land, stager, repo_id, oid, size)
        except OverflowError:
            raise PayloadTooLarge(f"The upload is larger than the declared size {size}") from None
        except StorageFull as exc:
            raise InsufficientStorage(str(exc)) from None

    def _land(self, stager: Stager, repo_id: int, oid: str, size: int) -> None:
        """Make a received upload durable, check it is what it was announced as, then store it and
        record it: nothing is visible unless it checked out."""
        staged = stager.finish()
        if staged.size != size or staged.sha256 != oid:
            staged.discard()
            raise BadRequest(f"The uploaded content does not match: expected sha256 {oid} and size {size}, "
                             f"got sha256 {staged.sha256} and size {staged.size}")
        try:
            self.blobs.put_file(blob_key(oid), staged.path)
        except StorageFull:
            staged.discard()
            raise
        self.repos.add_lfs_object(repo_id, oid, size, utcnow())
        self.stored(repo_id, oid)

    def store_bytes(self, repo: RepoRow, data: bytes) -> str:
        """Store ``data`` as an LFS object of ``repo`` (a file uploaded from the web page, already in
        memory) and answer its oid; the caller commits the pointer."""
        if len(data) > self.max_object_bytes:
            raise PayloadTooLarge(f"The file is larger than {self.max_object_bytes} bytes")
        with Stager(self.tmp_dir, max_bytes=len(data)) as stager:
            stager.write(data)
            oid = hashlib.sha256(data).hexdigest()
            try:
                self._land(stager, repo.id, oid, len(data))
            except StorageFull as exc:
                raise InsufficientStorage(str(exc)) from None
        return oid

    def stored(self, repo_id: int, oid: str) -> None:
        for listener in self.stored_listeners:
            try:
                listener(repo_id, oid)
            except Exception:  # noqa: BLE001 - the upload has landed; chunking it is an optimisation
                log.exception("could not queue the chunking of LFS object %s", oid)

    def verify(self, repo: RepoRow, oid: str, size: int) -> None:
        if not self.is_available(repo, oid, size):
            raise EntryNotFound(f"Object {oid} of size {size} was not uploaded to this repository")
