"""Browsing pages: home, listings with search, a repo's card, files, file view, commits."""

from __future__ import annotations

import dataclasses
import json
import re
from itertools import islice
from urllib.parse import quote, unquote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from aicommons.errors import EntryNotFound, HubError, NotFound
from aicommons.http_common import base_url
from aicommons.hub import content
from aicommons.hub.cards import as_list, card_from_readme
from aicommons.hub.gating import gate_form
from aicommons.hub.listings import make_cursor, read_cursor
from aicommons.hub.names import PLURAL_TO_TYPE
from aicommons.hub.policy import Action
from aicommons.hub.pr_diffs import bounded_patch
from aicommons.hub.repos import RepoQuery
from aicommons.hub.viewer_query import converted, converted_splits, extras_pending
from aicommons.web.context import hub_of, page_handler
from aicommons.web.headers import CSP
from aicommons.web.markup import RepoLinks, add_image_sizes, highlight_file, image_paths, markdown_to_safe_html
from aicommons.web.render import card_html, page, repo_path

PAGE = 30
MAX_PREVIEW = 512 * 1024
# Images the file page shows in its panel (raster formats only: an SVG is served as text, api/files.py).
IMAGE_PREVIEW = {"png", "jpg", "jpeg", "gif", "webp", "avif"}
MAX_IMAGE_PREVIEW = 20 * 1024 * 1024
TRY_TASKS = {"text-generation", "feature-extraction", "sentence-similarity", "text-classification", "fill-mask",
             "token-classification"}


def _try_task(request: Request, repo, pipeline_tag: str | None) -> str | None:
    """The task of the "Try it" box, or None where it could not answer: it calls the inference API
    anonymously (``try.js`` omits credentials), so only public, ungated models of a hub whose
    inference serves anonymous callers get one. A gated model refused everyone, its owner too."""
    if repo.type != "model" or repo.private or repo.gated or pipeline_tag not in TRY_TASKS:
        return None
    settings = getattr(getattr(request.app.state, "inference", None), "settings", None)
    return pipeline_tag if settings is not None and settings.enabled and settings.anon_allowed else None


def repo_type_of(request: Request) -> str:
    first = request.url.path.split("/", 2)[1]
    return {"datasets": "dataset", "spaces": "space"}.get(first, "model")


def path_param(request: Request, name: str, default: str = "") -> str:
    return unquote(request.path_params.get(name, default))


def find_repo(request: Request, action: Action = Action.READ_METADATA):
    hub = hub_of(request)
    principal = request.state.web.principal
    repo_id = f"{path_param(request, 'ns')}/{path_param(request, 'name')}"
    return hub.repos.find(repo_type_of(request), repo_id, principal, action=action)


def _query(request: Request, repo_type: str, limit: int) -> RepoQuery:
    params = request.query_params
    return RepoQuery(type=repo_type, search=params.get("search") or None, author=params.get("author") or None,
                     filters=tuple(f for f in params.getlist("filter") if f), sort=params.get("sort") or None,
                     limit=limit)


@page_handler
def home(request: Request) -> Response:
    repos, principal = hub_of(request).repos, request.state.web.principal
    sections = {t: repos.search(principal, _query(request, t, 8))[0] for t in ("model", "dataset", "space")}
    return page(request, "home.html", sections=sections)


