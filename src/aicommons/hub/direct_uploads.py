"""Direct-to-bucket LFS uploads (``AICOMMONS_DIRECT_UPLOADS``): bytes skip the hub on the way in.

The LFS batch API hands the client a presigned PUT to a *staging* key of this repo and object,
``staging/lfs/<repo id>/<oid>``. Nothing there is visible: the object becomes readable only when
the client calls ``verify``, which re-reads the staged bytes, checks sha256 and size, copies them
to the content key (server-side), records the reference, and deletes the staged copy. A staged
object that fails the check is deleted; one that is never verified is removed by GC after the
grace period.

Only single-PUT objects (up to 5 GiB, S3's limit for one PUT and one server-side copy) go
direct; larger ones, and stores that cannot sign PUTs (local disk), use the proxied upload.
"""

from __future__ import annotations

import hashlib

from aicommons.db.repos import RepoRow
from aicommons.errors import BadRequest
from aicommons.hub.gc import STAGING_PREFIX
from aicommons.hub.lfs import blob_key
from aicommons.times import utcnow

MAX_DIRECT_BYTES = 5 * 1024 ** 3
CHUNK = 1024 * 1024


def staging_key(repo_id: int, oid: str) -> str:
    return f"{STAGING_PREFIX}lfs/{repo_id}/{oid}"


def upload_href(hub, repo: RepoRow, oid: str, size: int) -> str | None:
    """A presigned PUT for this object, or None when it must be uploaded through the hub."""
    if not hub.settings.direct_uploads or size > MAX_DIRECT_BYTES:
        return None
    return hub.blobs.presigned_put_url(staging_key(repo.id, oid), hub.lfs.url_ttl)


def promote_if_staged(hub, repo: RepoRow, oid: str, size: int) -> bool:
    """If this object was uploaded directly, verify it and make it visible. False if nothing is staged."""
    if not hub.settings.direct_uploads:
        return False
    key = staging_key(repo.id, oid)
    if hub.blobs.size(key) is None:
        return False
    digest, got = hashlib.sha256(), 0
    with hub.blobs.open(key) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            got += len(chunk)
    if got != size or digest.hexdigest() != oid:
        hub.blobs.delete(key)
        raise BadRequest(f"The uploaded content does not match: expected sha256 {oid} and size {size}, "
                         f"got sha256 {digest.hexdigest()} and size {got}")
    hub.blobs.copy(key, blob_key(oid))  # leases the content key first (GC-safe)
    hub.repo_store.add_lfs_object(repo.id, oid, size, utcnow())
    hub.blobs.delete(key)
    return True
