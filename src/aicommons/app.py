"""``create_app(settings)``: explicit wiring, nothing opened at import time."""

from __future__ import annotations

import contextlib
import logging

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicommons.api.errors import error_response, moved_response, storage_error_handler
from aicommons.api.input_guard import InputGuardMiddleware
from aicommons.api.metrics import HubMetrics, MetricsMiddleware, MetricsRecorder, RouteNoteMiddleware, metrics_endpoint
from aicommons.api.middleware import (
    AuditMiddleware,
    AuthMiddleware,
    RateLimitMiddleware,
    RawPathMiddleware,
    RequestIdMiddleware,
)
from aicommons.api.rate_limits import RequestLimiter
from aicommons.api.routes import hub_routes
from aicommons.api.space_proxy import SpacesDomainMiddleware
from aicommons.api.upstream_stale import UpstreamStaleMiddleware
from aicommons.api.viewer import DatasetsServerHostMiddleware
from aicommons.config import Settings
from aicommons.errors import HubError
from aicommons.hub.hub import Hub
from aicommons.hub.repos import RepoMoved
from aicommons.storage.base import StorageError
from aicommons.web.context import error_page
from aicommons.web.headers import HtmlSecurityHeadersMiddleware
from aicommons.web.routes import web_routes


class HubModelSource:
    """Inference's ``ModelSource`` (``inference/source.py``) over the hub's own repos: the adapter
    between the two, so that neither imports the other. The hub resolves, checks access and
    remembers (``hub/snapshots.py``, ``ModelSnapshots``); this splits ``ns/name@revision`` and hands
    the hub inference's own result types to build."""

    def __init__(self, hub: Hub, cache_seconds: float | None = None):
        from aicommons.hub.snapshots import ModelSnapshots
        from aicommons.inference.source import ModelListing, ResolvedModel, split_model_ref

        if cache_seconds is None:
            from aicommons.inference.settings import InferenceSettings

            cache_seconds = InferenceSettings.from_env().resolve_cache_seconds
        self.snapshots = ModelSnapshots(hub, cache_seconds, make_resolved=ResolvedModel, make_listing=ModelListing)
        self._split = split_model_ref

    def resolve(self, model: str, principal):
        return self.snapshots.resolve(*self._split(model), principal)

    def resolve_cached(self, model: str, principal):
        return self.snapshots.resolve_cached(*self._split(model), principal)

    def list_models(self, principal):
        return self.snapshots.list_models(principal)

    def read_file(self, repo_type: str, repo_id: str, revision: str, path: str, principal, limit: int) -> bytes:
        return self.snapshots.read_file(repo_type, repo_id, revision, path, principal, limit)


async def hub_error_handler(request: Request, exc: Exception) -> Response:
    """A domain error as the door that raised it answers: a redirect for a moved repo, an HTML page
    for the web UI (it marks its requests), the Hub's JSON error shape everywhere else."""
    if isinstance(exc, RepoMoved):
        return moved_response(request, exc)
    if not isinstance(exc, HubError):  # (registered for HubError only)
        raise exc
    if request.scope.get("aicommons.web"):
        return error_page(request, exc.status, exc.message)
    return error_response(exc)


def reserved_route_names() -> frozenset[str]:
    """Every literal first path segment the app routes, with inference enabled or not (``api``,
    ``models``, ``join``, ``settings``...): no user or organisation may be called that."""
    from types import SimpleNamespace

    from aicommons.hub.account_names import top_level_names
    from aicommons.inference import inference_routes

    every = inference_routes(SimpleNamespace(settings=SimpleNamespace(enabled=True))) + hub_routes() + web_routes()
    return top_level_names(route.path for route in every)


def create_app(settings: Settings | None = None, hub: Hub | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    hub = hub or Hub(settings)
    hub.names.reserve(reserved_route_names())
    logging.basicConfig(level=settings.log_level.upper())
    # Inference loads torch lazily, on the first request for a model: building the service is cheap.
    from aicommons.inference import build_inference_service, inference_routes

    inference = build_inference_service(settings, HubModelSource(hub))
    if settings.limits_are_shared:
        from aicommons.db.rate_limits import SharedRateLimitStore

        inference.admission.shared = SharedRateLimitStore(hub.engine)

    metrics = HubMetrics(hub.stats, [inference.metrics.registry])
    recorder = MetricsRecorder(metrics, hub.dashboard, settings.metrics_rollup_seconds)  # the admin dashboard's

    @contextlib.asynccontextmanager
    async def lifespan(app):
        from aicommons.api.git_http import recover_pushes

        await anyio.to_thread.run_sync(recover_pushes, hub)  # pushes a crash left unrecorded
        await anyio.to_thread.run_sync(hub.git.empty_trash)  # deletions a crash left half done
        recorder.start()
        yield
        await anyio.to_thread.run_sync(recorder.close)
        await inference.close()
        hub.close()

    app = Starlette(
        lifespan=lifespan,
        # The web UI's catch-all patterns come last, so API, git and inference routes win. Inference
        # comes first: its paths (/v1, /models, /metrics) are reserved namespaces no hub route can
        # serve, and Starlette tries routes in order (80-odd regex matches cost ~45 us a request).
        # /metrics first: the hub's series and the inference service's in one scrape.
        routes=[Route("/metrics", metrics_endpoint, methods=["GET"])] + inference_routes(inference) + hub_routes()
        + web_routes(),
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),  # outermost: sees every final status
            Middleware(RequestIdMiddleware),
            Middleware(DatasetsServerHostMiddleware),  # datasets-server.<host>/x is /datasets-server/x
            Middleware(SpacesDomainMiddleware, hub=hub),  # <ns>-<name>.<spaces domain>/x: the app (api/space_proxy.py)
            Middleware(HtmlSecurityHeadersMiddleware),  # outermost but one: error pages get them too
            Middleware(RawPathMiddleware),
            Middleware(AuditMiddleware, hub=hub),  # outside Auth: refused credentials are recorded too
            Middleware(AuthMiddleware, hub=hub),
            Middleware(RateLimitMiddleware, limiter=RequestLimiter.from_settings(settings), sessions=hub.sessions),
            Middleware(InputGuardMiddleware),  # NUL in a URL: 400 on every backend (audited)
            Middleware(RouteNoteMiddleware),  # innermost: which route answered, for the metrics
        ] + ([Middleware(UpstreamStaleMiddleware)] if hub.upstream is not None else []),
        exception_handlers={HubError: hub_error_handler, StorageError: storage_error_handler},
    )
    app.state.hub = hub
    app.state.inference = inference
    app.state.metrics = metrics
    return app
