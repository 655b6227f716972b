"""Inference limits shared by replicas: the database store on both databases, and two admission
controllers (as in two replicas) enforcing one principal's limits together."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from aicommons.db.rate_limits import SharedRateLimitStore
from aicommons.inference.errors import RateLimited
from aicommons.inference.fairness import Admission

NOW = 1_800_000_000.0


@pytest.fixture
def store(db_engine):
    return SharedRateLimitStore(db_engine)


def test_tokens_concurrency_refunds_and_expiry(store):
    first = store.admit("token:1", 400, 600, 2, NOW, 60)
    assert first.lease and first.tokens_left == 200
    assert store.admit("token:1", 400, 600, 2, NOW, 60).refused_for == "tokens"
    second = store.admit("token:1", 100, 600, 2, NOW, 60)
    assert store.admit("token:1", 1, 600, 2, NOW, 60).refused_for == "concurrency"
    store.finish(first.lease, "token:1", 300, 600, NOW)  # used 100 of its 400
    third = store.admit("token:1", 350, 600, 2, NOW, 60)
    assert third.lease and third.tokens_left == pytest.approx(50)
    # a replica died holding `second` and `third`: their leases expire, and the bucket refills
    later = store.admit("token:1", 600, 600, 2, NOW + 61, 60)
    assert later.lease is not None
    assert second.lease != later.lease
    assert store.admit("token:2", 1, 600, 1, NOW, 60).lease  # other principals are separate


def test_concurrent_admissions_never_oversubscribe(store):
    granted = []

    def worker():
        for _ in range(10):
            decision = store.admit("token:9", 10, 600, 5, NOW, 60)
            if decision.lease:
                granted.append(decision.lease)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 5  # the concurrency cap, across all threads


def _replica(store):
    settings = SimpleNamespace(anon_allowed=True, anon_max_concurrent=1, anon_tokens_per_minute=100,
                               max_concurrent_per_user=2, tokens_per_minute=1000, max_running=8, max_queue=8,
                               queue_timeout_seconds=5)
    admission = Admission(settings)
    admission.shared = store
    return admission


def test_two_replicas_enforce_one_principals_limits(store):
    async def scenario():
        one, two = _replica(store), _replica(store)
        principal = SimpleNamespace(key="token:7", is_anonymous=False)
        a = await one.admit(principal, 600)
        with pytest.raises(RateLimited):  # the other replica sees the spent tokens
            await two.admit(principal, 600)
        b = await two.admit(principal, 300)
        with pytest.raises(RateLimited):  # and the two requests in flight
            await one.admit(principal, 1)
        one.release(a, used_tokens=600)
        two.release(b, used_tokens=100)  # 200 unused tokens come back
        await asyncio.sleep(0.2)  # releases run off the event loop
        c = await one.admit(principal, 250)
        # 1000 - 600 - 300 = 100 left, + 200 refunded, + a few seconds' refill (16.7/s), - 250
        assert 50 <= c.remaining <= 150

    asyncio.run(scenario())
