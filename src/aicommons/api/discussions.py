"""Discussions and pull requests endpoints (``community.py`` in huggingface_hub)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api.formats import repo_url
from aicommons.api.http import (
    MAX_INT_ARG,
    base_url,
    blocking,
    bool_arg,
    hub_of,
    int_arg,
    json_object,
    param,
    principal_of,
    read_json,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.errors import BadRequest, NotFound
from aicommons.hub.discussions import DiscussionRow, EventRow
from aicommons.hub.policy import Action
from aicommons.hub.repos import RepoRow
from aicommons.times import iso_z

PAGE = 50


def event_json(event: EventRow) -> dict:
    out = {"id": event.id, "type": event.type, "createdAt": iso_z(event.created_at), "data": event.data}
    if event.author_name:
        out["author"] = {"name": event.author_name, "type": "user"}
    return out


def discussion_json(repo: RepoRow, d: DiscussionRow) -> dict:
    return {
        "num": d.num, "title": d.title, "status": d.status, "isPullRequest": d.is_pull_request,
        "createdAt": iso_z(d.created_at), "author": {"name": d.author_name, "type": "user"},
        "repo": {"name": repo.full_id, "type": repo.type},
    }


def _repo(request: Request, action: Action = Action.READ_METADATA) -> RepoRow:
    return hub_of(request).repos.find(repo_type_param(request), repo_id_param(request), principal_of(request),
                                      action=action)


def _num(request: Request) -> int:
    value = param(request, "num")
    if not (value.isascii() and value.isdigit() and len(value) <= 10 and 0 < int(value) <= MAX_INT_ARG):
        raise NotFound("Discussion not found")
    return int(value)


@blocking
def list_discussions(request: Request) -> Response:
    hub = hub_of(request)
    repo = _repo(request)
    kind = request.query_params.get("type", "all")
    status = request.query_params.get("status", "all")
    if kind not in ("all", "discussion", "pull_request") or status not in ("all", "open", "closed"):
        raise BadRequest("Invalid 'type' or 'status' filter")
    page = int_arg(request, "p", 0)
    statuses = {"open": ("open", "draft"), "closed": ("closed", "merged")}.get(status)
    rows, total = hub.discussions.page(
        repo, is_pull_request=None if kind == "all" else kind == "pull_request", statuses=statuses,
        author=request.query_params.get("author"), offset=page * PAGE, limit=PAGE)
    return JSONResponse({"discussions": [discussion_json(repo, d) for d in rows], "count": total,
                         "start": page * PAGE})


async def create_discussion(request: Request) -> Response:
    # Decided before the body is read; a pull request needs more (Action.CONTRIBUTE, checked on open).
    repo = await run_sync(_repo, request, Action.PARTICIPATE)
    body = json_object(await read_json(request))
    description = body.get("description") or ""
    if not isinstance(description, str):
        raise BadRequest("'description' must be a string")

    def run():
        hub = hub_of(request)
        d = hub.discussions.open(repo, principal_of(request), body.get("title"), description,
                                 bool(body.get("pullRequest", False)))
        return JSONResponse({"num": d.num, "url": f"{repo_url(base_url(request), repo)}/discussions/{d.num}",
                             "pullRequest": d.is_pull_request})

    return await run_sync(run)


@blocking
def discussion_details(request: Request) -> Response:
    hub = hub_of(request)
    repo = _repo(request)
    d = hub.discussions.get(repo, _num(request))
    out = discussion_json(repo, d)
    out["events"] = [event_json(e) for e in hub.discussions.events(d)]
    if d.is_pull_request:
        changes = {"base": d.target_branch}
        if d.merge_commit_id:
            changes["mergeCommitId"] = d.merge_commit_id
        out["changes"] = changes
        # File names and the patch are the repo's content: gated repos show them to approved readers.
        content_allowed = hub.policy.allows(principal_of(request), repo, Action.READ_CONTENT)
        out["filesWithConflicts"] = hub.discussions.conflicts(repo, d) \
            if d.status in ("open", "draft") and content_allowed else []
        if bool_arg(request, "diff"):
            hub.policy.check(principal_of(request), repo, Action.READ_CONTENT)
            out["diff"] = hub.discussions.diff(repo, d)
    return JSONResponse(out)


def _action(handler):
    async def endpoint(request: Request) -> Response:
        repo = await run_sync(_repo, request, Action.PARTICIPATE)  # decided before the body is read
        body = await read_json(request, default={})
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object")

        def run():
            hub = hub_of(request)
            return handler(hub, repo, principal_of(request), _num(request), body, request)

        return JSONResponse(await run_sync(run))

    return endpoint


@_action
def comment(hub, repo, principal, num, body, request):
    return {"newMessage": event_json(hub.discussions.comment(repo, principal, num, body.get("comment")))}


@_action
def rename(hub, repo, principal, num, body, request):
    return {"newTitle": event_json(hub.discussions.rename(repo, principal, num, body.get("title")))}


@_action
def change_status(hub, repo, principal, num, body, request):
    event = hub.discussions.change_status(repo, principal, num, body.get("status"), body.get("comment"))
    return {"newStatus": event_json(event)}


@_action
def merge(hub, repo, principal, num, body, request):
    oid = hub.discussions.merge(repo, principal, num, body.get("comment"))
    return {"mergeCommitId": oid}


@_action
def edit_comment(hub, repo, principal, num, body, request):
    event = hub.discussions.edit_comment(repo, principal, num, param(request, "event_id"), body.get("content"))
    return {"updatedComment": event_json(event)}


@_action
def hide_comment(hub, repo, principal, num, body, request):
    return {"updatedComment": event_json(hub.discussions.hide_comment(repo, principal, num, param(request, "event_id")))}