@page_handler
def listing(request: Request) -> Response:
    """A listing page, paged by keyset (``cursor``: the page after a row, ``before``: the page
    before one; the same opaque cursors as the API's Link headers, hub/listings.py)."""
    plural = request.url.path.strip("/")
    repo_type = PLURAL_TO_TYPE[plural]
    sort = request.query_params.get("sort") or None
    after, _ = read_cursor(request.query_params.get("cursor"), sort)
    before, _ = read_cursor(request.query_params.get("before"), sort, "before") if after is None else (None, 0)
    hub, principal = hub_of(request), request.state.web.principal
    query = dataclasses.replace(_query(request, repo_type, PAGE), after=after, before=before)
    rows, more = hub.repos.search(principal, query)
    has_next, has_prev = (True, more) if before is not None else (more, after is not None)
    facets = hub.repos.facets(principal, query)
    return page(request, "listing.html", plural=plural, repo_type=repo_type, repos=rows,
                search=request.query_params.get("search", ""), sort=request.query_params.get("sort", ""),
                sorts=SORTS, facets_info=facets,
                facets=_facet_links(request, facets) if facets else [], chosen=_chosen(request),
                next_href=_listing_link(request, page=("cursor", make_cursor(rows[-1], sort))) if has_next and rows else None,
                prev_href=(_listing_link(request, page=("before", make_cursor(rows[0], sort))) if rows
                           else _listing_link(request)) if has_prev else None)


SORTS = [("", "Newest"), ("trendingScore", "Trending"), ("downloads", "Most downloads"), ("likes", "Most likes"),
         ("lastModified", "Recently updated")]
FACET_NAMES = {"task": "Task", "library": "Library", "license": "License", "language": "Language",
               "category": "Task category", "size": "Size", "format": "Format", "author": "Author"}
PREFIXED_FACETS = ("license", "language", "category", "size", "format")  # values are <prefix>:<value> tags


def _listing_link(request: Request, *, drop: tuple[str, str] | None = None, add: tuple[str, str] | None = None,
                  page: tuple[str, str] | None = None) -> str:
    """This listing's URL with one parameter value removed or added; back to the first page
    unless ``page`` names a cursor (``("cursor", …)`` or ``("before", …)``)."""
    params = [(k, v) for k, v in request.query_params.multi_items()
              if k not in ("p", "cursor", "before") and (k, v) != drop and v]
    if add is not None and add not in params:
        params = [(k, v) for k, v in params if not (add[0] == "author" and k == "author")] + [add]
    if page is not None:
        params.append(page)
    return "?" + urlencode(params) if params else request.url.path


def _chosen(request: Request) -> list[dict]:
    """The filters in force, each with the link that removes it."""
    out = [{"text": f"author: {v}", "href": _listing_link(request, drop=("author", v))}
           for v in request.query_params.getlist("author") if v]
    out += [{"text": v, "href": _listing_link(request, drop=("filter", v))}
            for v in request.query_params.getlist("filter") if v]
    return out


def _facet_links(request: Request, facets) -> list[dict]:
    """Each facet's most common values among the matches, with their counts and the link that
    narrows the listing to one (tags through ``filter``, owners through ``author``)."""
    chosen = set(request.query_params.getlist("filter")) | set(request.query_params.getlist("author"))
    out = []
    for name, values in facets.values.items():
        items = []
        for value, count in values:
            param = "author" if name == "author" else "filter"
            items.append({"text": value.split(":", 1)[1] if name in PREFIXED_FACETS and ":" in value else value,
                          "count": count, "selected": value in chosen,
                          "href": _listing_link(request, drop=(param, value)) if value in chosen
                          else _listing_link(request, add=(param, value))})
        if items:
            out.append({"name": FACET_NAMES[name], "items": items})
    return out


def _repo_context(request: Request, revision: str = "main") -> dict:
    hub = hub_of(request)
    repo = find_repo(request)
    git_repo, commit = hub.refs.resolve(repo, revision)
    readme = content.read_text(git_repo, commit, "README.md")
    # A model's card as model_info gives it: with the library, task and tags its files imply.
    card = hub.repos.describe(repo, git_repo, commit)[0] if repo.type == "model" else card_from_readme(readme, repo.type)
    principal = request.state.web.principal
    # Without READ_CONTENT (a gated repo, not approved): the card's metadata and how to ask for
    # access, never the files, their history or a PR's diff.
    can_read_files = hub.policy.allows(principal, repo, Action.READ_CONTENT)
    gate = access_status = None
    if not can_read_files:  # the card's access form, and where the caller's own request stands
        gate, access_status = gate_form(card.data), hub.gating.status(repo, principal)
    return dict(repo=repo, git_repo=git_repo, commit=commit, revision=revision, card=card, readme=readme, refs=None,
                can_write=hub.policy.allows(principal, repo, Action.WRITE), can_read_files=can_read_files,
                is_branch=git_repo.references.get(f"refs/heads/{revision}") is not None,  # where the site commits
                gate=gate, access_status=access_status,
                gate_prompt=markdown_to_safe_html(gate.prompt) if gate is not None and gate.prompt else "",
                liked=hub.likes.likes(principal, repo), downloads_by_day=hub.downloads.last_days(repo.id))


