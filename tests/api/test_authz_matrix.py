"""The authorization matrix: every route of the app × every kind of caller × every kind of repo.

The route table is read from the app's own route builders (API, LFS, git, Xet, web, inference); a
route this file does not know fails ``test_every_route_is_in_the_matrix``, so a new route must be
added here with the action it needs. For each per-repo route, each caller and each repo
{public, private, gated and not approved, gated and approved}, against one live hub with httpx:

- a repo the caller may not see answers exactly as a missing repo does (status, ``X-Error-Code``,
  body);
- gated content is never served without approval (``GatedRepo``, and the secret marker that is in
  every file, commit message and PR diff of the repos never appears in any answer);
- a refused state change is refused with the right status (401 anonymous, 403 signed in) — by the
  decision, before the handler looks at the (deliberately invalid) body;
- an allowed request is not refused (and content routes do serve the marker).

The expected rights are computed here, independently of ``hub/policy.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace

import httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute

# --- who and what ---------------------------------------------------------------------------------

KINDS = ("public", "private", "gated_unapproved", "gated_approved")
PRINCIPALS = ("anonymous", "read", "owner_read", "outsider", "member_read", "member_write", "member_admin",
              "site_admin")
READ_METADATA, READ_CONTENT, PARTICIPATE, CONTRIBUTE, WRITE, ADMIN = (
    "read-metadata", "read-content", "participate", "contribute", "write", "admin")


def rights(principal: str, kind: str) -> SimpleNamespace:
    """The rules of the security spec, written out independently of hub/policy.py."""
    owner_side = principal in ("owner_read", "member_read", "member_write", "member_admin", "site_admin")
    visible = kind != "private" or owner_side
    approved = kind == "gated_approved" and principal in ("outsider", "read")  # both are the approved user
    content = visible and (not kind.startswith("gated") or owner_side or approved)
    write_credential = principal not in ("anonymous", "read", "owner_read")
    return SimpleNamespace(
        visible=visible, content=content, write_credential=write_credential,
        write=write_credential and principal in ("member_write", "member_admin", "site_admin"),
        admin=write_credential and principal in ("member_admin", "site_admin"))


MISSING = "missing"
GATED = "gated"


def expected(principal: str, kind: str, action: str, writer_only: bool = False):
    """None (allowed), MISSING, (GATED, status) or (status,)."""
    r = rights(principal, kind)
    anonymous = principal == "anonymous"
    if not r.visible:
        return MISSING
    if action in (WRITE, ADMIN):
        if not (r.write if action == WRITE else r.admin):
            return (401,) if anonymous else (403,)
    elif action in (PARTICIPATE, CONTRIBUTE):
        if anonymous:
            return (401,)
        if not r.write_credential:
            return (403,)
    if action in (READ_CONTENT, CONTRIBUTE) and not r.content:
        return (GATED, 401 if anonymous else 403)
    if writer_only and not r.write:  # e.g. renaming someone else's discussion
        return (401,) if anonymous else (403,)
    return None


# --- the route table ------------------------------------------------------------------------------


def app_routes() -> list[tuple[str, str]]:
    """(path pattern, method) of every route the app serves, in the app's order."""
    from aicommons.api.routes import hub_routes
    from aicommons.inference.routes import inference_routes
    from aicommons.web.routes import web_routes

    service = SimpleNamespace(settings=SimpleNamespace(enabled=True))
    keys = []
    for route in inference_routes(service) + hub_routes() + web_routes():
        if isinstance(route, Mount):
            keys.append((route.path, "MOUNT"))
            continue
        if isinstance(route, WebSocketRoute):
            keys.append((route.path, "WEBSOCKET"))
            continue
        assert isinstance(route, Route)
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette adds HEAD to every GET route
        keys += [(route.path, m) for m in sorted(methods)]
    return keys


R = "/{ns}/{name}"
API = "/api/{types}/{ns}/{name}"
M = "/models/{ns}/{name}"
TYPED = ("/datasets", "/spaces", "")
COLLECTION = "/api/collections/{ns}/{slug}"
WEBHOOK = "/api/settings/webhooks/{webhook_id}"


@dataclass
class Spec:
    """One request per caller and repo kind. ``path`` uses {repo}; ``json``/``content`` the body."""

    action: str
    method: str
    path: str
    json: object = None
    content: bytes | None = None
    params: dict = field(default_factory=dict)
    web: bool = False  # a web page: sessions only, bearer tokens are ignored (the caller is anonymous)
    inference: bool = False
    writer_only: bool = False
    shows_content: bool = False  # an allowed answer serves the secret marker
    skip_allowed: bool = False  # destructive when allowed: only the refusals are sent
    csrf: bool = False  # a web form: refused (403) without the visitor's CSRF token, whoever calls
    form: dict = field(default_factory=dict)  # the form a signed-in web visitor sends (with its CSRF token)
    upload: dict | None = None  # a multipart API form: these fields ({repo} filled) and a small "file"


LFS_DOWNLOAD = {"operation": "download", "objects": [], "hash_algo": "sha256"}
LFS_UPLOAD = {"operation": "upload", "objects": [], "hash_algo": "sha256"}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}

