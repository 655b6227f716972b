"""``make bench-mirror``: the pull-through mirror's downloads (issue 12), on loopback.

Two fresh ``aicommons serve`` (SQLite + local disk): an upstream and a mirror whose
``AICOMMONS_UPSTREAM_URL`` names it. Each round publishes a new file of random bytes upstream (LFS,
kept whole), lets the mirror pull the repo's metadata, then times with ``curl`` (one stream, bytes
to /dev/null), interleaved in the same round:

- **direct**: the file from the upstream's ``resolve`` URL;
- **first through the mirror**: the same file from the mirror, not cached yet (streamed from the
  upstream while it is hashed and stored);
- **cached through the mirror**: the file again once the mirror holds it, best of 3;
- **nginx sendfile**: the same bytes from nginx, best of 3 (the "datapath" anchor);
- **first through nginx's cache**: the same file through an nginx ``proxy_cache`` in front of the
  same upstream, not cached there yet (nginx also streams to the client while it writes its cache
  file): what any cache that stores the bytes as it streams them costs on this machine, the anchor
  that says how much of the first download's cost is storing new bytes at all (docs/benchmarks.md);
- **writing the bytes to a new file**: no network, the mirror's own write pattern, before the
  downloads: the floor of any first download that stores what it streams.

Goals (docs/benchmarks.md): first download ≥ 0.8× direct, cached ≥ 0.9× nginx. Each row also has the
CPU seconds both hub processes used (from /proc), since wall-clock ratios on a shared box move with
load; ``uptime`` load is recorded. The direct and the first downloads are accounted in full
(``bench/cpu_watch.py``): each hub by thread (receiving, hashing, event loop, the rest), curl, and how
many of the machine's cores were busy, until curl has the last byte (``during``) and until the
mirror kept the file (``until_kept``); the report ends with that table.

BENCH_MIRROR_MIB sets the file size (512), BENCH_MIRROR_ROUNDS the rounds (3).
BENCH_MIRROR_BASELINE_SRC=DIR adds a second mirror running the code in DIR (its ``PYTHONPATH``), whose
first download is timed in the same rounds, the order alternating: an A/B in one run.
BENCH_MIRROR_PRIME=0 skips the scratch write before each first download (see ``prime``). Writes
``bench/mirror_results.json`` and prints the tables. Needs nginx and curl.
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

from bench.cpu_watch import Watch, curl
from bench.metadata.snapshot import StaticNginx
from bench.page_cache_writes import write_new
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


class NginxCache(StaticNginx):
    """nginx ``proxy_cache`` in front of the upstream hub (the static server's configuration with a
    caching proxy for its location): a cache that stores a file while it streams it to the first
    client, as the mirror does."""

    def __init__(self, upstream: Hub):
        super().__init__({}, "", free_port())
        conf = (self.root / "nginx.conf").read_text()
        conf = conf.replace("http {", f"http {{\n    proxy_cache_path {self.root}/cache levels=1:2 keys_zone=mirror:10m "
                                      "max_size=64g inactive=1h use_temp_path=off;", 1)
        conf = conf.replace(f"root {self.root}/www;", f"location / {{ proxy_pass http://127.0.0.1:{upstream.port}; "
                            "proxy_http_version 1.1; proxy_cache mirror; proxy_cache_key $uri; "
                            "proxy_cache_valid 200 1h; }")
        (self.root / "nginx.conf").write_text(conf)
        self.start("/api/health")

    def cpu_seconds(self) -> float:
        """CPU seconds of nginx's master and worker processes."""
        assert self.process is not None
        pids = [self.process.pid] + [int(p) for p in Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
                                     .read_text().split()]
        return sum(cpu_seconds(pid) for pid in pids)

    def cached_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.root / "cache").rglob("*") if p.is_file())


def timed(url: str, size: int, hubs: list[Hub]) -> dict:
    before = [cpu_seconds(h.process.pid) for h in hubs]
    wall = curl_seconds(url, 1, size, {})
    cpu = sum(cpu_seconds(h.process.pid) - b for h, b in zip(hubs, before, strict=True))
    return {"s": wall, "mib_s": size / MiB / wall, "hubs_cpu_s": cpu}


