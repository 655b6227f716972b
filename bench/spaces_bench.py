"""Spaces figures for docs/benchmarks.md (``make bench-spaces``): cold start of a Gradio space whose
environment is cached (push to first answer), wake from sleep, the proxy's overhead on a small
request against calling the app's socket directly, and what a running and a sleeping space cost.

It starts a real ``aicommons serve`` (SQLite, sandboxed apps with bubblewrap) in a temporary folder;
the space's environment sees the hub's packages (``AICOMMONS_SPACES_SITE_PACKAGES``) and pip's cache
persists in ``~/.cache/aicommons-bench/spaces-pip``, so only the first run downloads Gradio.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

GRADIO = "gradio==6.31.0"
APP = b'''import gradio as gr

def echo(text):
    return text

gr.Interface(fn=echo, inputs="text", outputs="text").launch()
'''
TOKEN = "hf_bench_spaces_token_000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data: Path, port: int, sleep_seconds: int) -> tuple[subprocess.Popen, dict]:
    cache = Path.home() / ".cache" / "aicommons-bench" / "spaces-pip"
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AICOMMONS_DATA_DIR": str(data), "AICOMMONS_PORT": str(port), "AICOMMONS_HOST": "127.0.0.1",
           "AICOMMONS_LOG_LEVEL": "warning", "AICOMMONS_SPACES_SITE_PACKAGES": "true",
           "AICOMMONS_SPACES_PIP_CACHE_DIR": str(cache), "AICOMMONS_SPACES_SLEEP_SECONDS": str(sleep_seconds),
           "AICOMMONS_SPACES_MEMORY_MB": "4096", "AICOMMONS_API_REQUESTS_PER_MINUTE": "1000000",
           "AICOMMONS_ANON_API_REQUESTS_PER_MINUTE": "1000000"}
    for args in (["user", "create", "bench"], ["token", "create", "bench", "--value", TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "aicommons.cli.main", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/api/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, env


def push(api, space_id: str) -> float:
    from huggingface_hub import CommitOperationAdd

    api.create_repo(space_id, repo_type="space", space_sdk="gradio")
    started = time.perf_counter()
    api.create_commit(space_id, repo_type="space", commit_message="app", operations=[
        CommitOperationAdd("app.py", APP), CommitOperationAdd("requirements.txt", GRADIO.encode())])
    return started


def first_answer(http: httpx.Client, space_id: str, since: float, timeout: float = 600) -> float:
    while time.perf_counter() - since < timeout:
        try:
            if http.get(f"/spaces-apps/{space_id}/config").status_code == 200:
                return time.perf_counter() - since
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{space_id} never answered")


def newest_socket(data: Path) -> Path:
    """The app socket of the space started last (the cold-started one)."""
    return max((data / "spaces" / "run").glob("*/app.sock"), key=lambda p: p.stat().st_mtime)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (MiB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS")))
            todo += [int(c) for t in Path(f"/proc/{p}/task").iterdir()
                     for c in (t / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="spaces-bench-") as tmp:
        port = free_port()
        server, _env = start(Path(tmp) / "data", port, sleep_seconds=8)
        url = f"http://127.0.0.1:{port}"
        api = HfApi(endpoint=url, token=TOKEN)
        out: dict = {"load_before": os.getloadavg()}
        try:
            with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                since = push(api, "bench/warm-up")  # builds the environment (cached for what follows)
                out["first_build_s"] = first_answer(http, "bench/warm-up", since)
                since = push(api, "bench/cold")  # same requirements: the cached environment
                out["cold_start_cached_env_s"] = first_answer(http, "bench/cold", since)
                sock = newest_socket(Path(tmp) / "data")
                timings: dict[str, list[float]] = {"proxy": [], "direct": [], "hub_health": []}
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://space") as direct:
                    for i in range(args.requests):
                        for name, client, path in (("direct", direct, "/gradio_api/info"),
                                                   ("proxy", http, "/spaces-apps/bench/cold/gradio_api/info"),
                                                   ("hub_health", http, "/api/health")):
                            t = time.perf_counter()
                            assert client.get(path).status_code == 200
                            if i >= 20:  # after a warm-up
                                timings[name].append((time.perf_counter() - t) * 1000)
                out["direct_p50_ms"] = statistics.median(timings["direct"])
                out["proxy_p50_ms"] = statistics.median(timings["proxy"])
                out["proxy_overhead_p50_ms"] = out["proxy_p50_ms"] - out["direct_p50_ms"]
                out["hub_health_p50_ms"] = statistics.median(timings["hub_health"])  # the hub's own floor
                with_apps = tree_rss_mb(server.pid)  # the hub and its two running apps (its children)
                deadline = time.time() + 120
                while api.space_info("bench/cold").runtime.stage != "SLEEPING":
                    assert time.time() < deadline, "never slept"
                    time.sleep(0.5)
                started = time.perf_counter()
                woke = http.get("/spaces-apps/bench/cold/config", timeout=120)  # wakes, then answers
                out["wake_s"] = time.perf_counter() - started
                if woke.status_code != 200:
                    out["wake_error"] = f"{woke.status_code} {woke.text[:300]}"
                out["sleeping_space_processes"] = 0  # a sleeping space is a database row and files on disk
                out["hub_tree_rss_mb_two_apps_running"] = round(with_apps, 1)
                while api.space_info("bench/warm-up").runtime.stage != "SLEEPING" or \
                        api.space_info("bench/cold").runtime.stage != "SLEEPING":
                    assert time.time() < deadline + 120, "never slept"
                    time.sleep(0.5)
                out["hub_tree_rss_mb_all_asleep"] = round(tree_rss_mb(server.pid), 1)
                out["running_gradio_app_rss_mb"] = round((with_apps - out["hub_tree_rss_mb_all_asleep"]) / 2, 1)
        finally:
            server.terminate()
            server.wait(20)
        out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
