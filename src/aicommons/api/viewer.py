"""The dataset viewer API, with datasets-server's paths, parameters, JSON shapes and error codes
(spec wave2-apis.md §7.2), under ``/datasets-server/`` and on the ``datasets-server.`` sub-host
(``DatasetsServerHostMiddleware``). The data comes from ``hub/viewer.py``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aicommons.api.http import blocking, hub_of, principal_of
from aicommons.errors import HubError
from aicommons.hub.policy import Action
from aicommons.hub.viewer import ViewerError, feature_type, jsonable

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


def _answer(body: dict, repo, commit: str) -> JSONResponse:
    cache = "no-store" if (repo.private or repo.gated) else "public, max-age=60"
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
    page = table.slice(offset, length).to_pylist()
    return [{"row_idx": offset + i, "row": jsonable(row), "truncated_cells": []} for i, row in enumerate(page)]


def is_valid(request: Request) -> Response:
    repo = _dataset(request)
    commit, splits = hub_of(request).viewer.splits(repo)
    ok = bool(splits)
    return _answer({"viewer": ok, "preview": ok, "search": False, "filter": False, "statistics": False}, repo, commit)


def splits(request: Request) -> Response:
    repo = _dataset(request)
    config = request.query_params.get("config")
    commit, found = hub_of(request).viewer.splits(repo)
    items = [{"dataset": repo.full_id, "config": s.config, "split": s.split} for s in found
             if config is None or s.config == config]
    if config is not None and not items:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    return _answer({"splits": items, "pending": [], "failed": []}, repo, commit)


def first_rows(request: Request) -> Response:
    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    commit, rows = hub_of(request).viewer.rows(repo, config, split)
    table = rows.table
    return _answer({"dataset": repo.full_id, "config": config, "split": split, "features": _features(table),
                    "rows": _rows(table, 0, FIRST_ROWS), "truncated": table.num_rows > FIRST_ROWS}, repo, commit)


def rows(request: Request) -> Response:
    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    offset = _int(request, "offset", 0)
    length = _int(request, "length", PAGE, maximum=PAGE)
    commit, found = hub_of(request).viewer.rows(repo, config, split)
    table = found.table
    return _answer({"features": _features(table), "rows": _rows(table, offset, length),
                    "num_rows_total": table.num_rows, "num_rows_per_page": PAGE, "partial": found.partial},
                   repo, commit)


def filter_rows(request: Request) -> Response:
    """``/filter``: rows matching ``where``, sorted by ``orderby`` (parsed by hub/viewer_filter.py into
    comparisons of columns with literals, never run as SQL)."""
    from aicommons.hub.viewer_filter import FilterError, filter_table

    repo = _dataset(request)
    config, split = _required(request, "config"), _required(request, "split")
    offset = _int(request, "offset", 0)
    length = _int(request, "length", PAGE, maximum=PAGE)
    commit, found = hub_of(request).viewer.rows(repo, config, split)
    try:
        matching = filter_table(found.table, request.query_params.get("where"), request.query_params.get("orderby"))
    except FilterError as exc:
        raise ViewerError(f"Parameter 'where' or 'orderby' is invalid: {exc}", "InvalidParameter", 422) from None
    page = matching.slice(offset, length)
    indices = page.column("__row_idx").to_pylist()
    page = page.drop_columns(["__row_idx"])
    rows_out = [{"row_idx": idx, "row": jsonable(row), "truncated_cells": []}
                for idx, row in zip(indices, page.to_pylist(), strict=True)]
    return _answer({"features": _features(found.table), "rows": rows_out, "num_rows_total": matching.num_rows,
                    "num_rows_per_page": PAGE, "partial": found.partial}, repo, commit)


def size(request: Request) -> Response:
    repo = _dataset(request)
    config = request.query_params.get("config")
    viewer = hub_of(request).viewer
    commit, found = viewer.splits(repo)
    chosen = [s for s in found if config is None or s.config == config]
    if config is not None and not chosen:
        raise ViewerError("Not found.", "ResponseNotFound", 404)
    split_sizes, partial = [], False
    for s in chosen:
        _, data = viewer.rows(repo, s.config, s.split)
        partial = partial or data.partial
        split_sizes.append({"dataset": repo.full_id, "config": s.config, "split": s.split,
                            "num_bytes_parquet_files": 0, "num_bytes_memory": data.table.nbytes,
                            "num_rows": data.table.num_rows, "estimated_num_rows": None,
                            "num_columns": data.table.num_columns, "num_bytes_original_files": data.original_bytes})
    configs: dict[str, dict] = {}
    for item in split_sizes:
        c = configs.setdefault(item["config"], {"dataset": repo.full_id, "config": item["config"],
                                                "num_bytes_original_files": 0, "num_bytes_parquet_files": 0,
                                                "num_bytes_memory": 0, "num_rows": 0, "num_columns": 0,
                                                "estimated_num_rows": None})
        for key in ("num_bytes_original_files", "num_bytes_memory", "num_rows"):
            c[key] += item[key]
        c["num_columns"] = max(c["num_columns"], item["num_columns"])
    total = {"dataset": repo.full_id, **{k: sum(c[k] for c in configs.values()) for k in
                                          ("num_bytes_original_files", "num_bytes_parquet_files", "num_bytes_memory",
                                           "num_rows")}, "estimated_num_rows": None}
    body = {"size": {"configs": list(configs.values()), "splits": split_sizes}, "pending": [], "failed": [],
            "partial": partial}
    if config is None:
        body["size"]["dataset"] = total
    else:
        body["size"] = {"config": next(iter(configs.values())), "splits": split_sizes}
    return _answer(body, repo, commit)


def viewer_routes() -> list[Route]:
    return [Route(f"{PREFIX}/{name}", _viewer_endpoint(handler), methods=["GET"])
            for name, handler in (("is-valid", is_valid), ("splits", splits), ("first-rows", first_rows),
                                  ("rows", rows), ("filter", filter_rows), ("size", size))]


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
