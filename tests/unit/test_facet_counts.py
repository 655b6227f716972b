"""Facet counts never hold a listing page for long: a slow first count is served on a later view, a
stale one is served at once while it is recounted, and a burst of views starts one count."""

from __future__ import annotations

import threading
import time

from aicommons.db.repos import Facets
from aicommons.hub.facets import FacetCounts


def test_a_slow_count_is_not_waited_for_and_is_served_next_time():
    release = threading.Event()
    calls = []

    def count(key):
        calls.append(key)
        release.wait(5)
        return Facets(total=len(calls), values={})

    counts = FacetCounts(count, wait_s=0.05)
    started = time.monotonic()
    assert counts.get("q") is None and counts.get("q") is None  # not counted yet: the page goes on
    assert time.monotonic() - started < 2
    release.set()
    deadline = time.monotonic() + 5
    while (found := counts.get("q")) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert found.total == 1 and calls == ["q"]  # two views while counting: one count
    counts.close()


def test_a_stale_count_is_served_while_it_is_recounted():
    totals = iter(range(1, 100))
    counts = FacetCounts(lambda key: Facets(total=next(totals), values={}), fresh_s=0.0, wait_s=1.0)
    assert counts.get("q").total == 1
    assert counts.get("q").total == 1  # stale: served at once, recounting starts
    deadline = time.monotonic() + 5
    while counts.get("q").total == 1:
        assert time.monotonic() < deadline, "never recounted"
        time.sleep(0.01)
    counts.close()
