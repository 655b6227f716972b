"""Repo management, info and listing endpoints; whoami; validate-yaml; health."""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aicommons.api import formats
from aicommons.api.http import (
    base_url,
    blocking,
    bool_arg,
    hub_of,
    int_arg,
    json_object,
    next_link,
    param,
    principal_of,
    read_json,
    repo_id_param,
    repo_type_param,
    run_sync,
    unknown_endpoint,
)
from aicommons.errors import BadRequest
from aicommons.hub.cards import validate_yaml
from aicommons.hub.listings import make_cursor, read_cursor
from aicommons.hub.names import PLURAL_TO_TYPE
from aicommons.hub.policy import Action, not_found
from aicommons.hub.repos import RepoQuery
from aicommons.times import iso_z as format_date

MAX_PAGE = 1000


def _visibility(body: dict) -> bool:
    if "visibility" in body and body["visibility"] is not None:
        if body["visibility"] not in ("private", "public", "protected"):
            raise BadRequest("Invalid visibility: must be 'private' or 'public'")
        return body["visibility"] != "public"
    private = body.get("private", False)
    if not isinstance(private, bool) and private is not None:
        raise BadRequest("'private' must be a boolean")
    return bool(private)


async def create_repo(request: Request) -> Response:
    body = json_object(await read_json(request))
    name, organization = body.get("name"), body.get("organization")
    if not isinstance(name, str) or (organization is not None and not isinstance(organization, str)):
        raise BadRequest("'name' (string) is required; 'organization' must be a string or null")
    if "/" in name:  # older clients send the full id as the name
        organization, name = name.split("/", 1)
    hub = hub_of(request)
    sdk = body.get("sdk")
    if sdk is not None and not isinstance(sdk, str):
        raise BadRequest("'sdk' must be a string")
    repo_type = body.get("type") or "model"
    if repo_type == "space":  # create_repo's space_hardware, space_sleep_time, space_secrets, space_variables
        hub.spaces.check_settings(body)
    repo, created = await run_sync(hub.repos.create, principal_of(request), repo_type,
                                   name, organization, _visibility(body), sdk)
    url = formats.repo_url(base_url(request), repo)
    if not created:
        message = formats.already_created(repo)
        return JSONResponse({"error": message, "url": url}, status_code=409, headers={"X-Error-Message": message})
    if repo.type == "space":
        await run_sync(hub.spaces.apply_settings, repo, body)
    return JSONResponse({"url": url, "name": repo.full_id, "id": f"{repo.id:024x}"})


async def delete_repo(request: Request) -> Response:
    body = json_object(await read_json(request))
    name, organization = body.get("name"), body.get("organization")
    if not isinstance(name, str):
        raise BadRequest("'name' (string) is required")
    full_id = f"{organization}/{name}" if organization else (name if "/" in name else f"{principal_of(request).name}/{name}")
    await run_sync(hub_of(request).repos.delete, principal_of(request), body.get("type") or "model", full_id)
    return JSONResponse({"success": True})


async def move_repo(request: Request) -> Response:
    body = json_object(await read_json(request))
    src, dst = body.get("fromRepo"), body.get("toRepo")
    if not isinstance(src, str) or not isinstance(dst, str):
        raise BadRequest("'fromRepo' and 'toRepo' (strings) are required")
    hub = hub_of(request)
    repo = await run_sync(hub.repos.move, principal_of(request), body.get("type") or "model", src, dst)
    return JSONResponse({"url": formats.repo_url(base_url(request), repo)})


async def update_settings(request: Request) -> Response:
    hub = hub_of(request)
    principal = principal_of(request)
    repo = await run_sync(functools.partial(hub.repos.find, repo_type_param(request), repo_id_param(request),
                                            principal, action=Action.ADMIN))
    body = json_object(await read_json(request))
    private = None
    if "visibility" in body or "private" in body:
        private = _visibility(body)
    await run_sync(hub.repos.update_settings, principal, repo, private, body.get("gated"))
    return JSONResponse({"success": True})


