"""Operator routes, in the spirit of ``ollama ps`` (spec §3.3): what is loaded, load a model ahead of
its first request, unload one now. Hub administrators only: the list names private models too."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from aicommons.errors import Forbidden, HubError, Unauthorized

from . import tasks as T
from .http_util import path_repo_id, principal_of, tgi_error


def require_admin(request: Request, what: str = "managing loaded models"):
    principal = principal_of(request)
    if getattr(principal, "is_anonymous", True):
        raise Unauthorized(f"{what} needs an administrator's token")
    if not getattr(principal, "is_admin", False):
        raise Forbidden(f"{what} is for hub administrators")
    return principal


class AdminRoutes:
    def __init__(self, service):
        self.service = service

    async def loaded(self, request: Request):
        try:
            require_admin(request)
        except HubError as exc:
            return tgi_error(exc)
        now = time.monotonic()
        return JSONResponse({"models": [
            {"model": e.resolved.repo_id, "revision": e.resolved.commit, "task": e.task,
             "engine": getattr(e.engine, "engine_name", None), "bytes": e.footprint, "requests_in_flight": e.refs,
             "idle_seconds": round(now - e.last_used, 3) if e.refs == 0 else 0.0,
             "loaded_at": round(e.loaded_at, 3), "pid": getattr(e.engine, "worker_pid", None),
             "resident_bytes": _rss(getattr(e.engine, "worker_pid", None))}
            for e in self.service.list_loaded()]})

    async def load(self, request: Request):
        """Load (or keep) the model at the revision ``?revision=`` names (default: its main branch)."""
        try:
            principal = require_admin(request)
            ref = path_repo_id(request)
            if request.query_params.get("revision"):
                ref += "@" + request.query_params["revision"]
            resolved = await self.service.resolve(ref, principal)
            task = T.detect_task(resolved)
            async with self.service.models.use(resolved, task) as engine:
                name = getattr(engine, "engine_name", None)
        except HubError as exc:
            return tgi_error(exc)
        return JSONResponse({"model": resolved.repo_id, "revision": resolved.commit, "task": task, "engine": name})

    async def unload(self, request: Request):
        try:
            require_admin(request)
            unloaded, busy = await self.service.models.unload_repo(path_repo_id(request))
        except HubError as exc:
            return tgi_error(exc)
        return JSONResponse({"unloaded": unloaded, "busy": busy}, status_code=409 if busy else 200)


def _rss(pid: int | None) -> int | None:
    """A worker process's resident memory, as the kernel counts it (Linux)."""
    if pid is None:
        return None
    try:
        import os

        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
