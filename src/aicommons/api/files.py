"""Reading files: ``/resolve/`` downloads, ``/raw/`` git blobs, tree listings and paths-info."""

from __future__ import annotations

import base64
import binascii
import mimetypes
from urllib.parse import parse_qs, quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from aicommons.api import formats
from aicommons.api.chunked import chunked_file_response
from aicommons.api.file_response import GrowingFileResponse, LocalFileResponse
from aicommons.api.http import (
    base_url,
    blocking,
    bool_arg,
    hub_of,
    json_object,
    next_link,
    param,
    parse_json,
    principal_of,
    read_body,
    repo_id_param,
    repo_type_param,
    run_sync,
)
from aicommons.api.ranges import bytes_response
from aicommons.errors import BadRequest, EntryNotFound, HubError
from aicommons.gitrepo.store import CommitInfo
from aicommons.hub import content
from aicommons.hub.content import Entry
from aicommons.hub.names import REPO_TYPE_PLURAL, unsafe_char
from aicommons.hub.policy import Action
from aicommons.hub.repos import RepoRow

TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50
BAD_TREE_CURSOR = "Query parameter 'cursor' is not one this server gave: pass the one from the previous page's Link header"
PRESIGNED_TTL = 600
EXPOSED_HEADERS = "X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag, Content-Range"


def repo_type_from_prefix(request: Request) -> str:
    path = request.url.path
    if path.startswith("/datasets/"):
        return "dataset"
    if path.startswith("/spaces/"):
        return "space"
    return "model"


# Types a browser would run (scripts in HTML, SVG, XML): served as plain text, so that a file in a
# repo can never act with a signed-in visitor's web session, which shares this origin.
_ACTIVE_TYPES = {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
                 "text/javascript", "application/javascript", "application/ecmascript", "text/xsl"}
# And whatever a browser thinks a file is: no sniffing, and a sandbox with no scripts or requests.
CONTAINMENT_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}


def served_media_type(path: str) -> str:
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return "text/plain; charset=utf-8" if media_type in _ACTIVE_TYPES else media_type


def _content_disposition(path: str, download: bool = False) -> str:
    """Inline (a browser shows what it safely can), or an attachment with ``?download=true`` as on
    the Hub: the files page's download links."""
    name = path.rsplit("/", 1)[-1]
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "")
    return f"{'attachment' if download else 'inline'}; filename*=UTF-8''{quote(name)}; filename=\"{ascii_name}\""


def _file_at(request: Request):
    """The repo, git repo, commit id, path and entry of a ``/resolve/`` or ``/raw/`` URL's file:
    the caller may read it, and it is a file at that revision (else the Hub's errors)."""
    hub = hub_of(request)
    repo = hub.repos.find(repo_type_from_prefix(request), repo_id_param(request), principal_of(request),
                          action=Action.READ_CONTENT)
    git_repo, commit = hub.refs.resolve(repo, param(request, "rev"))
    path = param(request, "path")
    entry = content.get_entry(git_repo, commit, path)
    commit_id = str(commit.id)
    if entry is None or entry.type != "file":
        raise EntryNotFound(f"Entry not found: {path} does not exist at revision {commit_id}",
                            headers={"X-Repo-Commit": commit_id})
    return repo, git_repo, commit_id, path, entry


def _file_headers(request: Request, commit_id: str, path: str, etag: str) -> dict[str, str]:
    """What ``/resolve/`` and ``/raw/`` send with any file."""
    return {
        "X-Repo-Commit": commit_id,
        "ETag": f'"{etag}"',
        "Content-Disposition": _content_disposition(path, request.query_params.get("download") == "true"),
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        **CONTAINMENT_HEADERS,
    }


