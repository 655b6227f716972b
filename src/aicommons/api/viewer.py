"""The dataset viewer API, with datasets-server's paths, parameters, JSON shapes and error codes
(spec wave2-apis.md §7.2), under ``/datasets-server/`` and on the ``datasets-server.`` sub-host
(``DatasetsServerHostMiddleware``). Once the dataset's current commit is converted to Parquet, the
rows come from the converted files (``hub/viewer_query.py``: row groups, DuckDB); before that, from
a preview of the default branch's files (``hub/viewer.py``)."""

from __future__ import annotations

import dataclasses
import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from aicommons.api.http import base_url, blocking, hub_of, param, principal_of
from aicommons.errors import EntryNotFound, HubError
from aicommons.hub.policy import Action
from aicommons.hub.viewer import ViewerError, feature_type, jsonable, truncate_first_rows
from aicommons.hub.viewer_filter import FilterError
from aicommons.hub.viewer_query import converted, converted_splits, extras_pending

PAGE = 100  # rows per page, the most /rows returns
FIRST_ROWS = 100
PREFIX = "/datasets-server"


def _error(message: str, code: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"X-Error-Code": code})


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "")
    if not value:
        raise ViewerError(f"Parameter '{name}' is required", "MissingRequiredParameter", 422)
    return value


