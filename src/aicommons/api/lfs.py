"""Git LFS batch API (basic transfer + verify), used by huggingface_hub without Xet and by git-lfs.

Transfer URLs carry their own short-lived HMAC signature, because clients send no Authorization
header on the upload PUT (spec §9.4). The signature names the repo by storage key and the principal
that asked for the link; each use re-checks access as that principal (``hub/lfs.py``).
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aicommons.api.chunked import chunked_file_response
from aicommons.api.file_response import LocalFileResponse
from aicommons.api.files import CONTAINMENT_HEADERS, PRESIGNED_TTL
from aicommons.api.http import base_url, hub_of, json_object, param, principal_of, read_json, run_sync
from aicommons.api.socket_body import upload_body
from aicommons.errors import BadRequest, EntryNotFound, HubError, NotFound, Unauthorized
from aicommons.hub import direct_uploads
from aicommons.hub.lfs import OID_RE
from aicommons.hub.names import REPO_TYPE_PREFIX
from aicommons.hub.policy import Action

LFS_JSON = "application/vnd.git-lfs+json"
STORAGE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _repo_type(request: Request) -> str:
    prefix = request.path_params.get("prefix")
    if prefix is None:
        return "model"
    if prefix not in ("datasets", "spaces"):
        raise NotFound(f"Unknown repo type {prefix!r}")
    return prefix[:-1]


def _repo_id(request: Request) -> str:
    return f"{param(request, 'ns')}/{param(request, 'name')}"


def _lfs_error(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status, media_type=LFS_JSON,
                        headers={"X-Error-Message": message})


def _find(request: Request, action: Action):
    try:
        return hub_of(request).repos.find(_repo_type(request), _repo_id(request), principal_of(request), action=action)
    except HubError as exc:
        if exc.status == 401:  # git-lfs asks for credentials only when challenged
            exc.headers.setdefault("WWW-Authenticate", 'Basic realm="AI Commons"')
        raise


async def batch(request: Request) -> Response:
    # That the caller may see the repo is decided before the body; what the operation needs, after.
    await run_sync(_find, request, Action.READ_METADATA)
    body = json_object(await read_json(request))
    operation = body.get("operation")
    objects = body.get("objects")
    if operation not in ("upload", "download"):
        raise BadRequest("'operation' must be 'upload' or 'download'")
    if not isinstance(objects, list) or len(objects) > 1000:
        raise BadRequest("'objects' must be a list of at most 1000 objects")
    if body.get("hash_algo", "sha256") != "sha256":
        return _lfs_error(409, "Only sha256 is supported")
    return await run_sync(_batch, request, operation, objects)


def _batch(request: Request, operation: str, objects: list) -> Response:
    hub = hub_of(request)
    # Downloads read the repo's content; uploads are for contributors (PR authors upload too), and
    # objects only join the repo through a commit or a push, which have their own checks.
    repo = _find(request, Action.READ_CONTENT if operation == "download" else Action.CONTRIBUTE)
    principal = principal_of(request)
    base = base_url(request)
    if operation == "upload":  # the storage quota: a batch whose new objects would pass it is refused whole
        new = [c for c in map(hub.lfs.check_object, objects) if not isinstance(c, str)]
        try:
            hub.storage.check_upload(repo.owner_id, sum(size for oid, size in dict(new).items()
                                                        if not hub.lfs.is_available(repo, oid, size)))
        except HubError as exc:  # in the LFS error shape, which git-lfs shows as it is
            return _lfs_error(exc.status, exc.message)
    out = []
    for obj in objects:
        checked = hub.lfs.check_object(obj)
        if isinstance(checked, str):
            out.append({"oid": str(obj.get("oid")) if isinstance(obj, dict) else "", "size": 0,
                        "error": {"code": 422, "message": checked}})
            continue
        oid, size = checked
        item = {"oid": oid, "size": size, "authenticated": True}
        if operation == "upload":
            available = hub.lfs.is_available(repo, oid, size)
            if not available:
                verify_href = f"{base}/{REPO_TYPE_PREFIX[repo.type]}{repo.full_id}.git/info/lfs/objects/verify"
                # Straight to the bucket when configured (AICOMMONS_DIRECT_UPLOADS), else through us.
                direct = direct_uploads.upload_href(hub, repo, principal, oid, size)
                if direct is not None:
                    href, nonce = direct
                    verify_href += f"?upload={nonce}"
                else:
                    query = hub.lfs.signed_query("upload", repo, oid, size, principal)
                    href = f"{base}/lfs-transfer/{repo.storage_key}/{oid}/{size}?{query}"
                item["actions"] = {
                    "upload": {"href": href, "expires_in": hub.lfs.url_ttl},
                    "verify": {"href": verify_href,
                               "expires_in": hub.lfs.url_ttl,
                               # git-lfs adds no credentials to the actions of an "authenticated" object
                               "header": {"Authorization": request.headers.get("authorization", "")}},
                }
        elif hub.lfs.is_downloadable(repo, oid, size):
            query = hub.lfs.signed_query("download", repo, oid, size, principal)
            item["actions"] = {"download": {"href": f"{base}/lfs-transfer/{repo.storage_key}/{oid}/{size}?{query}",
                                            "expires_in": hub.lfs.url_ttl}}
        elif hub.upstream is not None and (where := hub.upstream.where_is(repo, oid, size)) is not None:
            # A pulled-through repo's file not fetched yet: its resolve URL streams it from upstream
            # while storing it (hub/upstream.py); git-lfs follows any href.
            sha, path = where
            href = f"{base}/{REPO_TYPE_PREFIX[repo.type]}{repo.full_id}/resolve/{sha}/{quote(path)}"
            item["actions"] = {"download": {"href": href, "expires_in": hub.lfs.url_ttl,
                                            "header": {"Authorization": request.headers.get("authorization", "")}}}
        else:
            item["error"] = {"code": 404, "message": f"Object {oid} does not exist in this repository"}
        out.append(item)
    return JSONResponse({"transfer": "basic", "objects": out, "hash_algo": "sha256"}, media_type=LFS_JSON)


def _transfer_args(request: Request) -> tuple[str, str, int]:
    repo_key, oid = request.path_params["repo_key"], request.path_params["oid"]
    try:
        size = int(request.path_params["size"])
    except ValueError:
        raise BadRequest("Invalid transfer URL") from None
    if not OID_RE.match(oid) or not STORAGE_KEY_RE.match(repo_key):
        raise BadRequest("Invalid transfer URL")
    return repo_key, oid, size


def _link_access(request: Request, action: str):
    """(repo, oid, size, expiry) of a signed transfer link, after re-checking, as the principal it was
    minted for, everything the batch API checked: the repo still exists, the principal still does (a
    revoked token ends its links) and may still read the repo (privatised, gated and not approved,
    or deleted: refused), may still upload, and for downloads the repo still references the object."""
    hub = hub_of(request)
    repo_key, oid, size = _transfer_args(request)
    query = request.query_params
    who = query.get("who")
    expires = hub.lfs.check_signature(action, repo_key, oid, size, query.get("exp"), who, query.get("sig"))
    principal = hub.accounts.principal_for_key(who)
    if principal is None:
        raise Unauthorized("The token or session this transfer URL was issued to is no longer valid")
    stored = hub.repos.by_storage_key(repo_key)
    if stored is None:
        raise EntryNotFound("The repository of this transfer no longer exists")
    # The same decision as the batch API's, taken again now (hub/policy.py).
    repo = hub.repos.find(stored.type, stored.full_id, principal,
                          action=Action.READ_CONTENT if action == "download" else Action.CONTRIBUTE)
    if action == "download" and hub.lfs.readable_size(repo, oid) != size:
        raise EntryNotFound(f"Object {oid} does not exist in this repository")
    return repo, oid, size, expires


async def upload(request: Request) -> Response:
    hub = hub_of(request)
    repo, oid, size, _ = await run_sync(_link_access, request, "upload")
    # Still room, now the bytes come: held against the quota while they arrive (parallel uploads).
    reservation = await run_sync(hub.storage.reserve_upload, repo.owner_id, size)
    try:
        await hub.lfs.receive(repo, oid, size, upload_body(request))
    finally:
        await run_sync(hub.storage.release_upload, reservation)
    return Response(status_code=200)


async def download(request: Request) -> Response:
    hub = hub_of(request)
    _repo, oid, size, expires = await run_sync(_link_access, request, "download")
    found = await run_sync(hub.objects.find, oid)
    if found is None:
        raise EntryNotFound(f"Object {oid} is missing")
    # Per-principal, access-checked links: never cached by a shared cache, never outliving the link.
    private = {"Cache-Control": "private, no-store"}
    ttl = max(1, min(PRESIGNED_TTL, expires - int(time.time())))
    if found.key is None:  # chunk-stored (a Xet upload): a whole copy in the bucket or on local disk, or
        # read from its xorbs
        url = await run_sync(hub.bucket_copies.url, oid, found.size, ttl)
        if url is not None:
            return RedirectResponse(url, status_code=302, headers=private)
        headers = {**CONTAINMENT_HEADERS, **private, "ETag": f'"{oid}"'}
        cached = await run_sync(hub.download_cache.get, oid, found.size)
        if cached is not None:
            return LocalFileResponse(cached, found.size, headers, "application/octet-stream")
        source = await run_sync(hub.objects.chunked, found)
        return chunked_file_response(source, headers,
                                     request.headers.get("range"), request.headers.get("if-range"),
                                     "application/octet-stream")
    local = hub.objects.local_path(found)
    if local is None:
        return RedirectResponse(hub.blobs.presigned_url(found.key, ttl), status_code=302, headers=private)
    if not local.exists():
        raise EntryNotFound(f"Object {oid} is missing")
    return LocalFileResponse(local, local.stat().st_size, {**CONTAINMENT_HEADERS, **private, "ETag": f'"{oid}"'},
                             "application/octet-stream")


async def locks(request: Request) -> Response:
    """The LFS locking API (``git lfs lock``, ``locks``, ``unlock``, and git-lfs's lock check before a
    push): the hub has no file locks. git-lfs prints the message; on a 404 its pre-push lock check
    takes the API as absent and moves on (a 5xx would read as a failing server)."""
    await run_sync(_find, request, Action.READ_METADATA)  # a private repo still answers as missing
    return _lfs_error(404, "This hub does not support Git LFS file locks (git lfs lock); "
                           "pushing LFS files does not need them")


async def verify(request: Request) -> Response:
    repo = await run_sync(_find, request, Action.CONTRIBUTE)  # decided before the body is read
    body = json_object(await read_json(request))
    oid, size = body.get("oid"), body.get("size")
    if not isinstance(oid, str) or not isinstance(size, int):
        raise BadRequest("'oid' and 'size' are required")
    hub = hub_of(request)

    def check():
        if not hub.lfs.is_available(repo, oid, size):  # a direct upload: check, then publish
            direct_uploads.promote_if_staged(hub, repo, principal_of(request), oid, size,
                                             request.query_params.get("upload"))
        hub.lfs.verify(repo, oid, size)

    await run_sync(check)
    return JSONResponse({"message": "ok"}, media_type=LFS_JSON)