# Route pattern -> the requests that exercise it (per-repo routes) ...
REPO_ROUTES: dict[tuple[str, str], list[Spec]] = {
    (API, "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}")],
    (API + "/revision/{rev}", "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}/revision/main")],
    (API + "/downloads", "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}/downloads")],
    (API + "/settings", "PUT"): [Spec(ADMIN, "PUT", "/api/models/{repo}/settings", json={"gated": "bogus"})],
    (API + "/auth-check", "GET"): [Spec(READ_CONTENT, "GET", "/api/models/{repo}/auth-check")],
    (API + "/auth-check/write", "GET"): [Spec(WRITE, "GET", "/api/models/{repo}/auth-check/write")],
    (API + "/tree/{rev}", "GET"): [Spec(READ_CONTENT, "GET", "/api/models/{repo}/tree/main")],
    (API + "/tree/{rev}/{path:path}", "GET"): [Spec(READ_CONTENT, "GET", "/api/models/{repo}/tree/main/sub")],
    (API + "/paths-info/{rev}", "POST"): [
        Spec(READ_CONTENT, "POST", "/api/models/{repo}/paths-info/main", json={"paths": ["secret.txt"]})],
    (API + "/preupload/{rev}", "POST"): [
        Spec(WRITE, "POST", "/api/models/{repo}/preupload/main", json={"files": "not a list"}),
        Spec(CONTRIBUTE, "POST", "/api/models/{repo}/preupload/main", json={"files": "x"}, params={"create_pr": "1"})],
    (API + "/commit/{rev}", "POST"): [
        Spec(WRITE, "POST", "/api/models/{repo}/commit/main", content=b"not ndjson"),
        Spec(CONTRIBUTE, "POST", "/api/models/{repo}/commit/main", content=b"not ndjson", params={"create_pr": "1"}),
        # PR 1 is the owner's: others contribute to their own PRs only.
        Spec(CONTRIBUTE, "POST", "/api/models/{repo}/commit/refs%2Fpr%2F1", content=b"not ndjson", writer_only=True)],
    (API + "/refs", "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}/refs", params={"include_prs": "1"})],
    (API + "/branch/{branch}", "POST"): [
        Spec(WRITE, "POST", "/api/models/{repo}/branch/b1", json={"startingPoint": 5})],
    (API + "/branch/{branch}", "DELETE"): [Spec(WRITE, "DELETE", "/api/models/{repo}/branch/no-such-branch")],
    (API + "/tag/{rev}", "POST"): [Spec(WRITE, "POST", "/api/models/{repo}/tag/main", json={})],
    (API + "/tag/{tag}", "DELETE"): [Spec(WRITE, "DELETE", "/api/models/{repo}/tag/no-such-tag")],
    (API + "/commits/{rev}", "GET"): [Spec(READ_CONTENT, "GET", "/api/models/{repo}/commits/main", shows_content=True)],
    (API + "/super-squash/{rev}", "POST"): [
        Spec(WRITE, "POST", "/api/models/{repo}/super-squash/main", json={"message": 5})],
    (API + "/discussions", "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}/discussions")],
    (API + "/discussions", "POST"): [
        Spec(PARTICIPATE, "POST", "/api/models/{repo}/discussions", json={"title": "x"})],
    (API + "/discussions/{num}", "GET"): [
        Spec(READ_METADATA, "GET", "/api/models/{repo}/discussions/1"),
        Spec(READ_CONTENT, "GET", "/api/models/{repo}/discussions/1", params={"diff": "1"}, shows_content=True)],
    (API + "/discussions/{num}/comment", "POST"): [
        Spec(PARTICIPATE, "POST", "/api/models/{repo}/discussions/2/comment", json={"comment": ""})],
    (API + "/discussions/{num}/title", "POST"): [
        Spec(PARTICIPATE, "POST", "/api/models/{repo}/discussions/2/title", json={"title": "x"}, writer_only=True)],
    (API + "/discussions/{num}/status", "POST"): [
        Spec(PARTICIPATE, "POST", "/api/models/{repo}/discussions/2/status", json={"status": "bogus"})],
    (API + "/discussions/{num}/merge", "POST"): [
        Spec(PARTICIPATE, "POST", "/api/models/{repo}/discussions/2/merge", json={}, writer_only=True)],
    (API + "/discussions/{num}/comment/{event_id}/edit", "POST"): [
        Spec(PARTICIPATE, "POST", "/api/models/{repo}/discussions/2/comment/no-such-event/edit", json={"content": "x"})],
    (API + "/discussions/{num}/comment/{event_id}/hide", "POST"): [
        Spec(PARTICIPATE, "POST", "/api/models/{repo}/discussions/2/comment/no-such-event/hide")],
    (API + "/discussions/{num}/comment/{event_id}/hide", "PUT"): [
        Spec(PARTICIPATE, "PUT", "/api/models/{repo}/discussions/2/comment/no-such-event/hide")],
    (API + "/like", "POST"): [Spec(PARTICIPATE, "POST", "/api/models/{repo}/like")],
    (API + "/like", "DELETE"): [Spec(PARTICIPATE, "DELETE", "/api/models/{repo}/like")],
    (API + "/likers", "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}/likers")],
    (API + "/lfs-files", "GET"): [Spec(WRITE, "GET", "/api/models/{repo}/lfs-files")],
    (API + "/lfs-files/batch", "POST"): [
        Spec(WRITE, "POST", "/api/models/{repo}/lfs-files/batch", json={"deletions": {"sha": "x"}})],
    (API + "/lfs-files/duplicate", "POST"): [
        Spec(READ_CONTENT, "POST", "/api/models/{repo}/lfs-files/duplicate", json={"target": 5})],
    (API + "/ask-access", "POST"): [Spec(PARTICIPATE, "POST", "/api/models/{repo}/ask-access", json=[])],
    (API + "/user-access-request/handle", "POST"): [
        Spec(WRITE, "POST", "/api/models/{repo}/user-access-request/handle", json={})],
    (API + "/user-access-request/grant", "POST"): [
        Spec(WRITE, "POST", "/api/models/{repo}/user-access-request/grant", json={})],
    (API + "/user-access-request/{status}", "GET"): [
        Spec(WRITE, "GET", "/api/models/{repo}/user-access-request/pending")],
    # Spaces' runtime API (tests/spaces/): on a model an allowed caller gets NotFound "not a Space".
    (API + "/runtime", "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}/runtime")],
    (API + "/hardware", "POST"): [Spec(ADMIN, "POST", "/api/models/{repo}/hardware", json={"flavor": 5})],
    (API + "/sleeptime", "POST"): [Spec(ADMIN, "POST", "/api/models/{repo}/sleeptime", json={"seconds": "x"})],
    (API + "/pause", "POST"): [Spec(ADMIN, "POST", "/api/models/{repo}/pause")],
    (API + "/restart", "POST"): [Spec(WRITE, "POST", "/api/models/{repo}/restart")],
    (API + "/secrets", "GET"): [Spec(ADMIN, "GET", "/api/models/{repo}/secrets")],
    (API + "/secrets", "POST"): [Spec(ADMIN, "POST", "/api/models/{repo}/secrets", json={"key": 5})],
    (API + "/secrets", "DELETE"): [Spec(ADMIN, "DELETE", "/api/models/{repo}/secrets", json={"key": 5})],
    (API + "/variables", "GET"): [Spec(ADMIN, "GET", "/api/models/{repo}/variables")],
    (API + "/variables", "POST"): [Spec(ADMIN, "POST", "/api/models/{repo}/variables", json={"key": 5})],
    (API + "/variables", "DELETE"): [Spec(ADMIN, "DELETE", "/api/models/{repo}/variables", json={"key": 5})],
    (API + "/duplicate", "POST"): [Spec(READ_CONTENT, "POST", "/api/models/{repo}/duplicate", json={"repository": 5})],
    (API + "/logs/{kind}", "GET"): [Spec(WRITE, "GET", "/api/models/{repo}/logs/build")],
    # Unknown sub-paths and methods of a repo (issue 9 finding 4): the last API route catches them.
    ("/api/{types}/{name}/{rest:path}", "GET"): [Spec(READ_METADATA, "GET", "/api/models/{repo}/no/such/endpoint")],
    ("/api/{types}/{name}/{rest:path}", "DELETE"): [Spec(READ_METADATA, "DELETE", "/api/models/{repo}/likers")],
    ("/api/{types}/{name}/{rest:path}", "PATCH"): [Spec(READ_METADATA, "PATCH", "/api/models/{repo}")],
    ("/api/{types}/{name}/{rest:path}", "POST"): [Spec(READ_METADATA, "POST", "/api/models/{repo}/refs")],
    ("/api/{types}/{name}/{rest:path}", "PUT"): [Spec(READ_METADATA, "PUT", "/api/models/{repo}/no-such")],
    ("/api/{types}/{name}/{rest:path}", "OPTIONS"): [Spec(READ_METADATA, "OPTIONS", "/api/models/{repo}/tree/main")],
    # Downloads, LFS, git, Xet tokens.
    ("/{ns}/{name}/resolve/{rev}/{path:path}", "GET"): [
        Spec(READ_CONTENT, "GET", "/{repo}/resolve/main/secret.txt", shows_content=True)],
    ("/{ns}/{name}/raw/{rev}/{path:path}", "GET"): [
        Spec(READ_CONTENT, "GET", "/{repo}/raw/main/secret.txt", shows_content=True)],
    ("/{ns}/{name}.git/info/lfs/objects/batch", "POST"): [
        Spec(READ_CONTENT, "POST", "/{repo}.git/info/lfs/objects/batch", json=LFS_DOWNLOAD),
        Spec(CONTRIBUTE, "POST", "/{repo}.git/info/lfs/objects/batch", json=LFS_UPLOAD)],
    ("/{ns}/{name}.git/info/lfs/objects/verify", "POST"): [
        Spec(CONTRIBUTE, "POST", "/{repo}.git/info/lfs/objects/verify", json={})],
    ("/{ns}/{name}.git/info/lfs/locks{rest:path}", "GET"): [Spec(READ_METADATA, "GET", "/{repo}.git/info/lfs/locks")],
    ("/{ns}/{name}.git/info/lfs/locks{rest:path}", "POST"): [
        Spec(READ_METADATA, "POST", "/{repo}.git/info/lfs/locks/verify", json={})],
    (R + "/info/refs", "GET"): [
        Spec(READ_CONTENT, "GET", "/{repo}/info/refs", params={"service": "git-upload-pack"}),
        # A push needs the contributor right: a non-writer's push may only update their own pull
        # requests, which the pre-receive hook decides (tests/compat/test_git_pr_push.py).
        Spec(CONTRIBUTE, "GET", "/{repo}/info/refs", params={"service": "git-receive-pack"})],
    (R + "/git-upload-pack", "POST"): [Spec(READ_CONTENT, "POST", "/{repo}/git-upload-pack", content=b"0000")],
    (R + "/git-receive-pack", "POST"): [Spec(CONTRIBUTE, "POST", "/{repo}/git-receive-pack", content=b"0000",
                                             skip_allowed=True)],
    ("/api/{types}/{ns}/{name}/xet-write-token/{rev}", "GET"): [
        Spec(CONTRIBUTE, "GET", "/api/models/{repo}/xet-write-token/main")],
    ("/api/{types}/{ns}/{name}/xet-read-token/{rev}", "GET"): [
        Spec(READ_CONTENT, "GET", "/api/models/{repo}/xet-read-token/main")],
    # Repo management routes that name the repo in the body.
    ("/api/repos/delete", "DELETE"): [
        Spec(ADMIN, "DELETE", "/api/repos/delete", json={"name": "{name}", "organization": "{ns}"}, skip_allowed=True)],
    ("/api/repos/move", "POST"): [
        Spec(ADMIN, "POST", "/api/repos/move", json={"fromRepo": "{repo}", "toRepo": "not-a-valid-id"})],
    # Inference: the model is the repo (in the path, or in the body for the OpenAI routes).
    ("/v1/chat/completions", "POST"): [Spec(READ_CONTENT, "POST", "/v1/chat/completions",
                                            json={**CHAT, "model": "{repo}"}, inference=True)],
    # POST / (InferenceClient(base_url=<hub>)): a chat completion body naming its model is answered as
    # /v1/chat/completions answers it; anything else is a 404 saying how to name a model, naming nothing
    # (tests/inference/test_hub_e2e.py::test_inference_client_on_the_hubs_root_url).
    ("/", "POST"): [Spec(READ_CONTENT, "POST", "/", json={**CHAT, "model": "{repo}"}, inference=True)],
    ("/v1/completions", "POST"): [Spec(READ_CONTENT, "POST", "/v1/completions",
                                       json={"model": "{repo}", "prompt": "hi", "max_tokens": 1}, inference=True)],
    ("/v1/embeddings", "POST"): [Spec(READ_CONTENT, "POST", "/v1/embeddings",
                                      json={"model": "{repo}", "input": "hi"}, inference=True)],
    ("/v1/rerank", "POST"): [Spec(READ_CONTENT, "POST", "/v1/rerank",
                                  json={"model": "{repo}", "query": "hi", "documents": ["a"]}, inference=True)],
    ("/v1/audio/transcriptions", "POST"): [Spec(READ_CONTENT, "POST", "/v1/audio/transcriptions",
                                                upload={"model": "{repo}"}, inference=True)],
    (M, "POST"): [Spec(READ_CONTENT, "POST", "/models/{repo}", json={"inputs": "hi"}, inference=True)],
    (M + "/pipeline/{task}", "POST"): [Spec(READ_CONTENT, "POST", "/models/{repo}/pipeline/no-such-task",
                                            json={"inputs": "hi"}, inference=True)],
    (M + "/v1/chat/completions", "POST"): [Spec(READ_CONTENT, "POST", "/models/{repo}/v1/chat/completions",
                                                json={**CHAT, "model": "tgi"}, inference=True)],
    (M + "/generate", "POST"): [Spec(READ_CONTENT, "POST", "/models/{repo}/generate", json={"inputs": "hi"},
                                     inference=True)],
    (M + "/generate_stream", "POST"): [Spec(READ_CONTENT, "POST", "/models/{repo}/generate_stream",
                                            json={"inputs": "hi"}, inference=True)],
    (M + "/info", "GET"): [Spec(READ_CONTENT, "GET", "/models/{repo}/info", inference=True)],
    (M + "/health", "GET"): [Spec(READ_CONTENT, "GET", "/models/{repo}/health", inference=True)],
    ("/v1/models/{model:path}", "GET"): [Spec(READ_CONTENT, "GET", "/v1/models/{repo}", inference=True)],
    # Web pages (sessions only: a bearer token is ignored, so every token caller is anonymous there).
    (R, "GET"): [Spec(READ_METADATA, "GET", "/{repo}", web=True)],
    (R + "/tree/{rev}", "GET"): [Spec(READ_METADATA, "GET", "/{repo}/tree/main", web=True)],
    (R + "/tree/{rev}/{path:path}", "GET"): [Spec(READ_METADATA, "GET", "/{repo}/tree/main/sub", web=True)],
    (R + "/blob/{rev}/{path:path}", "GET"): [
        Spec(READ_CONTENT, "GET", "/{repo}/blob/main/secret.txt", web=True, shows_content=True)],
    (R + "/commits/{rev}", "GET"): [Spec(READ_METADATA, "GET", "/{repo}/commits/main", web=True)],
    (R + "/commit/{sha}", "GET"): [  # the commit's diff: the files' content
        Spec(READ_CONTENT, "GET", "/{repo}/commit/main", web=True, shows_content=True)],
    (R + "/compare/{spec:path}", "GET"): [
        Spec(READ_CONTENT, "GET", "/{repo}/compare/main...refs/pr/1", web=True, shows_content=True)],
    (R + "/discussions", "GET"): [Spec(READ_METADATA, "GET", "/{repo}/discussions", web=True)],
    (R + "/discussions/new", "POST"): [Spec(PARTICIPATE, "POST", "/{repo}/discussions/new", web=True, csrf=True,
                                            form={"title": "x"})],
    (R + "/discussions/{num}", "GET"): [Spec(READ_METADATA, "GET", "/{repo}/discussions/1", web=True)],
    (R + "/discussions/{num}/diff", "GET"): [  # the PR diff the page loads lazily
        Spec(READ_CONTENT, "GET", "/{repo}/discussions/1/diff", web=True, shows_content=True)],
    (R + "/discussions/{num}/comment", "POST"): [
        Spec(PARTICIPATE, "POST", "/{repo}/discussions/2/comment", web=True, csrf=True, form={"comment": ""})],
    (R + "/like", "POST"): [Spec(PARTICIPATE, "POST", "/{repo}/like", web=True, csrf=True, form={"like": "1"})],
    (R + "/ask-access", "POST"): [Spec(PARTICIPATE, "POST", "/{repo}/ask-access", web=True, csrf=True,
                                       form={"reason": "x"})],
    (R + "/settings", "GET"): [Spec(ADMIN, "GET", "/{repo}/settings", web=True)],
    (R + "/settings", "POST"): [Spec(ADMIN, "POST", "/{repo}/settings", web=True, csrf=True, skip_allowed=True,
                                     form={"visibility": "public", "gated": "false"})],
    # Changing files from the site (web/upload.py): contributors (writers commit to the branch, anyone
    # else opens a pull request). An allowed upload without a file and an edit on a stale parent commit
    # are answered 400 and change nothing.
    (R + "/upload/{rev}", "GET"): [Spec(CONTRIBUTE, "GET", "/{repo}/upload/main", web=True)],
    (R + "/upload/{rev}", "POST"): [Spec(CONTRIBUTE, "POST", "/{repo}/upload/main", web=True, csrf=True,
                                         form={"folder": "x"})],
    (R + "/upload/{rev}/{path:path}", "GET"): [Spec(CONTRIBUTE, "GET", "/{repo}/upload/main/sub", web=True)],
    (R + "/upload/{rev}/{path:path}", "POST"): [Spec(CONTRIBUTE, "POST", "/{repo}/upload/main/sub", web=True, csrf=True,
                                                     form={"folder": "sub"})],
    (R + "/edit/{rev}/{path:path}", "GET"): [
        Spec(CONTRIBUTE, "GET", "/{repo}/edit/main/secret.txt", web=True, shows_content=True)],
    (R + "/edit/{rev}/{path:path}", "POST"): [Spec(CONTRIBUTE, "POST", "/{repo}/edit/main/secret.txt", web=True, csrf=True,
                                                   form={"content": "changed", "parent": "0" * 40})],
}
# The same handlers under the dataset/space prefixes and the typed git/LFS/resolve variants.
ALIASES = {}
for _prefix in TYPED:
    for _suffix in ("", "/tree/{rev}", "/tree/{rev}/{path:path}", "/blob/{rev}/{path:path}", "/commits/{rev}",
                    "/commit/{sha}", "/compare/{spec:path}",
                    "/discussions", "/discussions/new", "/discussions/{num}", "/discussions/{num}/diff",
                    "/discussions/{num}/comment", "/like",
                    "/ask-access", "/settings", "/upload/{rev}", "/upload/{rev}/{path:path}", "/edit/{rev}/{path:path}",
                    "/info/refs", "/git-upload-pack", "/git-receive-pack",
                    "/resolve/{rev}/{path:path}", "/raw/{rev}/{path:path}"):
        ALIASES[_prefix + R + _suffix] = R + _suffix
