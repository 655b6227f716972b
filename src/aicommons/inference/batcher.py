"""Dynamic micro-batching for encoder models (TEI-style token budget, spec §3.2).

Requests that arrive while the model is busy, or within ``max_wait`` of an idle model receiving
one, are run as one forward pass, bounded by a token and an item budget. When a pass ends, the next
one waits (at most ``max_wait``) for as many requests as the ended pass answered, since clients
with requests in flight send the next one as soon as they have an answer: that keeps 32 concurrent
callers in passes of 32 rather than in a 20 and a 12 chasing each other. Only requests with the
same batch key (task + parameters that change the computation) share a pass. The forward pass runs
on the process's forward thread, so the event loop keeps accepting requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

# A batch's callers that send their next request within this long count as coming back.
_RETURN_WINDOW_S = 0.5


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
        self._wakeup = asyncio.Event()  # replaced with the worker task (a new one per loop)
        self._worker: asyncio.Task | None = None

    async def submit(self, key: Hashable, items: list, cost: int) -> list:
        if len(items) > self.max_items:  # one client batch, several forward passes, answered in order
            step = self.max_items
            parts = await asyncio.gather(*(self.submit(key, items[i:i + step], max(1, cost * len(items[i:i + step])
                                                                                   // len(items)))
                                           for i in range(0, len(items), step)))
            return [result for part in parts for result in part]
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
        batch: list[_Job] = []
        rest: deque[_Job] = deque()
        tokens, items = 0, 0
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
        returning, finished_at = 0, 0.0
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            if loop.time() - finished_at > _RETURN_WINDOW_S:
                returning = 0  # the last batch's callers did not come back: a fresh start
            await self._gather(loop, len(self._pending) + returning if returning else None)
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
                results = None
            if results is not None:
                start = 0
                for job in batch:
                    part = results[start:start + len(job.items)]
                    start += len(job.items)
                    if not job.future.done():
                        job.future.set_result(part)
            returning, finished_at = len(batch), loop.time()

    async def _gather(self, loop, target_jobs: int | None) -> None:
        """Let a batch fill before it runs, for at most ``max_wait_s``.

        Callers of the batch that just finished usually send their next request at once (a client
        with N requests in flight), but those arrive one by one while the event loop writes the
        answers. Running with whatever is there cuts one batch of 32 into a 20 and a 12 and keeps
        it cut, since each half then returns while the other computes; waiting for as many jobs as
        were pending plus those that just finished keeps them together. With no batch just
        finished (``target_jobs`` None), a first request waits the whole ``max_wait_s`` for
        companions.
        """
        deadline = loop.time() + self.max_wait_s
        while not self._full() and (target_jobs is None or len(self._pending) < target_jobs):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return