def _resolve(request: Request) -> Response:
    hub = hub_of(request)
    repo, git_repo, commit_id, path, entry = _file_at(request)
    head_only = request.method == "HEAD"
    if not head_only and "range" not in request.headers and _counts_as_download(repo.type, path):
        hub.repos.count_download(repo)
    headers = _file_headers(request, commit_id, path, entry.etag)
    media_type = served_media_type(path)
    if entry.lfs is None:
        data = content.read_blob(git_repo, entry.oid)
        return bytes_response(data, headers, request.headers.get("range"), media_type, head_only)
    headers.update({"X-Linked-Etag": f'"{entry.lfs.oid}"', "X-Linked-Size": str(entry.lfs.size)})
    found = hub.objects.locate(entry.lfs.oid, entry.lfs.size)
    headers.update(_xet_headers(request, repo, commit_id, found.xet.file_hash if found.xet else None))
    if hub.upstream is not None and (mirror := hub.upstream.missing_file(repo, entry.lfs.oid)) is not None:
        return _from_upstream(request, repo, mirror, commit_id, path, entry.lfs, headers, media_type, head_only)
    filename = path.rsplit("/", 1)[-1]
    if found.key is None:  # stored only as chunks (a Xet upload): a whole copy in the bucket or on local disk,
        # or rebuilt as it is sent
        url = hub.bucket_copies.url(found.oid, found.size, PRESIGNED_TTL, filename, fill=not head_only)
        if url is not None:
            return _presigned_redirect(url, repo, headers)
        cached = hub.download_cache.get(found.oid, found.size, fill=not head_only)
        if cached is not None:
            return LocalFileResponse(cached, found.size, headers, media_type)
        return chunked_file_response(hub.objects.chunked(found), headers, request.headers.get("range"),
                                     request.headers.get("if-range"), media_type, head_only)
    local = hub.objects.local_path(found)
    if local is None:
        return _presigned_redirect(hub.blobs.presigned_url(found.key, PRESIGNED_TTL, filename=filename), repo, headers)
    return LocalFileResponse(local, local.stat().st_size, headers, media_type)


def _raw(request: Request) -> Response:
    """``/{repo}/raw/{rev}/{path}``, as on the Hub: the file as git stores it, so a large file's
    Git LFS pointer rather than its content (``/resolve/`` gives that)."""
    _, git_repo, commit_id, path, entry = _file_at(request)
    headers = _file_headers(request, commit_id, path, entry.oid)
    media_type = "text/plain; charset=utf-8" if entry.lfs is not None else served_media_type(path)
    return bytes_response(content.read_blob(git_repo, entry.oid), headers, request.headers.get("range"), media_type,
                          request.method == "HEAD")


def _presigned_redirect(url: str | None, repo: RepoRow, headers: dict) -> Response:
    # A redirect carries a bearer URL: no cache may keep it, and none shared for non-public files.
    headers["Cache-Control"] = "private, no-store" if (repo.private or repo.gated) else "no-store"
    return RedirectResponse(url or "", status_code=302, headers=headers)


def _from_upstream(request: Request, repo: RepoRow, mirror, commit_id: str, path: str, lfs, headers: dict,
                   media_type: str, head_only: bool) -> Response:
    """A large file of a pulled-through repo that is not here yet (hub/upstream.py): streamed from
    upstream while it is stored; a byte range is passed through uncached."""
    from aicommons.hub.upstream import UpstreamError

    upstream = hub_of(request).upstream
    url = upstream.file_url(mirror, repo.type, commit_id, path)
    fetch_headers = upstream.headers_for(repo, principal_of(request))  # a restricted repo: the caller's own grant
    if head_only:
        return Response(status_code=200, headers={**headers, "Content-Length": str(lfs.size)}, media_type=media_type)
    try:
        if "range" in request.headers:
            answer = upstream.proxy_range(url, request.headers["range"], fetch_headers)
            passed = {k: v for k, v in answer.headers.items() if k.lower() in ("content-range", "content-length")}
            return Response(answer.content, status_code=answer.status_code, headers={**headers, **passed},
                            media_type=media_type)
        fetch = upstream.open_file(repo, url, lfs.oid, lfs.size, fetch_headers)
        file = fetch.open()
    except (UpstreamError, httpx.HTTPError) as exc:
        raise HubError(f"This file is not cached here yet and {exc}", status=502) from None
    return GrowingFileResponse(file, fetch, lfs.size, headers, media_type)


def _xet_headers(request: Request, repo: RepoRow, commit_id: str, file_hash: str | None) -> dict:
    """A file stored as Xet chunks also offers a Xet download: its hash and where to get a read
    token (spec §8.1, §10.2). Other files get no Xet headers, so clients use plain HTTP."""
    if file_hash is None:
        return {}
    token_url = f"{base_url(request)}/api/{REPO_TYPE_PLURAL[repo.type]}/{repo.full_id}/xet-read-token/{commit_id}"
    return {"X-Xet-Hash": file_hash, "Link": f'<{token_url}>; rel="xet-auth"',
            "Access-Control-Expose-Headers": f"{EXPOSED_HEADERS}, X-Xet-Hash, Link"}


