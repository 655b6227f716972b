"""``GET /openapi.json``: an OpenAPI 3.1 document of the hub API, generated from the route table.

Every route of ``hub_routes()`` appears (``tests/api/test_openapi.py`` fails when one is missing),
with its path parameters; the main operations carry hand-written schemas for their query
parameters, request bodies and answers (``OPERATIONS`` below). schemathesis fuzzes the hub against
this document in ``make test`` (``tests/api/test_fuzz_openapi.py``): no 5xx, and no documented
answer outside its schema.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aicommons import __version__ as VERSION

_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")
_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL_Q = {"type": "string", "enum": ["true", "false", "1", "0"]}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": _STR}}
_OBJ = {"type": "object"}
_LIST = {"type": "array"}
_SPACE_ENV = {"type": "array", "items": {"type": "object", "required": ["key", "value"], "properties": {
    "key": {"type": "string"}, "value": {"type": "string"}, "description": {"type": "string"}}}}
_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$"}

# Path parameters: what the hub accepts (anything else is a 4xx; schemathesis also sends those).
PATH_PARAMS = {
    "types": {"type": "string", "enum": ["models", "datasets", "spaces"]},
    "prefix": {"type": "string", "enum": ["datasets", "spaces"]},
    "ns": _NAME, "name": _NAME, "user": _NAME, "org": _NAME,
    "rev": {"type": "string", "minLength": 1}, "branch": {"type": "string", "minLength": 1},
    "tag": {"type": "string", "minLength": 1}, "path": {"type": "string", "minLength": 1},
    "num": {"type": "string", "pattern": "^[0-9]{1,12}$"},
    "oid": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "size": {"type": "string", "pattern": "^[0-9]{1,15}$"},
}

_REPO_LISTING = {"type": "array", "items": {"type": "object", "required": ["id", "private"], "properties": {
    "id": _STR, "author": _STR, "private": {"type": "boolean"}, "likes": _INT, "downloads": _INT,
    "tags": {"type": "array", "items": _STR}}}}
_REPO_INFO = {"type": "object", "required": ["id", "sha", "private"], "properties": {
    "id": _STR, "sha": {"type": "string", "pattern": "^[0-9a-f]{40}$"}, "private": {"type": "boolean"},
    "siblings": {"type": "array", "items": {"type": "object", "required": ["rfilename"]}}}}
_TREE = {"type": "array", "items": {"type": "object", "required": ["type", "path", "oid"], "properties": {
    "type": {"type": "string", "enum": ["file", "directory"]}, "path": _STR, "oid": _STR, "size": _INT,
    "damaged": {"type": "boolean", "description": "its git object is damaged on disk: size 0, no lfs"}}}}
_COMMIT_LIST = {"type": "array", "items": {"type": "object", "required": ["id", "title"], "properties": {
    "id": {"type": "string", "pattern": "^[0-9a-f]{40}$"}, "title": _STR}}}
_REFS = {"type": "object", "required": ["branches", "tags", "converts"], "properties": {
    "branches": {"type": "array", "items": {"type": "object", "required": ["name", "ref", "targetCommit"]}},
    "tags": {"type": "array", "items": {"type": "object", "required": ["name", "ref", "targetCommit"]}}}}
_DISCUSSION = {"type": "object", "required": ["num", "title", "status", "isPullRequest"], "properties": {
    "num": _INT, "title": _STR, "status": _STR, "isPullRequest": {"type": "boolean"}}}
_EVENT = {"type": "object", "required": ["id", "type", "createdAt"], "properties": {"id": _STR, "type": _STR}}

# The commit body: NDJSON, one of these objects per line (the array is the sequence of lines).
_NDJSON_COMMIT = {"type": "array", "description": "one JSON object per line: a header, then operations",
                  "items": {"type": "object", "required": ["key", "value"], "properties": {
                      "key": {"enum": ["header", "file", "lfsFile", "deletedFile", "deletedFolder"]},
                      "value": {"type": "object", "properties": {
                          "summary": _STR, "description": _STR, "parentCommit": _STR, "path": _STR,
                          "content": {"type": "string", "contentEncoding": "base64"},
                          "encoding": {"enum": ["base64"]}, "algo": {"enum": ["sha256"]}, "oid": _STR,
                          "size": {"type": "integer", "minimum": 0}}}}}}


def _q(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _json_body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_PAGING = [_q("cursor", {"type": "integer", "minimum": 0}, "offset of the page (from the Link header)")]
# Listings and trees page by keyset: the cursor names the last row served, opaquely.
_KEYSET = [_q("cursor", {"type": "string"}, "opaque cursor of the next page (from the Link header)")]
_LISTING_QUERY = [
    _q("search", _STR), _q("author", _STR), _q("filter", _STR), _q("sort", _STR), _q("full", _BOOL_Q),
    _q("limit", {"type": "integer", "minimum": 1}), *_KEYSET, _q("gated", _BOOL_Q), _q("cardData", _BOOL_Q),
]

# Hand-written parts of the main operations, keyed by (path template, method).
REPO = "/api/{types}/{ns}/{name}"
OPERATIONS: dict[tuple[str, str], dict] = {
    ("/api/health", "get"): {"summary": "Liveness", "responses": {"200": _OBJ}},
    ("/api/whoami-v2", "get"): {"summary": "The caller's account", "responses": {
        "200": {"type": "object", "required": ["name", "type"]}, "401": _ERROR}},
    ("/api/repos/create", "post"): {"summary": "Create a repo", "requestBody": _json_body({
        "type": "object", "required": ["name"], "properties": {
            "name": _STR, "organization": _STR, "private": {"type": "boolean"},
            "type": {"type": "string", "enum": ["model", "dataset", "space"]}, "sdk": _STR,
            # a space's settings (create_repo's space_hardware, space_sleep_time, space_secrets, space_variables)
            "hardware": _STR, "sleepTimeSeconds": _INT, "secrets": _SPACE_ENV, "variables": _SPACE_ENV}}),
        "responses": {"200": {"type": "object", "required": ["url", "name"]}, "4XX": _ERROR}},
    ("/api/models", "get"): {"summary": "List models", "parameters": _LISTING_QUERY,
                             "responses": {"200": _REPO_LISTING, "4XX": _ERROR}},
    ("/api/datasets", "get"): {"summary": "List datasets", "parameters": _LISTING_QUERY,
                               "responses": {"200": _REPO_LISTING, "4XX": _ERROR}},
    ("/api/spaces", "get"): {"summary": "List spaces", "parameters": _LISTING_QUERY,
                             "responses": {"200": _REPO_LISTING, "4XX": _ERROR}},
    (REPO, "get"): {"summary": "Repo info", "responses": {"200": _REPO_INFO, "4XX": _ERROR}},
    (REPO + "/downloads", "get"): {"summary": "Downloads per UTC day, last 30 days", "responses": {
        "200": {"type": "object", "required": ["id", "downloadsAllTime", "downloadsLastMonth", "days"],
                "properties": {"id": _STR, "downloadsAllTime": _INT, "downloadsLastMonth": _INT,
                               "days": {"type": "array", "items": {"type": "object", "required": ["date", "downloads"],
                                                                   "properties": {"date": _STR, "downloads": _INT}}}}},
        "4XX": _ERROR}},
    (REPO + "/revision/{rev}", "get"): {"summary": "Repo info at a revision", "responses": {
        "200": _REPO_INFO, "4XX": _ERROR}},
    (REPO + "/tree/{rev}", "get"): {"summary": "List files", "parameters": [
        _q("recursive", _BOOL_Q), _q("expand", _BOOL_Q), *_KEYSET], "responses": {"200": _TREE, "4XX": _ERROR}},
    (REPO + "/tree/{rev}/{path}", "get"): {"summary": "List files under a folder", "parameters": [
        _q("recursive", _BOOL_Q), _q("expand", _BOOL_Q), *_KEYSET], "responses": {"200": _TREE, "4XX": _ERROR}},
    (REPO + "/paths-info/{rev}", "post"): {"summary": "Info on some paths", "requestBody": _json_body({
        "type": "object", "properties": {"paths": {"type": "array", "items": _STR}, "expand": {"type": "boolean"}}}),
        "responses": {"200": _TREE, "4XX": _ERROR}},
    (REPO + "/preupload/{rev}", "post"): {"summary": "Upload modes for files about to be committed",
        "parameters": [_q("create_pr", _BOOL_Q)], "requestBody": _json_body({
            "type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": {
                "type": "object", "required": ["path"], "properties": {
                    "path": _STR, "size": {"type": "integer", "minimum": 0}, "sample": _STR}}}}}),
        "responses": {"200": {"type": "object", "required": ["files"], "properties": {"files": {
            "type": "array", "items": {"type": "object", "required": ["path", "uploadMode"], "properties": {
                "uploadMode": {"type": "string", "enum": ["lfs", "regular"]}}}}}}, "4XX": _ERROR}},
    (REPO + "/commit/{rev}", "post"): {"summary": "Commit (NDJSON: a header line, then operations)",
        "parameters": [_q("create_pr", _BOOL_Q)],
        "requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": _NDJSON_COMMIT}}},
        "responses": {"200": {"type": "object", "required": ["success", "commitOid", "commitUrl"], "properties": {
            "commitOid": {"type": "string", "pattern": "^[0-9a-f]{40}$"}}}, "4XX": _ERROR}},
    (REPO + "/refs", "get"): {"summary": "Branches and tags", "parameters": [_q("include_prs", _BOOL_Q)],
                              "responses": {"200": _REFS, "4XX": _ERROR}},
    (REPO + "/branch/{branch}", "post"): {"summary": "Create a branch", "requestBody": _json_body({
        "type": "object", "properties": {"startingPoint": _STR, "emptyBranch": {"type": "boolean"}}}, False),
        "responses": {"4XX": _ERROR}},
    (REPO + "/branch/{branch}", "delete"): {"summary": "Delete a branch", "responses": {"4XX": _ERROR}},
    (REPO + "/tag/{rev}", "post"): {"summary": "Tag a revision", "requestBody": _json_body({
        "type": "object", "required": ["tag"], "properties": {"tag": _STR, "message": _STR}}),
        "responses": {"4XX": _ERROR}},
    (REPO + "/tag/{tag}", "delete"): {"summary": "Delete a tag", "responses": {"4XX": _ERROR}},
    (REPO + "/commits/{rev}", "get"): {"summary": "History", "parameters": [
        *_PAGING, _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
        "responses": {"200": _COMMIT_LIST, "4XX": _ERROR}},
    (REPO + "/discussions", "get"): {"summary": "List discussions", "parameters": [
        _q("p", {"type": "integer", "minimum": 0}), _q("type", {"enum": ["all", "discussion", "pull_request"]}),
        _q("status", {"enum": ["all", "open", "closed"]}), _q("author", _STR), _q("search", _STR)],
        "responses": {"200": {"type": "object", "required": ["discussions"], "properties": {
            "discussions": {"type": "array", "items": _DISCUSSION}}}, "4XX": _ERROR}},
    (REPO + "/discussions", "post"): {"summary": "Open a discussion", "requestBody": _json_body({
        "type": "object", "required": ["title"], "properties": {
            "title": _STR, "description": _STR, "pullRequest": {"type": "boolean"}}}),
        "responses": {"200": {"type": "object", "required": ["num", "url"]}, "4XX": _ERROR}},
    (REPO + "/discussions/{num}", "get"): {"summary": "A discussion and its events", "parameters": [
        _q("diff", _BOOL_Q)], "responses": {"200": _DISCUSSION, "4XX": _ERROR}},
    (REPO + "/discussions/{num}/comment", "post"): {"summary": "Comment", "requestBody": _json_body({
        "type": "object", "required": ["comment"], "properties": {"comment": _STR}}),
        "responses": {"200": {"type": "object", "required": ["newMessage"], "properties": {
            "newMessage": _EVENT}}, "4XX": _ERROR}},
    (REPO + "/discussions/{num}/title", "post"): {"summary": "Rename", "requestBody": _json_body({
        "type": "object", "required": ["title"], "properties": {"title": _STR}}),
        "responses": {"200": {"type": "object", "required": ["newTitle"]}, "4XX": _ERROR}},
    (REPO + "/discussions/{num}/status", "post"): {"summary": "Open or close", "requestBody": _json_body({
        "type": "object", "required": ["status"], "properties": {
            "status": {"enum": ["open", "closed"]}, "comment": _STR}}),
        "responses": {"200": {"type": "object", "required": ["newStatus"]}, "4XX": _ERROR}},
    (REPO + "/like", "post"): {"summary": "Like", "responses": {"4XX": _ERROR}},
    (REPO + "/like", "delete"): {"summary": "Unlike", "responses": {"4XX": _ERROR}},
    (REPO + "/likers", "get"): {"summary": "Who liked", "responses": {"200": _LIST, "4XX": _ERROR}},
    ("/{ns}/{name}/resolve/{rev}/{path}", "get"): {"summary": "Download a file", "responses": {"4XX": _ERROR}},
    ("/{ns}/{name}/raw/{rev}/{path}", "get"): {"summary": "A file as git stores it (a large file's LFS pointer)",
                                               "responses": {"4XX": _ERROR}},
    ("/{ns}/{name}.git/info/lfs/objects/batch", "post"): {"summary": "Git LFS batch", "requestBody": {
        "required": True, "content": {"application/vnd.git-lfs+json": {"schema": {
            "type": "object", "required": ["operation", "objects"], "properties": {
                "operation": {"enum": ["upload", "download"]}, "objects": {"type": "array", "items": {
                    "type": "object", "required": ["oid", "size"], "properties": {
                        "oid": _STR, "size": _INT}}}}}}}},
        "responses": {"200": {"type": "object", "required": ["objects"]}}},
}


def openapi_path(template: str) -> str:
    """Starlette's ``{path:path}`` → OpenAPI's ``{path}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


