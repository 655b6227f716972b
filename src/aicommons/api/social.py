"""Likes, likers, a user's liked repos, and the LFS file listing/deletion endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.http import (
    blocking, hub_of, json_object, param, principal_of, read_json, repo_id_param, repo_type_param, run_sync,
)
from aicommons.errors import BadRequest, HubError, NotFound
from aicommons.api.lfs import require_uploader
from aicommons.times import iso_z, utcnow


def _signed_in(request: Request):
    principal = principal_of(request)
    if principal.is_anonymous:
        raise HubError("You must be signed in to do this", status=401)
    return principal


def _set_like(request: Request, liked: bool) -> Response:
    hub = hub_of(request)
    principal = _signed_in(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal)
    hub.likes.set(principal.account.id, repo.id, liked, utcnow())
    return JSONResponse({"success": True})


like = blocking(lambda request: _set_like(request, True))
unlike = blocking(lambda request: _set_like(request, False))


@blocking
def likers(request: Request) -> Response:
    hub = hub_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request))
    return JSONResponse([{"user": name, "fullname": fullname, "avatarUrl": "", "type": "user"}
                         for name, fullname in hub.likes.likers(repo.id)])


@blocking
def user_likes(request: Request) -> Response:
    hub = hub_of(request)
    principal = principal_of(request)
    account = hub.accounts.store.get(param(request, "user"))
    if account is None:
        raise NotFound(f"No user named {param(request, 'user')!r}")
    out = []
    for repo_id in hub.likes.liked_repo_ids(account.id):
        repo = hub.repo_store.get_by_id(repo_id)
        if repo is not None and (not repo.private or principal.can_read_owner(repo.owner_id)):
            out.append({"repo": {"name": repo.full_id, "type": repo.type}})
    return JSONResponse(out)


@blocking
def list_lfs_files(request: Request) -> Response:
    hub = hub_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request), write=True)
    items = hub.lfs_files.list(repo)
    for item in items:
        item["pushedAt"] = iso_z(item["pushedAt"])
    return JSONResponse(items)


async def delete_lfs_files(request: Request) -> Response:
    body = json_object(await read_json(request))
    deletions = body.get("deletions")
    if not isinstance(deletions, dict) or not isinstance(deletions.get("sha"), list) \
            or not all(isinstance(s, str) for s in deletions["sha"]):
        raise BadRequest("'deletions.sha' must be a list of sha256 strings")

    def run():
        hub = hub_of(request)
        repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request), write=True)
        hub.lfs_files.delete(repo, deletions["sha"], bool(deletions.get("rewriteHistory", True)))

    await run_sync(run)
    return JSONResponse({"success": True})


async def duplicate_lfs_files(request: Request) -> Response:
    """Cross-repo copies: let the target repo reference LFS objects of the source repo (the bytes
    are stored once). The caller must read the source's files and be able to upload to the target."""
    body = json_object(await read_json(request))
    target, files = body.get("target"), body.get("files")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str) or not isinstance(files, list) \
            or len(files) > 1000 or not all(isinstance(f, dict) and isinstance(f.get("sha256"), str) for f in files):
        raise BadRequest("'target' {type, name} and 'files' [{sha256, ...}] (at most 1000) are required")

    def run():
        hub = hub_of(request)
        principal = principal_of(request)
        source = hub.repos.find(repo_type_param(request), repo_id_param(request), principal)
        hub.gating.check(source, principal)
        require_uploader(principal)
        destination = hub.repos.find(target.get("type") or "model", target["name"], principal)
        failed = []
        for item in files:
            size = hub.repo_store.repo_lfs_size(source.id, item["sha256"])
            if size is None:
                failed.append({"sha256": item["sha256"], "error": "not an LFS object of the source repository"})
            else:
                hub.repo_store.add_lfs_object(destination.id, item["sha256"], size, utcnow())
        return JSONResponse({"failed": failed})

    return await run_sync(run)