for _suffix in ("/info/lfs/objects/batch", "/info/lfs/objects/verify", "/info/lfs/locks{rest:path}"):
    ALIASES["/{prefix}/{ns}/{name}.git" + _suffix] = "/{ns}/{name}.git" + _suffix

# ... and the routes that name no repo: each with what this file checks of it (see test_global_routes).
GLOBAL_ROUTES = {
    ("/api/health", "GET"), ("/api/whoami-v2", "GET"), ("/api/agent-harnesses", "GET"), ("/openapi.json", "GET"),
    ("/api/validate-yaml", "POST"), ("/api/repos/create", "POST"), ("/api/users/{user}/likes", "GET"),
    ("/api/settings/repositories", "GET"), ("/api/organizations/{org}/settings/repositories", "GET"),
    ("/api/models", "GET"), ("/api/datasets", "GET"), ("/api/spaces", "GET"), ("/api/{types}/{name}", "GET"),
    ("/api/spaces/hardware", "GET"),  # the operator's flavours: public, as on the Hub
    # hf spaces search: a listing, private spaces to those who see them (tests/compat/test_hf_cli.py);
    # templates (none) and ZeroGPU (a 404 saying there is none) name nothing.
    ("/api/spaces/semantic-search", "GET"), ("/api/spaces/templates", "GET"),
    *(("/api/spaces/zero-gpu/{rest:path}", m) for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")),
    # Any other /api/ path (api/repos.py no_such_endpoint): a JSON 404 to everyone, naming nothing.
    *(("/api/{rest:path}", m) for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")),
    # Space apps (api/space_proxy.py): using an app is reading the space's content; a private space
    # answers like a missing one (tests/spaces/test_apps.py::test_private_space_answers_only_to_readers).
    ("/spaces-apps/{ns}/{name}", "GET"), ("/spaces-apps/{ns}/{name}/{path:path}", "WEBSOCKET"),
    *(("/spaces-apps/{ns}/{name}/{path:path}", m) for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")),
    ("/lfs-transfer/{repo_key}/{oid}/{size}", "PUT"), ("/lfs-transfer/{repo_key}/{oid}/{size}", "GET"),
    ("/xet-cas/v1/xorbs/{prefix}/{hash}", "POST"),
    ("/xet-cas/v1/shards", "POST"), ("/xet-cas/v1/chunks/{prefix}/{hash}", "GET"),
    ("/xet-cas/v1/reconstructions/{hash}", "GET"), ("/xet-cas/v2/reconstructions/{hash}", "GET"),
    ("/xet-cas/v1/reconstructions", "GET"), ("/xet-cas/v1/xorb-ranges/{hash}", "GET"),
    ("/xet-cas/{store}/v1/xorbs/{prefix}/{hash}", "POST"), ("/xet-cas/{store}/v1/shards", "POST"),
    ("/xet-cas/{store}/v1/chunks/{prefix}/{hash}", "GET"), ("/xet-cas/{store}/v1/reconstructions/{hash}", "GET"),
    ("/xet-cas/{store}/v2/reconstructions/{hash}", "GET"), ("/xet-cas/{store}/v1/reconstructions", "GET"),
    ("/v1/models", "GET"), ("/models/loaded", "GET"),
    # The tasks served and their hosted models, as far as the caller may use them (private and gated
    # ones left out: tests/inference/test_hub_model_list.py::test_api_tasks_lists_the_hosted_models_...).
    ("/api/tasks", "GET"),
    # POST /v1 (InferenceClient(base_url=.../v1)'s task methods): a 404 saying how to name a model, to
    # everyone, naming nothing (test_hub_model_list.py::test_task_call_on_the_v1_base_url_says_what_to_do).
    ("/v1", "POST"), (M + "/load", "POST"), (M + "/unload", "POST"),
    # Any other /v1/ path (the openai client's responses, files...): an OpenAI 404 to everyone, naming
    # nothing (test_hub_model_list.py::test_an_openai_api_the_hub_does_not_serve_is_an_openai_404).
    *(("/v1/{rest:path}", m) for m in ("GET", "POST", "PUT", "DELETE", "PATCH")),
    ("/metrics", "GET"),
    # The dataset viewer's API and page, the conversion's routes and the converted ref: each caller on a
    # converted public, private, gated and gated-approved dataset in test_viewer_routes below (also
    # tests/compat/test_viewer.py::test_private_and_gated_datasets_answer_as_missing and
    # tests/compat/test_viewer_duckdb.py::test_private_converted_dataset_answers_as_missing).
    *((f"/datasets-server/{p}", "GET") for p in ("is-valid", "splits", "first-rows", "rows", "search", "filter",
                                                  "size", "statistics", "croissant", "parquet", "info")),
    ("/api/datasets/{ns}/{name}/croissant", "GET"),  # test_viewer_duckdb.py::test_private_converted_dataset_...
    # Image and audio cells: signed for the caller, re-checked as that caller (test_viewer_duckdb.py::
    # test_images_come_as_signed_urls: altered, expired, other caller, privatised).
    ("/datasets-server/assets/{ns}/{name}/--/{sha}/--/{config}/{split}/{row:int}/{column}/{file}", "GET"),
    # The Parquet conversion's listings (tests/compat/test_parquet_export.py::
    # test_private_converted_ref_is_invisible_to_others: 401/404 like a missing dataset).
    ("/api/datasets/{ns}/{name}/parquet", "GET"), ("/api/datasets/{ns}/{name}/parquet/{config}/{split}", "GET"),
    ("/api/datasets/{ns}/{name}/parquet/{config}/{split}/{n:int}.parquet", "GET"),
    ("/datasets/{ns}/{name}/viewer", "GET"),
    # The branches converted besides the default one: GET for readers, PUT for the dataset's admins only
    # (tests/compat/test_viewer_duckdb.py::test_branches_the_owner_opts_into_are_converted_and_viewed:
    # anonymous 401, a reader 403, on a private dataset 401/404 like a missing one).
    ("/api/datasets/{ns}/{name}/viewer/branches", "GET"), ("/api/datasets/{ns}/{name}/viewer/branches", "PUT"),
    ("/", "GET"), ("/models", "GET"), ("/datasets", "GET"), ("/spaces", "GET"), ("/login", "GET"),
    # One search across repos, users and orgs: public; repos only as the visitor may see them
    # (tests/e2e/test_search_ui.py::test_search_never_shows_what_the_visitor_may_not_see).
    ("/search", "GET"),
    ("/login", "POST"), ("/logout", "POST"), ("/settings/tokens", "GET"), ("/settings/tokens", "POST"),
    ("/new", "GET"), ("/new", "POST"), ("/{user}", "GET"), ("/static", "MOUNT"),
    # Follow from a profile: a CSRF form; the hub's follow() decides (signed in, not oneself;
    # tests/e2e/test_web_contribute.py::test_follow_and_unfollow_from_a_profile).
    ("/{user}", "POST"),
    # Getting in (tests/api/test_signup_routes.py): /setup answers 404 to everyone without the one-time
    # token; the others are open to anonymous visitors (sign-up under the policy, verification and reset
    # links carry their own single-use token); resend needs a session; /settings/invites a session of a
    # site or organisation admin (403 for others). Every POST needs the CSRF token.
    ("/setup", "GET"), ("/setup", "POST"), ("/join", "GET"), ("/join", "POST"), ("/email/verify", "GET"),
    ("/email/verify", "POST"), ("/email/verify/resend", "POST"), ("/password/reset", "GET"),
    ("/password/reset", "POST"), ("/settings/invites", "GET"), ("/settings/invites", "POST"),
    # Collections (test_collection_routes).
    ("/api/collections", "GET"), ("/api/collections", "POST"), (COLLECTION, "GET"), (COLLECTION, "PATCH"),
    (COLLECTION, "DELETE"), (COLLECTION + "/items", "POST"), (COLLECTION + "/items/{item_id}", "PATCH"),
    (COLLECTION + "/items/{item_id}", "DELETE"), ("/collections/new", "GET"), ("/collections/new", "POST"),
    ("/collections/{ns}/{slug}", "GET"), ("/collections/{ns}/{slug}", "POST"),
    # Webhooks (test_webhook_routes).
    ("/api/settings/webhooks", "GET"), ("/api/settings/webhooks", "POST"), (WEBHOOK, "GET"), (WEBHOOK, "POST"),
    (WEBHOOK, "DELETE"), (WEBHOOK + "/enable", "POST"), (WEBHOOK + "/disable", "POST"), (WEBHOOK + "/deliveries", "GET"),
    ("/settings/webhooks", "GET"), ("/settings/webhooks", "POST"), ("/settings/webhooks/{webhook_id}", "GET"),
    ("/settings/webhooks/{webhook_id}", "POST"),
    ("/oauth/device", "POST"), ("/oauth/token", "POST"), ("/device", "GET"), ("/device", "POST"),
    ("/api/users/{user}/overview", "GET"), ("/api/users/{user}/followers", "GET"),
    ("/api/users/{user}/following", "GET"), ("/api/users/{user}/follow", "POST"), ("/api/users/{user}/follow", "DELETE"),
    ("/api/organizations/{org}/overview", "GET"), ("/api/organizations/{org}/members", "GET"),
    ("/api/organizations/{org}/members/{user}", "PUT"), ("/api/organizations/{org}/members/{user}", "DELETE"),
    ("/api/organizations/{org}/followers", "GET"), ("/api/organizations/{org}/follow", "POST"),
    ("/api/organizations/{org}/follow", "DELETE"), ("/api/organizations/{org}/invitations", "GET"),
    ("/api/organizations/{org}/invitations", "POST"), ("/api/organizations/{org}/invitations/{id}", "DELETE"),
    ("/api/organizations/{org}/join-requests", "GET"), ("/api/organizations/{org}/join-requests", "POST"),
    ("/api/organizations/{org}/join-requests/{user}", "POST"),
    ("/organizations/{org}/members", "GET"), ("/organizations/{org}/members", "POST"),
    # Self-service organisations: a session (anonymous: sent to sign in) of an account that may create
    # repos; the CSRF form; hub/accounts.create_own_org decides (tests/unit/test_account_names.py,
    # tests/e2e/test_teams_ui.py::test_new_organization_from_the_profile).
    ("/organizations/new", "GET"), ("/organizations/new", "POST"),
    # Org admins only (test_org_sign_in_settings): 401/403 for others, whose POSTs change nothing.
    ("/organizations/{org}/settings/sign-in", "GET"), ("/organizations/{org}/settings/sign-in", "POST"),
    ("/invitations/{token}", "GET"), ("/invitations/{token}", "POST"),
    ("/login/sso", "GET"), ("/login/sso/callback", "GET"),
    # The signed-in user's own settings (anonymous: sent to sign in; forms: CSRF) and public avatars.
    ("/settings/profile", "GET"), ("/settings/profile", "POST"), ("/settings/account", "GET"),
    ("/settings/account", "POST"), ("/settings/account/export", "POST"), ("/settings/account/delete", "GET"),
    ("/settings/account/delete", "POST"), ("/avatars/{user}", "GET"),
    ("/settings/storage", "GET"),  # the user's own and their orgs' figures (test_storage_accounting)
    # The user's own linked upstream tokens (tests/compat/test_mirror_gated.py): 404 without a mirror,
    # anonymous sent to sign in; POSTs need the CSRF token; nobody sees another user's links.
    ("/settings/upstream", "GET"), ("/settings/upstream", "POST"),
    ("/settings/email/confirm", "GET"), ("/settings/email/confirm", "POST"),  # the mailed link: the token is the key
    # Site administration: site admins only; to anyone else (even with a CSRF token) it does not exist.
    ("/admin", "GET"), ("/admin/users/{user}/{action}", "POST"), ("/admin/dashboard", "GET"),
    *((p + "/{name}/resolve/{rev}/{path:path}", "GET") for p in TYPED),
}


def test_every_route_is_in_the_matrix():
    known = set(REPO_ROUTES) | GLOBAL_ROUTES
    unknown = [key for key in app_routes() if key not in known and (ALIASES.get(key[0]), key[1]) not in known]
    assert not unknown, f"routes missing from the authorization matrix (add them with their action): {unknown}"
    stale = (set(REPO_ROUTES) | GLOBAL_ROUTES) - set(app_routes())
    assert not stale, f"matrix entries for routes the app no longer has: {stale}"


# --- the world: an organisation's four repos, and a caller of each kind ---------------------------


@dataclass
class World:
    org: str
    marker: str
    tokens: dict[str, str | None]
    repos: dict[str, str]  # kind -> "org/name"
    missing: str
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # "web:<who>" -> (Cookie header, CSRF)


def _seed(live_hub, commands: list[list[str]]) -> None:
    # The admin CLI's commands, in one process over one Hub (a Hub per command costs a second each).
    script = ("import json, sys\nimport aicommons.cli.main as cli\nhub = cli._hub()\ncli._hub = lambda: hub\n"
              "for a in json.loads(sys.argv[1]):\n    assert cli.main(a) == 0, a\n")
    subprocess.run([sys.executable, "-c", script, json.dumps(commands)], env=live_hub.env, check=True,
                   capture_output=True)


def _ndjson(summary: str, files: dict[str, str]) -> bytes:
    import base64

    lines = [{"key": "header", "value": {"summary": summary}}]
    lines += [{"key": "file", "value": {"path": p, "content": base64.b64encode(t.encode()).decode(),
                                        "encoding": "base64"}} for p, t in files.items()]
    return b"\n".join(json.dumps(x).encode() for x in lines)


@pytest.fixture(scope="module")
def world(live_hub) -> World:
    suffix = uuid.uuid4().hex[:8]
    org, marker = f"mx{suffix}", f"MX-SECRET-{suffix}"
    users = {p: f"{p.replace('_', '')}{suffix}" for p in ("outsider", "member_read", "member_write",
                                                           "member_admin", "site_admin")}
    tokens = {p: f"hf_matrix_{p}_{suffix}_token" for p in PRINCIPALS if p != "anonymous"}
    commands = [["user", "create", name, "--password", PASSWORD] + (["--admin"] if p == "site_admin" else [])
                for p, name in users.items()]
    commands.append(["org", "create", org, "--member", users["member_admin"]])
    commands += [["org", "add-member", org, users["member_write"], "--role", "write"],
                 ["org", "add-member", org, users["member_read"], "--role", "read"]]
    for p, token in tokens.items():
        user = {"read": users["outsider"], "owner_read": users["member_admin"]}.get(p, users.get(p))
        commands.append(["token", "create", user, "--value", token]
                        + (["--role", "read"] if p in ("read", "owner_read") else []))
    _seed(live_hub, commands)
    owner = {"Authorization": f"Bearer {tokens['member_admin']}"}
    repos = {}
    with httpx.Client(base_url=live_hub.url, headers=owner, timeout=60) as http:
        for kind in KINDS:
            repo = f"{org}/{kind.replace('_', '-')}"
            created = http.post("/api/repos/create", json={"name": repo, "private": kind == "private"})
            assert created.status_code == 200, created.text
            ndjson = {"Content-Type": "application/x-ndjson"}
            files = {"README.md": f"# Model\n\n{marker}\n", "secret.txt": f"{marker}\n", "sub/x.txt": f"{marker}\n"}
            assert http.post(f"/api/models/{repo}/commit/main", content=_ndjson(f"add {marker}", files),
                             headers=ndjson).status_code == 200
            pr = http.post(f"/api/models/{repo}/commit/main", params={"create_pr": "1"}, headers=ndjson,
                           content=_ndjson("update the file", {"secret.txt": f"{marker} v2\n"}))
            assert pr.json()["pullRequestUrl"].endswith("/discussions/1")
            assert http.post(f"/api/models/{repo}/discussions", json={"title": "a question", "description": "hi"}
                             ).json()["num"] == 2
            assert http.post(f"/api/models/{repo}/like").status_code == 200
            if kind.startswith("gated"):
                assert http.put(f"/api/models/{repo}/settings", json={"gated": "manual"}).status_code == 200
            if kind == "gated_approved":
                assert http.post(f"/api/models/{repo}/user-access-request/grant",
                                 json={"user": users["outsider"]}).status_code == 200
            repos[kind] = repo
    sessions = {f"web:{p}": _sign_in(live_hub.url, users[p]) for p in WEB_USERS}
    return World(org=org, marker=marker, tokens={"anonymous": None, **tokens}, repos=repos,
                 missing=f"{org}/no-such-repo", sessions=sessions)


PASSWORD = "matrix-password-1"
# Web sessions act as their user with full rights (no read-only sessions): one per kind of user.
WEB_USERS = ("outsider", "member_read", "member_write", "member_admin", "site_admin")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def _sign_in(url: str, user: str) -> tuple[str, str]:
    """Sign in through the login form as a browser would; the session's cookies and a CSRF token."""
    with httpx.Client(base_url=url, timeout=60, headers={"Origin": url}) as browser:
        form = browser.get("/login")
        signed_in = browser.post("/login", data={"username": user, "password": PASSWORD, "next": "/",
                                                 "csrf": _csrf(form.text)})
        assert signed_in.status_code in (302, 303), signed_in.text[:300]
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        return cookie, _csrf(browser.get("/new", headers={"Cookie": cookie}).text)


# --- sending ----------------------------------------------------------------------------------------


def _fill(value, repo: str):
    ns, name = repo.split("/")
    if isinstance(value, str):
        return value.replace("{repo}", repo).replace("{ns}", ns).replace("{name}", name)
    if isinstance(value, dict):
        return {k: _fill(v, repo) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, repo) for v in value]
    return value


def send(http: httpx.Client, spec: Spec, repo: str, caller: str, world: World) -> httpx.Response:
    """``caller``: a principal of PRINCIPALS (a bearer token, or none) or "web:<who>" (a web session)."""
    token = world.tokens.get(caller)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs = {"params": spec.params, "headers": headers}
    if caller in world.sessions:
        cookie, csrf = world.sessions[caller]
        headers.update({"Cookie": cookie, "Origin": str(http.base_url).rstrip("/")})
        if spec.method == "POST":
            kwargs["data"] = {"csrf": csrf, **spec.form}
    elif spec.json is not None:
        kwargs["json"] = _fill(spec.json, repo)
    elif spec.content is not None:
        kwargs["content"] = spec.content
    elif spec.upload is not None:
        kwargs["data"] = _fill(spec.upload, repo)
        kwargs["files"] = {"file": ("a.wav", b"RIFF\x00\x00\x00\x00WAVE", "audio/wav")}
    # The matrix sends thousands of requests from one address. Web sessions spend their users' budgets
    # (api/rate_limits.py), but anonymous callers share the address's 1000 a minute, and this file alone
    # sends about that many anonymous requests (1,012 of 5,778 in 23 s, session 15): a fast run, or one
    # right after another file on the same hub, reaches it; wait as a client would.
    deadline = time.monotonic() + 120
    while True:
        response = http.request(spec.method, _fill(spec.path, repo), **kwargs)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 5))


