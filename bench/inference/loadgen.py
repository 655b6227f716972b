"""A light asyncio load generator measuring like ``vllm bench serve`` (spec §4.1): streaming chat
with TTFT = first content chunk, ITL = gaps between content chunks, output tokens from usage."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Result:
    ttft: float | None = None
    itls: list = field(default_factory=list)
    tokens: int = 0
    latency: float = 0.0
    ok: bool = True


async def one_chat(client: httpx.AsyncClient, url: str, body: dict) -> Result:
    res = Result()
    start = time.perf_counter()
    last = None
    chunks = 0
    async with client.stream("POST", url, json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return Result(ok=False)
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                res.tokens = event["usage"].get("completion_tokens", 0)
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    now = time.perf_counter()
                    chunks += 1
                    if res.ttft is None:
                        res.ttft = now - start
                    else:
                        res.itls.append(now - last)
                    last = now
    res.latency = time.perf_counter() - start
    res.tokens = res.tokens or chunks
    return res


async def run_chats(url: str, bodies: list[dict], concurrency: int) -> dict:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        async def guarded(body):
            async with sem:
                return await one_chat(client, url, body)

        start = time.perf_counter()
        results = await asyncio.gather(*(guarded(b) for b in bodies))
        elapsed = time.perf_counter() - start
    good = [r for r in results if r.ok]
    ttfts = sorted(r.ttft for r in good if r.ttft is not None)
    itls = sorted(x for r in good for x in r.itls)
    return {"requests": len(bodies), "failed": len(bodies) - len(good), "seconds": elapsed,
            "output_tokens": sum(r.tokens for r in good),
            "output_tok_s": sum(r.tokens for r in good) / elapsed,
            "ttft_p50_ms": 1000 * statistics.median(ttfts) if ttfts else None,
            "ttft_p99_ms": 1000 * ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))] if ttfts else None,
            "itl_p50_ms": 1000 * statistics.median(itls) if itls else None}


async def run_embeddings(url: str, model: str, texts: list[str], concurrency: int) -> dict:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        async def one(text):
            async with sem:
                r = await client.post(url, json={"model": model, "input": text, "encoding_format": "base64"})
                return r.status_code == 200

        start = time.perf_counter()
        oks = await asyncio.gather(*(one(t) for t in texts))
        elapsed = time.perf_counter() - start
    return {"requests": len(texts), "failed": oks.count(False), "seconds": elapsed,
            "sentences_s": oks.count(True) / elapsed}