def _model_facts(request: Request, repo, git_repo, commit, card, head):
    """What the model's files say (hub/model_metadata.py), as the side panel's lines; and the
    metadata itself."""
    hub = hub_of(request)
    meta = hub.model_metadata.of(repo.storage_key, git_repo, str(commit.id), head.siblings, card)
    facts: list[dict] = []
    if meta.safetensors:
        facts.append({"label": "Parameters", "text": count_text(meta.safetensors["total"])})
        facts.append({"label": "Tensor types", "text": ", ".join(sorted(meta.safetensors["parameters"]))})
    if meta.gguf:
        gguf = meta.gguf
        parts = [gguf.get("architecture", ""), f"{count_text(gguf['total'])} parameters"]
        if "context_length" in gguf:
            parts.append(f"context {gguf['context_length']:,}")
        facts.append({"label": "GGUF", "text": " · ".join(p for p in parts if p)})
    if meta.transformers_info:
        facts.append({"label": "Loads with", "text": meta.transformers_info["auto_model"]})
    if meta.base_models:
        relation = meta.base_models["relation"]
        for base in meta.base_models["models"]:
            facts.append({"label": f"Base model ({relation})", "text": base["id"], "href": f"/{base['id']}"})
    principal = request.state.web.principal
    children = hub.repos.count_children(principal, repo)
    if children:
        facts.append({"label": "Derived models", "text": f"{children} model{'s' if children != 1 else ''}",
                      "href": f"/models?filter={quote(f'base_model:{repo.full_id}', safe=':/')}"})
        for relation, label in CHILD_RELATIONS:  # by their base_model:<relation>:<id> tags (hub/repos.py)
            n = hub.repos.count_children(principal, repo, relation)
            if n:
                tag = quote(f"base_model:{relation}:{repo.full_id}", safe=":/")
                facts.append({"label": label, "text": f"{n} model{'s' if n != 1 else ''}", "href": f"/models?filter={tag}",
                              "child": True})
    return facts, meta


CHILD_RELATIONS = [("finetune", "Fine-tunes"), ("adapter", "Adapters"), ("quantized", "Quantizations"),
                   ("merge", "Merges")]


def _side_panel(request: Request, ctx: dict) -> dict:
    """The repo page's side panel besides the card's metadata: the datasets the card names, the
    repo's size, its files' scan verdict, and the snippets that use this repo."""
    hub = hub_of(request)
    repo, card = ctx["repo"], ctx["card"]
    _, head = hub.repos.describe(repo, ctx["git_repo"], ctx["commit"])
    named = as_list((card.data or {}).get("datasets")) if repo.type != "dataset" else []
    named += [t.removeprefix("dataset:") for t in card.tags if t.startswith("dataset:")]
    used = hub.storage.used_storage([repo.id]).get(repo.id)
    out: dict = {"datasets_used": list(dict.fromkeys(n for n in named if n.strip() and ".." not in n)),
                 "repo_size": used if used is not None else head.used_storage, "scan": None,
                 "transformers_class": None}
    if ctx["can_read_files"] and hub.settings.scan_uploads:
        out["scan"] = hub.scans.status_of_rows(head.siblings)  # the stored head's files: no tree walk
    if repo.type == "model":
        out["model_facts"], meta = _model_facts(request, repo, ctx["git_repo"], ctx["commit"], card, head)
        if meta.transformers_info and meta.config is not None:
            out["transformers_class"] = meta.transformers_info["auto_model"]
        task = card.pipeline_tag or (meta.transformers_info or {}).get("pipeline_tag")
        chat = any(str(row[0]) == "chat_template.jinja" for row in head.siblings) \
            or bool(((meta.config or {}).get("tokenizer_config") or {}).get("chat_template"))
        out["inference_snippet"] = inference_snippet(str(request.base_url).rstrip("/"), repo.full_id, task, chat)
    return out