def _shape(response: httpx.Response) -> tuple:
    """What must be identical between a private repo and a missing one."""
    body = re.sub(rb'name="csrf" value="[^"]*"', b"", response.content)
    return response.status_code, response.headers.get("X-Error-Code"), body


def _is_refusal(response: httpx.Response) -> bool:
    return response.status_code in (401, 403) or response.headers.get("X-Error-Code") in ("RepoNotFound", "GatedRepo")


def _state(http: httpx.Client, live_hub, world: World) -> dict:
    """Everything a refused request must leave alone: git objects and refs, settings, discussions and
    their events, likes, access requests, LFS files, as the repos' owner sees them."""
    owner = {"Authorization": f"Bearer {world.tokens['member_admin']}"}
    state = {"git objects": sum(1 for p in (live_hub.data_dir / "git").rglob("*") if p.is_file())}
    for kind, repo in world.repos.items():
        api = f"/api/models/{repo}"
        for what, path, params in (("info", api, None), ("refs", f"{api}/refs", {"include_prs": "1"}),
                                   ("discussions", f"{api}/discussions", None),
                                   ("pr", f"{api}/discussions/1", None), ("discussion", f"{api}/discussions/2", None),
                                   ("likers", f"{api}/likers", None), ("lfs", f"{api}/lfs-files", None),
                                   ("pending", f"{api}/user-access-request/pending", None),
                                   ("accepted", f"{api}/user-access-request/accepted", None)):
            response = http.get(path, params=params, headers=owner)
            body = response.text
            if what == "info":  # the download counter is not state a caller is refused
                info = response.json()
                body = json.dumps({k: info.get(k) for k in ("id", "private", "gated", "sha", "disabled")})
            state[(kind, what)] = (response.status_code, body)
    return state