def route_operations(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """(OpenAPI path, method) for every route; HEAD only where it is not GET's shadow."""
    out = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        methods = route.methods or {"GET", "HEAD"}
        for method in sorted(methods):
            if method == "HEAD" and "GET" in methods:
                continue
            out.append((openapi_path(route.path), method.lower()))
    return out


def build_document(routes: list[BaseRoute]) -> dict:
    paths: dict[str, dict] = {}
    for path, method in route_operations(routes):
        if method in paths.get(path, {}):
            continue  # an earlier route wins, as in Starlette's routing
        names = _PARAM.findall(path)
        spec = OPERATIONS.get((path, method), {})
        params = [{"name": n, "in": "path", "required": True, "schema": PATH_PARAMS.get(n, _STR)} for n in names]
        op = {
            "operationId": f"{method}:{path}",
            "summary": spec.get("summary", ""),
            "parameters": params + spec.get("parameters", []),
            "responses": {status: ({"description": status, "content": {"application/json": {"schema": schema}}})
                          for status, schema in spec.get("responses", {}).items()}
            | {"default": {"description": "any other answer (never a 5xx)"}},
        }
        if "requestBody" in spec:
            op["requestBody"] = spec["requestBody"]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI Commons Hub API", "version": VERSION,
                 "description": "Hugging Face Hub-compatible API (huggingface_hub, git, git-lfs, Xet)."},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{}, {"token": []}],
        "paths": paths,
    }


async def openapi_json(request: Request) -> Response:
    doc = getattr(request.app.state, "openapi", None)
    if doc is None:
        from aicommons.api.routes import hub_routes

        doc = request.app.state.openapi = build_document(hub_routes())
    return JSONResponse(doc)
