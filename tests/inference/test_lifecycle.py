"""Model lifecycle with fake engines: single-flight loads, keep-alive, LRU under a budget, pinning."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from aicommons.errors import InsufficientStorage
from aicommons.inference.errors import Overloaded
from aicommons.inference.lifecycle import ModelManager
from aicommons.inference.metrics import InferenceMetrics
from aicommons.inference.settings import InferenceSettings
from aicommons.inference.source import ResolvedModel

from .aio import run_async


class FakeEngine:
    def __init__(self, resolved, size):
        self.resolved = resolved
        self.size = size
        self.closed = False

    def footprint_bytes(self):
        return self.size

    def close(self):
        self.closed = True


def model(name: str, commit: str = "a" * 40) -> ResolvedModel:
    return ResolvedModel(f"acme/{name}", commit, Path("/nonexistent"))


def manager(sizes: dict | None = None, load_delay: float = 0.0, **kw):
    sizes = sizes or {}
    loads = []

    def loader(resolved, task):
        loads.append(resolved.key)
        time.sleep(load_delay)
        assert threading.current_thread() is not threading.main_thread()  # never on the event loop
        return FakeEngine(resolved, sizes.get(resolved.repo_id, 100))

    settings = InferenceSettings.from_env({}, **{"memory_budget_bytes": 1000, "max_loaded_models": 10,
                                                 "keep_alive_seconds": -1, "load_timeout_seconds": 5, **kw})
    mgr = ModelManager(settings, loader, lambda r, t: sizes.get(r.repo_id, 100), InferenceMetrics())
    return mgr, loads


@run_async
async def test_concurrent_first_requests_share_one_load():
    mgr, loads = manager(load_delay=0.2)
    entries = await asyncio.gather(*(mgr.acquire(model("m"), "text-generation") for _ in range(10)))
    assert len(loads) == 1 and len({id(e) for e in entries}) == 1 and entries[0].refs == 10
    for e in entries:
        await mgr.release(e)
    await mgr.close()


@run_async
async def test_pinned_revisions_are_separate_models():
    mgr, loads = manager()
    a = await mgr.acquire(model("m", "a" * 40), "t")
    b = await mgr.acquire(model("m", "b" * 40), "t")
    assert a.engine is not b.engine and len(loads) == 2
    await mgr.close()


@run_async
async def test_an_operator_unload_takes_idle_revisions_and_leaves_busy_ones():
    mgr, _ = manager()
    busy = await mgr.acquire(model("m", "a" * 40), "t")
    idle = await mgr.acquire(model("m", "b" * 40), "t")
    await mgr.release(idle)
    other = await mgr.acquire(model("other"), "t")
    await mgr.release(other)
    assert await mgr.unload_repo("ACME/m") == (1, 1)  # repo ids compare case-insensitively
    assert idle.engine.closed and not busy.engine.closed
    assert {e.resolved.repo_id for e in mgr.loaded()} == {"acme/m", "acme/other"}
    await mgr.release(busy)
    assert await mgr.unload_repo("acme/m") == (1, 0)
    await mgr.close()


@run_async
async def test_a_request_can_set_its_models_keep_alive():
    mgr, _ = manager()  # the server's default: keep forever
    short = await mgr.acquire(model("short"), "t")
    await mgr.release(short, 0.2)
    now = await mgr.acquire(model("now"), "t")
    await mgr.release(now, 0)  # unloaded as soon as the answer is done
    assert {e.resolved.repo_id for e in mgr.loaded()} == {"acme/short"}
    await asyncio.sleep(0.5)
    assert not mgr.loaded() and short.engine.closed
    await mgr.close()

    mgr, _ = manager(keep_alive_seconds=0.2)
    pinned = await mgr.acquire(model("pinned"), "t")
    await mgr.release(pinned, -1)  # kept whatever the server's default
    await asyncio.sleep(0.5)
    assert [e.resolved.repo_id for e in mgr.loaded()] == ["acme/pinned"]
    await mgr.close()


@run_async
async def test_idle_models_unload_after_keep_alive():
    mgr, _ = manager(keep_alive_seconds=0.2)
    entry = await mgr.acquire(model("m"), "t")
    await asyncio.sleep(0.4)
    assert mgr.loaded(), "a model in use is never unloaded"
    await mgr.release(entry)
    await asyncio.sleep(0.5)
    assert not mgr.loaded() and entry.engine.closed
    await mgr.close()


@run_async
async def test_lru_eviction_under_memory_budget():
    mgr, _ = manager({"acme/a": 400, "acme/b": 400, "acme/c": 400})
    for name in ("a", "b"):
        await mgr.release(await mgr.acquire(model(name), "t"))
    await mgr.release(await mgr.acquire(model("a"), "t"))  # a is now more recent than b
    await mgr.release(await mgr.acquire(model("c"), "t"))
    assert {e.resolved.repo_id for e in mgr.loaded()} == {"acme/a", "acme/c"}
    assert mgr.resident_bytes() <= 1000
    await mgr.close()


@run_async
async def test_busy_models_are_not_evicted_and_loads_wait_for_room():
    mgr, _ = manager({"acme/a": 600, "acme/b": 600}, load_timeout_seconds=0.3)
    busy = await mgr.acquire(model("a"), "t")
    with pytest.raises(Overloaded):  # a stays busy past the timeout: 503, a untouched
        await mgr.acquire(model("b"), "t")
    assert not busy.engine.closed
    waiting = asyncio.ensure_future(mgr.acquire(model("b"), "t"))
    await asyncio.sleep(0.05)
    await mgr.release(busy)  # room appears: the waiting load proceeds
    entry = await asyncio.wait_for(waiting, 30)  # a bound against hanging, not a timing: loaded boxes are slow
    assert entry.resolved.repo_id == "acme/b" and busy.engine.closed
    await mgr.close()


@run_async
async def test_model_larger_than_budget_is_refused():
    mgr, loads = manager({"acme/huge": 5000})
    with pytest.raises(InsufficientStorage):
        await mgr.acquire(model("huge"), "t")
    assert not loads
    await mgr.close()


@run_async
async def test_max_loaded_models():
    mgr, _ = manager(max_loaded_models=2)
    for name in "abc":
        await mgr.release(await mgr.acquire(model(name), "t"))
    assert len(mgr.loaded()) == 2
    await mgr.close()


@run_async
async def test_failed_load_reaches_every_waiter_and_is_retried():
    attempts = []

    def loader(resolved, task):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("disk hiccup")
        return FakeEngine(resolved, 10)

    mgr = ModelManager(InferenceSettings.from_env({}, memory_budget_bytes=1000), loader, lambda r, t: 10)
    results = await asyncio.gather(*(mgr.acquire(model("m"), "t") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and len(attempts) == 1
    assert (await mgr.acquire(model("m"), "t")).engine is not None
    await mgr.close()


@run_async
async def test_loads_in_progress_count_against_the_budget():
    """Issue 9, "inference admission before work": the second load used to make room while the first
    was still loading (its bytes not yet counted), and both ended up resident, over the budget."""
    mgr, loads = manager({"acme/a": 600, "acme/b": 600}, load_delay=0.3)
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            peak = max(peak, mgr.resident_bytes())
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch())

    async def use(name):
        entry = await mgr.acquire(model(name), "t")
        await asyncio.sleep(0.05)
        await mgr.release(entry)

    await asyncio.gather(use("a"), use("b"))
    watcher.cancel()
    assert loads == [model("a").key, model("b").key]
    assert peak <= 1000 and mgr.resident_bytes() <= 1000  # b waited for a to go idle, then evicted it
    await mgr.close()
