"""Writing: preupload (upload-mode decisions) and the NDJSON commit endpoint."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.commit_payload import parse_commit_payload, read_commit_payload  # noqa: F401
from aicommons.api.formats import repo_url
from aicommons.api.http import (
    base_url,
    hub_of,
    json_object,
    param,
    principal_of,
    read_json,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.errors import BadRequest, RevisionNotFound
from aicommons.hub import content
from aicommons.hub.commits import CommitRequest
from aicommons.hub.gitattributes import LfsRules, ignore_rules, looks_binary
from aicommons.hub.names import check_file_path
from aicommons.hub.policy import Action

MAX_PREUPLOAD_FILES = 1000


async def preupload(request: Request) -> Response:
    # The decision comes before the body: a preupload answers the oids of the repo's files.
    repo = await run_sync(find_for_commit, request, param(request, "rev"))
    body = json_object(await read_json(request))
    files = body.get("files")
    if not isinstance(files, list) or len(files) > MAX_PREUPLOAD_FILES:
        raise BadRequest(f"'files' must be a list of at most {MAX_PREUPLOAD_FILES} objects")
    git_ignore = body.get("gitIgnore")
    return await run_sync(_preupload, request, repo, files, git_ignore if isinstance(git_ignore, str) else None)


def _preupload(request: Request, repo, files: list, git_ignore: str | None) -> Response:
    hub = hub_of(request)
    revision = param(request, "rev")
    git_repo = hub.git.open(repo.storage_key)
    try:
        commit = content.resolve_revision(git_repo, revision)
    except RevisionNotFound:
        if not _wants_pr(request):
            raise
        commit = content.resolve_revision(git_repo, "main")
    rules = LfsRules(content.read_text(git_repo, commit, ".gitattributes"))
    ignored = ignore_rules(git_ignore if git_ignore is not None else content.read_text(git_repo, commit, ".gitignore"))
    threshold = hub.settings.lfs_threshold_bytes
    out = []
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise BadRequest("Each file must be an object with a 'path'")
        path = check_file_path(item["path"])
        size = item.get("size", 0)
        if not isinstance(size, int) or size < 0:
            raise BadRequest(f"Invalid size for {path}")
        try:
            sample = base64.b64decode(item.get("sample") or "", validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"Invalid base64 sample for {path}") from None
        lfs = size >= threshold or rules.matches(path) or looks_binary(sample)
        entry = content.get_entry(git_repo, commit, path)
        result = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": ignored.match_file(path)}
        if entry is not None and entry.type == "file":
            result["oid"] = entry.etag
        out.append(result)
    return JSONResponse({"files": out})


async def commit(request: Request) -> Response:
    hub = hub_of(request)
    # Who may write is settled before the body (up to MAX_COMMIT_BODY_BYTES) is read and parsed,
    # so a refused caller never gets a blob or tree written into the repo (hub/policy.py).
    repo = await run_sync(find_for_commit, request, param(request, "rev"))
    payload = await read_commit_payload(request.stream(), request.headers.get("content-length"),
                                        hub.settings.max_commit_body_bytes, hub.settings.max_regular_file_bytes,
                                        run_sync)
    return await run_sync(_commit, request, repo, payload)


def _commit(request: Request, repo, payload: CommitRequest) -> Response:
    hub = hub_of(request)
    principal = principal_of(request)
    revision = param(request, "rev")
    create_pr = _wants_pr(request)
    opener = None
    if create_pr:
        def opener(start_sha: str) -> str:
            pr = hub.discussions.open(repo, principal, payload.summary, payload.description, pull_request=True,
                                      base=revision, status="open", start_sha=start_sha)
            return f"refs/pr/{pr.num}"
    result = hub.commits.commit(repo, principal, revision, payload, open_pull_request=opener)
    base = repo_url(base_url(request), repo)
    out = {"success": True, "commitOid": result.oid, "commitUrl": f"{base}/commit/{result.oid}", "hookOutput": ""}
    if result.ref.startswith("refs/pr/"):
        out["pullRequestUrl"] = f"{base}/discussions/{result.ref.rsplit('/', 1)[1]}"
    return JSONResponse(out)


def _wants_pr(request: Request) -> bool:
    return request.query_params.get("create_pr") in ("1", "true", "True")


def find_for_commit(request: Request, revision: str):
    """Writers commit anywhere; a contributor (signed in with a write credential, and approved on a
    gated repo) may open a PR or add to their own PR."""
    hub = hub_of(request)
    principal = principal_of(request)
    repo_type, repo_id = repo_type_param(request), repo_id_param(request)
    if _wants_pr(request):
        return hub.repos.find(repo_type, repo_id, principal, action=Action.CONTRIBUTE)
    if revision.startswith("refs/pr/"):
        repo = hub.repos.find(repo_type, repo_id, principal, action=Action.CONTRIBUTE)
        hub.discussions.check_can_commit(repo, principal, revision)
        return repo
    return hub.repos.find(repo_type, repo_id, principal, action=Action.WRITE)