# HF task -> the InferenceClient call that shows it (text in, JSON out).
_CLIENT_CALLS = {
    "text-classification": 'text_classification("I like this")',
    "token-classification": 'token_classification("Alice lives in Paris")',
    "fill-mask": 'fill_mask("The answer is [MASK].")',
    "zero-shot-classification": 'zero_shot_classification("I like this", candidate_labels=["good", "bad"])',
    "summarization": 'summarization("A long text to shorten...")',
    "translation": 'translation("Hello, world")',
}


def inference_snippet(hub: str, repo_id: str, task: str | None, chat: bool) -> str | None:
    """How to call this model through the hub's inference API (docs/inference.md) with the clients
    people use, for the text tasks; None for the others (their inputs are files) and non-models."""
    openai = f'from openai import OpenAI\nclient = OpenAI(base_url="{hub}/v1", api_key="hf_..."  # a token from /settings/tokens\n)\n'
    if task == "text-generation" and chat:
        return (openai + f'reply = client.chat.completions.create(model="{repo_id}", '
                f'messages=[{{"role": "user", "content": "Hello"}}])\nprint(reply.choices[0].message.content)')
    if task == "text-generation":
        return (openai + f'reply = client.completions.create(model="{repo_id}", prompt="Once upon a time", max_tokens=40)\n'
                'print(reply.choices[0].text)')
    if task in ("feature-extraction", "sentence-similarity"):
        return (openai + f'vectors = client.embeddings.create(model="{repo_id}", input=["a sentence", "another"])\n'
                'print(len(vectors.data[0].embedding))')
    if task in _CLIENT_CALLS:
        return (f'from huggingface_hub import InferenceClient\nclient = InferenceClient(model="{hub}/models/{repo_id}", '
                f'token="hf_...")\nprint(client.{_CLIENT_CALLS[task]})')
    return None


def count_text(n: int) -> str:
    """A parameter count as the Hub shows it: 42, 135M, 7.24B."""
    for size, unit in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


@page_handler
def repo_page(request: Request) -> Response:
    ctx = _repo_context(request)
    links = RepoLinks(repo_path(ctx["repo"].type, ctx["repo"].full_id), str(ctx["commit"].id))
    ctx["card_html"] = card_html(ctx["readme"], links) if ctx["can_read_files"] else ""
    if ctx["card_html"]:  # the card's images get their sizes: nothing moves when they arrive
        sizes = hub_of(request).image_sizes.of(ctx["repo"].storage_key, ctx["git_repo"], ctx["commit"],
                                               image_paths(ctx["card_html"], links))
        ctx["card_html"] = add_image_sizes(ctx["card_html"], links, sizes)
    ctx["try_task"] = _try_task(request, ctx["repo"], ctx["card"].pipeline_tag)
    ctx.update(_side_panel(request, ctx))
    if ctx["repo"].type == "space" and ctx["can_read_files"]:  # the app, embedded (api/space_proxy.py)
        spaces = hub_of(request).spaces
        ctx["space_host"] = spaces.host(ctx["repo"], base_url(request))
        ctx["space_own_origin"] = bool(hub_of(request).settings.spaces_domain)
        ctx["space_src"] = ctx["space_host"]
        if ctx["repo"].private and ctx["space_own_origin"]:
            # A browser sends no hub cookie to the app's own host: its URL carries a signed visit,
            # which the proxy keeps in a cookie of that host (api/space_proxy.py).
            principal = request.state.web.principal
            ctx["space_src"] += f"?__sign={spaces.sign_visit(principal, ctx['repo'])}"
        ctx["space_stage"] = spaces.runtime_of(ctx["repo"])["stage"]
        ctx["space_failure"] = spaces.failure(request.state.web.principal, ctx["repo"])
        response = page(request, "repo.html", tab="card", **ctx)
        origin = "/".join(ctx["space_host"].split("/")[:3])
        response.headers["Content-Security-Policy"] = f"{CSP}; frame-src {origin}"
        return response
    return page(request, "repo.html", tab="card", **ctx)


