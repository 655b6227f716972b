"""LFS uploads into the chunk store: after an LFS object is verified (batch API, ``git lfs push``,
direct uploads), a background job chunks it with Xet's own chunker, so that later revisions
uploaded any way deduplicate against it and it becomes downloadable through Xet as well.

The chunker is the stock Xet client (``hf_xet``, the same Rust code huggingface_hub uploads with),
run by the hub against its own CAS over HTTP, as any client would: content-defined chunking and
hashes byte for byte the protocol's, global dedup queries against every earlier upload, xorbs and
a shard that go through the same verification as a user's upload (``xet/service.py``). The shard
makes the object a Xet file of the repo it was uploaded to; the whole-file blob stays until GC
(``chunk_gc.py``) has re-hashed the chunks and removes it as redundant.

The job's write token is the hub's own: minted for that repo with no account (``ANONYMOUS``), valid
for ``upload_url_ttl_seconds``, and good only at the CAS. Where the job reaches the CAS:
``AICOMMONS_PUBLIC_URL`` if set (separate ``aicommons worker`` processes need it), else this
server's own host and port. Without ``hf_xet`` installed (the ``chunking`` extra) or with
``AICOMMONS_CHUNK_LFS_UPLOADS=false`` nothing is queued and LFS objects stay whole.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from aicommons.hub.audit import CHUNKING_JOB

if TYPE_CHECKING:
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

log = logging.getLogger(__name__)
CAS_PREFIX = "/xet-cas"


def available() -> bool:
    try:
        import hf_xet  # type: ignore[import-untyped]  # noqa: F401  # hf_xet has no type information
    except ImportError:
        return False
    return True


def hub_url(settings: Settings) -> str:
    if settings.public_url:
        return str(settings.public_url)
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.port}"


def chunk_lfs_object(hub: Hub, repo_id: int, oid: str) -> bool:
    """Chunk the LFS object ``oid`` of repo ``repo_id`` into the chunk store; False if there was
    nothing to do (chunked already, gone, or the repo no longer exists)."""
    import hf_xet

    if hub.xet.reads.file_for_oid(oid) is not None:
        return False
    repo = hub.repo_store.get_by_id(repo_id)
    found = hub.objects.find(oid)
    if repo is None or found is None or found.key is None:
        return False
    # Not while uploads are arriving: chunking re-reads and re-uploads the whole object, and would
    # take the CPU and disk that the uploads (a folder of files, one after the other) need.
    hub.lfs.wait_until_quiet()
    token, expires = hub.xet.mint(repo.storage_key, "write", _System())
    cas_url = f"{hub_url(hub.settings)}{CAS_PREFIX}/{hub.xet.store_id()}"
    local = hub.blobs.local_path(found.key)
    with tempfile.TemporaryDirectory(dir=hub.settings.tmp_dir, prefix="chunking-") as tmp:
        if local is None:  # object storage: a private local copy first
            local = Path(tmp) / oid
            with hub.blobs.open(found.key) as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        hf_xet.upload_files([str(local)], cas_url, (token, expires), lambda: (token, expires), None, repo.type,
                            sha256s=[oid])
    done = hub.xet.reads.file_for_oid(oid) is not None
    log.info("chunking: LFS object %s of repo %d %s", oid, repo_id, "chunked" if done else "NOT chunked")
    return done


class _System:
    """The principal a chunking job mints its CAS token as: no account, no access token."""

    account = None
    key = CHUNKING_JOB
