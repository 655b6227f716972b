"""Model lifecycle: lazy single-flight loads, keep-alive, LRU eviction under a memory budget (spec §3.3).

A model is keyed by (repo_id, commit): pinning makes a push produce a new key, so answers of an
already-pinned revision never change. Loads run on one loader thread (two loads at once would only
fight over the same cores and RAM); concurrent first requests await the same future. Idle models
(no request in flight) are unloaded after the keep-alive, or earlier, least recently used first,
when a load needs their room. A busy model is never evicted: the load waits for room instead,
bounded by ``load_timeout_seconds``, then answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aicommons.errors import InsufficientStorage

from .errors import Overloaded
from .source import ResolvedModel

log = logging.getLogger("aicommons.inference")
SLOW_LOAD_SECONDS = 30.0  # a load slower than this is logged as a warning, with where its time went


@dataclass
class Loaded:
    resolved: ResolvedModel
    task: str
    engine: object
    footprint: int
    refs: int = 0
    last_used: float = field(default_factory=time.monotonic)
    keep_alive: float | None = None  # set by the last request that named one; None: the server's
    loaded_at: float = field(default_factory=time.time)


class ModelManager:
    def __init__(self, settings, loader: Callable[[ResolvedModel, str], object],
                 estimate: Callable[[ResolvedModel, str], int], metrics=None):
        self.settings = settings
        self._loader = loader  # sync: (resolved, task) -> engine; runs on the loader thread
        self._estimate = estimate
        self.metrics = metrics
        self.budget = settings.effective_memory_budget()
        self._models: dict[tuple, Loaded] = {}
        self._loading: dict[tuple, asyncio.Future] = {}
        # Loads under way, by key: the bytes each was given room for. They count against the budget
        # and the model count from the moment room is made, not from when the load finishes, or two
        # loads in a row would each find the room the other is about to take.
        self._reserved: dict[tuple, int] = {}
        self._room = asyncio.Condition()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aicommons-load")
        self._reaper: asyncio.Task | None = None

    # ---- public ----------------------------------------------------------------------------
    @asynccontextmanager
    async def use(self, resolved: ResolvedModel, task: str):
        entry = await self.acquire(resolved, task)
        try:
            yield entry.engine
        finally:
            await self.release(entry)

    async def acquire(self, resolved: ResolvedModel, task: str) -> Loaded:
        self._ensure_reaper()
        key = resolved.key
        while True:
            entry = self._models.get(key)
            if entry is not None and _healthy(entry.engine):
                entry.refs += 1
                entry.last_used = time.monotonic()
                self._gauge(entry)
                return entry
            if entry is not None:  # its engine died: drop it and load afresh
                await self._unload(key, "failed")
            pending = self._loading.get(key)
            if pending is None:
                pending = asyncio.get_running_loop().create_future()
                self._loading[key] = pending
                asyncio.ensure_future(self._load(resolved, task, pending))
            # shield: one impatient client going away must not cancel everyone's load
            await asyncio.shield(pending)

    async def release(self, entry: Loaded, keep_alive: float | None = None) -> None:
        entry.refs -= 1
        entry.last_used = time.monotonic()
        if keep_alive is not None:
            entry.keep_alive = keep_alive
            self._ensure_reaper()
        self._gauge(entry)
        if entry.refs == 0:
            if self._keep(entry) == 0:
                await self._unload(entry.resolved.key, "idle")
            async with self._room:
                self._room.notify_all()

    def loaded(self) -> list[Loaded]:
        return list(self._models.values())

    async def unload_repo(self, repo_id: str) -> tuple[int, int]:
        """Unload every idle loaded revision of a repo now; returns (unloaded, still busy)."""
        mine = [(k, e) for k, e in self._models.items() if e.resolved.repo_id.lower() == repo_id.lower()]
        idle = [k for k, e in mine if e.refs == 0]
        for key in idle:
            await self._unload(key, "admin")
        return len(idle), len(mine) - len(idle)

    def resident_bytes(self) -> int:
        return sum(e.footprint for e in self._models.values())

    def committed_bytes(self) -> int:
        """Loaded models plus the loads under way: what the budget is checked against."""
        return self.resident_bytes() + sum(self._reserved.values())

    def _keep(self, entry: Loaded) -> float:
        return entry.keep_alive if entry.keep_alive is not None else self.settings.keep_alive_seconds

    async def unload_idle(self) -> int:
        """Unload the models idle for longer than their keep-alive (negative: kept)."""
        now = time.monotonic()
        stale = [k for k, e in self._models.items()
                 if e.refs == 0 and self._keep(e) >= 0 and now - e.last_used >= self._keep(e)]
        for key in stale:
            await self._unload(key, "idle")
        return len(stale)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for key in list(self._models):
            await self._unload(key, "shutdown")
        self._pool.shutdown(wait=False)

    # ---- internals -------------------------------------------------------------------------
    async def _load(self, resolved: ResolvedModel, task: str, done: asyncio.Future) -> None:
        key = resolved.key
        try:
            need = self._estimate(resolved, task)
            if need > self.budget:
                raise InsufficientStorage(
                    f"model '{resolved.repo_id}' needs about {need >> 20} MiB, more than the inference "
                    f"memory budget of {self.budget >> 20} MiB")
            asked = time.monotonic()
            await asyncio.wait_for(self._make_room(key, need), self.settings.load_timeout_seconds)
            started = time.monotonic()
            loop = asyncio.get_running_loop()
            began: list[float] = []  # when the loader thread took it up (it may be closing other models first)

            def load():
                began.append(time.monotonic())
                return self._loader(resolved, task)

            engine = await loop.run_in_executor(self._pool, load)
            _log_load(resolved.repo_id, task, room_s=started - asked, queued_s=began[0] - started,
                      load_s=time.monotonic() - began[0])
            footprint = getattr(engine, "footprint_bytes", lambda: need)() or need
            self._models[key] = Loaded(resolved, task, engine, footprint)
            if self.metrics is not None:
                self.metrics.load_time.labels(resolved.repo_id, getattr(engine, "engine_name", "?")).observe(
                    time.monotonic() - started)
                self.metrics.loads.labels(resolved.repo_id).inc()
                self.metrics.models_loaded.set(len(self._models))
                self.metrics.resident_bytes.labels(resolved.repo_id).set(footprint)
            done.set_result(None)
        except TimeoutError:
            done.set_exception(Overloaded("no room to load the model right now: other models are busy",
                                          headers={"Retry-After": "10"}))
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter
            done.set_exception(exc)
        finally:
            self._loading.pop(key, None)
            if self._reserved.pop(key, None) is not None and key not in self._models:
                async with self._room:
                    self._room.notify_all()  # a failed load gives its room back to waiting loads
            if done.done():
                done.exception()  # marks it retrieved even when every waiter has gone away

    async def _make_room(self, key: tuple, need: int) -> None:
        async with self._room:
            while True:
                over_count = len(self._models) + len(self._reserved) + 1 > self.settings.max_loaded_models
                over_bytes = self.committed_bytes() + need > self.budget
                if not (over_count or over_bytes):
                    self._reserved[key] = need  # taken now, under the lock
                    return
                idle = sorted((e for e in self._models.values() if e.refs == 0), key=lambda e: e.last_used)
                if idle:
                    victim = idle[0]
                    if self.metrics is not None:
                        self.metrics.evictions.labels(victim.resolved.repo_id).inc()
                    await self._unload(victim.resolved.key, "evicted")
                    continue
                await self._room.wait()  # every model is busy: wait for one to go idle

    async def _unload(self, key: tuple, reason: str) -> None:
        entry = self._models.pop(key, None)
        if entry is None:
            return
        detach = getattr(entry.engine, "detach", None)  # loop-side cleanup (batcher tasks)
        if detach is not None:
            detach()
        close = getattr(entry.engine, "close", None)
        if close is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, close)
        if self.metrics is not None:
            self.metrics.unloads.labels(entry.resolved.repo_id, reason).inc()
            self.metrics.models_loaded.set(len(self._models))
            try:
                self.metrics.resident_bytes.remove(entry.resolved.repo_id)
            except KeyError:
                pass
        import gc

        gc.collect()  # return the weights' memory now, not at some later collection

    def _gauge(self, entry: Loaded) -> None:
        if self.metrics is not None:
            self.metrics.child(self.metrics.in_flight, entry.resolved.repo_id).set(entry.refs)

    def _ensure_reaper(self) -> None:
        if self._reaper is None and self._shortest_keep() is not None:
            self._reaper = asyncio.ensure_future(self._reap())

    def _shortest_keep(self) -> float | None:
        keeps = [k for k in [self.settings.keep_alive_seconds, *(e.keep_alive for e in self._models.values())]
                 if k is not None and k > 0]
        return min(keeps) if keeps else None

    async def _reap(self) -> None:
        while True:
            keep = self._shortest_keep() or 5.0
            await asyncio.sleep(min(max(keep / 4, 0.05), 5.0))
            try:
                await self.unload_idle()
            except Exception:  # noqa: BLE001 - the reaper must outlive one failed unload
                pass


def _log_load(repo_id: str, task: str, *, room_s: float, queued_s: float, load_s: float) -> None:
    total = room_s + queued_s + load_s
    level = logging.WARNING if total >= SLOW_LOAD_SECONDS else logging.INFO
    log.log(level, "loaded %s (%s) in %.1f s: %.1f s waiting for room, %.1f s for the loader thread, %.1f s "
            "loading", repo_id, task, total, room_s, queued_s, load_s)


def _healthy(engine) -> bool:
    check = getattr(engine, "healthy", None)
    return True if check is None else bool(check())
