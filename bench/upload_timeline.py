"""A timeline of one Xet ``upload_folder`` (issue 21): what the client waits for.

One fresh hub (as ``bench/storage.py`` starts it) whose app is wrapped in a timing middleware (every
request: method, path, when the app got it, when its body was read, when the answer started, when it
ended, body bytes), the stock client (``upload_folder`` of 100 × 10 MiB of fresh random bytes, a
new process with an empty Xet cache, hf_xet logging at ``info`` with its concurrency controller
logged every 250 ms), and the CPU of both processes sampled every 50 ms from ``/proc`` (per thread
name for the client: hf_xet's tokio workers and blocking threads).

    flock /work/locks/broad.lock flock /work/locks/bench.lock env PYTHONPATH=src:. \\
        python -m bench.upload_timeline --out bench/upload_profiles/session11/timeline-main.json

``--files``/``--mib`` change the folder; ``--src`` runs the hub from another source tree (main's, to
compare); ``--perf FILE`` records the server with ``perf record -g`` (where its system CPU goes);
``--py-spy FILE`` (``--gil``: only the thread holding the GIL) records the server;
``--switch-interval`` sets the hub's ``sys.setswitchinterval`` (an experiment: 0.5 ms changed
nothing, session 11). Prints per route: count, latency summed and median, the part until the app
had read the whole body and the app's work after it; then hf_xet's upload concurrency, and the
100 ms timeline (CPU of each side, requests in flight by route), with the count of steps where the
two processes together used less than one of the box's two cores. ``--analyse`` reprints a saved run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.storage import PY, TOKEN, Hub, create
from bench.upload_bench import UPLOAD_FOLDER, random_file

MiB = 1024 * 1024

# The hub, its app wrapped so that every HTTP request is written down (one JSON line each).
LAUNCHER = r"""
import json, sys, time
import aicommons.app as app_module

LOG = open(sys.argv[1], "a", buffering=1)
if len(sys.argv) > 2:  # an experiment: the interpreter's GIL switch interval (5 ms by default)
    sys.setswitchinterval(float(sys.argv[2]))
create_app = app_module.create_app