@blocking
def repo_info(request: Request) -> Response:
    hub = hub_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request))
    revision = param(request, "rev") if "rev" in request.path_params else "main"
    git_repo, commit = hub.refs.resolve(repo, revision)
    expand = expand_of(request, repo.type)
    card, head = hub.repos.describe(repo, git_repo, commit)
    blobs = bool_arg(request, "blobs")
    used = hub.storage.used_storage([repo.id]).get(repo.id) if blobs or (expand and "usedStorage" in expand) else None
    info = formats.repo_info(repo, card, head, blobs=blobs, expand=expand, used_storage=used)
    if repo.type == "model":
        info.update(_model_fields(hub, principal_of(request), repo, git_repo, str(commit.id), card, head, expand))
    if repo.type == "space":  # where the app answers, and its runtime (hub/spaces.py)
        info.update(hub.spaces.info_fields(repo, base_url(request)))
    if bool_arg(request, "securityStatus") or (expand and "securityRepoStatus" in expand):
        info["securityRepoStatus"] = hub.scans.repo_status(git_repo, commit)
    if expand and "spaces" in expand and repo.type == "model":
        info["spaces"] = [s.full_id for s in hub.repos.spaces_using(principal_of(request), repo)]
    return JSONResponse(info)


def expand_of(request: Request, repo_type: str) -> list[str] | None:
    """The ``expand`` values asked for (None: none), each one the Hub knows for this repo type
    (``formats.EXPAND``): an unknown one is a 400, as on the Hub, never silently ignored."""
    expand = [v for v in request.query_params.getlist("expand") if v] or None
    unknown = sorted(set(expand or ()) - formats.EXPAND[repo_type])
    if unknown:
        raise BadRequest(f"Unknown expand value{'s' if len(unknown) > 1 else ''} for a {repo_type}: "
                         f"{', '.join(map(repr, unknown))}; expand takes any of "
                         f"{', '.join(sorted(formats.EXPAND[repo_type]))}")
    return expand


def _model_fields(hub, principal, repo, git_repo, commit_id: str, card, head, expand: list[str] | None) -> dict:
    """What the model's files say (``hub/model_metadata.py``): with the full info, or the expanded
    ones of ``safetensors``, ``gguf``, ``config``, ``transformersInfo``, ``baseModels`` and
    ``childrenModelCount`` (the models visible to the caller whose card names this one as base)."""
    wanted = set(expand) if expand else set(formats.MODEL_METADATA_FIELDS)
    out: dict = {}
    if wanted & set(formats.MODEL_METADATA_FIELDS):
        fields = hub.model_metadata.of(repo.storage_key, git_repo, commit_id, head.siblings, card).fields()
        out.update({k: v for k, v in fields.items() if k in wanted})
    if expand and "childrenModelCount" in expand:
        out["childrenModelCount"] = hub.repos.count_children(principal, repo)
    return out


@blocking
def repo_downloads(request: Request) -> Response:
    """The repo's downloads per UTC day over the last 30 days (the repo page's "Downloads last month"
    graph), with the 30-day and all-time totals. Whoever may see the repo's metadata may see these."""
    hub = hub_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal_of(request))
    days = hub.downloads.last_days(repo.id)
    return JSONResponse({"id": repo.full_id, "downloadsAllTime": repo.downloads,
                         "downloadsLastMonth": sum(n for _, n in days),
                         "days": [{"date": day.isoformat(), "downloads": n} for day, n in days]})


@blocking
def single_segment_repo(request: Request) -> Response:
    """A repo id without a namespace (``/api/models/<name>[/...]``, ``/<name>/resolve/...``): no such
    repo, answered with RepoNotFound (never a bare routing 404, which clients cannot classify)."""
    if request.path_params.get("types", "models") not in PLURAL_TO_TYPE:  # /api/jobs/alice: no repo type
        raise unknown_endpoint(request)
    rest = request.path_params.get("rest", "")
    principal = principal_of(request)
    if rest and request.url.path.startswith("/api/"):  # maybe an unknown endpoint of a real repo
        candidate = f"{param(request, 'name')}/{rest.split('/', 1)[0]}"
        # Only a repo the caller may see has endpoints: a private one answers as a missing one.
        if hub_of(request).repos.visible(principal, repo_type_param(request), candidate) is not None:
            raise unknown_endpoint(request)
    raise not_found(principal)


def no_such_endpoint(request: Request) -> Response:
    """Any other ``/api/...`` path, whatever the method: a JSON 404 (never the web UI's HTML page)."""
    raise unknown_endpoint(request)


@blocking
def auth_check(request: Request) -> Response:
    """``HfApi.auth_check``: 200 when the caller may read (or, with ``/write``, write) the repo's files."""
    hub = hub_of(request)
    principal = principal_of(request)
    write = request.url.path.endswith("/write")
    hub.repos.find(repo_type_param(request), repo_id_param(request), principal,
                   action=Action.WRITE if write else Action.READ_CONTENT)
    return JSONResponse({"success": True})


