"""Download counts, batched: added up in memory and written in one statement every few seconds.

Counting each download in its own write transaction made every counted ``resolve`` (a model's
``config.json``, any dataset file) wait for the database's write lock (issue 10). Counts now wait
in memory for at most ``AICOMMONS_DOWNLOAD_FLUSH_SECONDS``; ``close()`` (clean shutdown) writes what
is left, and a failed write keeps its counts for the next flush. A crash loses at most the counts
of the last interval: a download counter, not a ledger. Each count also goes to its repo's count of
the UTC day it happened (``repo_downloads_daily``: the "downloads last month" graph).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from datetime import date, timedelta

from aicommons.db.repos import RepoStore
from aicommons.times import utcnow

log = logging.getLogger("aicommons.downloads")


class DownloadCounter:
    def __init__(self, store: RepoStore, flush_seconds: float):
        self.store = store
        self.flush_seconds = flush_seconds
        self._pending: Counter[tuple[date, int]] = Counter()  # (UTC day, repo id) -> downloads
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, repo_id: int) -> None:
        if self.flush_seconds <= 0:
            self.store.add_downloads({repo_id: 1})
            return
        day = utcnow().date()
        with self._lock:
            self._pending[day, repo_id] += 1
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="download-counter", daemon=True)
                self._thread.start()

    def last_days(self, repo_id: int, days: int = 30) -> list[tuple[date, int]]:
        """Downloads of each of the last ``days`` UTC days, oldest first, today included (as flushed)."""
        today = utcnow().date()
        first = today - timedelta(days=days - 1)
        counted = self.store.downloads_by_day(repo_id, first)
        return [(first + timedelta(days=i), counted.get(first + timedelta(days=i), 0)) for i in range(days)]

    def pending(self) -> int:
        with self._lock:
            return sum(self._pending.values())

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if not batch:
            return
        by_day: dict[date, dict[int, int]] = defaultdict(dict)
        for (day, repo_id), n in batch.items():
            by_day[day][repo_id] = n
        for day, counts in sorted(by_day.items()):
            try:
                self.store.add_downloads(counts, day)
            except Exception:  # noqa: BLE001 - kept for the next flush, never lost to a busy database
                log.exception("could not write %d download counts; retrying at the next flush", sum(counts.values()))
                with self._lock:
                    self._pending.update({(day, rid): n for rid, n in counts.items()})

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        """Stop the flusher and write every count still in memory."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join()
        self.flush()
