"""Listing pages' facet counts, without making a page wait for them.

Counting the facets of a broad listing (all models of a 100,000-repo hub) takes a second or more of
grouped queries (``docs/benchmarks.md``), while the listing itself takes milliseconds. So counts are
computed in the background and remembered per (query, who sees what):

- fresh (less than ``fresh_s`` old): served as they are;
- stale: served at once, and recounted in the background for the next view;
- never counted: counted now, but the page waits at most ``wait_s`` for them; a page that cannot
  wait is shown without facets and the next view has them.

One count per query runs at a time, in one background thread (a burst of views of a new query
starts one count, not one each).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor

from aicommons.db.repos import Facets


class FacetCounts:
    def __init__(self, count: Callable[[Hashable], Facets], *, fresh_s: float = 30.0, wait_s: float = 0.15,
                 max_entries: int = 512) -> None:
        self._count = count
        self.fresh_s = fresh_s
        self.wait_s = wait_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._known: OrderedDict[Hashable, tuple[float, Facets]] = OrderedDict()
        self._running: dict[Hashable, Future[Facets]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facet-counts")

    def get(self, key: Hashable) -> Facets | None:
        """The counts for ``key`` (the query the caller's count function understands), or None if
        they could not be had within ``wait_s``."""
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                self._known.move_to_end(key)
        if known is not None:
            if time.monotonic() - known[0] > self.fresh_s:
                self._start(key)
            return known[1]
        future = self._start(key)
        try:
            return future.result(timeout=self.wait_s)
        except TimeoutError:
            return None

    def peek(self, key: Hashable) -> Facets | None:
        """The counts for ``key`` if known (fresh or not; a stale one is recounted in the
        background), without starting a count that is not needed."""
        with self._lock:
            known = self._known.get(key)
        if known is not None and time.monotonic() - known[0] > self.fresh_s:
            self._start(key)
        return known[1] if known is not None else None

    def _start(self, key: Hashable) -> Future[Facets]:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = self._pool.submit(self._run, key)
            return running

    def _run(self, key: Hashable) -> Facets:
        try:
            counted = self._count(key)
            with self._lock:
                self._known[key] = (time.monotonic(), counted)
                self._known.move_to_end(key)
                while len(self._known) > self.max_entries:
                    self._known.popitem(last=False)
            return counted
        finally:
            with self._lock:
                self._running.pop(key, None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