def accounted(url: str, size: int, hubs: dict[str, Hub], kept: Path | None = None) -> dict:
    """``timed`` with the CPU accounted (bench/cpu_watch.py): each hub's by thread and curl's, at the
    moment curl has the last byte (``during``) and, for a first download through a mirror, once the
    mirror has verified and kept the file at ``kept`` (``until_kept``, with ``kept_after_s``)."""
    watch = Watch({role: hub.process.pid for role, hub in hubs.items()})
    started = time.perf_counter()
    try:
        got = curl(url)
        during = watch.reading()
        if kept is not None:
            deadline = time.time() + 300
            while not kept.exists():  # verified and kept (the hash may finish after the client)
                if time.time() > deadline:
                    raise RuntimeError("the mirror never cached the file")
                time.sleep(0.002)
            kept_after = time.perf_counter() - started
    finally:
        whole = watch.stop()
    hubs_cpu = sum(during[role]["cpu_s"] for role in hubs)
    row = {"s": got["s"], "mib_s": size / MiB / got["s"], "hubs_cpu_s": hubs_cpu,
           "curl_cpu_s": got["user_s"] + got["system_s"], "curl_system_s": got["system_s"],
           "cpu_sum_s": hubs_cpu + got["user_s"] + got["system_s"], "cores_busy": during["cores_busy"],
           "during": during}
    if kept is not None:
        row.update(kept_after_s=kept_after, until_kept=whole)
    return row


def store_seconds(path: Path, size: int) -> float:
    """Wall time to write ``size`` bytes into a new file as the mirror does (a reused 4 MiB buffer,
    the mirror's write size, no fsync): the cost of putting new bytes in the page cache, with no
    network."""
    from aicommons.hub.upstream import WRITE_PIECE

    seconds, _ = write_new(str(path), memoryview(os.urandom(4 * MiB)), size, WRITE_PIECE)
    path.unlink()
    return seconds


def prime(tmp: Path, size: int) -> float | None:
    """With BENCH_MIRROR_PRIME (on by default): write ``size`` bytes into a scratch file and delete it,
    just before a first download, and return the speed (MiB/s). This VM hands free memory back to its
    host (free page reporting, ~2 s after it is freed), and a page the host took back costs ~10x more
    to write into again: a first download that gets such memory for its new page-cache pages measures
    the host, not the mirror (docs/benchmarks.md, session 11). Memory freed just now is handed out
    again first, before it is reported. The speed says which state the memory was in."""
    if os.environ.get("BENCH_MIRROR_PRIME", "1") == "0":
        return None
    return size / MiB / store_seconds(tmp / "prime.bin", size)


def cached_blob(hub: Hub, oid: str) -> Path:
    return hub.data / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid


def one_round(index: int, upstream: Hub, mirrors: dict[str, Hub], cache: NginxCache, tmp: Path, size: int) -> dict:
    import hashlib

    path = tmp / f"w{index}.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            chunk = os.urandom(MiB)
            digest.update(chunk)
            f.write(chunk)
    oid = digest.hexdigest()
    store = store_seconds(tmp / f"store{index}.bin", size)
    repo = create(upstream, f"mirror-bench-{index}-{os.urandom(3).hex()}")
    upload(upstream, repo, path, "w.bin", tmp, xet=False)
    # The repo is public: the mirror pulls its metadata (git fetch) before the clock starts.
    for hub in mirrors.values():
        httpx.get(f"{hub.url}/api/models/{repo}", timeout=120).raise_for_status()
    mirror = mirrors["mirror"]
    row: dict = {"load_before": load(), "store_new_file": {"s": store, "mib_s": size / MiB / store}}
    row["direct"] = accounted(f"{upstream.url}/{repo}/resolve/main/w.bin", size, {"upstream": upstream})
    order = list(mirrors.items())
    for role, hub in order[index % len(order):] + order[:index % len(order)]:  # A/B: the order alternates
        primed = prime(tmp, size)
        row[f"first_through_{role}"] = accounted(f"{hub.url}/{repo}/resolve/main/w.bin", size,
                                                 {"upstream": upstream, "mirror": hub}, kept=cached_blob(hub, oid))
        row[f"first_through_{role}"]["primed_mib_s"] = primed
    stored = cache.cached_bytes()
    nginx_cpu = cache.cpu_seconds()
    primed = prime(tmp, size)
    row["first_through_nginx_cache"] = timed(f"{cache.url}/{repo}/resolve/main/w.bin", size, [upstream])
    row["first_through_nginx_cache"]["nginx_cpu_s"] = cache.cpu_seconds() - nginx_cpu
    row["first_through_nginx_cache"]["primed_mib_s"] = primed
    if cache.cached_bytes() - stored < size:
        raise RuntimeError("nginx's proxy_cache did not store the file")
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
    if "baseline" in mirrors:
        row["baseline_first_vs_direct"] = row["direct"]["s"] / row["first_through_baseline"]["s"]
        row["first_vs_baseline"] = row["first_through_baseline"]["s"] / row["first_through_mirror"]["s"]
    row["nginx_cache_first_vs_direct"] = row["direct"]["s"] / row["first_through_nginx_cache"]["s"]
    row["first_vs_nginx_cache_first"] = row["first_through_nginx_cache"]["s"] / row["first_through_mirror"]["s"]
    row["cached_vs_nginx"] = row["nginx_sendfile"]["s"] / row["cached_through_mirror"]["s"]
    row["load_after"] = load()
    path.unlink()
    return row


