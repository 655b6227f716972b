"""Git LFS batch API (basic transfer + verify), used by huggingface_hub without Xet and by git-lfs.

Transfer URLs carry their own short-lived HMAC signature, because clients send no Authorization
header on the upload PUT (spec §9.4).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aicommons.api.files import CONTAINMENT_HEADERS, PRESIGNED_TTL, LargeFileResponse
from aicommons.api.http import base_url, hub_of, json_object, param, principal_of, read_json, run_sync
from aicommons.errors import BadRequest, EntryNotFound, Forbidden, HubError, NotFound
from aicommons.hub import direct_uploads
from aicommons.hub.lfs import OID_RE, blob_key
from aicommons.hub.names import REPO_TYPE_PREFIX

LFS_JSON = "application/vnd.git-lfs+json"


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


def require_uploader(principal) -> None:
    """Uploading objects needs a signed-in write token, not write access to the repo: contributors
    upload the files of their pull requests. Objects only become part of the repo through a commit
    (or a push), which has its own checks."""
    if principal.is_anonymous:
        raise HubError("You must be authenticated to upload", status=401,
                       headers={"WWW-Authenticate": 'Basic realm="AI Commons"'})
    if not principal.can_write_at_all:
        raise Forbidden("A write token is needed to upload")


async def batch(request: Request) -> Response:
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
    principal = principal_of(request)
    repo = hub.repos.find(_repo_type(request), _repo_id(request), principal)
    if operation == "download":
        hub.gating.check(repo, principal)
    else:
        require_uploader(principal)
    base = base_url(request)
    out = []
    for obj in objects:
        checked = hub.lfs.check_object(obj)
        if isinstance(checked, str):
            out.append({"oid": str(obj.get("oid")) if isinstance(obj, dict) else "", "size": 0,
                        "error": {"code": 422, "message": checked}})
            continue
        oid, size = checked
        item = {"oid": oid, "size": size, "authenticated": True}
        available = hub.lfs.is_available(repo, oid, size)
        if operation == "upload":
            if not available:
                query = hub.lfs.signed_query("upload", repo.id, oid, size)
                # Straight to the bucket when configured (AICOMMONS_DIRECT_UPLOADS), else through us.
                href = (direct_uploads.upload_href(hub, repo, oid, size)
                        or f"{base}/lfs-transfer/{repo.id}/{oid}/{size}?{query}")
                item["actions"] = {
                    "upload": {"href": href, "expires_in": hub.lfs.url_ttl},
                    "verify": {"href": f"{base}/{REPO_TYPE_PREFIX[repo.type]}{repo.full_id}.git/info/lfs/objects/verify",
                               "expires_in": hub.lfs.url_ttl,
                               # git-lfs adds no credentials to the actions of an "authenticated" object
                               "header": {"Authorization": request.headers.get("authorization", "")}},
                }
        elif available:
            query = hub.lfs.signed_query("download", repo.id, oid, size)
            item["actions"] = {"download": {"href": f"{base}/lfs-transfer/{repo.id}/{oid}/{size}?{query}",
                                            "expires_in": hub.lfs.url_ttl}}
        else:
            item["error"] = {"code": 404, "message": f"Object {oid} does not exist in this repository"}
        out.append(item)
    return JSONResponse({"transfer": "basic", "objects": out, "hash_algo": "sha256"}, media_type=LFS_JSON)


def _transfer_args(request: Request) -> tuple[int, str, int]:
    try:
        repo_id, size = int(request.path_params["repo_id"]), int(request.path_params["size"])
    except ValueError:
        raise BadRequest("Invalid transfer URL") from None
    oid = request.path_params["oid"]
    if not OID_RE.match(oid):
        raise BadRequest("Invalid transfer URL")
    return repo_id, oid, size


async def upload(request: Request) -> Response:
    hub = hub_of(request)
    repo_id, oid, size = _transfer_args(request)
    hub.lfs.check_signature("upload", repo_id, oid, size, request.query_params.get("exp"),
                            request.query_params.get("sig"))
    await hub.lfs.receive(repo_id, oid, size, request.stream())
    return Response(status_code=200)


async def download(request: Request) -> Response:
    hub = hub_of(request)
    repo_id, oid, size = _transfer_args(request)
    hub.lfs.check_signature("download", repo_id, oid, size, request.query_params.get("exp"),
                            request.query_params.get("sig"))
    key = blob_key(oid)
    local = hub.blobs.local_path(key)
    if local is None:
        return RedirectResponse(hub.blobs.presigned_url(key, PRESIGNED_TTL), status_code=302)
    if not local.exists():
        raise EntryNotFound(f"Object {oid} is missing")
    return LargeFileResponse(local, media_type="application/octet-stream", headers=CONTAINMENT_HEADERS)


async def verify(request: Request) -> Response:
    body = json_object(await read_json(request))
    oid, size = body.get("oid"), body.get("size")
    if not isinstance(oid, str) or not isinstance(size, int):
        raise BadRequest("'oid' and 'size' are required")
    hub = hub_of(request)

    def check():
        repo = hub.repos.find(_repo_type(request), _repo_id(request), principal_of(request))
        require_uploader(principal_of(request))
        if not hub.lfs.is_available(repo, oid, size):
            direct_uploads.promote_if_staged(hub, repo, oid, size)  # a direct upload: check, then publish
        hub.lfs.verify(repo, oid, size)

    await run_sync(check)
    return JSONResponse({"message": "ok"}, media_type=LFS_JSON)
