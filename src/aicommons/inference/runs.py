"""Running one or several generations of a request and recording their metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .generation import Delta, GenerationStats, stream_deltas


@dataclass
class Finished:
    index: int
    text: str
    finish_reason: str
    token_ids: list[int]
    token_texts: list[str]
    stats: GenerationStats
    logprobs: list | None = None  # one (logprob, top) per token when asked for


async def _collect(engine, index: int, prompt_ids, params) -> Finished:
    stats = GenerationStats(len(prompt_ids))
    parts, ids, texts, reason, logprobs = [], [], [], "length", []
    async for delta in stream_deltas(engine, prompt_ids, params, stats):
        parts.append(delta.text)
        if delta.token_id is not None:
            ids.append(delta.token_id)
            texts.append(delta.token_text)
            if delta.logprob is not None:
                logprobs.append(delta.logprob)
        if delta.finish_reason:
            reason = delta.finish_reason
    return Finished(index, "".join(parts), reason, ids, texts, stats, logprobs)


async def run_to_end(engine, jobs) -> list[Finished]:
    """jobs: [(choice_index, prompt_ids, params)] run concurrently (they batch inside the engine)."""
    tasks = [asyncio.ensure_future(_collect(engine, i, ids, p)) for i, ids, p in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for t in tasks:
            t.cancel()


async def merged(streams: list[tuple[int, AsyncIterator[Delta]]]) -> AsyncIterator[tuple[int, Delta]]:
    """Interleave several delta streams as their tokens arrive (OpenAI ``n`` > 1)."""
    if len(streams) == 1:  # the common case stays a plain loop: no tasks, no queue
        index, stream = streams[0]
        async for delta in stream:
            yield index, delta
        return
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(index, stream):
        try:
            async for delta in stream:
                await queue.put((index, delta))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            await queue.put((index, exc))
        finally:
            await queue.put((index, done))

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in streams]
    remaining = len(tasks)
    try:
        while remaining:
            index, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for t in tasks:
            t.cancel()


def record_generation(lease, stats_list: list[GenerationStats]) -> None:
    metrics = lease.service.metrics
    labels = (lease.resolved.repo_id, getattr(lease.engine, "engine_name", "?"), lease.task)
    itl = metrics.child(metrics.itl, *labels)
    for s in stats_list:
        metrics.child(metrics.prompt_tokens, *labels).inc(s.prompt_tokens)
        metrics.child(metrics.generation_tokens, *labels).inc(s.completion_tokens)
        if s.first_token_at is not None:
            metrics.child(metrics.ttft, *labels).observe(s.first_token_at - s.started)
            for gap in s.gaps:  # one per token
                itl.observe(gap)
            if s.completion_tokens > 1 and s.last_token_at is not None:
                metrics.child(metrics.tpot, *labels).observe(
                    (s.last_token_at - s.first_token_at) / (s.completion_tokens - 1))