def report(results: dict) -> str:
    first = statistics.median(r["first_vs_direct"] for r in results["rounds"])
    cached = statistics.median(r["cached_vs_nginx"] for r in results["rounds"])
    nginx_first = statistics.median(r["nginx_cache_first_vs_direct"] for r in results["rounds"])
    against_nginx = statistics.median(r["first_vs_nginx_cache_first"] for r in results["rounds"])
    med = {k: statistics.median(r[k]["mib_s"] for r in results["rounds"])
           for k in ("direct", "first_through_mirror", "first_through_nginx_cache", "cached_through_mirror",
                     "nginx_sendfile", "store_new_file")}
    cpu = {k: statistics.median(r[k]["hubs_cpu_s"] for r in results["rounds"])
           for k in ("direct", "first_through_mirror", "first_through_nginx_cache", "cached_through_mirror")}
    nginx_cpu = statistics.median(r["first_through_nginx_cache"]["nginx_cpu_s"] for r in results["rounds"])
    kept = statistics.median(r["first_through_mirror"]["kept_after_s"] for r in results["rounds"])
    stores = ", ".join(f"{r['store_new_file']['mib_s']:.0f}" for r in results["rounds"])
    primes = ", ".join(f"{r['first_through_mirror']['primed_mib_s'] or 0:.0f}" for r in results["rounds"])
    lines = [f"{results['size_mib']} MiB file, {len(results['rounds'])} rounds (medians), loads "
             f"{'; '.join(r['load_before'] for r in results['rounds'])}; writing a new file per round "
             f"{stores} MiB/s (far below "
             "the others: new page-cache memory was cold, the VM's host had taken it back); the priming write "
             f"before the first download through the mirror {primes} MiB/s (0: not primed)", "",
             "| Row | MiB/s | hub CPU s | Ratio | Goal |", "|---|---|---|---|---|",
             f"| direct from the upstream | {med['direct']:.0f} | {cpu['direct']:.2f} | | |",
             f"| first download through the mirror | {med['first_through_mirror']:.0f} | "
             f"{cpu['first_through_mirror']:.2f} (both hubs) | {first:.2f}× direct | ≥ 0.8× |",
             f"| first download through nginx proxy_cache | {med['first_through_nginx_cache']:.0f} | "
             f"{cpu['first_through_nginx_cache']:.2f} (upstream) + {nginx_cpu:.2f} (nginx) | {nginx_first:.2f}× direct; "
             f"the mirror "
             f"{against_nginx:.2f}× this | |",
             f"| first download through the mirror, verified and kept | {kept:.2f} s after its start | | | |",
             f"| cached download through the mirror | {med['cached_through_mirror']:.0f} | "
             f"{cpu['cached_through_mirror']:.2f} | {cached:.2f}× nginx | ≥ 0.9× |",
             f"| nginx sendfile | {med['nginx_sendfile']:.0f} | | | |",
             f"| writing the bytes to a new file (no network) | {med['store_new_file']:.0f} | | | |"]
    if results.get("baseline_src"):
        ab = statistics.median(r["first_vs_baseline"] for r in results["rounds"])
        base = statistics.median(r["baseline_first_vs_direct"] for r in results["rounds"])
        base_kept = statistics.median(r["first_through_baseline"]["kept_after_s"] for r in results["rounds"])
        each = ", ".join(f"{r['first_vs_baseline']:.2f}" for r in results["rounds"])
        lines.append(f"| first download through the baseline mirror ({results['baseline_src']}) | | | "
                     f"{base:.2f}× direct, kept after {base_kept:.2f} s; this mirror {ab:.2f}× it "
                     f"(rounds {each}) | |")
    return "\n".join(lines + ["", accounting(results)])


