"""``/metrics`` for Prometheus: the hub's own series and the inference service's, in one scrape.

The hub's series: HTTP requests by route template (``/api/{repo_type}s/{ns}/{name}``, never the
concrete path, so the number of series stays bounded) and status class, their latency, and gauges
of what the hub holds (repos, accounts, large-file bytes, scan verdicts, job backlog, free disk),
read through ``hub/stats.py``. ``deploy/grafana/aicommons.json`` and ``deploy/prometheus/alerts.yml``
query exactly these names (``tests/compat/test_metrics_dashboards.py`` checks it).

Administrators only, like the inference series: labels name private models.
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response

from aicommons.api.http import principal_of, run_sync
from aicommons.errors import Forbidden, Unauthorized
from aicommons.storage.staging import BODIES_RECEIVED
from aicommons.times import utcnow

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class HubMetrics:
    def __init__(self, stats, extra_registries=()):
        self.registry = CollectorRegistry()
        self.requests = Counter("hub_http_requests", "HTTP requests answered, by route template and status class.",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("hub_http_request_duration_seconds",
                                 "Time from request to the last byte of the answer, by route template.",
                                 ("route",), buckets=_LATENCY, registry=self.registry)
        self.registry.register(_StatsCollector(stats))
        self.extra_registries = list(extra_registries)  # the inference service's

    def render(self) -> bytes:
        return b"".join(generate_latest(r) for r in [self.registry, *self.extra_registries])

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, f"{status // 100}xx").inc()
        self.latency.labels(route).observe(seconds)


class _StatsCollector:
    def __init__(self, stats):
        self.stats = stats

    def collect(self):
        s = self.stats.current()
        repos = GaugeMetricFamily("hub_repos", "Repositories, by type.", labels=["type"])
        for kind, n in s.repos.items():
            repos.add_metric([kind], n)
        yield repos
        accounts = GaugeMetricFamily("hub_accounts", "Accounts, by kind (user or org).", labels=["kind"])
        for kind, n in s.accounts.items():
            accounts.add_metric([kind], n)
        yield accounts
        yield GaugeMetricFamily("hub_lfs_objects", "Large-file objects stored.", value=s.lfs_objects)
        yield GaugeMetricFamily("hub_lfs_bytes", "Bytes of large-file objects stored (each object once).",
                                value=s.lfs_bytes)
        scans = GaugeMetricFamily("hub_file_scans", "Scanned files, by verdict.", labels=["verdict"])
        for verdict, n in s.file_scans.items():
            scans.add_metric([verdict], n)
        yield scans
        yield GaugeMetricFamily("hub_jobs_pending", "Background jobs waiting to run (-1: unknown).",
                                value=s.jobs_pending)
        yield GaugeMetricFamily("hub_data_disk_free_bytes", "Free bytes on the data folder's filesystem.",
                                value=s.data_disk_free_bytes)
        yield GaugeMetricFamily("hub_data_disk_size_bytes", "Size of the data folder's filesystem.",
                                value=s.data_disk_total_bytes)
        bodies = CounterMetricFamily("hub_upload_bodies", "Upload bodies (LFS objects, xorbs) received by this "
                                     "process, by how they were read.", labels=["read"])
        for how, n in BODIES_RECEIVED.items():
            bodies.add_metric([how], n)
        yield bodies


class MetricsMiddleware:
    """Counts and times every HTTP request by the template of the route that answered it. The route
    is learnt from ``RouteNoteMiddleware``, the innermost middleware: the router records it in the
    scope it is given, and middlewares in between may pass copies of the scope down."""

    def __init__(self, app, metrics: HubMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # an exception before any answer
        note: dict = {}
        scope[ROUTE_NOTE] = note

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = note.get("route")
            self.metrics.observe(scope["method"], getattr(route, "path", None) or "unmatched", status,
                                 time.perf_counter() - started)


ROUTE_NOTE = "aicommons.route_note"


class RouteNoteMiddleware:
    """Innermost: once the router has run, tell ``MetricsMiddleware`` which route answered."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        finally:
            note = scope.get(ROUTE_NOTE)
            if note is not None and "route" in scope:
                note["route"] = scope["route"]


async def metrics_endpoint(request: Request) -> Response:
    principal = principal_of(request)
    if principal.is_anonymous:
        raise Unauthorized("the metrics need an administrator's token")
    if not principal.is_admin:
        raise Forbidden("the metrics are for hub administrators")
    body = await run_sync(request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)



# What the admin dashboard keeps per minute (hub/dashboard.py), read from this process's own series:
# (metric family, label the figure is keyed by, rollup series). Counter samples end in ``_total``.
RECORDED = (
    ("hub_http_requests_total", "status", "http_requests"),
    ("hub_requests_total", "model", "inference_requests"),
    ("hub_prompt_tokens_total", "model", "inference_tokens"),
    ("hub_generation_tokens_total", "model", "inference_tokens"),
    ("hub_request_queue_time_seconds_sum", "model", "inference_queue_seconds"),
    ("hub_request_queue_time_seconds_count", "model", "inference_queue_count"),
)


class MetricsRecorder:
    """Every ``interval`` seconds, adds what this process's request and inference counters gained
    since the last time to the dashboard's per-minute rollups (``hub.dashboard.add_minute``): one
    small write a minute per server, never a write per request."""

    def __init__(self, metrics: HubMetrics, dashboard, interval: float):
        self.metrics = metrics
        self.dashboard = dashboard
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def totals(self) -> dict[tuple[str, str], float]:
        wanted = {sample: (label, series) for sample, label, series in RECORDED}
        out: dict[tuple[str, str], float] = {}
        # The request counter itself, not the hub's registry: its gauges would query the database.
        families = [*self.metrics.requests.collect(), *(f for r in self.metrics.extra_registries for f in r.collect())]
        for family in families:
            for sample in family.samples:
                if sample.name in wanted:
                    label, series = wanted[sample.name]
                    key = (series, sample.labels.get(label, ""))
                    out[key] = out.get(key, 0.0) + sample.value
        return out

    def record(self) -> None:
        totals = self.totals()
        deltas = {k: v - self._last.get(k, 0.0) for k, v in totals.items()}
        try:
            self.dashboard.add_minute(utcnow(), {k: v for k, v in deltas.items() if v > 0})
        except Exception:  # noqa: BLE001 - the figures wait for the next round, requests never do
            log.warning("could not record this minute's request figures; adding them next time", exc_info=True)
            return
        self._last = totals

    def start(self) -> None:
        if self.interval > 0 and self._thread is None:
            self._last = self.totals()  # what was counted before is not this server's new traffic
            self._thread = threading.Thread(target=self._run, name="metrics-recorder", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.record()

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.record()