def as_who(spec: Spec, caller: str) -> str:
    """Whose rights a caller has on this route: a web session its user's, a bearer token on a web page
    none (the web UI ignores tokens)."""
    if caller.startswith("web:"):
        return caller[4:]
    return "anonymous" if spec.web else caller


def compares(spec: Spec, caller: str, want) -> bool:
    """Whether the answer must equal the missing repo's: private repos, and on the web any refusal
    of an anonymous visitor (not a form's CSRF refusal, nor a signed-in visitor's 403)."""
    if want == MISSING:
        return True
    if not spec.web or want is None or want[0] == GATED:
        return False
    return as_who(spec, caller) == "anonymous" and not (spec.csrf and not caller.startswith("web:"))


CASES = [(key, i, spec) for key, specs in REPO_ROUTES.items() for i, spec in enumerate(specs)]


def test_the_matrix(live_hub, world):
    failures: list[str] = []
    jobs = []
    for key, i, spec in CASES:
        # Web pages: anonymous, a bearer token (ignored there: anonymous too) and each kind of session.
        principals = ("anonymous", "member_admin", *(f"web:{p}" for p in WEB_USERS)) if spec.web else PRINCIPALS
        for principal in principals:
            for kind in KINDS:
                jobs.append((key, i, spec, principal, kind))

    def want_of(job):
        key, i, spec, principal, kind = job
        if spec.csrf and not principal.startswith("web:"):
            return (403,)  # no session, no CSRF token: refused before anything else
        return expected(as_who(spec, principal), kind, spec.action, spec.writer_only)

    with httpx.Client(base_url=live_hub.url, timeout=60) as http:
        def run(job):
            key, i, spec, principal, kind = job
            want = want_of(job)
            got = send(http, spec, world.repos[kind], principal, world)
            missing = send(http, spec, world.missing, principal, world) if compares(spec, principal, want) else None
            return job, want, got, missing

        # Every refusal first, between two snapshots of all that the requests could change; then
        # the allowed requests (which do change things: likes, access requests).
        refused = [job for job in jobs if want_of(job) is not None]
        allowed = [job for job in jobs if want_of(job) is None and not job[2].skip_allowed]
        before = _state(http, live_hub, world)
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(run, refused))
            after = _state(http, live_hub, world)
            results += list(pool.map(run, allowed))
    if before != after:
        failures.append(f"refused requests changed state: {sorted(set(before.items()) ^ set(after.items()))[:6]}")

    marker = world.marker.encode()
    for (_key, _i, spec, principal, kind), want, got, missing in results:
        where = f"{spec.method} {spec.path} {spec.params or ''} as {principal} on {kind}: {got.status_code} " \
                f"{got.headers.get('X-Error-Code')} {got.text[:120]!r}"
        r = rights(as_who(spec, principal), kind)
        if got.status_code >= 500:
            failures.append(f"5xx: {where}")
        if not r.content and marker in got.content:
            failures.append(f"gated or private content served: {where}")
        if spec.web and want is not None and want != MISSING and want[0] == GATED:
            if got.status_code != 404:  # gated files are simply not found on the web
                failures.append(f"expected a not-found page: {where}")
        elif spec.web and compares(spec, principal, want):
            # A web page refuses as it answers a missing repo (an HTML "not found").
            if _shape(got) != _shape(missing):
                failures.append(f"web refusal differs from missing ({_shape(missing)[:2]}): {where}")
        elif want == MISSING:
            if _shape(got) != _shape(missing):
                failures.append(f"private differs from missing ({_shape(missing)[:2]}): {where}")
            elif not spec.web and not spec.inference and got.headers.get("X-Error-Code") != "RepoNotFound":
                failures.append(f"private repo not RepoNotFound: {where}")
        elif want is None:
            if _is_refusal(got) or (spec.web and got.status_code == 404):  # a web refusal is a "not found" page
                failures.append(f"allowed but refused: {where}")
            elif spec.shows_content and got.status_code == 200 and marker not in got.content:
                failures.append(f"allowed content not served: {where}")
        elif want[0] == GATED:
            if got.status_code != want[1] or (not spec.inference and got.headers.get("X-Error-Code") != "GatedRepo"):
                failures.append(f"expected GatedRepo {want[1]}: {where}")
        elif got.status_code != want[0]:
            failures.append(f"expected {want[0]}: {where}")
        elif want[0] == 401 and got.headers.get("X-Error-Message") == "Repository not found":
            failures.append(f"a repo the caller can see refused as a missing one (say: sign in): {where}")
    print(f"authorization matrix: {len(results)} requests checked")
    assert not failures, f"{len(failures)} of {len(results)} cases fail:\n" + "\n".join(failures[:60])


# --- routes that name no repo ---------------------------------------------------------------------