@page_handler
def tree(request: Request) -> Response:
    ctx = _repo_context(request, path_param(request, "rev", "main"))
    if not ctx["can_read_files"]:
        return page(request, "repo.html", tab="files", entries=[], path="", **ctx)
    path = path_param(request, "path").strip("/")
    entries = sorted(content.list_tree(ctx["git_repo"], ctx["commit"], path, recursive=False, keep_damaged=True),
                     key=lambda e: (e.type != "directory", e.path.lower()))
    hub = hub_of(request)
    scans = hub.scans.file_statuses(entries)
    xet = hub.xet.reads.file_hashes(e.lfs.oid for e in entries if e.lfs is not None)
    ctx["refs"] = hub.refs.list_refs(ctx["repo"], include_prs=False)
    return page(request, "repo.html", tab="files", entries=entries, path=path, scans=scans, xet=xet, **ctx)


@page_handler
def blob(request: Request) -> Response:
    ctx = _repo_context(request, path_param(request, "rev", "main"))
    if not ctx["can_read_files"]:
        raise NotFound("Ask for access to read the files of this repo")
    path = path_param(request, "path")
    entry = content.get_entry(ctx["git_repo"], ctx["commit"], path)
    if entry is None or entry.type != "file":
        raise EntryNotFound(f"No file {path} at this revision")
    text = highlighted = None
    if entry.lfs is None and entry.size <= MAX_PREVIEW:
        try:
            text = content.read_blob(ctx["git_repo"], entry.oid).decode("utf-8")
        except UnicodeDecodeError:
            text = None
        else:
            highlighted = highlight_file(path, text)
    hub = hub_of(request)
    xet_hash = hub.xet.reads.file_hashes([entry.lfs.oid]).get(entry.lfs.oid) if entry.lfs is not None else None
    ctx["refs"] = hub.refs.list_refs(ctx["repo"], include_prs=False)
    image = path.lower().rsplit(".", 1)[-1] in IMAGE_PREVIEW and entry.size <= MAX_IMAGE_PREVIEW
    return page(request, "repo.html", tab="blob", entry=entry, text=text, highlighted=highlighted, path=path,
                stored_with_xet=xet_hash, image_preview=image and text is None, max_preview=MAX_PREVIEW, **ctx)


@page_handler
def commits(request: Request) -> Response:
    ctx = _repo_context(request, path_param(request, "rev", "main"))
    history = list(islice(content.history(ctx["git_repo"], ctx["commit"]), 100)) if ctx["can_read_files"] else []
    if ctx["can_read_files"]:
        ctx["refs"] = hub_of(request).refs.list_refs(ctx["repo"], include_prs=False)
    return page(request, "repo.html", tab="commits", history=history, **ctx)


@page_handler
def commit_page(request: Request) -> Response:
    """One commit: its message, author and parent, and what it changed against its first parent
    (``hub/pr_diffs.py``'s bounded patch; an initial commit lists the files it added)."""
    ctx = _repo_context(request, path_param(request, "sha"))
    if not ctx["can_read_files"]:
        raise NotFound("Ask for access to read the files of this repo")
    commit = ctx["commit"]
    parent = commit.parents[0] if commit.parents else None
    changes = content.changed_files(ctx["git_repo"], parent, commit)
    if parent is None:
        lines = [("file", f"added {c.path}") for c in changes]
    else:
        lines = diff_lines(bounded_patch(ctx["git_repo"], parent, commit))
    return page(request, "repo.html", tab="commit", shown=commit, parent=parent, compared=None, diff=lines,
                changes=changes, **ctx)


