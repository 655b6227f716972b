"""Likes, likers, a user's liked repos, and the LFS file listing/deletion endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.http import (
    blocking,
    hub_of,
    json_object,
    param,
    principal_of,
    read_json,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.errors import BadRequest, HubError
from aicommons.hub.policy import Action
from aicommons.times import iso_z


def _find(request: Request, action: Action):
    return hub_of(request).repos.find(repo_type_param(request), repo_id_param(request), principal_of(request),
                                      action=action)


def _set_like(request: Request, liked: bool) -> Response:
    repo = _find(request, Action.PARTICIPATE)
    hub_of(request).likes.set(principal_of(request), repo, liked)
    return JSONResponse({"success": True})


like = blocking(lambda request: _set_like(request, True))
unlike = blocking(lambda request: _set_like(request, False))


@blocking
def likers(request: Request) -> Response:
    hub = hub_of(request)
    repo = _find(request, Action.READ_METADATA)
    return JSONResponse([{"user": name, "fullname": fullname, "avatarUrl": "", "type": "user"}
                         for name, fullname in hub.likes.likers(repo)])


@blocking
def user_likes(request: Request) -> Response:
    repos = hub_of(request).likes.liked_by(principal_of(request), param(request, "user"))
    return JSONResponse([{"repo": {"name": repo.full_id, "type": repo.type}} for repo in repos])


@blocking
def list_lfs_files(request: Request) -> Response:
    hub = hub_of(request)
    repo = _find(request, Action.WRITE)
    items = hub.lfs_files.list(repo)
    for item in items:
        item["pushedAt"] = iso_z(item["pushedAt"])
    return JSONResponse(items)


async def delete_lfs_files(request: Request) -> Response:
    repo = await run_sync(_find, request, Action.WRITE)  # decided before the body is read
    body = json_object(await read_json(request))
    deletions = body.get("deletions")
    if not isinstance(deletions, dict) or not isinstance(deletions.get("sha"), list) \
            or not all(isinstance(s, str) for s in deletions["sha"]):
        raise BadRequest("'deletions.sha' must be a list of sha256 strings")

    def run():
        hub = hub_of(request)
        hub.lfs_files.delete(repo, deletions["sha"], bool(deletions.get("rewriteHistory", True)))

    await run_sync(run)
    return JSONResponse({"success": True})


async def duplicate_lfs_files(request: Request) -> Response:
    """Cross-repo copies: let the target repo reference LFS objects of the source repo (the bytes
    are stored once). The caller must read the source's files and write to the target; the change is
    audited under the target too."""
    source = await run_sync(_find, request, Action.READ_CONTENT)  # the target is named in the body
    body = json_object(await read_json(request))
    target, files = body.get("target"), body.get("files")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str) or not isinstance(files, list) \
            or len(files) > 1000 or not all(isinstance(f, dict) and isinstance(f.get("sha256"), str) for f in files):
        raise BadRequest("'target' {type, name} and 'files' [{sha256, ...}] (at most 1000) are required")

    def run():
        hub = hub_of(request)
        principal = principal_of(request)
        target_type = target.get("type") or "model"
        try:
            destination = hub.repos.find(target_type, target["name"], principal, action=Action.WRITE)
        except HubError as exc:
            _audit_target(request, target_type, target["name"], exc.status)
            raise
        missing = hub.lfs_files.duplicate(source, destination, [item["sha256"] for item in files])
        failed = [{"sha256": oid, "error": "not an LFS object of the source repository"} for oid in missing]
        _audit_target(request, destination.type, destination.full_id, 200)
        return JSONResponse({"failed": failed})

    return await run_sync(run)


def _audit_target(request: Request, repo_type: str, repo_id: str, status: int) -> None:
    """The audit middleware records the request under the source repo's path; the change (or the
    refused attempt) lands in the target, so it is recorded under the target's path as well."""
    from aicommons.hub.names import REPO_TYPE_PLURAL

    client = request.client.host if request.client else None
    plural = REPO_TYPE_PLURAL.get(repo_type, repo_type)
    hub_of(request).audit.record_request(principal_of(request), client, request.method,
                                         f"/api/{plural}/{repo_id}/lfs-files/duplicate-into", status,
                                         getattr(request.state, "request_id", None),
                                         getattr(request.state, "client_request_id", None))