def _int(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or (maximum is not None and int(raw) > maximum):
        bound = f" between 0 and {maximum}" if maximum is not None else " at least 0"
        raise ViewerError(f"Parameter '{name}' must be an integer{bound}", "InvalidParameter", 422)
    return int(raw)


def _dataset(request: Request):
    """The dataset the caller may read; with ``revision=<branch>`` (a branch its owner opted into
    the conversion: hub/parquet_export.py), the dataset as of that branch's head, whose answers come
    from that branch's conversion only (no preview of its files)."""
    repo = _readable(request)
    revision = request.query_params.get("revision", "")
    branch = revision.removeprefix("refs/heads/") or None
    if branch == "main":
        branch = None
    request.state.viewer_branch = branch
    if branch is None:
        return repo
    if branch not in hub_of(request).parquet.branches(repo):
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    head = hub_of(request).parquet.branch_head(repo, branch)
    if head is None:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    return dataclasses.replace(repo, sha=head)


def _branch(request: Request) -> str | None:
    return getattr(request.state, "viewer_branch", None)


def _preview_splits(request: Request, repo):
    """(commit, splits) of the preview of the default branch's files (none for an opted-in branch)."""
    if _branch(request) is not None:
        return repo.sha, []
    return hub_of(request).viewer.splits(repo)


def _preview_rows(request: Request, repo, config: str, split: str):
    if _branch(request) is not None:
        raise _not_converted(request, repo)
    return hub_of(request).viewer.rows(repo, config, split)


def _readable(request: Request):
    hub = hub_of(request)
    principal = principal_of(request)
    dataset = _required(request, "dataset")
    try:
        return hub.repos.find("dataset", dataset, principal, action=Action.READ_CONTENT)
    except HubError:
        # Missing, private, gated: one answer, as datasets-server gives it (404, not 403, with a token).
        if principal.is_anonymous:
            raise ViewerError("The dataset does not exist, or is not accessible without authentication (private "
                              "or gated). Please check the spelling of the dataset name or retry with "
                              "authentication.", "ExternalUnauthenticatedError", 401) from None
        raise ViewerError("The dataset does not exist, or is not accessible with the current credentials "
                          "(private or gated). Please check the spelling of the dataset name or retry with other "
                          "authentication credentials.", "ExternalAuthenticatedError", 404) from None


def _answer(body: dict, repo, commit: str, per_caller: bool = False) -> JSONResponse:
    """``per_caller``: the answer holds URLs signed for the caller (images, audio): no shared cache."""
    cache = "no-store" if (repo.private or repo.gated) else "private, max-age=60" if per_caller else "public, max-age=60"
    return JSONResponse(body, headers={"X-Revision": commit, "Cache-Control": cache})


def _viewer_endpoint(handler):
    @blocking
    def endpoint(request: Request) -> Response:
        try:
            return handler(request)
        except ViewerError as exc:
            return _error(exc.message, exc.code, exc.status)

    endpoint.__name__ = handler.__name__
    return endpoint


def _features(table) -> list[dict]:
    return [{"feature_idx": i, "name": field.name, "type": feature_type(field.type)}
            for i, field in enumerate(table.schema)]


def _rows(table, offset: int, length: int) -> list[dict]:
    return _row_items(table.slice(offset, length), range(offset, offset + length))


def _row_items(page, indices, media: dict | None = None) -> list[dict]:
    """Rows as datasets-server gives them; ``media`` (from ``_media``) turns image and audio cells
    into short-lived signed URLs."""
    items = []
    for idx, row in zip(indices, page.to_pylist(), strict=False):
        if media:
            for column, to_url in media.items():
                if row.get(column) is not None:
                    row[column] = to_url(idx, column, row[column])
        items.append({"row_idx": idx, "row": jsonable(row), "truncated_cells": []})
    return items


def _media(request: Request, repo, ps, features: list[dict]) -> dict:
    """{column: cell -> URL answer} for the split's top-level Image and Audio columns: an image is
    ``{src, height, width}`` (its size read from the image's header), audio ``[{src, type}]``, ``src`` a
    URL of this hub signed for the caller (an hour)."""
    from aicommons.hub.viewer_query import MEDIA, image_size

    kinds = {f["name"]: f["type"]["_type"] for f in features
             if isinstance(f["type"], dict) and f["type"].get("_type") in MEDIA}
    if not kinds:
        return {}
    from urllib.parse import quote

    hub = hub_of(request)
    who = hub.lfs.link_holder(principal_of(request))
    root = _hub_url(request)
    branch = _branch(request)

    def to_url(kind: str):
        def make(idx: int, column: str, value) -> object:
            data = value.get("bytes") if isinstance(value, dict) else None
            if not isinstance(data, bytes):
                return None
            path, mime = hub.viewer_queries.asset_link(repo, ps, idx, column, data, who)
            if branch is not None:
                path += "&revision=" + quote(branch, safe="")
            if kind != "Image":
                return [{"src": root + path, "type": mime}]
            found = image_size(data)
            return {"src": root + path, **({"height": found[1], "width": found[0]} if found else {})}
        return make

    return {column: to_url(kind) for column, kind in kinds.items()}


def _per_caller(request: Request, media: dict) -> bool:
    return bool(media) and not principal_of(request).is_anonymous


def asset(request: Request) -> Response:
    """An image or audio cell behind a signed URL (``/rows`` and the others hand them out). The link
    is re-checked as the principal it was minted for, as LFS links are: that principal must still
    exist and still read the dataset, and the URL must not have expired or been altered."""
    from aicommons.hub.viewer_query import media_type

    hub = hub_of(request)
    query = request.query_params
    who = query.get("who") or ""
    principal = hub.accounts.principal_for_key(who) if who else None
    not_found = ViewerError("Not found.", "ResponseNotFound", 404)
    if principal is None:
        raise not_found
    try:
        repo = hub.repos.find("dataset", f"{param(request, 'ns')}/{param(request, 'name')}", principal,
                              action=Action.READ_CONTENT)
    except HubError:
        raise not_found from None
    branch = query.get("revision") or None
    request.state.viewer_branch = branch
    if branch is not None:  # an image of an opted-in branch's conversion
        head = hub.parquet.branch_head(repo, branch) if branch in hub.parquet.branches(repo) else None
        if head is None:
            raise not_found
        repo = dataclasses.replace(repo, sha=head)
    conversion = _conversion(request, repo)
    if conversion is None or conversion.converted_sha != param(request, "sha"):
        raise not_found
    ps = hub.viewer_queries.split(repo, conversion, param(request, "config"), param(request, "split"))
    row, column = request.path_params["row"], param(request, "column")
    hub.viewer_queries.check_asset(repo, ps, row, column, query.get("exp"), who, query.get("sig"))
    data = hub.viewer_queries.cell_bytes(ps, row, column)
    mime, ext = media_type(data)
    headers = {"Cache-Control": "private, max-age=3600"}
    if mime == "application/octet-stream":  # not an image or audio format we know: a download, never a page
        headers["Content-Disposition"] = f'attachment; filename="cell.{ext}"'
    return Response(data, media_type=mime, headers=headers)


def _conversion(request: Request, repo):
    """The finished Parquet conversion of the dataset's current commit, or None (not converted
    yet, failed, or conversion off: the preview of the default branch's files answers)."""
    return converted(hub_of(request).parquet.status(repo, _branch(request)), repo)


def _config_info(conversion, config: str) -> dict:
    return (conversion.result or {}).get("configs", {}).get(config, {})


def _converted_features(conversion, config: str, ps) -> list[dict]:
    """The features the conversion recorded (``datasets``' own, ClassLabel and all), else the schema's."""
    features = _config_info(conversion, config).get("info", {}).get("features")
    if isinstance(features, dict) and list(features) == ps.columns:
        return [{"feature_idx": i, "name": name, "type": kind} for i, (name, kind) in enumerate(features.items())]
    return [{"feature_idx": i, "name": field.name, "type": feature_type(field.type)}
            for i, field in enumerate(ps.schema)]


def _parquet_split(request: Request, repo, config: str, split: str):
    """(conversion, the split's converted files) or (None, None) before the conversion."""
    conversion = _conversion(request, repo)
    if conversion is None:
        return None, None
    return conversion, hub_of(request).viewer_queries.split(repo, conversion, config, split)


def is_valid(request: Request) -> Response:
    repo = _dataset(request)
    commit, splits = _preview_splits(request, repo)
    ok = bool(splits)
    status = hub_of(request).parquet.status(repo, _branch(request))  # a failed Parquet conversion: first rows only
    viewer = ok and (status is None or status.state != "failed")
    conversion = converted(status, repo)
    configs = (conversion.result or {}).get("configs", {}).values() if conversion is not None else []
    return _answer({"viewer": viewer or conversion is not None, "preview": ok or conversion is not None,
                    "search": any(c.get("search") for c in configs), "filter": conversion is not None,
                    "statistics": any(c.get("statistics") for c in configs)}, repo, commit)


def splits(request: Request) -> Response:
    repo = _dataset(request)
    config = request.query_params.get("config")
    status = hub_of(request).parquet.status(repo, _branch(request))
    conversion = converted(status, repo)
    if conversion is not None:
        commit, pairs = repo.sha, converted_splits(conversion)
    else:
        commit, found = _preview_splits(request, repo)
        pairs = [(s.config, s.split) for s in found]
    items = [{"dataset": repo.full_id, "config": c, "split": s} for c, s in pairs if config is None or c == config]
    if config is not None and not items:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    pending, failed = [], []
    if status is not None and status.state in ("pending", "failed"):
        # datasets-server's config items: the splits above come from the preview of the files until
        # the conversion (which sets the configs and splits for good) is done, or it failed.
        names = list(dict.fromkeys(item["config"] for item in items)) or [config]
        if status.state == "pending":
            pending = [{"dataset": repo.full_id, "config": name} for name in names]
        else:
            failed = [{"dataset": repo.full_id, "config": name, "error": {"error": status.error}} for name in names]
    return _answer({"splits": items, "pending": pending, "failed": failed}, repo, commit)


def first_rows(request: Request) -> Response:
    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    max_bytes = hub_of(request).settings.viewer_first_rows_max_bytes
    conversion, ps = _parquet_split(request, repo, config, split)
    if ps is not None:
        page = hub_of(request).viewer_queries.rows(ps, 0, FIRST_ROWS)
        features = _converted_features(conversion, config, ps)
        media = _media(request, repo, ps, features)
        items, cut = truncate_first_rows(_row_items(page, range(page.num_rows), media), max_bytes, set(media))
        return _answer({"dataset": repo.full_id, "config": config, "split": split, "features": features,
                        "rows": items, "truncated": cut or ps.num_rows > FIRST_ROWS}, repo, repo.sha,
                       _per_caller(request, media))
    commit, rows = _preview_rows(request, repo, config, split)
    table = rows.table
    items, cut = truncate_first_rows(_rows(table, 0, FIRST_ROWS), max_bytes, set())
    return _answer({"dataset": repo.full_id, "config": config, "split": split, "features": _features(table),
                    "rows": items, "truncated": cut or table.num_rows > FIRST_ROWS}, repo, commit)


def rows(request: Request) -> Response:
    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    offset = _int(request, "offset", 0)
    length = _int(request, "length", PAGE, maximum=PAGE)
    conversion, ps = _parquet_split(request, repo, config, split)
    if ps is not None:
        page = hub_of(request).viewer_queries.rows(ps, offset, length)
        features = _converted_features(conversion, config, ps)
        media = _media(request, repo, ps, features)
        return _answer({"features": features, "rows": _row_items(page, range(offset, offset + page.num_rows), media),
                        "num_rows_total": ps.num_rows, "num_rows_per_page": PAGE, "partial": ps.partial},
                       repo, repo.sha, _per_caller(request, media))
    commit, found = _preview_rows(request, repo, config, split)
    table = found.table
    return _answer({"features": _features(table), "rows": _rows(table, offset, length),
                    "num_rows_total": table.num_rows, "num_rows_per_page": PAGE, "partial": found.partial},
                   repo, commit)


def filter_rows(request: Request) -> Response:
    """``/filter``: rows matching ``where``, sorted by ``orderby``, parsed by hub/viewer_filter.py and
    re-emitted from the parse tree (DuckDB SQL with bound values over the converted files, pyarrow
    expressions over the preview), never passed through."""
    from aicommons.hub.viewer_filter import filter_table

    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    offset = _int(request, "offset", 0)
    length = _int(request, "length", PAGE, maximum=PAGE)
    where, orderby = request.query_params.get("where"), request.query_params.get("orderby")
    conversion, ps = _parquet_split(request, repo, config, split)
    if ps is not None:
        try:
            page, indices, total = hub_of(request).viewer_queries.filter(ps, where, orderby, offset, length)
        except FilterError as exc:
            raise ViewerError(f"Parameter 'where' or 'orderby' is invalid: {exc}", "InvalidParameter", 422) from None
        features = _converted_features(conversion, config, ps)
        media = _media(request, repo, ps, features)
        return _answer({"features": features, "rows": _row_items(page, indices, media), "num_rows_total": total,
                        "num_rows_per_page": PAGE, "partial": ps.partial}, repo, repo.sha, _per_caller(request, media))
    commit, found = _preview_rows(request, repo, config, split)
    try:
        matching = filter_table(found.table, where, orderby)
    except FilterError as exc:
        raise ViewerError(f"Parameter 'where' or 'orderby' is invalid: {exc}", "InvalidParameter", 422) from None
    page = matching.slice(offset, length)
    indices = page.column("__row_idx").to_pylist()
    page = page.drop_columns(["__row_idx"])
    rows_out = [{"row_idx": idx, "row": jsonable(row), "truncated_cells": []}
                for idx, row in zip(indices, page.to_pylist(), strict=True)]
    return _answer({"features": _features(found.table), "rows": rows_out, "num_rows_total": matching.num_rows,
                    "num_rows_per_page": PAGE, "partial": found.partial}, repo, commit)


def search(request: Request) -> Response:
    """``/search``: rows whose text columns match ``query`` (BM25 over the split's full-text index,
    built by the conversion job: hub/viewer_search.py), best first."""
    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    query = _required(request, "query")
    offset = _int(request, "offset", 0)
    length = _int(request, "length", PAGE, maximum=PAGE)
    conversion, ps = _parquet_split(request, repo, config, split)
    if ps is None:
        raise _not_converted(request, repo)
    found = hub_of(request).viewer_queries.search(repo, conversion, ps, query, offset, length)
    if found is None and extras_pending(conversion):  # the follow-up job has not built the index yet
        raise _not_ready()
    if found is None:  # no text column in this split
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    page, indices, total = found
    features = _converted_features(conversion, config, ps)
    media = _media(request, repo, ps, features)
    return _answer({"features": features, "rows": _row_items(page, indices, media), "num_rows_total": total,
                    "num_rows_per_page": PAGE, "partial": ps.partial}, repo, repo.sha, _per_caller(request, media))


def _not_ready() -> ViewerError:
    """datasets-server's answer while the step that makes a response is still queued or running."""
    return ViewerError("The server is busier than usual and the response is not ready yet. Please retry later.",
                       "ResponseNotReady", 500)


def _not_converted(request: Request, repo) -> ViewerError:
    """The error for a dataset whose current commit has no finished conversion."""
    status = hub_of(request).parquet.status(repo, _branch(request))
    if status is not None and status.state == "pending":
        return _not_ready()
    return ViewerError("Not found.", "ResponseNotFound", 404)


def statistics(request: Request) -> Response:
    """``/statistics``: the split's per-column statistics, computed by the conversion job
    (hub/viewer_stats.py)."""
    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    conversion = _conversion(request, repo)
    if conversion is None:
        raise _not_converted(request, repo)
    found = _config_info(conversion, config).get("statistics", {}).get(split)
    if found is None and extras_pending(conversion) and (config, split) in converted_splits(conversion):
        raise _not_ready()  # the follow-up job has not computed them yet
    if found is None:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    return _answer(found, repo, repo.sha)


def _croissant(request: Request, repo) -> dict:
    from aicommons.hub.croissant import croissant

    conversion = _conversion(request, repo)
    if conversion is None:
        raise _not_converted(request, repo)
    return croissant(repo.full_id, _hub_url(request), (conversion.result or {}).get("configs", {}), repo.card_data)


def croissant_endpoint(request: Request) -> Response:
    """``/croissant``: the Croissant JSON-LD of the converted dataset (hub/croissant.py)."""
    repo = _dataset(request)
    return _answer(_croissant(request, repo), repo, repo.sha)


def size(request: Request) -> Response:
    repo = _dataset(request)
    config = request.query_params.get("config")
    commit, found = _preview_splits(request, repo)
    status = hub_of(request).parquet.status(repo, _branch(request))
    conversion = converted(status, repo)
    split_sizes, partial = [], False
    if conversion is not None:
        commit = repo.sha
        original = {(s.config, s.split): sum(f.size for f in s.files) for s in found}
        pairs = [(c, s) for c, s in converted_splits(conversion) if config is None or c == config]
        if config is not None and not pairs:
            raise ViewerError("Not found.", "ResponseNotFound", 404)
        for c, s in pairs:
            ps = hub_of(request).viewer_queries.split(repo, conversion, c, s)
            split_info = _config_info(conversion, c).get("info", {}).get("splits", {}).get(s, {})
            partial = partial or ps.partial
            split_sizes.append({"dataset": repo.full_id, "config": c, "split": s, "num_bytes_parquet_files": ps.num_bytes,
                                "num_bytes_memory": int(split_info.get("num_bytes") or 0), "num_rows": ps.num_rows,
                                "estimated_num_rows": None, "num_columns": len(ps.columns),
                                "num_bytes_original_files": original.get((c, s), 0)})
    else:
        chosen = [s for s in found if config is None or s.config == config]
        if config is not None and not chosen:
            raise ViewerError("Not found.", "ResponseNotFound", 404)
        for s in chosen:
            _, data = _preview_rows(request, repo, s.config, s.split)
            partial = partial or data.partial
            split_sizes.append({"dataset": repo.full_id, "config": s.config, "split": s.split,
                                "num_bytes_parquet_files": 0, "num_bytes_memory": data.table.nbytes,
                                "num_rows": data.table.num_rows, "estimated_num_rows": None,
                                "num_columns": data.table.num_columns,
                                "num_bytes_original_files": data.original_bytes})
    configs: dict[str, dict] = {}
    for item in split_sizes:
        c = configs.setdefault(item["config"], {"dataset": repo.full_id, "config": item["config"],
                                                "num_bytes_original_files": 0, "num_bytes_parquet_files": 0,
                                                "num_bytes_memory": 0, "num_rows": 0, "num_columns": 0,
                                                "estimated_num_rows": None})
        for key in ("num_bytes_original_files", "num_bytes_parquet_files", "num_bytes_memory", "num_rows"):
            c[key] += item[key]
        c["num_columns"] = max(c["num_columns"], item["num_columns"])
    total = {"dataset": repo.full_id, **{k: sum(c[k] for c in configs.values()) for k in
                                          ("num_bytes_original_files", "num_bytes_parquet_files", "num_bytes_memory",
                                           "num_rows")}, "estimated_num_rows": None}
    pending, failed = _conversion_jobs(repo, status) if status is not None else ([], [])
    body = {"size": {"configs": list(configs.values()), "splits": split_sizes}, "pending": pending, "failed": failed,
            "partial": partial}
    if config is None:
        body["size"]["dataset"] = total
    else:
        body["size"] = {"config": next(iter(configs.values())), "splits": split_sizes}
    return _answer(body, repo, commit)


# --- the Parquet conversion (hub/parquet_export.py): /parquet, /info and the Hub's /api/.../parquet ----

CONVERTED_REVISION = "refs%2Fconvert%2Fparquet"  # one percent-encoded segment: datasets matches this form


def _hub_url(request: Request) -> str:
    """The hub's base URL, also when the request came in on the ``datasets-server.`` sub-host."""
    url = base_url(request)
    return url.replace("://datasets-server.", "://", 1)


def _file_url(request: Request, repo, path: str) -> str:
    from urllib.parse import quote

    from aicommons.hub.parquet_export import converted_ref

    branch = _branch(request)
    revision = CONVERTED_REVISION if branch is None else quote(converted_ref(branch), safe="")
    return f"{_hub_url(request)}/datasets/{repo.full_id}/resolve/{revision}/{path}"


def _conversion_jobs(repo, conversion) -> tuple[list, list]:
    """datasets-server's ``pending`` and ``failed`` lists for the conversion's state."""
    job = {"dataset": repo.full_id, "config": None, "split": None, "kind": "config-parquet-and-info"}
    if conversion.state == "pending":
        return [job], []
    if conversion.state == "failed":
        return [], [{**job, "error": conversion.error}]
    return [], []


def _converted(request: Request, repo):
    conversion = hub_of(request).parquet.status(repo, _branch(request))
    if conversion is None:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    return conversion


def _configs(conversion) -> dict:
    return (conversion.result or {}).get("configs", {}) if conversion.state == "done" else {}


def parquet(request: Request) -> Response:
    repo = _dataset(request)
    config = request.query_params.get("config")
    conversion = _converted(request, repo)
    configs = _configs(conversion)
    if config is not None and conversion.state == "done" and config not in configs:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    pending, failed = _conversion_jobs(repo, conversion)
    files = [{"dataset": repo.full_id, "config": name, "split": item["split"], "url": _file_url(request, repo, item["path"]),
              "filename": item["path"].rsplit("/", 1)[1], "size": item["size"]}
             for name, found in configs.items() if config is None or name == config for item in found["files"]]
    body = {"parquet_files": files, "pending": pending, "failed": failed, "partial": conversion.partial}
    if config is not None and config in configs:
        body["features"] = configs[config]["info"].get("features")
    return _answer(body, repo, repo.sha)


def info(request: Request) -> Response:
    """``/info``: the converted configs' ``DatasetInfo``, with the figures of the converted files (the
    ``datasets`` library verifies split sizes against them when ``partial`` is false)."""
    repo = _dataset(request)
    config = request.query_params.get("config")
    conversion = _converted(request, repo)
    configs = _configs(conversion)
    if config is None:
        pending, failed = _conversion_jobs(repo, conversion)
        return _answer({"dataset_info": {name: c["info"] for name, c in configs.items()}, "pending": pending,
                        "failed": failed, "partial": conversion.partial}, repo, repo.sha)
    if conversion.state == "pending":
        raise ViewerError("The server is busier than usual and the response is not ready yet. Please retry later.",
                          "ResponseNotReady", 500)
    if conversion.state == "failed":
        raise ViewerError(f"The dataset could not be converted to Parquet: {conversion.error}",
                          "UnexpectedApiError", 500)
    if config not in configs:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    return _answer({"dataset_info": configs[config]["info"], "partial": bool(configs[config].get("partial"))},
                   repo, repo.sha)


def _hub_dataset(request: Request):
    """The dataset of an ``/api/datasets/{ns}/{name}/parquet...`` route and its finished conversion
    (the Hub's errors: missing, private and gated datasets answer alike)."""
    hub = hub_of(request)
    repo = hub.repos.find("dataset", f"{param(request, 'ns')}/{param(request, 'name')}", principal_of(request),
                          action=Action.READ_CONTENT)
    conversion = hub.parquet.status(repo)
    if conversion is None or conversion.state != "done":
        raise EntryNotFound("This dataset has no Parquet conversion (yet)")
    return repo, _configs(conversion)


def _shard_url(request: Request, repo, config: str, split: str, index: int) -> str:
    return f"{_hub_url(request)}/api/datasets/{repo.full_id}/parquet/{config}/{split}/{index}.parquet"


def _split_files(configs: dict, config: str, split: str) -> list[dict]:
    files = [f for f in configs.get(config, {}).get("files", []) if f["split"] == split]
    if not files:
        raise EntryNotFound(f"No Parquet files for config {config!r} and split {split!r}")
    return files


@blocking
def hub_croissant(request: Request) -> Response:
    """``GET /api/datasets/{id}/croissant``, as on the Hub (the Hub's errors; not converted yet: 404)."""
    hub = hub_of(request)
    repo = hub.repos.find("dataset", f"{param(request, 'ns')}/{param(request, 'name')}", principal_of(request),
                          action=Action.READ_CONTENT)
    try:
        body = _croissant(request, repo)
    except ViewerError:
        raise EntryNotFound("This dataset has no Parquet conversion (yet)") from None
    return JSONResponse(body, media_type="application/ld+json")


@blocking
def hub_parquet(request: Request) -> Response:
    """``GET /api/datasets/{id}/parquet``: ``{config: {split: [url]}}``, as on the Hub."""
    repo, configs = _hub_dataset(request)
    out: dict[str, dict[str, list[str]]] = {}
    for name, found in configs.items():
        for item in found["files"]:
            urls = out.setdefault(name, {}).setdefault(item["split"], [])
            urls.append(_shard_url(request, repo, name, item["split"], len(urls)))
    return JSONResponse(out)


@blocking
def hub_parquet_split(request: Request) -> Response:
    repo, configs = _hub_dataset(request)
    config, split = param(request, "config"), param(request, "split")
    files = _split_files(configs, config, split)
    return JSONResponse([_shard_url(request, repo, config, split, i) for i in range(len(files))])


@blocking
def hub_parquet_file(request: Request) -> Response:
    """``.../parquet/{config}/{split}/{n}.parquet`` redirects to the file on the converted ref."""
    repo, configs = _hub_dataset(request)
    files = _split_files(configs, param(request, "config"), param(request, "split"))
    index = request.path_params["n"]
    if index >= len(files):
        raise EntryNotFound(f"No Parquet file number {index} in this split")
    return RedirectResponse(_file_url(request, repo, files[index]["path"]), status_code=302)


def _branch_items(found: dict) -> dict:
    return {"branches": [{"branch": name, "state": c.state if c.source_sha else "pending", "sha": c.source_sha or None,
                          "converted_sha": c.converted_sha, "partial": c.partial, "error": c.error}
                         for name, c in found.items()]}


@blocking
def viewer_branches(request: Request) -> Response:
    """``GET /api/datasets/{id}/viewer/branches``: the branches converted besides the default one (the
    owner's choice) and the state of each conversion; anyone who reads the dataset may see them."""
    hub = hub_of(request)
    repo = hub.repos.find("dataset", f"{param(request, 'ns')}/{param(request, 'name')}", principal_of(request),
                          action=Action.READ_CONTENT)
    return JSONResponse(_branch_items(hub.parquet.branches(repo)))


async def set_viewer_branches(request: Request) -> Response:
    """``PUT /api/datasets/{id}/viewer/branches`` with ``{"branches": [...]}``: convert exactly these
    branches besides the default one (the dataset's admins; hub/parquet_export.py)."""
    from aicommons.api.http import json_object, read_json, run_sync
    from aicommons.errors import BadRequest

    hub = hub_of(request)
    repo = await run_sync(functools.partial(hub.repos.find, "dataset", f"{param(request, 'ns')}/{param(request, 'name')}",
                                            principal_of(request), action=Action.ADMIN))
    branches = json_object(await read_json(request)).get("branches")
    if not isinstance(branches, list) or not all(isinstance(b, str) for b in branches):
        raise BadRequest("'branches' must be a list of branch names")
    return JSONResponse(_branch_items(await run_sync(hub.parquet.set_branches, repo, branches)))


def viewer_routes() -> list[Route]:
    handlers = (("is-valid", is_valid), ("splits", splits), ("first-rows", first_rows), ("rows", rows),
                ("search", search), ("filter", filter_rows), ("size", size), ("statistics", statistics),
                ("croissant", croissant_endpoint), ("parquet", parquet), ("info", info))
    routes = [Route(f"{PREFIX}/{name}", _viewer_endpoint(handler), methods=["GET"]) for name, handler in handlers]
    routes.append(Route(PREFIX + "/assets/{ns}/{name}/--/{sha}/--/{config}/{split}/{row:int}/{column}/{file}",
                        _viewer_endpoint(asset), methods=["GET"]))
    base = "/api/datasets/{ns}/{name}/parquet"
    return routes + [Route("/api/datasets/{ns}/{name}/croissant", hub_croissant, methods=["GET"]),
                     Route("/api/datasets/{ns}/{name}/viewer/branches", viewer_branches, methods=["GET"]),
                     Route("/api/datasets/{ns}/{name}/viewer/branches", set_viewer_branches, methods=["PUT"]),
                     Route(base, hub_parquet, methods=["GET"]),
                     Route(base + "/{config}/{split}", hub_parquet_split, methods=["GET"]),
                     Route(base + "/{config}/{split}/{n:int}.parquet", hub_parquet_file, methods=["GET"])]


class DatasetsServerHostMiddleware:
    """``datasets-server.<hub host>/rows?...`` is ``<hub host>/datasets-server/rows?...``: the
    ``datasets`` library derives that host from ``HF_ENDPOINT``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = next((v for k, v in scope.get("headers", []) if k == b"host"), b"")
            if host.startswith(b"datasets-server.") and not scope["path"].startswith(PREFIX + "/"):
                scope = dict(scope, path=PREFIX + scope["path"],
                             raw_path=PREFIX.encode() + scope.get("raw_path", scope["path"].encode()))
        await self.app(scope, receive, send)
