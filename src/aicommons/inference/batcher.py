"""Dynamic micro-batching for encoder models (TEI-style token budget, spec §3.2).

Requests that arrive while the model is busy, or within ``max_wait`` of an idle model receiving
one, are run as one forward pass, bounded by a token and an item budget. Only requests with the
same batch key (task + parameters that change the computation) share a pass. The forward pass runs
on the process's forward thread, so the event loop keeps accepting requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Callable, Hashable


@dataclass
class _Job:
    key: Hashable
    items: list
    cost: int
    future: asyncio.Future


class MicroBatcher:
    def __init__(self, run: Callable[[Hashable, list], list], pool, *, max_wait_s: float, max_tokens: int,
                 max_items: int, on_batch: Callable[[Hashable, int], None] | None = None):
        self._run = run  # sync (key, items) -> one result per item; runs on ``pool``
        self._pool = pool
        self.max_wait_s = max_wait_s
        self.max_tokens = max_tokens
        self.max_items = max_items
        self._on_batch = on_batch
        self._pending: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    async def submit(self, key: Hashable, items: list, cost: int) -> list:
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = asyncio.ensure_future(self._loop())
        job = _Job(key, list(items), max(1, cost), asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._wakeup.set()
        return await job.future

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        for job in self._pending:
            if not job.future.done():
                job.future.cancel()
        self._pending.clear()

    def _full(self) -> bool:
        items = sum(len(j.items) for j in self._pending)
        tokens = sum(j.cost for j in self._pending)
        return items >= self.max_items or tokens >= self.max_tokens

    def _take(self) -> list[_Job]:
        while self._pending and self._pending[0].future.done():  # caller went away
            self._pending.popleft()
        if not self._pending:
            return []
        key = self._pending[0].key
        batch, tokens, items, rest = [], 0, 0, deque()
        while self._pending:
            job = self._pending.popleft()
            if job.future.done():
                continue
            fits = not batch or (tokens + job.cost <= self.max_tokens and items + len(job.items) <= self.max_items)
            if job.key == key and fits:
                batch.append(job)
                tokens += job.cost
                items += len(job.items)
            else:
                rest.append(job)
        self._pending = rest
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        idle = True
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                idle = True
            if idle and not self._full():
                # A lone request on an idle model waits a few ms for companions; behind a running
                # batch, requests pile up by themselves and need no extra wait.
                await asyncio.sleep(self.max_wait_s)
            batch = self._take()
            if not batch:
                continue
            flat = [item for job in batch for item in job.items]
            if self._on_batch is not None:
                self._on_batch(batch[0].key, len(flat))
            try:
                results = await loop.run_in_executor(self._pool, self._run, batch[0].key, flat)
            except Exception as exc:  # noqa: BLE001 - every job of the batch gets the error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                idle = False
                continue
            start = 0
            for job in batch:
                part = results[start:start + len(job.items)]
                start += len(job.items)
                if not job.future.done():
                    job.future.set_result(part)
            idle = False