def test_global_routes(live_hub, world):
    """Each route of GLOBAL_ROUTES: listings and profiles never name a private repo to outsiders,
    creating in a namespace needs its write right, signed transfers and the CAS need their own
    credential, admin routes need an admin, and nothing answers 5xx."""
    private = world.repos["private"]
    failures = []

    def check(condition: bool, what: str, response: httpx.Response) -> None:
        if not condition or response.status_code >= 500:
            failures.append(f"{what}: {response.status_code} {response.text[:160]!r}")

    with httpx.Client(base_url=live_hub.url, timeout=60) as http:
        def get(path, principal="anonymous", method="GET", **kwargs):
            token = world.tokens[principal]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return http.request(method, path, headers=headers, **kwargs)

        http.post(f"/api/models/{private}/like", headers={"Authorization": f"Bearer {world.tokens['member_admin']}"})
        owner_name = "memberadmin" + world.org[2:]
        for principal in ("anonymous", "read", "outsider", "member_read", "site_admin"):
            # Listings include private repos for members; a site admin reads any repo but listings show
            # only the namespaces they belong to (not asserted either way).
            sees = rights(principal, "private").visible and principal != "site_admin"
            for path in (f"/api/models?search={world.org}", f"/api/models?author={world.org}",
                         f"/api/users/{owner_name}/likes", f"/?search={world.org}", f"/models?search={world.org}",
                         f"/{world.org}", f"/{owner_name}", "/v1/models", f"/datasets?search={world.org}",
                         f"/spaces?search={world.org}", "/api/datasets", "/api/spaces"):
                response = get(path, principal)
                if principal == "site_admin":
                    check(True, f"{path} as {principal}", response)
                elif "api/users" in path or path.startswith("/api/models"):  # these list the private repo to members
                    check((private in response.text) == sees, f"{path} as {principal}", response)
                else:
                    check(private not in response.text or sees, f"{path} as {principal}", response)
            listing = get(f"/api/organizations/{world.org}/settings/repositories", principal)
            want = (200, True) if sees else (401 if principal == "anonymous" else 404, False)
            if principal != "site_admin":
                check((listing.status_code, private in listing.text) == want, f"org storage listing as {principal}",
                      listing)
            mine = get("/api/settings/repositories", principal)
            check(mine.status_code == 401 if principal == "anonymous" else private not in mine.text,
                  f"own storage listing as {principal}", mine)
        # Creating in the organisation's namespace: a write credential of a member with the write role.
        for principal in PRINCIPALS:
            name = f"{world.org}/created-by-{principal.replace('_', '-')}"
            created = get("/api/repos/create", principal, "POST", json={"name": name})
            r = rights(principal, "public")
            want = 200 if r.write else (401 if principal == "anonymous" else 403)
            check(created.status_code == want, f"create in the org as {principal} (want {want})", created)
            # A space with its first secret (create_repo's space_secrets): the same right, nothing more.
            space = f"{world.org}/space-by-{principal.replace('_', '-')}"
            created = get("/api/repos/create", principal, "POST", json={
                "name": space, "type": "space", "sdk": "static", "secrets": [{"key": "K", "value": "v"}]})
            check(created.status_code == want, f"create a space with a secret in the org as {principal} (want {want})",
                  created)
        # Repo ids without a namespace, signed transfers and the CAS, admin-only routes.
        for principal in ("anonymous", "outsider"):
            for path in ("/api/models/" + world.org, f"/{world.org}/resolve/main/x",
                         f"/datasets/{world.org}/resolve/main/x", f"/spaces/{world.org}/resolve/main/x"):
                response = get(path, principal)
                check(response.status_code in (401, 404) and response.headers.get("X-Error-Code") == "RepoNotFound",
                      f"{path} as {principal}", response)
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):  # any other /api/ path
                response = get("/api/jobs/" + world.org, principal, method)
                check(response.status_code == 404 and response.headers.get("X-Error-Code") == "NotFound",
                      f"{method} /api/jobs/{world.org} as {principal}", response)
            oid = "0" * 64
            for method in ("GET", "PUT"):
                response = get(f"/lfs-transfer/1/{oid}/5", principal, method, content=b"hello" if method == "PUT" else None)
                check(400 <= response.status_code < 500, f"unsigned {method} /lfs-transfer as {principal}", response)
            for method, path in (("POST", f"/xet-cas/v1/xorbs/default/{oid}"),
                                 ("POST", "/xet-cas/v1/shards"), ("GET", f"/xet-cas/v1/chunks/default/{oid}"),
                                 ("GET", f"/xet-cas/v1/reconstructions/{oid}"),
                                 ("GET", f"/xet-cas/v2/reconstructions/{oid}"),
                                 ("GET", f"/xet-cas/v1/reconstructions?file_id={oid}"),
                                 ("GET", f"/xet-cas/v1/xorb-ranges/{oid}"),
                                 ("POST", "/xet-cas/0123456789abcdef/v1/shards"),
                                 ("GET", f"/xet-cas/0123456789abcdef/v1/reconstructions/{oid}")):
                response = get(path, principal, method)
                want_401 = "xorb-ranges" not in path  # those URLs carry their own signature
                check(response.status_code == 401 if want_401 else 400 <= response.status_code < 500,
                      f"{method} {path} without a CAS credential as {principal}", response)
            for method, path in (("GET", "/models/loaded"), ("POST", f"/models/{world.repos['public']}/load"),
                                 ("POST", f"/models/{world.repos['public']}/unload"), ("GET", "/metrics")):
                response = get(path, principal, method)
                check(response.status_code in (401, 403), f"{method} {path} as {principal}", response)
        check(get("/metrics", "site_admin").status_code == 200, "/metrics as site admin", get("/metrics", "site_admin"))
        # Account routes: no 5xx; the forms refuse without the visitor's CSRF token.
        for principal in ("anonymous", "outsider"):
            for method, path in (("GET", "/api/health"), ("GET", "/api/whoami-v2"), ("GET", "/api/agent-harnesses"),
                                 ("GET", "/openapi.json"), ("POST", "/api/validate-yaml"), ("GET", "/login"), ("GET", "/settings/tokens"),
                                 ("GET", "/new"), ("GET", "/static/style.css"), ("GET", "/settings/profile"),
                                 ("GET", "/settings/account"), ("GET", "/settings/account/delete"),
                                 ("GET", "/settings/storage"), ("GET", "/settings/upstream"), ("GET", "/organizations/new"),
                                 ("GET", f"/avatars/{owner_name}"), ("GET", "/settings/email/confirm?token=x")):
                response = get(path, principal, method, json={"content": "a: 1"} if method == "POST" else None)
                check(response.status_code < 500, f"{method} {path} as {principal}", response)
            for path in ("/login", "/logout", "/settings/tokens", "/new", "/device", "/settings/profile",
                         "/settings/account", "/settings/account/export", "/settings/account/delete",
                         "/settings/email/confirm", "/settings/upstream", "/organizations/new"):
                response = get(path, principal, "POST", data={"name": "x", "username": "x", "password": "x"})
                check(response.status_code in (400, 403), f"POST {path} without CSRF as {principal}", response)
            for path in ("/login/sso", "/login/sso/callback?code=x&state=y"):  # no provider configured here
                response = get(path, principal, follow_redirects=False)
                check(response.status_code == 404, f"GET {path} as {principal}", response)
            # Device login: the approval page needs a signed-in session (a bearer token is not one);
            # a code that was never approved gives no token, whoever polls.
            device = get("/device?user_code=BCDF-GHJK", principal, follow_redirects=False)
            check(device.status_code == 303 and device.headers["location"].startswith("/login?next="),
                  f"GET /device as {principal}", device)
            started = get("/oauth/device", principal, "POST", data={"client_id": "26be6b09-91c5-47da-9861-d2d2bb7a7e36"})
            polled = get("/oauth/token", principal, "POST", data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": "26be6b09-91c5-47da-9861-d2d2bb7a7e36",
                "device_code": started.json()["device_code"]})
            check(polled.status_code == 400 and polled.json()["error"] == "authorization_pending",
                  f"POST /oauth/token as {principal}", polled)
        whoami = get("/api/whoami-v2")
        check(whoami.status_code == 401, "whoami anonymous", whoami)
        # Organisation management: only the org's admins (and site admins), whatever the route.
        org, member, outsider = world.org, "memberread" + world.org[2:], "outsider" + world.org[2:]
        for principal in PRINCIPALS:
            allowed = principal in ("member_admin", "site_admin")
            want = 200 if allowed else 401 if principal == "anonymous" else 403
            for method, path, body in (("GET", f"/api/organizations/{org}/invitations", None),
                                       ("GET", f"/api/organizations/{org}/join-requests", None),
                                       ("PUT", f"/api/organizations/{org}/members/{member}", {"role": "read"})):
                response = get(path, principal, method, json=body)
                expect = want if principal != "owner_read" or method != "GET" else 200
                check(response.status_code == expect, f"{method} {path} as {principal} (want {expect})", response)
            for method, path in (("POST", f"/api/organizations/{org}/invitations"),
                                 ("DELETE", f"/api/organizations/{org}/invitations/999999"),
                                 ("POST", f"/api/organizations/{org}/join-requests/{member}"),
                                 ("DELETE", f"/api/organizations/{org}/members/{outsider}")):  # not a member
                response = get(path, principal, method, json={"role": "no-such-role", "action": "nothing"})
                if allowed or (principal == "outsider" and path.endswith(outsider)):  # (leaving: their own right)
                    # refused for the bad body, or missing item: never a 2xx, never a 5xx
                    check(response.status_code in (400, 404), f"{method} {path} as {principal}", response)
                else:
                    check(response.status_code in ((401,) if principal == "anonymous" else (400, 403)),
                          f"{method} {path} as {principal}", response)
            for path in (f"/api/organizations/{org}/overview", f"/api/organizations/{org}/members",
                         f"/api/organizations/{org}/followers", f"/api/users/{member}/overview",
                         f"/api/users/{member}/followers", f"/api/users/{member}/following",
                         f"/organizations/{org}/members", "/invitations/no-such-invitation"):
                response = get(path, principal)
                check(response.status_code in (200, 303, 404), f"GET {path} as {principal}", response)
                check(private not in response.text or rights(principal, "private").visible,
                      f"GET {path} as {principal} names the private repo", response)
        # /admin: not found for everyone but a site admin's web session, bearer tokens included (the web
        # UI ignores them); an action sent with a valid CSRF token by a non-admin changes nothing.
        victim = "memberread" + world.org[2:]
        for principal in ("anonymous", "outsider", "site_admin"):
            for path in ("/admin", "/admin/dashboard"):
                response = get(path, principal)
                check(response.status_code == 404, f"GET {path} with a {principal} token", response)
        for caller in ("web:outsider", "web:member_admin", "web:site_admin"):
            cookie, csrf = world.sessions[caller]
            headers = {"Cookie": cookie, "Origin": live_hub.url}
            page = http.get("/admin", params={"q": victim}, headers=headers)
            want = 200 if caller == "web:site_admin" else 404
            check(page.status_code == want and (victim in page.text) == (want == 200), f"GET /admin as {caller}", page)
            # The dashboard names private repos (the largest, the fastest-growing): site admins only.
            board = http.get("/admin/dashboard", headers=headers)
            check(board.status_code == want and ("Largest repos" in board.text) == (want == 200),
                  f"GET /admin/dashboard as {caller}", board)
            if caller != "web:site_admin":
                acted = http.post(f"/admin/users/{victim}/suspend", data={"csrf": csrf}, headers=headers)
                check(acted.status_code == 404, f"POST /admin/users/…/suspend as {caller}", acted)
                who = get("/api/whoami-v2", "member_read")
                check(who.status_code == 200, f"{victim} still signs in after {caller} tried to suspend", who)
        for action in ("suspend", "bogus"):
            response = http.post(f"/admin/users/{victim}/{action}", headers={"Origin": live_hub.url})
            check(response.status_code in (400, 403, 404), f"POST /admin/users/…/{action} without CSRF", response)
    assert not failures, "\n".join(failures)