@blocking
def storage_listing(request: Request) -> Response:
    """``list_user_repos``: the repos of the caller (or of one of their orgs) with the storage they use."""
    namespace = param(request, "org") if "org" in request.path_params else None
    hub = hub_of(request)
    repos = hub.repos.with_storage(principal_of(request), namespace, limit=MAX_PAGE)
    # storagePercent: the share of the owner's quota (AICOMMONS_STORAGE_QUOTA_DEFAULT, `aicommons
    # storage quota set`) each repo uses; 0 without a quota.
    quota = hub.storage.quota_of(repos[0][0].owner_id) if repos else None
    return JSONResponse([{"id": r.full_id, "type": r.type, "updatedAt": format_date(r.last_modified),
                          "visibility": "private" if r.private else "public", "storage": used,
                          "storagePercent": round(100 * used / quota, 2) if quota else 0}
                         for r, used in repos])


# List parameters of the Hub that this hub has no data for: refused, never silently ignored.
UNANSWERED_FILTERS = ("num_parameters", "inference", "inference_provider", "apps")
@blocking
def list_repos(request: Request) -> Response:
    hub = hub_of(request)
    repo_type = PLURAL_TO_TYPE[request.url.path.rstrip("/").rsplit("/", 1)[1]]
    # ``limit`` is the total the caller wants; pages hold at most MAX_PAGE and link to the next one.
    explicit_limit = request.query_params.get("limit") not in (None, "")
    limit = int_arg(request, "limit", 0, minimum=1) if explicit_limit else None
    sort = request.query_params.get("sort")
    after, served = read_cursor(request.query_params.get("cursor"), sort)
    page = MAX_PAGE if limit is None else max(0, min(limit - served, MAX_PAGE))
    searches = request.query_params.getlist("search")
    gated = request.query_params.get("gated")
    unanswered = [name for name in UNANSWERED_FILTERS if request.query_params.get(name)]
    if unanswered:
        raise BadRequest(f"This hub does not filter by {', '.join(unanswered)}: "
                         "drop the parameter (see README.md, Compatibility)")
    expand = expand_of(request, repo_type)
    filters = list(request.query_params.getlist("filter"))
    if request.query_params.get("pipeline_tag"):
        filters.append(request.query_params["pipeline_tag"])
    query = RepoQuery(
        type=repo_type, search=" ".join(searches) if searches else None,
        author=request.query_params.get("author"), filters=tuple(filters),
        sort=sort, after=after, limit=page,
        gated=None if gated is None else gated.lower() == "true",
    )
    rows, more = hub.repos.search(principal_of(request), query)
    full = bool_arg(request, "full")
    items = []
    if full or expand or bool_arg(request, "cardData") or bool_arg(request, "config"):
        # From the database: each repo's card is on its row, its files stored with its head.
        used = hub.storage.used_storage([r.id for r in rows]) if expand and "usedStorage" in expand else {}
        for repo, card, head in hub.repos.listed_heads(rows):
            info = formats.repo_info(repo, card, head, with_siblings=full, expand=expand, used_storage=used.get(repo.id))
            if not full and not expand:
                info.pop("siblings", None)
            if repo.type == "model" and expand and set(expand) & {*formats.MODEL_METADATA_FIELDS, "childrenModelCount"} \
                    and head.sha:
                info.update(_model_fields(hub, principal_of(request), repo, hub.git.open(repo.storage_key), head.sha,
                                          card, head, expand))
            if repo.type == "model" and expand and "spaces" in expand:
                info["spaces"] = [s.full_id for s in hub.repos.spaces_using(principal_of(request), repo)]
            if repo.type == "space" and expand and {"runtime", "subdomain"} & set(expand):
                fields = hub.spaces.info_fields(repo, base_url(request))  # its stage, as space_info says
                info.update({key: fields[key] for key in ("runtime", "subdomain") if key in expand})
            items.append(info)
    else:
        items = [formats.listing_entry(repo) for repo in rows]
    headers = {}
    served += len(rows)
    if more and rows and (limit is None or served < limit):
        headers["Link"] = next_link(request, make_cursor(rows[-1], sort, served))
    return JSONResponse(items, headers=headers)


@blocking
def whoami(request: Request) -> Response:
    return JSONResponse(hub_of(request).accounts.whoami(principal_of(request)))


async def validate_yaml_endpoint(request: Request) -> Response:
    body = json_object(await read_json(request))
    text = body.get("content")
    if not isinstance(text, str):
        return JSONResponse({"errors": [{"message": "'content' (string) is required"}], "warnings": []},
                            status_code=400)
    errors, warnings = validate_yaml(text)
    return JSONResponse({"errors": errors, "warnings": warnings}, status_code=400 if errors else 200)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def agent_harnesses(request: Request) -> Response:
    return JSONResponse({"standardEnvVars": [], "harnesses": {}})