def _entries_json(request: Request, page: list[tuple[Entry, CommitInfo | None]], expand: bool) -> list[dict]:
    """Tree / paths-info entries, with the Xet hashes of the page's files looked up in one query,
    and with ``expand`` their upload-scan status (``hub/scans.py``)."""
    hub = hub_of(request)
    xet = hub.xet.reads.file_hashes(e.lfs.oid for e, _ in page if e.lfs is not None)
    security = hub.scans.file_statuses([e for e, _ in page]) if expand else {}
    return [formats.tree_entry(e, last, xet.get(e.lfs.oid) if e.lfs is not None else None, security.get(e.path))
            for e, last in page]


def _counts_as_download(repo_type: str, path: str) -> bool:
    """Count one download per model load (config.json) or per dataset file, like the Hub."""
    if repo_type == "model":
        return path == "config.json"
    return True


resolve = blocking(_resolve)
raw = blocking(_raw)


@blocking
def tree(request: Request) -> Response:
    hub = hub_of(request)
    principal = principal_of(request)
    repo = hub.repos.find(repo_type_param(request), repo_id_param(request), principal, action=Action.READ_CONTENT)
    git_repo, commit = hub.refs.resolve(repo, param(request, "rev"))
    path = param(request, "path").strip("/") if "path" in request.path_params else ""
    recursive = bool_arg(request, "recursive")
    expand = bool_arg(request, "expand")
    page_size = TREE_PAGE_EXPANDED if expand else TREE_PAGE
    after = _tree_cursor(request)
    entries: list[Entry] = []
    more = False
    try:
        for entry in content.list_tree(git_repo, commit, path, recursive, after=after, keep_damaged=True):
            if len(entries) == page_size:
                more = True
                break
            entries.append(entry)
    except ValueError:
        raise BadRequest(BAD_TREE_CURSOR) from None
    # expand: the last commit of every entry of the page from one bounded history walk.
    last = content.last_commits_for(git_repo, commit, [e.path for e in entries]) if expand else {}
    page = [(e, last.get(e.path)) for e in entries]
    headers = {"Link": next_link(request, _encode_tree_cursor(entries[-1].path))} if more else {}
    return JSONResponse(_entries_json(request, page, expand), headers=headers)


def _encode_tree_cursor(path: str) -> str:
    return base64.urlsafe_b64encode(path.encode("utf-8", "surrogateescape")).decode().rstrip("=")


def _tree_cursor(request: Request) -> str | None:
    """The path of the last entry of the previous page (keyset), from its opaque cursor."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        if len(raw) > 8192:
            raise ValueError
        return base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)).decode("utf-8")
    except (ValueError, binascii.Error):
        raise BadRequest(BAD_TREE_CURSOR) from None


def _content_repo(request: Request) -> RepoRow:
    return hub_of(request).repos.find(repo_type_param(request), repo_id_param(request), principal_of(request),
                                      action=Action.READ_CONTENT)


async def paths_info(request: Request) -> Response:
    repo = await run_sync(_content_repo, request)  # decided before the body is read
    body = await read_body(request, hub_of(request).settings.max_json_body_bytes)
    if request.headers.get("content-type", "").startswith("application/json"):
        data = json_object(parse_json(body or b"{}"))
        paths, expand = data.get("paths", []), bool(data.get("expand", False))
    else:
        form = parse_qs(body.decode("utf-8", "replace"))
        paths, expand = form.get("paths", []), form.get("expand", ["false"])[0].lower() == "true"
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequest("'paths' must be a list of strings")
    return await run_sync(_paths_info, request, repo, paths, expand)


def _paths_info(request: Request, repo: RepoRow, paths: list[str], expand: bool) -> Response:
    hub = hub_of(request)
    git_repo, commit = hub.refs.resolve(repo, param(request, "rev"))
    entries = []
    for path in dict.fromkeys(p.strip("/") for p in paths):
        # A path no file can have (NUL, controls) names nothing: skipped, like any missing path.
        entry = content.get_entry(git_repo, commit, path) if path and unsafe_char(path) is None else None
        if entry is not None:
            entries.append(entry)
    last = content.last_commits_for(git_repo, commit, [e.path for e in entries]) if expand else {}
    return JSONResponse(_entries_json(request, [(e, last.get(e.path)) for e in entries], expand))
