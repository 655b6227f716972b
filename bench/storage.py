"""``make bench-storage``: what the chunk store costs and how fast it serves (issue 11).

A fresh ``aicommons serve`` (SQLite + local disk, LFS chunking on) and the stock clients
(huggingface_hub 2.4 + hf_xet, each upload in a new process with an empty Xet cache, as from
another machine, so only the hub's global dedup can find earlier chunks). Figures:

- storage: a first upload (stored / size), a 4 KiB change to a 64 MiB file through Xet and through
  LFS (after the hub chunked both revisions and GC dropped the whole-file copies), ten checkpoints of
  an 8-layer model each changing one layer;
- ingest: upload wall time through LFS and Xet (the stock client, a fresh process) vs ``sha256sum``
  of the same file, and the hub's side of an LFS upload alone (``curl -T`` of a file whose sha256
  is known, plus the verify call) against the same;
- HTTP download of a Xet-stored file (rebuilt from its xorbs as it is sent) vs nginx ``sendfile``
  of the same bytes, hot, one stream and 8 concurrent Range requests (curl), plus the hub serving
  a whole-file blob (what a whole-file cache would give), with the server's peak RSS;
- Xet download with the stock client vs HTTP download of the same file.

Writes ``bench/storage_results.json`` and prints the markdown table for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
USER, TOKEN = "bench", "hf_bench_storage_write_token_0000001"
PY = sys.executable

UPLOAD = """
import sys
from huggingface_hub import HfApi
endpoint, token, repo, path, name = sys.argv[1:6]
HfApi(endpoint=endpoint, token=token).upload_file(path_or_fileobj=path, path_in_repo=name, repo_id=repo)
"""
DOWNLOAD = """
import sys, time
from huggingface_hub import hf_hub_download
endpoint, token, repo, name, cache = sys.argv[1:6]
t = time.perf_counter()
hf_hub_download(repo, name, endpoint=endpoint, token=token, cache_dir=cache)
print(time.perf_counter() - t)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, root: Path, twin_of: Hub | None = None, **extra: str):
        """A fresh hub; or, with ``twin_of``, a second server on the same data (other settings, no jobs)."""
        self.data = root / "data" if twin_of is None else twin_of.data
        if twin_of is None:
            self.data.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AICOMMONS_")}
        self.env.update(AICOMMONS_DATA_DIR=str(self.data), AICOMMONS_PORT=str(self.port), AICOMMONS_HOST="127.0.0.1",
                        AICOMMONS_LOG_LEVEL="warning", AICOMMONS_SCAN_UPLOADS="false",
                        AICOMMONS_API_REQUESTS_PER_MINUTE="0", AICOMMONS_RESOLVER_REQUESTS_PER_MINUTE="0",
                        AICOMMONS_CHUNK_LFS_UPLOADS="true")
        self.env.update(extra)  # more AICOMMONS_ settings (bench/mirror_bench.py: the mirror's upstream)
        self.env.pop("HF_HUB_DISABLE_XET", None)
        if twin_of is None:
            for args in (["user", "create", USER], ["token", "create", USER, "--value", TOKEN]):
                self.cli(*args)
        else:
            self.env["AICOMMONS_JOB_WORKERS"] = "0"
        self.process = subprocess.Popen([PY, "-m", "aicommons.cli.main", "serve"], env=self.env,
                                        stdout=subprocess.DEVNULL,
                                        stderr=open(root / f"server-{self.port}.log", "wb"))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the hub did not start")

    def cli(self, *args: str) -> str:
        return subprocess.run([PY, "-m", "aicommons.cli.main", *args], env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def stored(self) -> int:
        blobs = self.data / "blobs"
        return sum(p.stat().st_size for prefix in ("lfs", "xet/xorbs", "xet/shards")
                   for p in (blobs / prefix).rglob("*") if p.is_file())

    def rss_mib(self, field: str = "VmRSS") -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def upload(hub: Hub, repo: str, path: Path, name: str, tmp: Path, *, xet: bool = True) -> float:
    """Upload wall time, the stock client in a fresh process with an empty Xet cache."""
    env = {**hub.env, "HF_HOME": tempfile.mkdtemp(dir=tmp), "HF_XET_CACHE": tempfile.mkdtemp(dir=tmp)}
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    start = time.perf_counter()
    subprocess.run([PY, "-c", UPLOAD, hub.url, TOKEN, repo, str(path), name], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def create(hub: Hub, name: str) -> str:
    repo = f"{USER}/{name}"
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": name, "type": "model"},
                   headers={"Authorization": f"Bearer {TOKEN}"})
    r.raise_for_status()
    return repo


def wait_chunked(hub: Hub, repo: str, name: str, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        entry = httpx.post(f"{hub.url}/api/models/{repo}/paths-info/main", json={"paths": [name]},
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()[0]
        if entry.get("xetHash"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"{repo}/{name} was never chunked")


def gc(hub: Hub) -> None:
    hub.cli("gc", "--apply", "--grace-hours", "0")


def sha256sum_seconds(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    return time.perf_counter() - start


# --- storage ----------------------------------------------------------------------------------------


def storage_figures(hub: Hub, tmp: Path) -> dict:
    out = {}
    first = random.Random(1).randbytes(64 * MiB)
    second = bytearray(first)
    second[33 * MiB:33 * MiB + 4096] = os.urandom(4096)
    (tmp / "v1.bin").write_bytes(first)
    (tmp / "v2.bin").write_bytes(second)
    repo = create(hub, "xet-edit")
    before = hub.stored()
    upload(hub, repo, tmp / "v1.bin", "model.bin", tmp)
    out["first_upload_ratio"] = (hub.stored() - before) / len(first)
    mid = hub.stored()
    upload(hub, repo, tmp / "v2.bin", "model.bin", tmp)
    out["xet_4k_change_growth_bytes"] = hub.stored() - mid

    repo = create(hub, "lfs-edit")
    third = bytearray(os.urandom(64 * MiB))
    (tmp / "l1.bin").write_bytes(third)
    third[10 * MiB:10 * MiB + 4096] = os.urandom(4096)
    (tmp / "l2.bin").write_bytes(third)
    upload(hub, repo, tmp / "l1.bin", "model.bin", tmp, xet=False)
    wait_chunked(hub, repo, "model.bin")
    gc(hub)
    mid = hub.stored()
    upload(hub, repo, tmp / "l2.bin", "model.bin", tmp, xet=False)
    wait_chunked(hub, repo, "model.bin")
    gc(hub)
    out["lfs_4k_change_growth_bytes_after_chunking"] = hub.stored() - mid

    # Ten checkpoints of an 8-layer model (4 MiB layers); each changes one layer.
    repo = create(hub, "checkpoints")
    layers = [os.urandom(4 * MiB) for _ in range(8)]
    before = hub.stored()
    for step in range(10):
        if step:
            layers[step % 8] = os.urandom(4 * MiB)
        (tmp / "ckpt.bin").write_bytes(b"".join(layers))
        upload(hub, repo, tmp / "ckpt.bin", "model.safetensors", tmp)
    stored = hub.stored() - before
    bound = (32 * MiB + 9 * 4 * MiB) * 1.10
    out["ten_checkpoints_stored_bytes"] = stored
    out["ten_checkpoints_bound_bytes"] = int(bound)
    return out


# --- ingest -----------------------------------------------------------------------------------------


def random_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    return path


def lfs_transfer_seconds(hub: Hub, repo: str, path: Path) -> float:
    """The hub's side of an LFS upload alone: the PUT (the hub hashes, writes and fsyncs the body)
    and the verify call, sent by ``curl -T`` with the sha256 computed beforehand, untimed, as the
    client would have it. The client's own hashing pass and start-up are what ``upload`` adds."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    oid, size = digest.hexdigest(), path.stat().st_size
    auth = {"Authorization": f"Bearer {TOKEN}"}
    batch = httpx.post(f"{hub.url}/{repo}.git/info/lfs/objects/batch", headers={**auth, "Accept": "application/vnd.git-lfs+json"},
                       json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
                       timeout=60).json()
    actions = batch["objects"][0]["actions"]
    upload_action, verify = actions["upload"], actions.get("verify")
    headers = [arg for k, v in upload_action.get("header", {}).items() for arg in ("-H", f"{k}: {v}")]
    start = time.perf_counter()
    subprocess.run(["curl", "-sf", "-T", str(path), *headers, upload_action["href"]], check=True, capture_output=True)
    if verify:
        httpx.post(verify["href"], headers=verify.get("header", {}), json={"oid": oid, "size": size},
                   timeout=60).raise_for_status()
    return time.perf_counter() - start


def ingest_figures(hub: Hub, tmp: Path, size: int, rounds: int = 3) -> dict:
    """Whole client runs (a fresh process that imports huggingface_hub, hashes, uploads) and the
    hub's side of the LFS transfer alone, each against ``sha256sum`` of the same file, best of
    ``rounds`` (fresh bytes every round: an object the hub holds is never sent again)."""
    sha, lfs, xet, transfer = [], [], [], []
    for round_ in range(rounds):
        path = random_file(tmp / "ingest.bin", size)
        sha.append(min(sha256sum_seconds(path) for _ in range(3)))
        transfer.append(lfs_transfer_seconds(hub, create(hub, f"ingest-put-{round_}"), path))
        path = random_file(path, size)
        lfs.append(upload(hub, create(hub, f"ingest-lfs-{round_}"), path, "big.bin", tmp, xet=False))
        path = random_file(path, size)
        xet.append(upload(hub, create(hub, f"ingest-xet-{round_}"), path, "big.bin", tmp))
    best = min(sha)
    return {"size_mib": size // MiB, "rounds": rounds, "sha256sum_s": best, "lfs_upload_s": min(lfs),
            "xet_upload_s": min(xet), "lfs_transfer_s": min(transfer), "lfs_vs_sha256sum": best / min(lfs),
            "xet_vs_sha256sum": best / min(xet), "lfs_transfer_vs_sha256sum": best / min(transfer),
            "load": os.getloadavg()[0]}


# --- downloads --------------------------------------------------------------------------------------

def curl_seconds(url: str, ranges: int, size: int, headers: dict) -> float:
    """Wall time to fetch ``size`` bytes: one stream, or ``ranges`` concurrent Range requests."""
    hdr = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    if ranges == 1:
        start = time.perf_counter()
        subprocess.run(["curl", "-sfL", "-o", "/dev/null", *hdr, url], check=True)
        return time.perf_counter() - start
    step = size // ranges
    spans = [(i * step, size - 1 if i == ranges - 1 else (i + 1) * step - 1) for i in range(ranges)]
    start = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sfL", "-o", "/dev/null", *hdr, "-H", f"Range: bytes={a}-{b}", url])
             for a, b in spans]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("curl failed")
    return time.perf_counter() - start


def download_figures(hub: Hub, tmp: Path, size: int, rounds: int = 5) -> dict:
    """HTTP downloads, hot, rows interleaved round by round (the box's load moves all of them alike):
    the best of ``rounds`` for each row, with the serving process's CPU seconds per GiB."""
    content_path = tmp / "dl.bin"
    with open(content_path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    xet_repo, lfs_repo = create(hub, "dl-xet"), create(hub, "dl-lfs")
    upload(hub, xet_repo, content_path, "w.bin", tmp)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # The LFS row gets other bytes of the same size: with the same bytes its whole-file blob (same
    # sha256) would also serve the Xet rows, which then never read the download cache or the
    # xorbs (what earlier runs measured: cache_copy_made false). The LFS copy stays whole
    # (chunking would make it redundant, and GC is not run on it).
    lfs_path = tmp / "dl-lfs.bin"
    with open(lfs_path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    upload(hub, lfs_repo, lfs_path, "w.bin", tmp, xet=False)
    lfs_oid = hashlib.sha256(lfs_path.read_bytes()).hexdigest()
    from bench.metadata.snapshot import StaticNginx

    # The same Xet file from a second server on the same data with the download cache off: rebuilt
    # from its xorbs on every request (what the cache saves).
    rebuilding = Hub(tmp, twin_of=hub, AICOMMONS_DOWNLOAD_CACHE_BYTES="0")
    nginx = StaticNginx({"w.bin": content_path.read_bytes()}, "", free_port()).start("/w.bin")
    oid = hashlib.sha256(content_path.read_bytes()).hexdigest()
    # nginx on the hub's own LFS blob (a hard link: the same inode, so the same page cache as the
    # hub reads), to tell the file's page-cache layout (as the upload wrote it) from the server.
    os.link(hub.data / "blobs" / "lfs" / lfs_oid[:2] / lfs_oid[2:4] / lfs_oid, nginx.root / "www" / "hub-blob.bin")
    # BENCH_STORAGE_BASELINE_SRC=/work/main/src: the same LFS blob from a second server on the same
    # data running that source tree, in the same rounds (a before/after comparison in one run).
    baseline_src = os.environ.get("BENCH_STORAGE_BASELINE_SRC")
    baseline = Hub(tmp, twin_of=hub, PYTHONPATH=baseline_src) if baseline_src else None
    # ... and the Xet file rebuilt from its xorbs by that source tree (the rebuild path before/after).
    baseline_rebuilding = (Hub(tmp, twin_of=hub, PYTHONPATH=baseline_src, AICOMMONS_DOWNLOAD_CACHE_BYTES="0")
                           if baseline_src else None)
    xet_url = f"{hub.url}/{xet_repo}/resolve/main/w.bin"
    curl_seconds(xet_url, 1, size, auth)  # the first download queues the whole copy
    copy = hub.data / "download-cache" / oid[:2] / oid
    deadline = time.time() + 120
    while not copy.exists() and time.time() < deadline:
        time.sleep(0.2)
    try:
        rows = {"nginx sendfile": (f"{nginx.url}/w.bin", {}, None),
                "hub, Xet file from the download cache (sendfile)": (xet_url, auth, hub),
                "hub, Xet file rebuilt from xorbs (cache off)":
                    (f"{rebuilding.url}/{xet_repo}/resolve/main/w.bin", auth, rebuilding),
                "hub, whole-file LFS blob (sendfile)": (f"{hub.url}/{lfs_repo}/resolve/main/w.bin", auth, hub),
                "nginx sendfile of the hub's LFS blob file (hard link)": (f"{nginx.url}/hub-blob.bin", {}, None)}
        if baseline is not None:
            rows[f"hub, whole-file LFS blob, baseline ({baseline_src})"] = (
                f"{baseline.url}/{lfs_repo}/resolve/main/w.bin", auth, baseline)
        if baseline_rebuilding is not None:
            rows[f"hub, Xet file rebuilt from xorbs (cache off), baseline ({baseline_src})"] = (
                f"{baseline_rebuilding.url}/{xet_repo}/resolve/main/w.bin", auth, baseline_rebuilding)
        out = {"size_mib": size // MiB, "rows": {}, "server_rss_before_mib": hub.rss_mib(),
               "cache_copy_made": copy.exists(), "load_before": os.getloadavg()[0]}
        times: dict = {name: {1: [], 8: []} for name in rows}
        cpu: dict = {name: {1: [], 8: []} for name in rows}
        for round_ in range(rounds + 1):  # round 0 warms every row
            for name, (url, headers, server) in rows.items():
                for ranges in (1, 8):
                    before = server.cpu_seconds() if server else 0.0
                    seconds = curl_seconds(url, ranges, size, headers)
                    if round_:
                        times[name][ranges].append(seconds)
                        if server:
                            cpu[name][ranges].append((server.cpu_seconds() - before) * 1024 / (size / MiB))
        for name in rows:
            one, eight = min(times[name][1]), min(times[name][8])
            out["rows"][name] = {"one_stream_mib_s": size / MiB / one, "eight_ranges_mib_s": size / MiB / eight,
                                 # the best round is luck on a shared box: the median beside it
                                 "one_stream_median_mib_s": size / MiB / statistics.median(times[name][1]),
                                 "eight_ranges_median_mib_s": size / MiB / statistics.median(times[name][8])}
            if cpu[name][1]:  # over every round: one round's CPU is a few clock ticks
                out["rows"][name]["server_cpu_s_per_gib"] = {"one": sum(cpu[name][1]) / rounds,
                                                             "eight": sum(cpu[name][8]) / rounds}
        base = out["rows"]["nginx sendfile"]
        for row in out["rows"].values():
            row["one_vs_nginx"] = row["one_stream_mib_s"] / base["one_stream_mib_s"]
            row["eight_vs_nginx"] = row["eight_ranges_mib_s"] / base["eight_ranges_mib_s"]
            row["one_vs_nginx_median"] = row["one_stream_median_mib_s"] / base["one_stream_median_mib_s"]
            row["eight_vs_nginx_median"] = row["eight_ranges_median_mib_s"] / base["eight_ranges_median_mib_s"]
        out["server_rss_after_mib"] = hub.rss_mib()
        out["load_after"] = os.getloadavg()[0]
    finally:
        nginx.stop()
        rebuilding.stop()
        for twin in (baseline, baseline_rebuilding):
            if twin is not None:
                twin.stop()
    # Xet download with the stock client vs plain HTTP of the same file (each in a fresh cache).
    env = {**hub.env}
    xet_s = min(float(subprocess.run([PY, "-c", DOWNLOAD, hub.url, TOKEN, xet_repo, "w.bin",
                                      tempfile.mkdtemp(dir=tmp)], env={**env, "HF_XET_CACHE": tempfile.mkdtemp(dir=tmp)},
                                     check=True, capture_output=True, text=True).stdout.split()[-1]) for _ in range(3))
    http_s = min(float(subprocess.run([PY, "-c", DOWNLOAD, hub.url, TOKEN, xet_repo, "w.bin",
                                       tempfile.mkdtemp(dir=tmp)], env={**env, "HF_HUB_DISABLE_XET": "1"},
                                      check=True, capture_output=True, text=True).stdout.split()[-1]) for _ in range(3))
    out["hf_hub_download_xet_s"], out["hf_hub_download_http_s"] = xet_s, http_s
    return out


def report(results: dict) -> str:
    rows = ["| Figure | Goal | Measured |", "|---|---|---|"]
    if "storage" in results:
        s = results["storage"]
        rows += [
            f"| First upload (64 MiB, Xet): stored / size | ≤ 1.05 | {s['first_upload_ratio']:.4f} |",
            f"| 4 KiB change to a 64 MiB file, Xet (fresh client) | < 8 MiB | "
            f"{s['xet_4k_change_growth_bytes'] / MiB:.2f} MiB |",
            f"| 4 KiB change to a 64 MiB file, LFS (after chunking + GC) | < 8 MiB | "
            f"{s['lfs_4k_change_growth_bytes_after_chunking'] / MiB:.2f} MiB |",
            f"| Ten checkpoints, 8 × 4 MiB layers, one changed each | ≤ {s['ten_checkpoints_bound_bytes'] / MiB:.1f} MiB | "
            f"{s['ten_checkpoints_stored_bytes'] / MiB:.1f} MiB |"]
    if "ingest" in results:
        i = results["ingest"]
        rows += [
            f"| Ingest {i['size_mib']} MiB through LFS vs `sha256sum` | ≥ 0.8× | {i['lfs_vs_sha256sum']:.2f}× "
            f"({i['lfs_upload_s']:.2f} s vs {i['sha256sum_s']:.2f} s) |",
            f"| Ingest {i['size_mib']} MiB through Xet vs `sha256sum` | ≥ 0.8× | {i['xet_vs_sha256sum']:.2f}× "
            f"({i['xet_upload_s']:.2f} s) |",
            f"| Ingest {i['size_mib']} MiB, the hub's side of an LFS upload (`curl -T` + verify) vs `sha256sum` | ≥ 0.8× | "
            f"{i['lfs_transfer_vs_sha256sum']:.2f}× ({i['lfs_transfer_s']:.2f} s) |"]
    if "download" in results:
        d = results["download"]
        for name, row in d["rows"].items():
            cpu = row.get("server_cpu_s_per_gib")
            cpu_text = f"; server CPU {cpu['one']:.2f} / {cpu['eight']:.2f} s/GiB" if cpu else ""
            rows.append(f"| HTTP download {d['size_mib']} MiB, {name}: 1 stream / 8 ranges | ≥ 0.9× nginx | "
                        f"{row['one_stream_mib_s']:.0f} / {row['eight_ranges_mib_s']:.0f} MiB/s "
                        f"({row['one_vs_nginx']:.2f}× / {row['eight_vs_nginx']:.2f}×; medians "
                        f"{row['one_vs_nginx_median']:.2f}× / {row['eight_vs_nginx_median']:.2f}×){cpu_text} |")
        rows.append(f"| Server RSS before / after the hub downloads | flat | "
                    f"{d['server_rss_before_mib']:.0f} / {d['server_rss_after_mib']:.0f} MiB |")
        rows.append(f"| `hf_hub_download` {d['size_mib']} MiB: Xet (stock hf_xet) vs plain HTTP | side by side | "
                    f"{d['hf_hub_download_xet_s']:.2f} s vs {d['hf_hub_download_http_s']:.2f} s |")
        rows.append(f"| Load average (1 min) before / after the downloads | | "
                    f"{d['load_before']:.1f} / {d['load_after']:.1f} |")
    return "\n".join(rows)


PARTS = ("storage", "ingest", "download")


def main() -> None:
    """``BENCH_STORAGE_PARTS=download`` (comma-separated) runs only those parts, into their own file."""
    size = int(os.environ.get("BENCH_STORAGE_MIB", "256")) * MiB
    parts = [p for p in os.environ.get("BENCH_STORAGE_PARTS", ",".join(PARTS)).split(",") if p]
    if unknown := set(parts) - set(PARTS):
        raise SystemExit(f"BENCH_STORAGE_PARTS: unknown {sorted(unknown)}; known {PARTS}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    hub = Hub(tmp)
    results: dict = {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        if "storage" in parts:
            results["storage"] = storage_figures(hub, tmp)
        if "ingest" in parts:
            results["ingest"] = ingest_figures(hub, tmp, size)
        if "download" in parts:
            results["download"] = download_figures(hub, tmp, size, int(os.environ.get("BENCH_STORAGE_ROUNDS", "5")))
    finally:
        hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    name = "storage_results.json" if set(parts) == set(PARTS) else f"storage_results_{'_'.join(parts)}.json"
    (ROOT / "bench" / name).write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))


if __name__ == "__main__":
    main()