@page_handler
def compare_page(request: Request) -> Response:
    """What changed from one revision to another: ``/compare/<old>...<new>`` (branches, tags or
    commit ids), as one bounded patch."""
    spec = path_param(request, "spec")
    old_rev, sep, new_rev = spec.partition("...")
    if not sep or not old_rev or not new_rev:
        raise NotFound("Compare two revisions as /compare/<old>...<new>")
    ctx = _repo_context(request, new_rev)
    if not ctx["can_read_files"]:
        raise NotFound("Ask for access to read the files of this repo")
    _, old = hub_of(request).refs.resolve(ctx["repo"], old_rev)
    lines = diff_lines(bounded_patch(ctx["git_repo"], old, ctx["commit"]))
    return page(request, "repo.html", tab="commit", shown=ctx["commit"], parent=old, compared=(old_rev, new_rev),
                diff=lines, changes=content.changed_files(ctx["git_repo"], old, ctx["commit"]), **ctx)


def diff_lines(patch: str) -> list[tuple[str, str]]:
    """A patch's lines, each with what it is: a file header, a hunk, an added or removed line."""
    out = []
    for line in patch.splitlines():
        kind = ("file" if line.startswith(("diff --git", "# ")) else "meta" if line.startswith(("+++", "---", "index "))
                else "hunk" if line.startswith("@@") else "add" if line.startswith("+")
                else "del" if line.startswith("-") else "ctx")
        out.append((kind, line))
    return out


VIEWER_PAGE = 20  # rows per page of the viewer
VIEWER_CELL = 300  # characters shown of one cell


