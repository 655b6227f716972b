"""``make bench-mirror``: the pull-through mirror's downloads (issue 12), on loopback.

Two fresh ``aicommons serve`` (SQLite + local disk): an upstream and a mirror whose
``AICOMMONS_UPSTREAM_URL`` names it. Each round publishes a new file of random bytes upstream (LFS,
kept whole), lets the mirror pull the repo's metadata, then times with ``curl`` (one stream, bytes
to /dev/null), interleaved in the same round:

- **direct**: the file from the upstream's ``resolve`` URL;
- **first through the mirror**: the same file from the mirror, not cached yet (streamed from the
  upstream while it is hashed and stored);
- **cached through the mirror**: the file again once the mirror holds it, best of 3;
- **nginx sendfile**: the same bytes from nginx, best of 3 (the "datapath" anchor).

Goals (docs/benchmarks.md): first download ≥ 0.8× direct, cached ≥ 0.9× nginx. Each row also has the
CPU seconds both hub processes used (from /proc), since wall-clock ratios on a shared box move with
load; ``uptime`` load is recorded. BENCH_MIRROR_MIB sets the file size (512), BENCH_MIRROR_ROUNDS the
rounds (3). Writes ``bench/mirror_results.json`` and prints the table. Needs nginx and curl.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.storage import TOKEN, Hub, MiB, curl_seconds, free_port, upload

ORG = "benchorg"  # upstream: not a local name on the mirror (local names are never pulled through)

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def create(hub: Hub, name: str) -> str:
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": name, "organization": ORG, "type": "model"},
                   headers={"Authorization": f"Bearer {TOKEN}"})
    r.raise_for_status()
    return f"{ORG}/{name}"


def timed(url: str, size: int, hubs: list[Hub]) -> dict:
    before = [cpu_seconds(h.process.pid) for h in hubs]
    wall = curl_seconds(url, 1, size, {})
    cpu = sum(cpu_seconds(h.process.pid) - b for h, b in zip(hubs, before, strict=True))
    return {"s": wall, "mib_s": size / MiB / wall, "hubs_cpu_s": cpu}


def cached_blob(hub: Hub, oid: str) -> Path:
    return hub.data / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid


def one_round(index: int, upstream: Hub, mirror: Hub, tmp: Path, size: int) -> dict:
    import hashlib

    path = tmp / f"w{index}.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            chunk = os.urandom(MiB)
            digest.update(chunk)
            f.write(chunk)
    oid = digest.hexdigest()
    repo = create(upstream, f"mirror-bench-{index}-{os.urandom(3).hex()}")
    upload(upstream, repo, path, "w.bin", tmp, xet=False)
    # The repo is public: the mirror pulls its metadata (git fetch) before the clock starts.
    httpx.get(f"{mirror.url}/api/models/{repo}", timeout=120).raise_for_status()
    row: dict = {"load_before": load()}
    row["direct"] = timed(f"{upstream.url}/{repo}/resolve/main/w.bin", size, [upstream])
    row["first_through_mirror"] = timed(f"{mirror.url}/{repo}/resolve/main/w.bin", size, [upstream, mirror])
    deadline = time.time() + 300
    while not cached_blob(mirror, oid).exists():
        if time.time() > deadline:
            raise RuntimeError("the mirror never cached the file")
        time.sleep(0.2)
    from bench.metadata.snapshot import StaticNginx

    nginx = StaticNginx({"w.bin": path.read_bytes()}, "", free_port()).start("/w.bin")
    try:
        cached, anchor = [], []
        for _ in range(3):  # interleaved: the same load for both
            cached.append(timed(f"{mirror.url}/{repo}/resolve/main/w.bin", size, [mirror]))
            anchor.append(timed(f"{nginx.url}/w.bin", size, []))
    finally:
        nginx.stop()
    row["cached_through_mirror"] = min(cached, key=lambda r: r["s"])
    row["nginx_sendfile"] = min(anchor, key=lambda r: r["s"])
    row["first_vs_direct"] = row["direct"]["s"] / row["first_through_mirror"]["s"]
    row["cached_vs_nginx"] = row["nginx_sendfile"]["s"] / row["cached_through_mirror"]["s"]
    row["load_after"] = load()
    path.unlink()
    return row


def report(results: dict) -> str:
    first = statistics.median(r["first_vs_direct"] for r in results["rounds"])
    cached = statistics.median(r["cached_vs_nginx"] for r in results["rounds"])
    med = {k: statistics.median(r[k]["mib_s"] for r in results["rounds"])
           for k in ("direct", "first_through_mirror", "cached_through_mirror", "nginx_sendfile")}
    cpu = {k: statistics.median(r[k]["hubs_cpu_s"] for r in results["rounds"])
           for k in ("direct", "first_through_mirror", "cached_through_mirror")}
    lines = [f"{results['size_mib']} MiB file, {len(results['rounds'])} rounds (medians), loads "
             f"{'; '.join(r['load_before'] for r in results['rounds'])}", "",
             "| Row | MiB/s | hub CPU s | Ratio | Goal |", "|---|---|---|---|---|",
             f"| direct from the upstream | {med['direct']:.0f} | {cpu['direct']:.2f} | | |",
             f"| first download through the mirror | {med['first_through_mirror']:.0f} | "
             f"{cpu['first_through_mirror']:.2f} (both hubs) | {first:.2f}× direct | ≥ 0.8× |",
             f"| cached download through the mirror | {med['cached_through_mirror']:.0f} | "
             f"{cpu['cached_through_mirror']:.2f} | {cached:.2f}× nginx | ≥ 0.9× |",
             f"| nginx sendfile | {med['nginx_sendfile']:.0f} | | | |"]
    return "\n".join(lines)


def main() -> None:
    size = int(os.environ.get("BENCH_MIRROR_MIB", "512")) * MiB
    rounds = int(os.environ.get("BENCH_MIRROR_ROUNDS", "3"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    upstream = mirror = None
    try:
        upstream = Hub(tmp / "upstream", AICOMMONS_CHUNK_LFS_UPLOADS="false")
        mirror = Hub(tmp / "mirror", AICOMMONS_CHUNK_LFS_UPLOADS="false", AICOMMONS_UPSTREAM_URL=upstream.url)
        upstream.cli("org", "create", ORG, "--member", "bench")
        results = {"size_mib": size // MiB,
                   "rounds": [one_round(i, upstream, mirror, tmp, size) for i in range(rounds)]}
        (ROOT / "bench" / "mirror_results.json").write_text(json.dumps(results, indent=2) + "\n")
        print(report(results))
    finally:
        for hub in (mirror, upstream):
            if hub is not None:
                hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
