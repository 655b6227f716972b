"""``make bench-upload``: uploads at line rate (issue 21), side by side with the least work an upload needs.

One fresh ``aicommons serve`` (SQLite + local disk, as ``bench/storage.py`` starts it) and one nginx
with WebDAV ``PUT`` to disk (started here), the stock clients (huggingface_hub 2.4 + hf_xet, each
upload in a new process with an empty Xet cache, as from another machine). Every round writes fresh
random bytes and measures, in this order:

- baseline: ``sha256sum`` of the file, then ``curl -T`` of it to nginx (what any upload must do:
  hash once, send once, write once);
- ``HfApi.upload_file`` through LFS (``HF_HUB_DISABLE_XET=1``) and through Xet (stock hf_xet);
- 100 files of 10 MiB: the same bytes hashed and PUT to nginx by 8 threads, vs one ``upload_folder``
  (Xet, the client's default, and LFS);
- a 4 KiB change to the (already stored) file of the Xet row, uploaded again through Xet: time and
  how many bytes the store grew by (only the changed chunks should travel and be written).

The client's time is measured inside its process around the upload call (Python start-up and imports
are not the hub's). For every hub row: the server's CPU seconds during the upload (``/proc``: its
share of the work), its peak RSS (sampled every 50 ms; flat means no body or file held whole) and,
after an LFS upload, how long the background job took to chunk it (not counted in the upload, and
waited for, so that it never overlaps the next measurement). Medians of ``BENCH_UPLOAD_ROUNDS``
(3) rounds; the load average before and after is printed, since the box is shared.

``--profile DIR``: one more round first, left out of the medians, with the server recorded by py-spy
(``--nonblocking``) during its LFS, Xet and folder uploads (``DIR/<row>.txt``: collapsed stacks,
plus a summary by innermost and inclusive frame, ``DIR/<row>-top.txt``).

Settings: ``BENCH_UPLOAD_MIB`` (1024) is the one-file size, ``BENCH_UPLOAD_ROUNDS`` (3).
Writes ``bench/upload_results.json`` and prints the table of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.metadata.snapshot import NGINX_CONF, StaticNginx
from bench.storage import PY, TOKEN, USER, Hub, create, free_port

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024

# bench/metadata/snapshot.py's nginx, taking WebDAV PUTs: each body goes to its client_body_temp_path
# (same filesystem) and is renamed into place, one write.
NGINX_DAV_CONF = NGINX_CONF.replace("        root {root}/www;\n", """        root {root}/www;
        client_max_body_size 0;
        dav_methods PUT;
        create_full_put_path on;