class Timing:
    def __init__(self, app):
        self.app, self.state = app, app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rec = {"m": scope["method"], "p": scope["path"], "t0": time.time(), "in": 0, "out": 0}

        async def timed_receive():
            message = await receive()
            if message["type"] == "http.request":
                rec.setdefault("t_first", time.time())
                rec["in"] += len(message.get("body", b""))
                if not message.get("more_body"):
                    rec["t_body"] = time.time()
            return message

        async def timed_send(message):
            if message["type"] == "http.response.start":
                rec["status"], rec["t_resp"] = message["status"], time.time()
            elif message["type"] == "http.response.body":
                rec["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, timed_receive, timed_send)
        finally:
            rec["t1"] = time.time()
            LOG.write(json.dumps(rec) + "\n")


app_module.create_app = lambda *a, **k: Timing(create_app(*a, **k))
from aicommons.cli.main import main

sys.argv = ["aicommons", "serve"]
sys.exit(main())
"""


def start_hub(root: Path, log: Path, src: str | None, switch_interval: float | None = None) -> Hub:
    real = subprocess.Popen
    saved = os.environ.get("PYTHONPATH")

    def popen(cmd, *args, **kwargs):
        if list(cmd[1:]) == ["-m", "aicommons.cli.main", "serve"]:
            cmd = [PY, "-c", LAUNCHER, str(log), *([str(switch_interval)] if switch_interval else [])]
        return real(cmd, *args, **kwargs)

    if src:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *(saved or "").split(os.pathsep)[1:]])
    subprocess.Popen = popen  # type: ignore[misc]
    try:
        return Hub(root)
    finally:
        subprocess.Popen = real  # type: ignore[misc]
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def process_cpu(pid: int) -> float:
    """CPU seconds so far of the whole process (its ended threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def anon_mib(pid: int) -> float:
    """The process's resident anonymous memory (MiB): what it holds itself, not the page cache."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return -1.0


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds so far of the whole process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


# ``--perf-stat``: how often the hub's threads hand off to each other (futex waits and wakes, context
# switches) and the system calls that move the body, per upload.
PERF_EVENTS = ("context-switches", "cpu-migrations", "page-faults", "syscalls:sys_enter_futex",
               "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_read", "syscalls:sys_enter_write",
               "syscalls:sys_enter_epoll_ctl", "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_munmap",
               "syscalls:sys_enter_mmap")


def threads_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of ``pid``, summed by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = collections.defaultdict(float)
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return {}
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[name.rstrip("0123456789-_ ") or name] += (int(fields[11]) + int(fields[12])) / tick
    return dict(out)


class Sampler:
    def __init__(self, pids: dict[str, int], period: float = 0.05):
        self.pids, self.period = pids, period
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample: dict = {"t": time.time()}
            for name, pid in self.pids.items():
                sample[name], sample[name + "_threads"] = process_cpu(pid), threads_cpu(pid)
                sample[name + "_anon"] = anon_mib(pid)
            self.samples.append(sample)
            self._stop.wait(self.period)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="upload-timeline-"))
    try:
        folder = tmp / "folder"
        folder.mkdir()
        for i in range(args.files):
            random_file(folder / f"shard-{i:03d}.bin", args.mib * MiB)
        requests_log = tmp / "requests.jsonl"
        hub = start_hub(tmp / "hub", requests_log, args.src, args.switch_interval)
        try:
            repo = create(hub, "timeline")
            xet_log = tmp / "hf_xet.log"
            env = {**hub.env, "HF_HOME": tempfile.mkdtemp(dir=tmp), "HF_XET_CACHE": tempfile.mkdtemp(dir=tmp),
                   "RUST_LOG": "info", "HF_XET_LOG_DEST": str(xet_log), "HF_XET_LOG_FORMAT": "json",
                   "HF_XET_CLIENT_AC_LOGGING_INTERVAL_MS": "250"}
            if getattr(args, "lfs", False):  # the LFS path instead: 100 PUTs, each hashed by the server
                env["HF_HUB_DISABLE_XET"] = "1"
            script = UPLOAD_FOLDER.replace("t = time.perf_counter()", "t = time.perf_counter(); print(time.time())")
            time.sleep(0.5)
            requests_log.write_text("")  # health probes and the repo's creation are not the upload
            proc = subprocess.Popen([PY, "-c", script, hub.url, TOKEN, repo, str(folder)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen([str(Path(PY).with_name("py-spy")), "record", "--pid", str(hub.process.pid),
                                        "--format", "raw", "--threads", "--rate", "200", "--nonblocking",
                                        "-o", str(args.py_spy), *(["--gil"] if args.gil else [])],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            perf = None
            if args.perf:  # kernel and native frames too: where the system CPU goes (page cache, sockets)
                perf = subprocess.Popen(["perf", "record", "-g", *(["-e", args.perf_event] if args.perf_event else ["-F", "997"]), "-p", str(hub.process.pid),
                                         "-o", str(args.perf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stat = None
            if args.perf_stat:  # counts over the whole upload, every thread of the hub (ended ones too)
                stat_file = tmp / "perf-stat.csv"
                stat = subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(PERF_EVENTS), "-p",
                                         str(hub.process.pid), "-o", str(stat_file)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cpu_before = process_cpu_split(hub.process.pid)
            with Sampler({"client": proc.pid, "server": hub.process.pid}) as sampler:
                out, err = proc.communicate()
            cpu_after = process_cpu_split(hub.process.pid)
            stat_counts: dict[str, float] = {}
            if stat is not None:
                stat.send_signal(signal.SIGINT)
                stat.wait(timeout=60)
                for line in stat_file.read_text().splitlines():
                    fields = line.split(",")
                    if len(fields) > 2 and fields[0].replace(".", "").isdigit():
                        stat_counts[fields[2]] = float(fields[0])
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait(timeout=60)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            if proc.returncode:
                raise RuntimeError(err[-3000:])
            started, seconds = (float(x) for x in out.split()[-2:])
            time.sleep(0.3)
            requests = [json.loads(line) for line in requests_log.read_text().splitlines() if line]
        finally:
            hub.stop()
        xet_lines = xet_log.read_text(errors="replace").splitlines() if xet_log.exists() else []
        # Kept: the upload concurrency controller's decisions, and how often each message came.
        messages = [json.loads(line) for line in xet_lines if line.startswith("{")]
        concurrency = [(m["timestamp"], m["fields"].get("message", "")) for m in messages
                       if "Concurrency control for upload" in m["fields"].get("message", "")]
        counts = collections.Counter(m["fields"].get("message", "")[:80] for m in messages)
        return {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "files": args.files,
                "mib": args.mib, "src": args.src or "this tree", "switch_interval": args.switch_interval, "load_before": args.load_before,
                "load_after": os.getloadavg()[0], "upload_start": started, "upload_s": seconds,
                "requests": requests, "cpu": sampler.samples,
                "server_user_sys": [a - b for a, b in zip(cpu_after, cpu_before)], "perf_stat": stat_counts, "hf_xet_concurrency": concurrency,
                "hf_xet_messages": counts.most_common(40)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- reading it ---------------------------------------------------------------------------------------


def _unix(timestamp: str) -> float:
    """Seconds since the epoch of hf_xet's RFC 3339 UTC timestamps."""
    import datetime

    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def route(rec: dict) -> str:
    path = rec["p"]
    for key, name in (("/v1/xorbs/", "xorb"), ("/v1/shards", "shard"), ("/v2/shards", "v2-shard(probe)"),
                      ("/v1/xorb-grants", "xorb-grant(probe)"), ("/v1/chunks/", "dedup"),
                      ("/xet-write-token", "token"), ("/preupload", "preupload"), ("/commit/", "commit"),
                      ("/telemetry", "telemetry")):
        if key in path:
            return name
    return rec["m"] + " " + path


def analyse(result: dict, step: float = 0.1) -> str:
    t0 = result["upload_start"]
    reqs = sorted(result["requests"], key=lambda r: r["t0"])
    lines = [f"{result['files']} × {result['mib']} MiB upload_folder: {result['upload_s']:.2f} s "
             f"(hub: {result['src']}; {result['when']}, load {result['load_before']:.2f} → {result['load_after']:.2f})", ""]
    by: dict[str, list[dict]] = collections.defaultdict(list)
    for r in reqs:
        by[route(r)].append(r)
    lines.append("| route | n | status | bytes in | sum of latency | median | before body read end | app after body |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for name, rs in sorted(by.items(), key=lambda kv: kv[1][0]["t0"]):
        lat = sorted(r["t1"] - r["t0"] for r in rs)
        body = sum(r.get("t_body", r["t0"]) - r["t0"] for r in rs)
        after = sum(r["t1"] - r.get("t_body", r["t0"]) for r in rs)
        statuses = ",".join(sorted({str(r.get("status")) for r in rs}))
        lines.append(f"| {name} | {len(rs)} | {statuses} | {sum(r['in'] for r in rs) / MiB:.1f} MiB | "
                     f"{sum(lat):.2f} s | {1000 * lat[len(lat) // 2]:.0f} ms | {body:.2f} s | {after:.2f} s |")
    samples = result["cpu"]
    end = t0 + result["upload_s"]
    first_req, last_req = reqs[0]["t0"] - t0, reqs[-1]["t1"] - t0
    lines += ["", f"first request at +{first_req:.2f} s, last ends at +{last_req:.2f} s; CPU while the client ran:"]
    for side in ("client", "server"):
        cpu = [s[side] for s in samples if s[side] >= 0]
        most: dict[str, float] = {}
        for s in samples:
            for name, sec in s[side + "_threads"].items():
                most[name] = max(most.get(name, 0.0), sec - samples[0][side + "_threads"].get(name, 0.0))
        lines.append(f"  {side}: {cpu[-1] - cpu[0]:.2f} CPU-s; by thread name (threads alive when sampled): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in sorted(most.items(), key=lambda kv: -kv[1])[:6]))
    gib = result["files"] * result["mib"] / 1024
    anon = [s["server_anon"] for s in samples if s.get("server_anon", -1) >= 0]
    if anon:
        lines.append(f"  server anonymous memory: {anon[0]:.0f} MiB at the start, at most {max(anon):.0f}, "
                     f"{anon[-1]:.0f} at the end")
    if result.get("server_user_sys"):
        user, system = result["server_user_sys"]
        lines.append(f"  server per GiB uploaded: {(user + system) / gib:.2f} CPU-s (user {user / gib:.2f}, "
                     f"sys {system / gib:.2f})")
    if result.get("perf_stat"):
        lines.append("  server counts per GiB: " + ", ".join(
            f"{name.removeprefix('syscalls:sys_enter_')} {count / gib:.0f}" for name, count in result["perf_stat"].items()))
    changes = [f"{text.split(';')[0].split(': ')[-1]} at +{_unix(when) - t0:.2f} s"
               for when, text in result.get("hf_xet_concurrency", []) if "Increased" in text or "Decreased" in text]
    lines += ["", "hf_xet's upload concurrency (starts at 2): " + ("; ".join(changes) or "never changed")]
    lines += ["", "time | client CPU % | server CPU % | in flight (route: n) | started in the step",
              "---|---|---|---|---"]
    idle = []
    t = t0
    i = 0
    while t < end + step:
        while i + 1 < len(samples) and samples[i + 1]["t"] <= t:
            i += 1
        j = i
        while j + 1 < len(samples) and samples[j]["t"] < t + step:
            j += 1
        dt = samples[j]["t"] - samples[i]["t"] or step
        c = (samples[j]["client"] - samples[i]["client"]) / dt if samples[j]["client"] >= 0 else 0.0
        s = (samples[j]["server"] - samples[i]["server"]) / dt
        flying = collections.Counter(route(r) for r in reqs if r["t0"] < t + step and r["t1"] > t)
        started = collections.Counter(route(r) for r in reqs if t <= r["t0"] < t + step)
        lines.append(f"+{t - t0:5.1f} | {100 * c:4.0f} | {100 * s:4.0f} | "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(flying.items()))} | "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(started.items()))}")
        if c + s < 1.0:
            idle.append((t - t0, c + s, flying))
        t += step
    lines += ["", f"steps with client + server under one core: {len(idle)} of {int(result['upload_s'] / step) + 1}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--src", help="run the hub from this source tree (e.g. /work/main/src)")
    parser.add_argument("--py-spy", type=Path, help="record the server with py-spy (raw, by thread) into this file")
    parser.add_argument("--switch-interval", type=float, help="the hub's sys.setswitchinterval (an experiment)")
    parser.add_argument("--perf", type=Path, help="record the server with perf (kernel and native frames) into this file")
    parser.add_argument("--perf-event", help="with --perf: record this event (e.g. page-faults) instead of CPU cycles")
    parser.add_argument("--perf-stat", action="store_true",
                        help="count the hub's context switches, futex calls and body syscalls (perf stat)")
    parser.add_argument("--lfs", action="store_true", help="upload through LFS (HF_HUB_DISABLE_XET=1) instead of Xet")
    parser.add_argument("--gil", action="store_true", help="with --py-spy: only the thread holding the GIL")
    parser.add_argument("--analyse", action="store_true", help="only print the analysis of --out")
    args = parser.parse_args()
    if not args.analyse:
        args.load_before = os.getloadavg()[0]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(run(args)) + "\n")
    result = json.loads(args.out.read_text())
    text = analyse(result)
    args.out.with_suffix(".txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
