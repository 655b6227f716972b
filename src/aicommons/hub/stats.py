"""What an operator watches, read cheaply: totals from the database (cached for a few seconds, so a
Prometheus scrape every 15 s costs a few aggregate queries, and many replicas scraped at once do
not multiply them by much), the data folder's free space, and the background-job backlog."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aicommons.db.stats import StatsStore

CACHE_SECONDS = 10.0
REPO_TYPES = ("model", "dataset", "space")
SCAN_STATUSES = ("safe", "suspicious", "unsafe", "error", "skipped")


@dataclass(frozen=True)
class HubStats:
    repos: dict[str, int] = field(default_factory=dict)  # by type, every type present
    accounts: dict[str, int] = field(default_factory=dict)  # "user" | "org"
    lfs_objects: int = 0
    lfs_bytes: int = 0  # logical bytes of large files (each object once, however many repos use it)
    file_scans: dict[str, int] = field(default_factory=dict)  # by verdict, every verdict present
    jobs_pending: int = 0
    data_disk_free_bytes: int = 0
    data_disk_total_bytes: int = 0


class StatsService:
    def __init__(self, store: StatsStore, data_dir: Path, pending_jobs: Callable[[], int]):
        self.store = store
        self.data_dir = data_dir
        self.pending_jobs = pending_jobs  # () -> int
        self._lock = threading.Lock()
        self._cached: tuple[float, HubStats] | None = None

    def current(self) -> HubStats:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
        totals = self.store.totals()
        disk = shutil.disk_usage(self.data_dir)
        try:
            pending = int(self.pending_jobs())
        except Exception:  # noqa: BLE001 - the queue's table may be busy; a gap beats a failed scrape
            pending = -1
        stats = HubStats(
            repos={t: totals["repos"].get(t, 0) for t in REPO_TYPES},
            accounts={k: totals["accounts"].get(k, 0) for k in ("user", "org")},
            lfs_objects=totals["lfs_objects"], lfs_bytes=totals["lfs_bytes"],
            file_scans={s: totals["file_scans"].get(s, 0) for s in SCAN_STATUSES},
            jobs_pending=pending, data_disk_free_bytes=disk.free, data_disk_total_bytes=disk.total)
        with self._lock:
            self._cached = (time.monotonic(), stats)
        return stats