def accounting(results: dict) -> str:
    """Where the CPU went (medians over the rounds, seconds): during the direct download and during
    the first download through the mirror, until curl had the last byte and until the file was kept."""
    rounds = results["rounds"]
    columns = [("direct", "direct", "during"), ("first through the mirror", "first_through_mirror", "during"),
               ("… until kept", "first_through_mirror", "until_kept")]
    if results.get("baseline_src"):
        columns += [("baseline mirror", "first_through_baseline", "during"),
                    ("… until kept", "first_through_baseline", "until_kept")]

    def med(row: str, phase: str, get) -> str:
        values = [get(r[row][phase]) for r in rounds if phase in r[row]]
        return f"{statistics.median(values):.3f}" if values else ""

    cells = [("wall s (curl; the phase's end for 'until kept')", lambda p: p["wall_s"]),
             ("upstream, all", lambda p: p["upstream"]["cpu_s"]),
             ("mirror, all", lambda p: p.get("mirror", {}).get("cpu_s", 0.0)),
             ("mirror: receiving thread (of it system)", None),
             ("mirror: hashing thread", lambda p: p.get("mirror", {}).get("hash", 0.0)),
             ("mirror: event loop", lambda p: p.get("mirror", {}).get("event_loop", 0.0)),
             ("mirror: other threads (sendfile pool, workers)", lambda p: p.get("mirror", {}).get("other_threads", 0.0)),
             ("mirror: unattributed (threads that ended between samples)",
              lambda p: p.get("mirror", {}).get("unattributed", 0.0)),
             ("machine busy, CPU s", lambda p: p["cores_busy"] * p["wall_s"]),
             ("machine busy, cores (of 2)", lambda p: p["cores_busy"]),
             ("stolen by the hypervisor", lambda p: p["steal_s"])]
    lines = ["| CPU s | " + " | ".join(c[0] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, get in cells:
        if get is None:
            values = [f"{med(row, phase, lambda p: p.get('mirror', {}).get('receive', 0.0))} "
                      f"({med(row, phase, lambda p: p.get('mirror', {}).get('receive_system', 0.0))})"
                      if row != "direct" else "" for _, row, phase in columns]
        else:
            values = [med(row, phase, get) for _, row, phase in columns]
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    curls = [statistics.median(r[row]["curl_cpu_s"] for r in rounds) if phase == "during" else None
             for _, row, phase in columns]
    lines.append("| curl (user + system) | " + " | ".join("" if c is None else f"{c:.3f}" for c in curls) + " |")
    sums = [statistics.median(r[row]["cpu_sum_s"] for r in rounds) if phase == "during" else None
            for _, row, phase in columns]
    lines.append("| hubs + curl | " + " | ".join("" if c is None else f"{c:.3f}" for c in sums) + " |")
    sampler = statistics.median(r["first_through_mirror"]["until_kept"]["sampler_cpu_s"] for r in rounds)
    return "\n".join(lines) + f"\n\n(the bench's own sampler: {sampler:.3f} CPU s per first download)"


def main() -> None:
    size = int(os.environ.get("BENCH_MIRROR_MIB", "512")) * MiB
    rounds = int(os.environ.get("BENCH_MIRROR_ROUNDS", "3"))
    baseline_src = os.environ.get("BENCH_MIRROR_BASELINE_SRC")  # A/B: a second mirror running this src
    tmp = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    upstream = cache = None
    mirrors: dict[str, Hub] = {}
    try:
        upstream = Hub(tmp / "upstream", AICOMMONS_CHUNK_LFS_UPLOADS="false")
        mirrors["mirror"] = Hub(tmp / "mirror", AICOMMONS_CHUNK_LFS_UPLOADS="false",
                                AICOMMONS_UPSTREAM_URL=upstream.url)
        if baseline_src:
            mirrors["baseline"] = Hub(tmp / "baseline", AICOMMONS_CHUNK_LFS_UPLOADS="false",
                                      AICOMMONS_UPSTREAM_URL=upstream.url, PYTHONPATH=baseline_src)
        upstream.cli("org", "create", ORG, "--member", "bench")
        cache = NginxCache(upstream)
        results = {"size_mib": size // MiB, "baseline_src": baseline_src,
                   "rounds": [one_round(i, upstream, mirrors, cache, tmp, size) for i in range(rounds)]}
        (ROOT / "bench" / "mirror_results.json").write_text(json.dumps(results, indent=2) + "\n")
        print(report(results))
    finally:
        if cache is not None:
            cache.stop()
        for hub in (*mirrors.values(), upstream):
            if hub is not None:
                hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