@page_handler
def viewer(request: Request) -> Response:
    ctx = _repo_context(request)
    if not ctx["can_read_files"]:
        raise NotFound("Ask for access to see the rows of this dataset")
    hub = hub_of(request)
    branches = list(hub.parquet.branches(ctx["repo"]))  # converted besides the default one, by the owner's choice
    ctx = {**ctx, "viewer_branches": branches, "viewer_branch": None, "viewer_rev": ""}
    branch = (request.query_params.get("revision") or "").removeprefix("refs/heads/") or None
    if branch is not None and branch != "main":
        head = hub.parquet.branch_head(ctx["repo"], branch) if branch in branches else None
        if head is None:
            raise NotFound(f"The branch {branch} is not converted for the viewer (the dataset's settings choose them)")
        ctx = {**ctx, "repo": dataclasses.replace(ctx["repo"], sha=head), "viewer_branch": branch,
               "viewer_rev": "&revision=" + quote(branch, safe="")}
        conversion = hub.parquet.status(ctx["repo"], branch)
        done = converted(conversion, ctx["repo"])
        if done is None:  # an opted-in branch has no preview: its conversion's state only
            return page(request, "repo.html", tab="viewer", splits=[], config="", split="", columns=None, rows=None,
                        number=0, pages=1, total=0, partial=False, viewer_commit=head, conversion=conversion,
                        rows_error=None, converted=False, stats=None, state={}, searchable=False, filter_error=None,
                        **ctx)
        return _converted_viewer(request, ctx, conversion, done)
    conversion = hub.parquet.status(ctx["repo"])  # hub/parquet_export.py
    done = converted(conversion, ctx["repo"])
    if done is not None:  # the converted files: search, filters, sorting, statistics (hub/viewer_query.py)
        return _converted_viewer(request, ctx, conversion, done)
    data = hub.viewer
    commit, splits = data.splits(ctx["repo"])
    config = request.query_params.get("config") or (splits[0].config if splits else "")
    in_config = [s for s in splits if s.config == config]
    split = request.query_params.get("split") or (in_config[0].split if in_config else "")
    number = _page_number(request)
    table = columns = rows = None
    partial, total = False, 0
    rows_error = None
    if in_config:
        try:
            _, found = data.rows(ctx["repo"], config, split)
        except HubError as exc:  # files the viewer cannot read: say why, keep the page
            rows_error, in_config = exc.message, []
    if in_config:
        table, partial, total = found.table, found.partial, found.table.num_rows
        columns = [(f.name, _type_name(f.type)) for f in table.schema]
        page_rows = table.slice(number * VIEWER_PAGE, VIEWER_PAGE).to_pylist()
        rows = [(number * VIEWER_PAGE + i, [_cell(row.get(name)) for name, _ in columns]) for i, row in enumerate(page_rows)]
    return page(request, "repo.html", tab="viewer", splits=[(s.config, s.split) for s in splits], config=config,
                split=split, columns=columns, rows=rows, number=number, pages=max(1, -(-total // VIEWER_PAGE)),
                total=total, partial=partial, viewer_commit=commit, conversion=conversion, rows_error=rows_error,
                converted=False, stats=None, state={}, searchable=False, filter_error=None, **ctx)


def _page_number(request: Request) -> int:
    raw_page = request.query_params.get("p", "0")
    return min(int(raw_page), 10**9) if raw_page.isdigit() else 0


def _converted_viewer(request: Request, ctx: dict, conversion, done) -> Response:
    """The viewer over the converted files: a page of rows, or of a search (``q``), or of a filter
    (``where``) sorted by a column (``sort``, ``dir``), and the split's column statistics."""
    from aicommons.hub.viewer_filter import FilterError, quote_name

    hub = hub_of(request)
    repo = ctx["repo"]
    splits = converted_splits(done)
    params = request.query_params
    config = params.get("config") or (splits[0][0] if splits else "")
    in_config = [s for c, s in splits if c == config]
    split = params.get("split") or (in_config[0] if in_config else "")
    query, where = params.get("q", "").strip(), params.get("where", "").strip()
    sort, direction = params.get("sort", ""), "desc" if params.get("dir") == "desc" else "asc"
    number = _page_number(request)
    offset = number * VIEWER_PAGE
    columns = rows = stats = None
    total, partial, rows_error, filter_error = 0, False, None, None
    try:
        ps = hub.viewer_queries.split(repo, done, config, split)
    except HubError as exc:
        rows_error, ps = exc.message, None
    if ps is not None:
        columns = [(f.name, _type_name(f.type)) for f in ps.schema]
        partial = ps.partial
        added = column_clause(ps.schema, params.get("fcol", ""), params.get("fop", ""), params.get("fval", ""))
        if added:  # the column filter's condition joins the filter text, which the page then shows
            where = f"({where}) AND {added}" if where else added
        stats = ((done.result or {}).get("configs", {}).get(config, {}).get("statistics") or {}).get(split)
        try:
            if query:
                found = hub.viewer_queries.search(repo, done, ps, query, offset, VIEWER_PAGE)
                table, indices, total = found if found is not None else (ps.schema.empty_table(), [], 0)
            elif where or sort in ps.columns:
                orderby = f"{quote_name(sort)} {direction.upper()}" if sort in ps.columns else None
                table, indices, total = hub.viewer_queries.filter(ps, where or None, orderby, offset, VIEWER_PAGE)
            else:
                table, total = hub.viewer_queries.rows(ps, offset, VIEWER_PAGE), ps.num_rows
                indices = list(range(offset, offset + table.num_rows))
        except FilterError as exc:
            filter_error, table, indices, total = str(exc), ps.schema.empty_table(), [], 0
        features = ((done.result or {}).get("configs", {}).get(config, {}).get("info") or {}).get("features") or {}
        media = {name for name, f in features.items() if isinstance(f, dict) and f.get("_type") in ("Image", "Audio")}
        who = hub.lfs.link_holder(request.state.web.principal) if media else ""

        def cell(idx: int, name: str, value) -> object:
            data = value.get("bytes") if name in media and isinstance(value, dict) else None
            if isinstance(data, bytes):
                path, mime = hub.viewer_queries.asset_link(repo, ps, idx, name, data, who)
                path += ctx["viewer_rev"]  # an opted-in branch's image: its conversion
                return {"audio" if mime.startswith("audio/") else "img": path, "alt": f"{name}, row {idx}"}
            return _cell(value)

        rows = [(idx, [cell(idx, name, row.get(name)) for name, _ in columns])
                for idx, row in zip(indices, table.to_pylist(), strict=False)]
    state = {"config": config, "split": split, "q": query, "where": where, "sort": sort, "dir": direction}
    return page(request, "repo.html", tab="viewer", splits=splits, config=config, split=split, columns=columns,
                rows=rows, number=number, pages=max(1, -(-total // VIEWER_PAGE)), total=total, partial=partial,
                viewer_commit=repo.sha, conversion=conversion, rows_error=rows_error, converted=True,
                filter_error=filter_error, stats=_stats_view(stats), state=state, column_ops=COLUMN_OPS,
                searchable=bool(((done.result or {}).get("configs", {}).get(config, {}).get("search") or {}).get(split)),
                extras_pending=extras_pending(done), **ctx)


# The viewer page's column filter: (value, label) of each condition, and how it is written.
COLUMN_OPS = (("=", "is"), ("!=", "is not"), ("<", "is less than"), ("<=", "is at most"), (">", "is more than"),
              (">=", "is at least"), ("contains", "contains"), ("starts", "starts with"), ("null", "is empty (null)"),
              ("notnull", "is not empty"))
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def column_clause(schema, column: str, op: str, value: str) -> str:
    """The ``where`` condition the page's column filter asks for (column, condition, value), written
    in the /filter syntax (which parses it like any typed filter: hub/viewer_filter.py); "" when none
    is asked for. A value is a number or true/false where the column's type is one, else a quoted
    string; "contains" and "starts with" are ``LIKE`` (``%`` and ``_`` in the value are wildcards)."""
    import pyarrow as pa

    from aicommons.hub.viewer_filter import quote_name

    if column not in schema.names or op not in dict(COLUMN_OPS):
        return ""
    name = quote_name(column)
    if op in ("null", "notnull"):
        return f"{name} IS {'NOT ' if op == 'notnull' else ''}NULL"
    kind = schema.field(column).type
    text = value.strip()
    if op in ("contains", "starts"):
        pattern = ("%" if op == "contains" else "") + value + "%"
        return f"{name} LIKE '{pattern.replace(chr(39), chr(39) * 2)}'"
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and _NUMBER.fullmatch(text):
        literal = text
    elif pa.types.is_boolean(kind) and text.lower() in ("true", "false"):
        literal = text.lower()
    else:
        literal = "'" + value.replace("'", "''") + "'"
    return f"{name} {op} {literal}"


def _stats_view(stats: dict | None) -> list[dict] | None:
    """Each column's statistics as the page shows them: a summary line, top categories, histogram bars."""
    if not stats:
        return None
    out = []
    for entry in stats.get("statistics", []):
        s = entry["column_statistics"]
        view = {"name": entry["column_name"], "type": entry["column_type"], "nulls": s.get("nan_count", 0),
                "summary": "", "bars": [], "top": []}
        if "frequencies" in s:
            items = list(s["frequencies"].items())
            view["top"] = items[:5]
            view["summary"] = f"{s.get('n_unique', len(items))} values"
        elif s.get("min") is not None:
            what = " (length)" if entry["column_type"] in ("string_text", "list") else ""
            view["summary"] = f"min {s['min']} · max {s['max']} · mean {s['mean']} · median {s['median']}{what}"
            hist = (s.get("histogram") or {}).get("hist") or []
            edges = (s.get("histogram") or {}).get("bin_edges") or []
            top = max(hist) if hist else 0
            view["bars"] = [(max(2, round(100 * h / top)) if top else 0, h, edges[i] if i < len(edges) else "")
                            for i, h in enumerate(hist)]
        out.append(view)
    return out


def _type_name(arrow_type) -> str:
    text = str(arrow_type)
    return {"large_string": "string", "double": "float64", "float": "float32"}.get(text, text)


def _cell(value) -> str:
    from aicommons.hub.viewer import jsonable

    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
    return text if len(text) <= VIEWER_CELL else text[:VIEWER_CELL] + "…"
