"""Direct-to-bucket LFS uploads (``AICOMMONS_DIRECT_UPLOADS``): bytes skip the hub on the way in.

The LFS batch API hands the client a presigned PUT to a *staging* key of its own:
``staging/lfs/<repo storage key>/<user id>/<oid>-<nonce>``, one per upload. The nonce is random and
travels only in the batch answer (the PUT URL and the ``verify`` href); ``verify`` rebuilds the key
from the *caller's* user id, so no one else can verify, overwrite or break the upload. On S3 the PUT
signs ``Content-Length``: the bucket takes exactly the declared size.

Nothing staged is visible. ``verify`` checks the staged size (HEAD) against the declared one, then
reads at most ``size + 1`` bytes of it into a hub-private local file while hashing, and publishes
*that file* with ``put_file``: create-only, hub-fixed headers. So the bytes published are exactly the
bytes hashed — re-PUTting the staged object while the hub reads it can only make the hash fail — and
an object already in the bucket (uploaded for another repo) is reused, never replaced. The staged
object is deleted either way; one never verified is removed by GC after the grace period.

Only single-PUT objects (up to 5 GiB, S3's limit for one PUT) go direct; larger ones, and stores that
cannot sign PUTs (local disk), use the proxied upload.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

from aicommons.db.repos import RepoRow
from aicommons.errors import BadRequest, InsufficientStorage
from aicommons.hub.gc import STAGING_PREFIX
from aicommons.storage.base import StorageFull
from aicommons.storage.keys import blob_key
from aicommons.storage.staging import StagedFile, Stager
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.access import Principal
    from aicommons.hub.hub import Hub

MAX_DIRECT_BYTES = 5 * 1024 ** 3
NONCE_RE = re.compile(r"^[0-9a-f]{32}$")


def staging_key(repo: RepoRow, user_id: int, oid: str, nonce: str) -> str:
    return f"{STAGING_PREFIX}lfs/{repo.storage_key}/{user_id}/{oid}-{nonce}"


def upload_href(hub: Hub, repo: RepoRow, principal: Principal, oid: str, size: int) -> tuple[str, str] | None:
    """(presigned PUT, nonce for the verify href) for this upload, or None when it must go through
    the hub."""
    if not hub.settings.direct_uploads or size > MAX_DIRECT_BYTES or principal.account is None:
        return None
    nonce = secrets.token_hex(16)
    url = hub.blobs.presigned_put_url(staging_key(repo, principal.user.id, oid, nonce), hub.lfs.url_ttl, size)
    return None if url is None else (url, nonce)


def promote_if_staged(hub: Hub, repo: RepoRow, principal: Principal, oid: str, size: int, nonce: str | None) -> bool:
    """If this caller uploaded this object directly, verify it and make it visible. False if nothing
    is staged under the caller's key for this upload."""
    if not hub.settings.direct_uploads or not nonce or principal.account is None:
        return False
    if not NONCE_RE.match(nonce):
        raise BadRequest("Invalid upload id in the verify URL")
    key = staging_key(repo, principal.user.id, oid, nonce)
    staged_size = hub.blobs.size(key)
    if staged_size is None:
        return False
    try:
        if staged_size != size:
            raise BadRequest(f"The uploaded content does not match: expected size {size}, got {staged_size}")
        staged = _fetch_bounded(hub, key, size)
        if staged.size != size or staged.sha256 != oid:
            staged.discard()
            raise BadRequest(f"The uploaded content does not match: expected sha256 {oid} and size {size}, "
                             f"got sha256 {staged.sha256} and size {staged.size}")
        try:
            hub.blobs.put_file(blob_key(oid), staged.path)  # create-only; leases the key first (GC-safe)
        except StorageFull as exc:
            staged.discard()
            raise InsufficientStorage(str(exc)) from None
        hub.repo_store.add_lfs_object(repo.id, oid, size, utcnow())
        hub.lfs.stored(repo.id, oid)
    finally:
        hub.blobs.delete(key)
    return True


def _fetch_bounded(hub: Hub, key: str, size: int) -> StagedFile:
    """The staged object copied into a hub-private local file, reading at most ``size + 1`` bytes
    (none for an empty object: the HEAD said it was empty, and an empty file is what we publish)."""
    try:
        with Stager(hub.settings.tmp_dir, max_bytes=size) as stager:
            for chunk in hub.blobs.read_prefix(key, size + 1 if size else 0):
                stager.write(chunk)
            return stager.finish()
    except OverflowError:
        raise BadRequest(f"The uploaded content is larger than the declared size {size}") from None
    except StorageFull as exc:
        raise InsufficientStorage(str(exc)) from None