""")

# The client side of each hub row, timed inside the process around the upload call only.
UPLOAD_FILE = """
import sys, time
from huggingface_hub import HfApi
endpoint, token, repo, path, name = sys.argv[1:6]
api = HfApi(endpoint=endpoint, token=token)
t = time.perf_counter()
api.upload_file(path_or_fileobj=path, path_in_repo=name, repo_id=repo)
print(time.perf_counter() - t)
"""
UPLOAD_FOLDER = """
import sys, time
from huggingface_hub import HfApi
endpoint, token, repo, path = sys.argv[1:5]
api = HfApi(endpoint=endpoint, token=token)
t = time.perf_counter()
api.upload_folder(folder_path=path, repo_id=repo)
print(time.perf_counter() - t)
"""


class DavNginx(StaticNginx):
    """nginx accepting WebDAV PUTs to disk (written once, then renamed)."""

    def __init__(self) -> None:
        super().__init__({"probe": b"ok"}, "", free_port())
        user = "user root;" if os.geteuid() == 0 else ""
        (self.root / "nginx.conf").write_text(NGINX_DAV_CONF.format(user=user, root=self.root, port=self.port))
        self.start("/probe")

    def clear(self) -> None:
        for path in (self.root / "www").iterdir():
            if path.name != "probe":
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def random_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
        f.write(os.urandom(size % MiB))
        f.flush()
        os.fsync(f.fileno())  # on disk before the clock starts: no row pays for writing the input
    return path


def random_folder(folder: Path) -> Path:
    folder.mkdir()
    for i in range(100):
        random_file(folder / f"shard-{i:03d}.bin", 10 * MiB)
    return folder


def drop_file(path: Path) -> None:
    path.unlink(missing_ok=True)


# --- measuring the server ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class Watch:
    """While an upload runs: the server's peak RSS (sampled) and CPU seconds; optionally py-spy."""

    def __init__(self, hub: Hub, profile: Path | None = None):
        self.hub, self.profile = hub, profile
        self.peak, self.peak_anon, self._stop = 0.0, 0.0, threading.Event()
        self._spy: subprocess.Popen | None = None

    def __enter__(self) -> Watch:
        self.rss_before = self.hub.rss_mib()
        self.anon_before = self.hub.rss_mib("RssAnon")
        self.cpu_before = cpu_seconds(self.hub.process.pid)
        if self.profile is not None:
            spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
            self._spy = subprocess.Popen([spy, "record", "--pid", str(self.hub.process.pid), "--format", "raw",
                                          "--rate", "200", "--nonblocking", "-o", str(self.profile)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached before the upload starts
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.hub.rss_mib())
            self.peak_anon = max(self.peak_anon, self.hub.rss_mib("RssAnon"))
            self._stop.wait(0.05)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        user, system = cpu_seconds(self.hub.process.pid)
        self.user, self.system = user - self.cpu_before[0], system - self.cpu_before[1]
        self.cpu = self.user + self.system
        if self._spy is not None:
            self._spy.send_signal(signal.SIGINT)
            try:
                self._spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._spy.kill()
            if self.profile is not None and self.profile.exists():
                summarize(self.profile)


IDLE = ("Condition.wait ", "Event.wait ", "Queue.get ", "BaseSelector.select", "EpollSelector.select",
        "_wait_for_tstate_lock")


def summarize(raw: Path, top: int = 40) -> None:
    """``<name>-top.txt``: share of samples per innermost project/library frame, and per frame anywhere."""
    self_counts: collections.Counter[str] = collections.Counter()
    total_counts: collections.Counter[str] = collections.Counter()
    samples = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if frames and frames[-1].startswith(IDLE):  # a thread waiting (py-spy counts some waits as busy)
            idle += n
            samples -= n
            continue
        if frames:
            self_counts[frames[-1]] += n
        for frame in set(frames):
            total_counts[frame] += n
    lines = [f"{samples} samples (200 Hz; {idle} more of threads waiting left out)", "",
             "innermost frame (self; Runner.run = the event loop in uvloop's C code: socket reads, or waiting):"]
    lines += [f"{100 * n / samples:5.1f}%  {f}" for f, n in self_counts.most_common(top)] if samples else []
    lines += ["", "anywhere on the stack (inclusive):"]
    lines += [f"{100 * n / samples:5.1f}%  {f}" for f, n in total_counts.most_common(top)] if samples else []
    raw.with_name(raw.stem + "-top.txt").write_text("\n".join(lines) + "\n")


# --- the rows ------------------------------------------------------------------------------------------


def client(hub: Hub, tmp: Path, script: str, args: list[str], *, xet: bool) -> float:
    env = {**hub.env, "HF_HOME": tempfile.mkdtemp(dir=tmp), "HF_XET_CACHE": tempfile.mkdtemp(dir=tmp)}
    if not xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    done = subprocess.run([PY, "-c", script, hub.url, TOKEN, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"upload failed: {done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def hub_row(hub: Hub, tmp: Path, script: str, args: list[str], *, xet: bool, profile: Path | None) -> dict:
    with Watch(hub, profile) as watch:
        start = children_cpu()
        seconds = client(hub, tmp, script, args, xet=xet)
        client_cpu = children_cpu() - start  # the whole client process, start-up included
    return {"s": seconds, "server_cpu_s": watch.cpu, "server_sys_s": watch.system, "client_cpu_s": client_cpu, "rss_before_mib": watch.rss_before, "rss_peak_mib": watch.peak,
            "anon_before_mib": watch.anon_before, "anon_peak_mib": watch.peak_anon}


def wait_chunked(hub: Hub, repo: str, names: list[str], timeout: float = 1800) -> float:
    """Seconds until every file is a Xet file too (the LFS chunking job), polled every 0.2 s."""
    start = time.perf_counter()
    deadline = time.time() + timeout
    auth = {"Authorization": f"Bearer {TOKEN}"}
    while time.time() < deadline:
        entries = httpx.post(f"{hub.url}/api/models/{repo}/paths-info/main", json={"paths": names},
                             headers=auth, timeout=60).json()
        if len(entries) == len(names) and all(e.get("xetHash") for e in entries):
            return time.perf_counter() - start
        time.sleep(0.2)
    raise RuntimeError(f"{repo} was never chunked")


def xet_bytes(hub: Hub) -> int:
    base = hub.data / "blobs" / "xet"
    return sum(p.stat().st_size for p in base.rglob("*") if p.is_file()) if base.exists() else 0


def baseline_one(nginx: DavNginx, path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    subprocess.run(["curl", "-sf", "-T", str(path), f"{nginx.url}/{path.name}"], check=True)
    return time.perf_counter() - start


def baseline_folder(nginx: DavNginx, folder: Path, threads: int = 8) -> float:
    files = sorted(folder.iterdir())

    def one(path: Path) -> None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(MiB):
                h.update(block)
        subprocess.run(["curl", "-sf", "-T", str(path), f"{nginx.url}/folder/{path.name}"], check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - start


def file_rows(index: int, hub: Hub, tmp: Path, size: int, profile: Path | None, prefix: str) -> dict:
    out: dict = {}
    path = random_file(tmp / f"round{index}-lfs.bin", size)  # each row its own bytes: no dedup across rows
    repo = create(hub, f"lfs-{index}")
    out["lfs"] = hub_row(hub, tmp, UPLOAD_FILE, [repo, str(path), "big.bin"], xet=False,
                         profile=profile / "lfs.txt" if profile else None)
    out["lfs"]["chunked_after_s"] = wait_chunked(hub, repo, ["big.bin"])
    drop_file(path)

    path = random_file(tmp / f"round{index}-xet.bin", size)
    repo = create(hub, f"xet-{index}")
    out["xet"] = hub_row(hub, tmp, UPLOAD_FILE, [repo, str(path), "big.bin"], xet=True,
                         profile=profile / "xet.txt" if profile else None)
    # A 4 KiB change in the middle of the file just stored; a fresh client (empty cache).
    with open(path, "r+b") as f:
        f.seek(size // 2 + 12345)
        f.write(os.urandom(4096))
    before = xet_bytes(hub)
    out["xet_4k_change"] = hub_row(hub, tmp, UPLOAD_FILE, [repo, str(path), "big.bin"], xet=True, profile=None)
    out["xet_4k_change"]["stored_growth_bytes"] = xet_bytes(hub) - before
    drop_file(path)
    return {prefix + k: v for k, v in out.items()}


def folder_rows(index: int, hub: Hub, tmp: Path, profile: Path | None, prefix: str) -> dict:
    out: dict = {}
    folder = random_folder(tmp / f"folder{index}-xet")
    out["folder_xet"] = hub_row(hub, tmp, UPLOAD_FOLDER, [create(hub, f"folder-xet-{index}"), str(folder)], xet=True,
                                profile=profile / "folder-xet.txt" if profile else None)
    shutil.rmtree(folder)
    folder = random_folder(tmp / f"folder{index}-lfs")
    repo = create(hub, f"folder-lfs-{index}")
    out["folder_lfs"] = hub_row(hub, tmp, UPLOAD_FOLDER, [repo, str(folder)], xet=False,
                                profile=profile / "folder-lfs.txt" if profile else None)
    out["folder_lfs"]["chunked_after_s"] = wait_chunked(hub, repo, [p.name for p in sorted(folder.iterdir())])
    shutil.rmtree(folder)
    return {prefix + k: v for k, v in out.items()}


def cleanup(hub: Hub) -> None:
    """Delete every repo of the round and collect its blobs, so that the disk holds one round at a time."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for repo in httpx.get(f"{hub.url}/api/models", params={"author": USER, "limit": 1000}, headers=auth).json():
        name = repo["id"].split("/", 1)[1]
        httpx.request("DELETE", f"{hub.url}/api/repos/delete", json={"name": name, "type": "model"},
                      headers=auth, timeout=120).raise_for_status()
    hub.cli("gc", "--apply", "--grace-hours", "0")


def one_round(index: int, hubs: dict[str, Hub], nginx: DavNginx, tmp: Path, size: int,
              profile: Path | None) -> dict:
    """Baseline, then each hub's rows (``hubs``: prefix -> hub; the order alternates between rounds)."""
    out: dict = {"load_before": os.getloadavg()[0]}
    order = list(hubs.items())[::-1 if index % 2 else 1]
    path = random_file(tmp / f"round{index}.bin", size)
    nginx.clear()
    out["baseline"] = {"s": baseline_one(nginx, path)}
    nginx.clear()
    drop_file(path)
    for prefix, hub in order:
        out.update(file_rows(index, hub, tmp, size, profile if not prefix else None, prefix))
    folder = random_folder(tmp / f"folder{index}")
    out["folder_baseline"] = {"s": baseline_folder(nginx, folder)}
    nginx.clear()
    shutil.rmtree(folder)
    for prefix, hub in order:
        out.update(folder_rows(index, hub, tmp, profile if not prefix else None, prefix))
    out["load_after"] = os.getloadavg()[0]
    for hub in hubs.values():
        cleanup(hub)
    return out


ROWS = [("baseline", None), ("lfs", "baseline"), ("xet", "baseline"), ("xet_4k_change", "baseline"),
        ("folder_baseline", None), ("folder_xet", "folder_baseline"), ("folder_lfs", "folder_baseline")]
BEFORE = "before:"
LABELS = {
    "baseline": "baseline: `sha256sum` + `curl -T` to nginx (WebDAV PUT to disk)",
    "lfs": "`HfApi.upload_file`, LFS (`HF_HUB_DISABLE_XET=1`)",
    "xet": "`HfApi.upload_file`, Xet (stock hf_xet)",
    "xet_4k_change": "4 KiB changed in that file, uploaded again through Xet",
    "folder_baseline": "100 × 10 MiB: sha256 + PUT to nginx, 8 threads",
    "folder_xet": "100 × 10 MiB, one `upload_folder`, Xet",
    "folder_lfs": "100 × 10 MiB, one `upload_folder`, LFS",
}


def rows(results: dict) -> list[tuple[str, str | None]]:
    """(row, its baseline row) for every row measured: ours, then the comparison hub's (``before:``)."""
    found = [(name, base) for name, base in ROWS if name in results["rounds"][0]]
    found += [(BEFORE + name, base) for name, base in ROWS if BEFORE + name in results["rounds"][0]]
    return found


def medians(results: dict) -> dict:
    out: dict = {}
    for name, _ in rows(results):
        keys = results["rounds"][0][name].keys()
        out[name] = {k: statistics.median(r[name][k] for r in results["rounds"]) for k in keys}
    return out


def report(results: dict) -> str:
    m = results["median"]
    size = results["size_mib"]
    lines = [f"{size} MiB one file (folder rows: 100 × 10 MiB); median of {len(results['rounds'])} rounds; "
            f"load average {results['load_before']:.2f} before, {results['load_after']:.2f} after",
             "", "| Upload | median | vs. baseline | CPU: server / client (server's share) | server memory before → peak: anonymous (all RSS) |", "|---|---|---|---|---|"]
    for name, base in rows(results):
        row = m[name]
        ratio = f"{m[base]['s'] / row['s']:.2f}×" if base else "1.0×"
        cpu = (f"{row['server_cpu_s']:.1f} s / {row['client_cpu_s']:.1f} s "
               f"({100 * row['server_cpu_s'] / (row['server_cpu_s'] + row['client_cpu_s']):.0f} %)") \
            if "server_cpu_s" in row else ""
        if "server_sys_s" in row:  # the kernel's part of the server's CPU (page cache, sockets)
            cpu += f"; server system {row['server_sys_s']:.1f} s"
        rss = (f"{row['anon_before_mib']:.0f} → {row['anon_peak_mib']:.0f} MiB "
               f"({row['rss_before_mib']:.0f} → {row['rss_peak_mib']:.0f})") if "rss_peak_mib" in row else ""
        extra = ""
        if "chunked_after_s" in row:
            extra = f" (+ chunked {row['chunked_after_s']:.1f} s later, in the background)"
        if "stored_growth_bytes" in row:
            extra = f" (store grew {row['stored_growth_bytes'] / MiB:.2f} MiB)"
        label = LABELS[name.removeprefix(BEFORE)] + (f" — {results['before_label']}" if name.startswith(BEFORE) else "")
        lines.append(f"| {label}{extra} | {row['s']:.2f} s | {ratio} | {cpu} | {rss} |")
    paired = [(name, base) for name, base in rows(results) if name.startswith(BEFORE)]
    if paired:
        lines += ["", f"Paired, round by round (same round, same load): {results['before_label']} time / this "
                      "hub's time, median [min–max]:", ""]
        for name, _ in paired:
            ours = name.removeprefix(BEFORE)
            ratios = sorted(r[name]["s"] / r[ours]["s"] for r in results["rounds"])
            lines.append(f"- {LABELS[ours]}: {statistics.median(ratios):.2f}× [{ratios[0]:.2f}–{ratios[-1]:.2f}]")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, help="an extra round with the server recorded by py-spy, into this folder")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "upload_results.json")
    args = parser.parse_args()
    size = int(os.environ.get("BENCH_UPLOAD_MIB", "1024")) * MiB
    rounds = int(os.environ.get("BENCH_UPLOAD_ROUNDS", "3"))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    if shutil.disk_usage(tmp).free < 16 * size + 4 * 1024 * MiB:  # a round on two hubs, and room to spare
        raise SystemExit(f"not enough free disk in {tmp} for rounds of {size // MiB} MiB")
    hubs = {"": Hub(tmp / "hub")}
    before_src = os.environ.get("BENCH_UPLOAD_BEFORE_SRC")
    if before_src:  # the same rows on a hub running other code (e.g. main before this change), interleaved
        saved = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = os.pathsep.join([before_src, *saved.split(os.pathsep)[1:]])
        try:
            hubs[BEFORE] = Hub(tmp / "before")
        finally:
            os.environ["PYTHONPATH"] = saved
    nginx = DavNginx()
    results: dict = {"before_label": os.environ.get("BENCH_UPLOAD_BEFORE_LABEL", "before"), "size_mib": size // MiB, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0],
                     "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rounds": []}
    try:
        if args.profile:  # an extra round, left out of the medians: the profiler costs the server time
            results["profiled_round"] = one_round(rounds, {"": hubs[""]}, nginx, tmp, size, args.profile)
        for i in range(rounds):
            results["rounds"].append(one_round(i, hubs, nginx, tmp, size, None))
            print(f"round {i + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        for hub in hubs.values():
            hub.stop()
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_after"] = os.getloadavg()[0]
    results["median"] = medians(results)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))


if __name__ == "__main__":
    main()