def test_follow_routes(live_hub, world):
    """Following a user or an organisation (``POST``/``DELETE /api/{users|organizations}/{x}/follow``):
    signed in with a write credential, and a fine-grained token needs ``discussion.write`` everywhere
    or on its own user (a social action, like a like); repo permissions alone are not enough."""
    suffix = world.org[2:]
    # The fine-grained tokens are member_read's (a member of the org already: the world stays as it is).
    follower, target, org = "memberread" + suffix, "memberwrite" + suffix, world.org
    fine = {"social": {"global": ["discussion.write"]},
            "own": {"scoped": [{"entity": {"type": "user", "name": follower}, "permissions": ["discussion.write"]}]},
            "repo_only": {"scoped": [{"entity": {"type": "user", "name": follower},
                                      "permissions": ["repo.content.read", "repo.write"]}]},
            "other_org": {"scoped": [{"entity": {"type": "org", "name": org}, "permissions": ["discussion.write"]}]}}
    tokens = {name: f"hf_follow_{name}_{suffix}_token" for name in fine}
    _seed(live_hub, [["token", "create", follower, "--value", tokens[n], "--permissions", json.dumps(fine[n])] for n in fine])
    cases = {"anonymous": (None, 401), "read": (world.tokens["read"], 403), "outsider": (world.tokens["outsider"], 200),
             "fine-grained social": (tokens["social"], 200), "fine-grained own account": (tokens["own"], 200),
             "fine-grained repo rights only": (tokens["repo_only"], 403),
             "fine-grained discussion.write on an org only": (tokens["other_org"], 403)}
    failures = []
    with httpx.Client(base_url=live_hub.url, timeout=60) as http:
        for who, (token, want) in cases.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for path in (f"/api/users/{target}/follow", f"/api/organizations/{org}/follow"):
                for method in ("POST", "DELETE"):
                    response = http.request(method, path, headers=headers)
                    if response.status_code != want:
                        failures.append(f"{method} {path} as {who}: {response.status_code} (want {want}) "
                                        f"{response.text[:160]!r}")
        followers = {u["user"] for u in http.get(f"/api/users/{target}/followers").json()}
        if followers & {follower, "outsider" + suffix}:
            failures.append(f"{followers} still follow {target} after the DELETEs")
    assert not failures, "\n".join(failures)


def test_collection_routes(live_hub, world):
    """Collections of the organisation, public and private, against every caller: a private one
    answers exactly like a missing one to whoever may not see it (API and web), changes need a
    write credential of a member with the write role (refused before the invalid body is read),
    and an allowed change gets past the decision (the body's 400)."""
    owner = {"Authorization": f"Bearer {world.tokens['member_admin']}"}
    failures = []
    with httpx.Client(base_url=live_hub.url, timeout=60) as http:
        slugs = {}
        for kind in ("public", "private"):
            created = http.post("/api/collections", headers=owner, json={
                "title": f"{kind} picks {world.marker}", "namespace": world.org, "private": kind == "private"})
            assert created.status_code == 200, created.text
            slugs[kind] = created.json()["slug"]
            added = http.post(f"/api/collections/{slugs[kind]}/items", headers=owner,
                              json={"item": {"id": world.repos["public"], "type": "model"}})
            assert added.status_code == 200, added.text
        item = added.json()["items"][0]["_id"]
        missing = f"{world.org}/nothing-{'0' * 24}"

        def send_as(principal, method, path, body=None):
            token = world.tokens.get(principal)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return http.request(method, path, headers=headers, json=body)

        routes = (("GET", "", None), ("PATCH", "", {"theme": "no-such-theme"}), ("DELETE", "/items/no-such-item", None),
                  ("POST", "/items", {"item": "not an object"}), ("PATCH", f"/items/{item}", {"position": -1}))
        for principal in PRINCIPALS:
            for kind, slug in slugs.items():
                r = rights(principal, kind)
                for method, suffix, body in routes:
                    got = send_as(principal, method, f"/api/collections/{slug}{suffix}", body)
                    where = f"{method} {suffix or '/'} on {kind} as {principal}: {got.status_code} {got.text[:100]!r}"
                    if not r.visible:
                        gone = send_as(principal, method, f"/api/collections/{missing}{suffix}", body)
                        if _shape(got) != _shape(gone):
                            failures.append(f"private differs from missing: {where}")
                    elif method == "GET":
                        if got.status_code != 200:
                            failures.append(f"expected 200: {where}")
                    elif not r.write:
                        if got.status_code != (401 if principal == "anonymous" else 403):
                            failures.append(f"expected a refusal: {where}")
                    elif got.status_code not in (400, 404) or got.headers.get("X-Error-Code") not in ("BadRequest", "NotFound"):
                        failures.append(f"allowed but refused: {where}")
            listing = send_as(principal, "GET", f"/api/collections?owner={world.org}&limit=100")
            if (slugs["private"] in listing.text) != rights(principal, "private").visible or listing.status_code != 200:
                failures.append(f"listing as {principal}: {listing.status_code} {listing.text[:100]!r}")
            created = send_as(principal, "POST", "/api/collections", {"title": f"by {principal}", "namespace": world.org})
            want = 200 if rights(principal, "public").write else (401 if principal == "anonymous" else 403)
            if created.status_code != want:
                failures.append(f"create in the org as {principal} (want {want}): {created.status_code}")
        # Web: the page of a private collection is a "not found" page to those who may not see it; its
        # form refuses without a CSRF token, and a session that may not change it is refused.
        for caller in ("anonymous", *(f"web:{p}" for p in WEB_USERS)):
            who = caller[4:] if caller.startswith("web:") else "anonymous"
            cookie, csrf = world.sessions.get(caller, ("", ""))
            headers = {"Cookie": cookie, "Origin": live_hub.url} if cookie else {"Origin": live_hub.url}
            for kind, slug in slugs.items():
                r = rights(who, kind)
                page = http.get(f"/collections/{slug}", headers=headers)
                gone = http.get(f"/collections/{missing}", headers=headers)
                if r.visible != (page.status_code == 200) or (not r.visible and _shape(page) != _shape(gone)):
                    failures.append(f"web page of {kind} as {caller}: {page.status_code}")
                if r.visible and (world.marker in page.text) is False:
                    failures.append(f"web page of {kind} as {caller} lacks its title")
                no_csrf = http.post(f"/collections/{slug}", headers=headers, data={"action": "delete"})
                if no_csrf.status_code != 403:
                    failures.append(f"web form without CSRF on {kind} as {caller}: {no_csrf.status_code}")
                if cookie and r.write:  # bad form input is a 400 page, never a 5xx
                    bad = http.post(f"/collections/{slug}", headers=headers,
                                    data={"action": "up", "position": "x", "item": item, "csrf": csrf})
                    if bad.status_code != 400:
                        failures.append(f"web form with a bad position on {kind} as {caller}: {bad.status_code}")
                if cookie and not r.write:
                    refused = http.post(f"/collections/{slug}", headers=headers, data={"action": "delete", "csrf": csrf})
                    if refused.status_code not in (403, 404) or http.get(f"/api/collections/{slug}", headers=owner
                                                                         ).status_code != 200:
                        failures.append(f"web delete of {kind} as {caller}: {refused.status_code}")
        for principal in ("anonymous", "outsider"):
            new = send_as(principal, "GET", "/collections/new")
            if new.status_code not in (200, 303) or send_as(principal, "POST", "/collections/new").status_code != 403:
                failures.append(f"/collections/new as {principal}")
    assert not failures, "\n".join(failures)


def test_webhook_routes(live_hub, world):
    """A webhook (with its secret and delivery log) is its owner's alone: to every other caller each
    route answers exactly as for a missing webhook; the owner's read token reads but changes
    nothing; changes are decided before the (invalid) body is read."""
    owner = {"Authorization": f"Bearer {world.tokens['member_admin']}"}
    failures = []
    with httpx.Client(base_url=live_hub.url, timeout=60) as http:
        created = http.post("/api/settings/webhooks", headers=owner, json={
            "url": "https://example.org/hook", "secret": world.marker, "watched": [{"type": "org", "name": world.org}]})
        assert created.status_code == 200, created.text
        hook = created.json()["webhook"]["id"]
        missing = "0" * 24

        def send_as(principal, method, path, body=None):
            token = world.tokens.get(principal)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return http.request(method, path, headers=headers, json=body)

        routes = (("GET", "", None, False), ("GET", "/deliveries", None, False), ("POST", "", {"url": 5}, True),
                  ("POST", "/disable", None, True), ("POST", "/enable", None, True))
        for principal in PRINCIPALS:
            mine = principal in ("member_admin", "owner_read")
            for method, suffix, body, write in routes:
                got = send_as(principal, method, f"/api/settings/webhooks/{hook}{suffix}", body)
                where = f"{method} {suffix or '/'} as {principal}: {got.status_code} {got.text[:100]!r}"
                if not mine:
                    gone = send_as(principal, method, f"/api/settings/webhooks/{missing}{suffix}", body)
                    if _shape(got) != _shape(gone) or got.status_code not in (401, 404) or world.marker in got.text:
                        failures.append(f"differs from a missing webhook: {where}")
                elif write and principal == "owner_read":
                    if got.status_code != 403:
                        failures.append(f"a read token changed a webhook: {where}")
                elif got.status_code != (400 if body else 200):
                    failures.append(f"allowed but refused: {where}")
            gone = send_as(principal, "DELETE", f"/api/settings/webhooks/{hook}") if principal != "member_admin" else None
            if gone is not None and gone.status_code != (403 if principal == "owner_read" else 401 if principal == "anonymous" else 404):
                failures.append(f"DELETE as {principal}: {gone.status_code}")
            listing = send_as(principal, "GET", "/api/settings/webhooks")
            if listing.status_code != (401 if principal == "anonymous" else 200) or (hook in listing.text) != mine:
                failures.append(f"listing as {principal}: {listing.status_code}")
            new = send_as(principal, "POST", "/api/settings/webhooks", {"url": 5})
            want = 401 if principal == "anonymous" else 403 if principal in ("read", "owner_read") else 400
            if new.status_code != want:
                failures.append(f"create as {principal} (want {want}): {new.status_code}")
        # Web: the webhook's page is its owner's; forms need the visitor's CSRF token.
        for caller in ("anonymous", *(f"web:{p}" for p in WEB_USERS)):
            cookie, csrf = world.sessions.get(caller, ("", ""))
            headers = {"Cookie": cookie, "Origin": live_hub.url} if cookie else {"Origin": live_hub.url}
            page = http.get(f"/settings/webhooks/{hook}", headers=headers)
            gone = http.get(f"/settings/webhooks/{missing}", headers=headers)
            if caller == "web:member_admin":
                ok = page.status_code == 200 and "example.org/hook" in page.text and world.marker not in page.text
            else:
                ok = _shape(page) == _shape(gone) and page.status_code in (303, 404)
            if not ok:
                failures.append(f"web page as {caller}: {page.status_code}")
            for path in (f"/settings/webhooks/{hook}", "/settings/webhooks"):
                refused = http.post(path, headers=headers, data={"action": "delete", "url": "https://example.org"})
                if refused.status_code != 403:
                    failures.append(f"POST {path} without CSRF as {caller}: {refused.status_code}")
            if cookie and caller != "web:member_admin":
                deleted = http.post(f"/settings/webhooks/{hook}", headers=headers, data={"action": "delete", "csrf": csrf})
                if deleted.status_code != 404:
                    failures.append(f"web delete as {caller}: {deleted.status_code}")
        if http.get(f"/api/settings/webhooks/{hook}", headers=owner).status_code != 200:
            failures.append("the webhook did not survive the refused requests")
        if http.delete(f"/api/settings/webhooks/{hook}", headers=owner).status_code != 200:
            failures.append("its owner could not delete it")
    assert not failures, "\n".join(failures)


