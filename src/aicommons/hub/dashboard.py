"""The admin dashboard's figures, kept as cheap rollups (issue 22).

Two writers fill ``stat_rollups`` (``db/rollups.py``); the dashboard page reads nothing else:

- the periodic rollup job (``Jobs``, every ``AICOMMONS_DASHBOARD_ROLLUP_MINUTES``; ``aicommons stats
  rollup`` runs it now) takes a handful of aggregate queries: storage, each repo's and owner's size
  once a day (for the largest and the fastest-growing), scan verdicts, the job backlog and sign-ups;
- every server's metrics recorder (``api/metrics.py``) adds, each ``AICOMMONS_METRICS_ROLLUP_SECONDS``,
  what its in-process ``/metrics`` counters gained: requests by status class and, per model,
  inference requests, tokens and queue wait. Several replicas add up.

Job failures are counted as huey reports them (``Jobs``). Old rows are pruned by the rollup job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from aicommons.db.rollups import RollupStore
from aicommons.times import utcnow

TOP = 20
GROWTH_DAYS = 7
MINUTES_SHOWN = 60
DAYS_SHOWN = 30
HTTP_CLASSES = ("2xx", "3xx", "4xx", "5xx")
# Per-minute counters kept two days, snapshots and hourly counters 35 days, per-repo sizes 9 days.
KEEP = {"http_requests": 2, "inference_requests": 2, "inference_tokens": 2, "inference_queue_seconds": 2,
        "inference_queue_count": 2, "storage": 35, "scans": 35, "jobs_waiting": 35, "job_failures": 35,
        "signups": 35, "repo_bytes": GROWTH_DAYS + 2, "owner_bytes": GROWTH_DAYS + 2, "top_repos": 2,
        "top_repo_growth": 2, "top_owners": 2, "top_owner_growth": 2}


def minute_of(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


@dataclass(frozen=True)
class Series:
    """One chart: x labels, one list of values per named line, and what the values count."""
    title: str
    labels: list[str]
    lines: dict[str, list[float]]
    unit: str = ""


@dataclass(frozen=True)
class Ranked:
    title: str
    rows: list[tuple[str, float]]  # (name, value), largest first
    unit: str = "bytes"


@dataclass(frozen=True)
class ModelUse:
    model: str
    requests: int
    tokens: int
    mean_queue_seconds: float | None


@dataclass
class Dashboard:
    rolled_up_at: datetime | None
    storage: Series
    requests: Series
    signups: Series
    jobs_waiting: Series
    job_failures: Series
    scans: Ranked
    ranked: list[Ranked] = field(default_factory=list)
    models: list[ModelUse] = field(default_factory=list)


class DashboardService:
    def __init__(self, store: RollupStore):
        self.store = store

    # Writers.

    def add_minute(self, at: datetime, deltas: dict[tuple[str, str], float]) -> None:
        """What the in-process counters gained (``series, key -> amount``), added to the minute ``at``."""
        by_series: dict[str, list[tuple[str, datetime, float]]] = defaultdict(list)
        for (series, key), value in deltas.items():
            if value:
                by_series[series].append((key, minute_of(at), value))
        for series, points in by_series.items():
            self.store.add(series, points)

    def job_failed(self, task: str, when: datetime | None = None) -> None:
        hour = (when or utcnow()).replace(minute=0, second=0, microsecond=0)
        self.store.add("job_failures", [(task, hour, 1.0)])

    def rollup(self, now: datetime | None = None) -> dict[str, Any]:
        """The periodic job: a few aggregate queries, written as small snapshots. Returns a summary."""
        now = minute_of(now or utcnow())
        today = day_start(now.date())
        sizes = self.store.repo_sizes()
        logical = sum(s.bytes for s in sizes)
        hour = now.replace(minute=0)
        # Snapshots per day (storage, scans) and per hour (job backlog), replaced until it ends.
        self.store.put("storage", today, {"logical": logical, "large files stored": self.store.large_file_bytes()})
        repo_bytes = {f"{s.type}:{s.full_id}": float(s.bytes) for s in sizes}
        owner_bytes: dict[str, float] = defaultdict(float)
        for s in sizes:
            owner_bytes[s.owner] += s.bytes
        self.store.put("repo_bytes", today, repo_bytes)  # one snapshot a day, replaced until the day ends
        self.store.put("owner_bytes", today, dict(owner_bytes))
        week_ago = today - timedelta(days=GROWTH_DAYS)
        for name, current, top, growth in (("repo", repo_bytes, "top_repos", "top_repo_growth"),
                                           ("owner", owner_bytes, "top_owners", "top_owner_growth")):
            before = self.store.at_or_before(f"{name}_bytes", week_ago)
            self.store.put(top, now, dict(_largest(current.items())))
            grown = {k: v - before.get(k, 0.0) for k, v in current.items()}
            self.store.put(growth, now, dict(_largest((k, v) for k, v in grown.items() if v > 0)))
        self.store.put("scans", today, {k: float(v) for k, v in self.store.scan_verdicts().items()})
        waiting = sum(self.store.jobs_waiting().values())
        self.store.put("jobs_waiting", hour, {"waiting": float(waiting)})
        first = now.date() - timedelta(days=DAYS_SHOWN - 1)
        for day, n in self.store.signups_by_day(first).items():
            self.store.put("signups", day_start(day), {"sign-ups": float(n)})
        for series, days in KEEP.items():
            self.store.prune(series, now - timedelta(days=days))
        return {"at": now.isoformat(), "repos": len(sizes), "logical_bytes": logical, "jobs_waiting": waiting}

    # The page.

    def view(self, now: datetime | None = None) -> Dashboard:
        now = minute_of(now or utcnow())
        month = now - timedelta(days=DAYS_SHOWN)
        storage_points = self.store.since("storage", month)
        times = sorted({p.at for p in storage_points})
        storage = Series("Storage per day, last 30 days", [t.date().isoformat() for t in times],
                         _lines(storage_points, times, ("logical", "large files stored")), "bytes")

        minutes = [now - timedelta(minutes=MINUTES_SHOWN - 1 - i) for i in range(MINUTES_SHOWN)]
        http = self.store.since("http_requests", minutes[0])
        requests = Series("Requests per minute, last hour", [m.strftime("%H:%M") for m in minutes],
                          _lines(http, minutes, HTTP_CLASSES, fill=0.0), "requests")

        days = [now.date() - timedelta(days=DAYS_SHOWN - 1 - i) for i in range(DAYS_SHOWN)]
        signup_points = self.store.since("signups", day_start(days[0]))
        signups = Series("Sign-ups per day, last 30 days", [d.isoformat() for d in days],
                         _lines(signup_points, [day_start(d) for d in days], ("sign-ups",), fill=0.0), "accounts")

        day_ago = now - timedelta(days=1)
        waiting_points = self.store.since("jobs_waiting", day_ago)
        wtimes = sorted({p.at for p in waiting_points})
        jobs_waiting = Series("Background jobs waiting, last 24 hours", [t.strftime("%H:00") for t in wtimes],
                              _lines(waiting_points, wtimes, ("waiting",)), "jobs")
        hours = [now.replace(minute=0) - timedelta(hours=23 - i) for i in range(24)]
        failure_points = self.store.since("job_failures", hours[0])
        failed = {p.at: 0.0 for p in failure_points}
        for p in failure_points:
            failed[p.at] += p.value
        job_failures = Series("Failed job runs per hour, last 24 hours", [h.strftime("%H:00") for h in hours],
                              {"failed": [failed.get(h, 0.0) for h in hours]}, "runs")

        scans_latest = self.store.latest("scans")
        scans = Ranked("Scanned files by verdict", sorted(((p.key, p.value) for p in scans_latest),
                                                          key=lambda kv: -kv[1]), "files")
        ranked = [Ranked(title, sorted(((p.key, p.value) for p in self.store.latest(series)), key=lambda kv: -kv[1]))
                  for series, title in (("top_repos", "Largest repos"),
                                        ("top_repo_growth", f"Fastest-growing repos (last {GROWTH_DAYS} days)"),
                                        ("top_owners", "Largest owners"),
                                        ("top_owner_growth", f"Fastest-growing owners (last {GROWTH_DAYS} days)"))]
        latest = self.store.latest("top_repos") or self.store.latest("storage")
        return Dashboard(rolled_up_at=latest[0].at if latest else None, storage=storage, requests=requests,
                         signups=signups, jobs_waiting=jobs_waiting, job_failures=job_failures, scans=scans,
                         ranked=ranked, models=self._models(day_ago))

    def _models(self, since: datetime) -> list[ModelUse]:
        totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for series in ("inference_requests", "inference_tokens", "inference_queue_seconds", "inference_queue_count"):
            for p in self.store.since(series, since):
                totals[p.key][series] += p.value
        out = []
        for model, t in totals.items():
            count = t["inference_queue_count"]
            out.append(ModelUse(model, int(t["inference_requests"]), int(t["inference_tokens"]),
                                t["inference_queue_seconds"] / count if count else None))
        return sorted(out, key=lambda m: (-m.requests, m.model))


def _largest(items: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    return sorted(items, key=lambda kv: (-kv[1], kv[0]))[:TOP]


def _lines(points: Iterable[Any], times: list[datetime], keys: Iterable[str], fill: float | None = None) -> dict[str, list[float]]:
    """Values per key at each of ``times`` (a missing one: ``fill``, or the line's previous value)."""
    at = {(p.key, p.at): p.value for p in points}
    lines: dict[str, list[float]] = {}
    for key in keys:
        values, last = [], 0.0
        for t in times:
            value = at.get((key, t), fill if fill is not None else last)
            values.append(value)
            last = value
        lines[key] = values
    return lines
