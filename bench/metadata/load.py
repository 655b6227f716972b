"""Load generation with ``wrk`` (Debian package ``wrk``), 64 connections, closed loop.

Why wrk and not a Python client: the server and the client share two cores. wrk spends a few
microseconds of CPU per request in C; a Python client (httpx, or even the raw-socket asyncio client
of bench/inference/loadgen.py) spends hundreds of microseconds to milliseconds, which at 10,000+
req/s on the bare endpoint would eat most of a core and flatten exactly the ratio we want. A Lua
script makes each connection walk a list of paths (many repos, all tree pages, many files) and
reports the latency percentiles, the errors (non-2xx/3xx answers included) and the request count as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

LUA = r"""
local paths = {}
local method = "GET"
local idx = 0
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  method = args[1]
  for line in io.lines(args[2]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  -- Each thread starts at its own place in the list, so the connections do not walk in step.
  idx = (id * 7919) % #paths
end

function request()
  idx = idx % #paths + 1
  return wrk.format(method, paths[idx])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, paths: list[str], seconds: float, connections: int = 64, threads: int = 2,
            method: str = "GET", timeout_s: int = 30) -> dict:
    """One closed-loop run over ``paths``; returns requests/s, percentiles in ms and error counts."""
    if not have_wrk():
        raise RuntimeError("wrk not found: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(LUA)
        listing = Path(tmp) / "paths.txt"
        listing.write_text("\n".join(paths) + "\n")
        cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
               "--timeout", f"{timeout_s}s", "-s", str(script), base_url, "--", method, str(listing)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 60)
    line = next((out for out in proc.stdout.splitlines() if out.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    raw = json.loads(line[len("WRKJSON "):])
    seconds_run = raw["duration_us"] / 1e6
    done = raw["requests"] > 0  # nothing completed: no percentiles (wrk would report zeros)
    ms = {k: raw[f"{k}_us"] / 1000 if done else None for k in ("p50", "p90", "p95", "p99", "max", "mean")}
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "status_errors"))
    return {
        "method": method, "client": "wrk", "paths": len(paths), "example": paths[0], "connections": connections,
        "requests": raw["requests"], "seconds": seconds_run, "req_s": raw["requests"] / seconds_run,
        **{f"{k}_ms": v for k, v in ms.items()},
        "mb_s": raw["bytes"] / seconds_run / 1e6, "errors": errors,
        "error_detail": {k: raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts",
                                             "status_errors")},
    }
