"""Admission: concurrency caps, token buckets, bounded queue, fair interleaving (no torch needed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from aicommons.errors import Unauthorized
from aicommons.inference.errors import Overloaded, RateLimited
from aicommons.inference.fairness import Admission
from aicommons.inference.settings import InferenceSettings
from aicommons.token_bucket import TokenBucket
from tests.fake_clock import FakeClock

from .aio import run_async


@dataclass(frozen=True)
class P:
    key: str
    is_anonymous: bool = False
    name: str | None = None


def settings(**kw):
    base = dict(max_running=1, max_queue=10, queue_timeout_seconds=5, max_concurrent_per_user=10,
                tokens_per_minute=10_000, anon_max_concurrent=1, anon_tokens_per_minute=100)
    base.update(kw)
    return InferenceSettings.from_env({}, **base)



def test_token_bucket_refills_and_refunds():
    clock = FakeClock()
    bucket = TokenBucket(600, clock)  # 10 tokens/s
    assert bucket.try_take(600) == 0
    assert bucket.try_take(10) == pytest.approx(1.0)
    clock.now = 1.0
    assert bucket.try_take(10) == 0
    bucket.refund(50)
    assert bucket.tokens == pytest.approx(50)


@run_async
async def test_concurrency_cap_and_anonymous_limits():
    adm = Admission(settings(max_running=10))
    anon = P("anon:1.2.3.4", True)
    ticket = await adm.admit(anon, 10)
    with pytest.raises(RateLimited) as err:
        await adm.admit(anon, 10)
    assert err.value.headers["Retry-After"] == "1"
    adm.release(ticket, 10)
    with pytest.raises(RateLimited) as err:  # over the anonymous tokens-per-minute budget
        await adm.admit(anon, 95)
    assert int(err.value.headers["Retry-After"]) >= 1 and "RateLimit-Limit" in err.value.headers
    with pytest.raises(RateLimited) as err:  # can never fit: told not to retry
        await adm.admit(anon, 1000)
    assert err.value.headers["x-should-retry"] == "false"


@run_async
async def test_unused_tokens_are_refunded():
    adm = Admission(settings(max_running=10, tokens_per_minute=1000))
    user = P("token:a")
    ticket = await adm.admit(user, 900)
    adm.release(ticket, used_tokens=100)
    await adm.admit(user, 800)  # would fail without the refund of 800


@run_async
async def test_anonymous_can_be_refused():
    adm = Admission(settings(anon_allowed=False))
    with pytest.raises(Unauthorized):
        await adm.admit(P("anon:x", True), 1)


@run_async
async def test_queue_bound_and_timeout():
    adm = Admission(settings(max_running=1, max_queue=1, queue_timeout_seconds=0.2))
    first = await adm.admit(P("token:a"), 1)
    waiting = asyncio.ensure_future(adm.admit(P("token:b"), 1))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded) as err:  # queue of one is full
        await adm.admit(P("token:c"), 1)
    assert err.value.status == 503 and "Retry-After" in err.value.headers
    with pytest.raises(Overloaded):  # the waiting one times out
        await waiting
    adm.release(first, 1)
    assert adm.running == 0 and adm.waiting == 0


@run_async
async def test_heavy_user_does_not_starve_others():
    adm = Admission(settings(max_running=1, max_queue=100))
    order = []
    holder = await adm.admit(P("token:heavy"), 10)

    async def one(user, i):
        ticket = await adm.admit(P(user), 10)
        order.append(user)
        await asyncio.sleep(0)
        adm.release(ticket, 10)

    tasks = [asyncio.ensure_future(one("token:heavy", i)) for i in range(6)]
    await asyncio.sleep(0.01)
    tasks += [asyncio.ensure_future(one("token:light", 0)), asyncio.ensure_future(one("token:other", 0))]
    await asyncio.sleep(0.01)
    adm.release(holder, 10)
    await asyncio.gather(*tasks)
    # The light users queued after six heavy requests, yet both run within the first three.
    assert {"token:light", "token:other"} <= set(order[:3])
    assert adm.running == 0 and adm.waiting == 0


@run_async
async def test_cancelled_waiter_frees_its_place():
    adm = Admission(settings(max_running=1))
    holder = await adm.admit(P("token:a"), 1)
    waiter = asyncio.ensure_future(adm.admit(P("token:b"), 1))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    adm.release(holder, 1)
    assert adm.running == 0 and adm.waiting == 0
    await adm.admit(P("token:b"), 1)  # its concurrency slot was returned
