"""A light asyncio load generator measuring like ``vllm bench serve`` (spec §4.1): streaming chat
(or completions) with TTFT = first content chunk, ITL = gaps between content chunks, output tokens
from usage; and one-sentence embedding requests.

The client shares the box's 2 cores with the server it measures, so every CPU millisecond it spends
is taken from the server. httpx costs several ms of CPU per request, a large share of the server's
own cost on one-sentence embedding requests; this client instead speaks HTTP/1.1 directly over one
keep-alive socket per in-flight request, with request bytes built before the clock starts, on
uvloop when installed. Every system is measured with this same client, and each result reports the
client's own CPU seconds (``client_cpu_s``) so its share of the box is visible.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Result:
    ttft: float | None = None
    itls: list = field(default_factory=list)
    tokens: int = 0
    latency: float = 0.0
    ok: bool = True


class HTTPError(Exception):
    pass


def encode_post(url: str, body: dict, headers: dict | None = None) -> bytes:
    """One complete HTTP/1.1 POST with a JSON body, ready to write to a keep-alive socket."""
    parts = urlsplit(url)
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
             f"Content-Length: {len(payload)}", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Connection:
    """One keep-alive HTTP/1.1 connection: requests go one after another on it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _ensure(self) -> None:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, raw: bytes) -> tuple[int, dict]:
        await self._ensure()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def body(self, headers: dict) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return b"".join([chunk async for chunk in self.chunks()])
        length = int(headers.get("content-length", "0"))
        data = await self.reader.readexactly(length) if length else b""
        if headers.get("connection", "").lower() == "close":
            self.close()
        return data

    async def chunks(self):
        """The chunks of a chunked body, as they arrive (SSE events come one or more per chunk)."""
        while True:
            size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers expected
                return
            data = await self.reader.readexactly(size + 2)
            yield data[:-2]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def _run_workers(url: str, requests: list[bytes], concurrency: int, one) -> tuple[list, float]:
    """``concurrency`` workers, each on its own connection, take the next request when free (a
    closed loop with ``concurrency`` requests in flight, like ``--max-concurrency``)."""
    host, port = _host_port(url)
    queue = iter(enumerate(requests))
    results: list = [None] * len(requests)

    async def worker():
        conn = Connection(host, port)
        try:
            for i, raw in queue:
                results[i] = await one(conn, raw)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    return results, time.perf_counter() - start


def run(coro):
    """Run on uvloop when installed (less client CPU), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def measured(fn):
    """Add the client's own CPU seconds to a load-generator result."""
    cpu = time.process_time()
    out = run(fn())
    out["client_cpu_s"] = time.process_time() - cpu
    out["client_cpu_ms_per_request"] = 1000 * out["client_cpu_s"] / max(1, out["requests"])
    return out


# ---- streaming chat ----------------------------------------------------------------------------

async def _one_chat(conn: Connection, raw: bytes, max_tokens: int | None = None) -> Result:
    res = Result()
    start = time.perf_counter()
    last = None
    chunks = 0
    counted = 0
    length = False
    status, headers = await conn.send(raw)
    if status != 200:
        await conn.body(headers)
        return Result(ok=False)
    buffer = b""
    async for data in conn.chunks():
        buffer += data
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            parsed = json.loads(event[6:])
            if parsed.get("usage"):
                res.tokens = parsed["usage"].get("completion_tokens", 0)
            for choice in parsed.get("choices") or []:
                length = length or choice.get("finish_reason") == "length"
                # A server without usage in its stream (llama-cpp-python's) is counted one token per
                # content chunk, empty ones included (a token whose text is a byte fragment).
                if not choice.get("finish_reason") and (
                        isinstance((choice.get("delta") or {}).get("content"), str) or "text" in choice):
                    counted += 1
                # chat chunks carry delta.content; (legacy) completion chunks carry text
                if (choice.get("delta") or {}).get("content") or choice.get("text"):
                    now = time.perf_counter()
                    chunks += 1
                    if res.ttft is None:
                        res.ttft = now - start
                    else:
                        res.itls.append(now - last)
                    last = now
    res.latency = time.perf_counter() - start
    # Without usage, an answer that ended for its length generated exactly max_tokens tokens
    # (llama-cpp-python's server holds back text that is not yet valid UTF-8, so on our padded
    # vocabulary 32 tokens came as one or two chunks); else the chunks are a lower bound.
    res.tokens = res.tokens or (max_tokens if length and max_tokens else max(chunks, counted))
    return res


def run_chats(url: str, bodies: list[dict], concurrency: int, headers: dict | None = None) -> dict:
    requests = [encode_post(url, b, headers) for b in bodies]
    limits = {raw: b.get("max_tokens") for raw, b in zip(requests, bodies)}

    async def one(conn: Connection, raw: bytes) -> Result:
        return await _one_chat(conn, raw, limits.get(raw))

    async def go():
        results, elapsed = await _run_workers(url, requests, concurrency, one)
        good = [r for r in results if r.ok]
        ttfts = sorted(r.ttft for r in good if r.ttft is not None)
        itls = sorted(x for r in good for x in r.itls)
        return {"requests": len(bodies), "failed": len(bodies) - len(good), "seconds": elapsed,
                "output_tokens": sum(r.tokens for r in good),
                "output_tok_s": sum(r.tokens for r in good) / elapsed,
                "ttft_p50_ms": 1000 * statistics.median(ttfts) if ttfts else None,
                "ttft_p99_ms": 1000 * ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))] if ttfts else None,
                "itl_p50_ms": 1000 * statistics.median(itls) if itls else None}

    return measured(go)


# ---- embeddings --------------------------------------------------------------------------------

def embedding_body(model: str, text: str) -> dict:
    # base64: what the openai client asks for by default
    return {"model": model, "input": text, "encoding_format": "base64"}


async def _one_embedding(conn: Connection, raw: bytes) -> bool:
    status, headers = await conn.send(raw)
    body = await conn.body(headers)
    return status == 200 and b'"embedding"' in body


def run_embeddings(url: str, model: str, texts: list[str], concurrency: int, headers: dict | None = None) -> dict:
    requests = [encode_post(url, embedding_body(model, t), headers) for t in texts]

    async def go():
        oks, elapsed = await _run_workers(url, requests, concurrency, _one_embedding)
        return {"requests": len(texts), "failed": oks.count(False), "seconds": elapsed,
                "sentences_s": oks.count(True) / elapsed}

    return measured(go)


def fetch_embedding(url: str, model: str, text: str, headers: dict | None = None) -> list[float]:
    """One embedding, decoded (for checking a server computes what the in-process anchor does)."""
    import base64
    import struct

    async def go():
        conn = Connection(*_host_port(url))
        try:
            status, resp_headers = await conn.send(encode_post(url, embedding_body(model, text), headers))
            body = await conn.body(resp_headers)
        finally:
            conn.close()
        if status != 200:
            raise HTTPError(f"{status}: {body[:300]!r}")
        raw = base64.b64decode(json.loads(body)["data"][0]["embedding"])
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))

    return run(go())
