"""A closed-loop load generator in Python for what ``wrk`` cannot do: ``HEAD``.

wrk 4.1 (Debian's) does not tell its HTTP parser that a request was a HEAD, so it waits for the
``Content-Length`` bytes of a body that never comes and completes no request. This client speaks
HTTP/1.1 over one keep-alive socket per connection (uvloop when installed), with request bytes built
before the clock starts, as bench/inference/loadgen.py does. It costs far more CPU per request than
wrk, and shares the two cores with the server, so its lines are compared with the bare endpoint
measured by this same client (``bare_req_s_same_client``), not with wrk's.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from bench.inference.loadgen import run as run_loop


def _request(method: str, host: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\nUser-Agent: bench-metadata\r\n\r\n".encode()


async def _worker(host: str, port: int, requests: list[bytes], offset: int, head: bool, stop_at: float,
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while time.perf_counter() < stop_at:
            raw = requests[i % len(requests)]
            i += 1
            t0 = time.perf_counter()
            writer.write(raw)
            head_bytes = await reader.readuntil(b"\r\n\r\n")
            status = int(head_bytes.split(b" ", 2)[1])
            length = 0
            for line in head_bytes.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if not head and length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status >= 400:
                errors[0] += 1
    finally:
        writer.close()


def run_python(base_url: str, paths: list[str], seconds: float, connections: int = 64, method: str = "GET") -> dict:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [_request(method, parts.netloc, p) for p in paths]
    latencies: list[float] = []
    errors = [0]

    async def go() -> float:
        stop_at = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(_worker(host, port, requests, (k * 7919) % len(requests), method == "HEAD",
                                       stop_at, latencies, errors) for k in range(connections)))
        return time.perf_counter() - t0

    cpu = time.process_time()
    elapsed = run_loop(go())
    cpu = time.process_time() - cpu
    ordered = sorted(latencies)

    def pct(q: float) -> float | None:
        return 1000 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else None

    return {"method": method, "paths": len(paths), "example": paths[0], "connections": connections,
            "client": "python", "requests": len(ordered), "seconds": elapsed, "req_s": len(ordered) / elapsed,
            "p50_ms": pct(50), "p90_ms": pct(90), "p95_ms": pct(95), "p99_ms": pct(99),
            "max_ms": 1000 * ordered[-1] if ordered else None,
            "mean_ms": 1000 * sum(ordered) / len(ordered) if ordered else None,
            "errors": errors[0], "error_detail": {"http_4xx_5xx": errors[0]},
            "client_cpu_s": cpu, "client_cpu_ms_per_request": 1000 * cpu / max(1, len(ordered))}