def test_dataset_and_space_prefixes_hide_private_repos(live_hub, world):
    """The typed variants of the per-repo routes (``/api/datasets/…``, ``/datasets/…``, ``/spaces/…``,
    ``/datasets/….git/info/lfs/…``) run the same handlers: a private dataset or Space answers every one
    of them exactly as a missing one does, for an anonymous caller and a signed-in outsider."""
    owner = {"Authorization": f"Bearer {world.tokens['member_admin']}"}
    failures, checked = [], 0
    with httpx.Client(base_url=live_hub.url, timeout=60) as http:
        for repo_type, plural in (("dataset", "datasets"), ("space", "spaces")):
            private = f"{world.org}/private-{repo_type}"
            created = http.post("/api/repos/create", headers=owner,
                                json={"name": private, "type": repo_type, "private": True})
            assert created.status_code == 200, created.text
            for _key, _i, spec in CASES:
                if spec.path.startswith("/api/models/{repo}"):
                    path = spec.path.replace("/api/models/", f"/api/{plural}/", 1)
                elif spec.path.startswith("/{repo}"):
                    path = f"/{plural}" + spec.path
                else:
                    continue
                typed = Spec(**{**spec.__dict__, "path": path})
                for principal in ("anonymous", "outsider"):
                    got = send(http, typed, private, principal, world)
                    missing = send(http, typed, f"{world.org}/no-such-{repo_type}", principal, world)
                    checked += 1
                    if _shape(got) != _shape(missing) or got.status_code >= 500:
                        failures.append(f"{typed.method} {path} as {principal}: {_shape(got)[:2]} vs {_shape(missing)[:2]}")
    assert checked > 100
    assert not failures, "\n".join(failures)


# --- the dataset viewer and the Parquet conversion, on datasets ---------------------------------------

VIEWER_CALLERS = ("anonymous", "read", "owner_read", "outsider", "member_read", "member_write", "site_admin")


def _convert_here(live_hub, repos: dict[str, str]) -> None:
    """The conversion job and its follow-up (search index, statistics) run in this process on the live
    hub's data, as a worker would (this hub runs with conversion off): the server answers from them."""
    import os

    from aicommons.config import Settings
    from aicommons.hub.hub import Hub
    from aicommons.times import utcnow

    # The live hub's settings and its bucket's credentials (obstore reads AWS_* when it first talks to
    # the bucket), for as long as this in-process worker runs.
    prefixes = ("AICOMMONS_", "AWS_")
    saved = {k: v for k, v in os.environ.items() if k.startswith(prefixes)}
    os.environ.update({k: v for k, v in live_hub.env.items() if k.startswith(prefixes)})
    try:
        hub = Hub(Settings.from_env(), migrate=False)
        try:
            for repo in repos.values():
                row = hub.repo_store.get("dataset", repo)
                hub.parquet.store.queued(row.id, row.sha, utcnow())
                assert hub.parquet.convert(row.id, row.sha) == "done", hub.parquet.store.get(row.id).error
                assert hub.parquet.build_extras(row.id, row.sha) == "done"
        finally:
            hub.close()
    finally:
        for key in [k for k in os.environ if k.startswith(prefixes)]:
            del os.environ[key]
        os.environ.update(saved)


def _viewer_specs(repo: str, marker: str) -> list[tuple[Spec, bool]]:
    """(request, whether an allowed answer shows the marker) for every viewer route a reader uses."""
    split = {"dataset": repo, "config": "default", "split": "train"}
    server = [("is-valid", {"dataset": repo}, False), ("splits", {"dataset": repo}, False),
              ("first-rows", split, True), ("rows", {**split, "offset": "1", "length": "2"}, True),
              ("search", {**split, "query": marker.split("-")[-1]}, True),
              ("filter", {**split, "where": '"n" IN (1, 2) OR "n" BETWEEN 5 AND 6'}, True),
              ("size", {"dataset": repo}, False), ("statistics", split, False), ("croissant", {"dataset": repo}, False),
              ("parquet", {"dataset": repo}, False), ("info", {"dataset": repo, "config": "default"}, False)]
    specs = [(Spec(READ_CONTENT, "GET", f"/datasets-server/{name}", params=params), shows)
             for name, params, shows in server]
    converted = "refs%2Fconvert%2Fparquet"
    specs += [(Spec(READ_CONTENT, "GET", path), False) for path in (
        "/api/datasets/{repo}/parquet", "/api/datasets/{repo}/parquet/default/train",
        "/api/datasets/{repo}/parquet/default/train/0.parquet", "/api/datasets/{repo}/croissant",
        "/api/datasets/{repo}/viewer/branches", f"/api/datasets/{{repo}}/tree/{converted}/default/train",
        f"/datasets/{{repo}}/resolve/{converted}/default/train/0000.parquet")]
    specs.append((Spec(READ_METADATA, "GET", f"/api/datasets/{{repo}}/revision/{converted}"), False))
    specs.append((Spec(READ_CONTENT, "GET", "/datasets/{repo}/viewer", web=True), True))
    return specs


def test_viewer_routes(live_hub, world):
    """The dataset viewer's API (``/datasets-server/*``), the Parquet conversion's routes, the converted
    ref (``refs/convert/parquet``) and the viewer page, on a converted public, private, gated and
    gated-approved dataset, for each kind of caller: a dataset the caller may not read answers exactly
    as a missing one (datasets-server's 401/404 on its API, the Hub's RepoNotFound and GatedRepo on
    the Hub's routes, a "not found" page on the web); the marker in every row never leaks; a reader
    gets the rows."""
    owner = {"Authorization": f"Bearer {world.tokens['member_admin']}"}
    marker = world.marker
    csv = "text,n\n" + "".join(f"{marker} row {i},{i}\n" for i in range(10))
    repos = {}
    with httpx.Client(base_url=live_hub.url, headers=owner, timeout=60) as http:
        for kind in KINDS:
            repo = f"{world.org}/viewer-{kind.replace('_', '-')}"
            assert http.post("/api/repos/create", json={"name": repo, "type": "dataset",
                                                        "private": kind == "private"}).status_code == 200
            assert http.post(f"/api/datasets/{repo}/commit/main", content=_ndjson("data", {"data.csv": csv}),
                             headers={"Content-Type": "application/x-ndjson"}).status_code == 200
            if kind.startswith("gated"):
                assert http.put(f"/api/datasets/{repo}/settings", json={"gated": "manual"}).status_code == 200
            if kind == "gated_approved":
                outsider = http.get("/api/whoami-v2", headers={"Authorization": f"Bearer {world.tokens['outsider']}"})
                assert http.post(f"/api/datasets/{repo}/user-access-request/grant",
                                 json={"user": outsider.json()["name"]}).status_code == 200
            repos[kind] = repo
    missing = f"{world.org}/no-such-dataset"
    _convert_here(live_hub, repos)

    jobs = []
    for kind in KINDS:
        for index, (spec, shows) in enumerate(_viewer_specs(repos[kind], marker)):
            callers = ("anonymous", "member_admin", *(f"web:{p}" for p in WEB_USERS)) if spec.web else \
                (*VIEWER_CALLERS, "member_admin")
            jobs += [(kind, index, spec, shows, caller) for caller in callers]
    failures: list[str] = []
    with httpx.Client(base_url=live_hub.url, timeout=60) as http:
        def run(job):
            kind, index, spec, shows, caller = job
            got = send(http, spec, repos[kind], caller, world)
            absent = send(http, _viewer_specs(missing, marker)[index][0], missing, caller, world)
            return job, got, absent

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(run, jobs))
    server_side = 0
    for (kind, _index, spec, shows, caller), got, absent in results:
        who = as_who(spec, caller)
        r = rights(who, kind)
        want = expected(who, kind, spec.action)
        where = f"{spec.path} {spec.params.get('where') or ''} as {caller} on {kind}: {got.status_code} " \
                f"{got.headers.get('X-Error-Code')} {got.text[:120]!r}"
        if got.status_code >= 500:
            failures.append(f"5xx: {where}")
        if not r.content and marker.encode() in got.content:
            failures.append(f"rows of an unreadable dataset served: {where}")
        if want is None:
            if _is_refusal(got) or got.status_code not in (200, 302):
                failures.append(f"allowed but refused: {where}")
            elif shows and marker.encode() not in got.content:
                failures.append(f"a reader does not get the rows: {where}")
            server_side += spec.path.startswith("/datasets-server/")
        elif spec.web and want[0] == GATED:
            if got.status_code != 404:  # gated content is simply not found on the web, as in the matrix
                failures.append(f"expected a not-found page: {where}")
        elif spec.path.startswith("/datasets-server/") or spec.web or want == MISSING:
            # datasets-server answers private, gated and missing datasets alike (401 without a token,
            # 404 with one); the Hub's routes and pages answer a private one as a missing one.
            if _shape(got) != _shape(absent):
                failures.append(f"differs from a missing dataset ({_shape(absent)[:2]}): {where}")
            elif spec.path.startswith("/datasets-server/") and got.headers.get("X-Error-Code") != (
                    "ExternalUnauthenticatedError" if who == "anonymous" else "ExternalAuthenticatedError"):
                failures.append(f"not datasets-server's error: {where}")
        elif want[0] == GATED:
            if got.status_code != want[1] or got.headers.get("X-Error-Code") != "GatedRepo":
                failures.append(f"expected GatedRepo {want[1]}: {where}")
        elif got.status_code != want[0]:
            failures.append(f"expected {want[0]}: {where}")
    print(f"viewer routes: {len(results)} requests checked, {server_side} allowed datasets-server answers")
    assert server_side >= 4 * 11 and len(results) > 600
    assert not failures, f"{len(failures)} of {len(results)} cases fail:\n" + "\n".join(failures[:60])
