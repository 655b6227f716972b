"""``snapshot_download`` of the 1,000-small-file repo against the same bytes served by nginx.

nginx (the Debian package, started here with a throwaway config) serves a folder laid out like the
hub's ``/{repo}/resolve/main/{path}`` URLs, so one plain client can fetch the same URL paths from
either. Three timings per round, rounds interleaved so machine noise falls on all of them alike:

- ``nginx``: a plain httpx client, 8 threads, GET of every file from nginx;
- ``hub_plain``: the same client against the hub's ``resolve`` URLs;
- ``snapshot_download``: huggingface_hub's ``snapshot_download(max_workers=8)`` against the hub, a
  fresh cache each time (it lists the repo, then HEADs and GETs every file).

The goal of issue 10 compares ``snapshot_download`` with nginx (ratio of throughput, ≥ 0.7).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

NGINX_CONF = """
{user}
worker_processes 2;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
    }}
}}
"""


class StaticNginx:
    def __init__(self, files: dict[str, bytes], prefix: str, port: int):
        self.root = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        for path, data in files.items():
            target = self.root / "www" / prefix.strip("/") / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        user = "user root;" if os.geteuid() == 0 else ""  # as root, workers would become "nobody"
        (self.root / "nginx.conf").write_text(NGINX_CONF.format(user=user, root=self.root, port=port))
        self.process: subprocess.Popen | None = None

    def start(self, probe: str) -> StaticNginx:
        if shutil.which("nginx") is None:
            raise RuntimeError("nginx not found: apt-get install -y nginx")
        self.process = subprocess.Popen(["nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "wb"))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if httpx.get(self.url + probe, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "stderr.log").read_text())
            time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def fetch_all(base: str, paths: list[str], files: dict[str, bytes], workers: int) -> float:
    """GET every path with ``workers`` threads on one pooled httpx client; checks every byte."""
    with httpx.Client(base_url=base, limits=httpx.Limits(max_connections=workers), timeout=60) as client:
        def one(item):
            url_path, file_path = item
            r = client.get(url_path)
            if r.status_code != 200 or r.content != files[file_path]:
                raise RuntimeError(f"GET {base}{url_path}: {r.status_code}")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, zip(paths, files)))
        return time.perf_counter() - t0


def snapshot_once(hub_url: str, repo_id: str, files: dict[str, bytes], workers: int) -> float:
    from huggingface_hub import snapshot_download

    cache = Path(tempfile.mkdtemp(prefix="bench-hf-cache-"))
    try:
        t0 = time.perf_counter()
        folder = Path(snapshot_download(repo_id, cache_dir=cache, max_workers=workers, endpoint=hub_url))
        elapsed = time.perf_counter() - t0
        got = sum(1 for p in files if (folder / p).read_bytes() == files[p])
        if got != len(files):
            raise RuntimeError(f"snapshot_download brought {got}/{len(files)} files intact")
        return elapsed
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def compare(hub_url: str, repo_id: str, files: dict[str, bytes], port: int, rounds: int = 3,
            workers: int = 8) -> dict:
    paths = [f"/{repo_id}/resolve/main/{p}" for p in files]
    nginx = StaticNginx(files, f"/{repo_id}/resolve/main", port).start(paths[0])
    times = {"nginx": [], "hub_plain": [], "snapshot_download": []}
    try:
        fetch_all(nginx.url, paths, files, workers)  # warm the page cache on both sides alike
        fetch_all(hub_url, paths[:50], dict(list(files.items())[:50]), workers)
        for _ in range(rounds):
            times["nginx"].append(fetch_all(nginx.url, paths, files, workers))
            times["hub_plain"].append(fetch_all(hub_url, paths, files, workers))
            times["snapshot_download"].append(snapshot_once(hub_url, repo_id, files, workers))
    finally:
        nginx.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"files": len(files), "bytes": sum(map(len, files.values())), "workers": workers, "rounds": rounds,
            "seconds": times, "median_s": med,
            "ratio_snapshot_vs_nginx": med["nginx"] / med["snapshot_download"],
            "ratio_hub_plain_vs_nginx": med["nginx"] / med["hub_plain"]}
