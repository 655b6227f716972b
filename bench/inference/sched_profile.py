"""Where the engine's compute goes when it runs inside the hub (issue 17), by scheduler statistics:

    python -m bench.inference.sched_profile --model-dir /work/cache/qwen2.5-0.5b [--rounds 3]

The same burst as ``cpu_bench --real-size`` (16 chats, 8 streams, 32 tokens, greedy) against:
``hub`` (a real hub, the model in its worker process, driven over HTTP by ``loadgen``),
``worker`` (the same worker process driven from this process through ``engines/process.py``: no API
process, no HTTP, no load generator) and ``engine_inprocess`` (the engine in this process);
``hub_file_weights`` and ``worker_file_weights`` are the same with ``HUGE_PAGE_WEIGHTS=false`` (the
weights left in the memory-mapped file, as before session 11). Rounds interleave the systems, and
the report says how each process's memory is mapped (``FilePmdMapped``, ``AnonHugePages``). For every thread of every process involved it records, from
``/proc/PID/task/TID/schedstat`` and ``sched``: CPU time, time spent runnable but waiting for a core
(run-queue wait), and voluntary/involuntary context switches; so a gap in tokens/s can be put on
the engine's compute threads being preempted (wait, involuntary switches) or doing more work (CPU).
``--spin`` runs a side process that wakes every ``--spin-period-ms`` and burns ``--spin-burn-us``
of CPU during the ``engine_inprocess`` bursts too (an experiment: does such a neighbour alone move
the gap?).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

from bench.inference import cpu_bench as cb
from bench.inference.hub_server import start_hub
from bench.inference.loadgen import run_chats
from bench.inference.overhead_profile import children

# Hubs (a real hub, HTTP) and workers driven directly, by name: their inference settings over hub_settings.
HUBS = {"hub": {}, "hub_file_weights": {"huge_page_weights": False}}
WORKERS = {"worker": {}, "worker_file_weights": {"huge_page_weights": False}}


def mapping_summary(pids: dict[str, int]) -> dict:
    """How each process's memory is mapped (MB): the weights file in 2 MiB entries (FilePmdMapped),
    anonymous memory in transparent huge pages (AnonHugePages)."""
    out = {}
    for name, pid in pids.items():
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {ln.split(":")[0]: int(ln.split()[1]) // 1024 for ln in lines if ln.endswith("kB")}
        if fields.get("Rss", 0) > 500:
            out[name] = {k: fields.get(k, 0) for k in ("Rss", "Anonymous", "AnonHugePages", "FilePmdMapped")}
    return out


def thread_stats(pid: int) -> dict[int, dict]:
    """Per thread of ``pid``: name, CPU ns, run-queue wait ns, voluntary/involuntary switches."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            run_ns, wait_ns, _ = (int(x) for x in (task / "schedstat").read_text().split())
            sched = (task / "sched").read_text()
            comm = (task / "comm").read_text().strip()
        except (OSError, ValueError):
            continue
        fields = {}
        for line in sched.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() in ("nr_voluntary_switches", "nr_involuntary_switches", "se.nr_migrations"):
                fields[name.strip()] = int(float(value))
        out[int(task.name)] = {"comm": comm, "cpu_ns": run_ns, "wait_ns": wait_ns,
                               "vol": fields.get("nr_voluntary_switches", 0),
                               "invol": fields.get("nr_involuntary_switches", 0),
                               "migr": fields.get("se.nr_migrations", 0)}
    return out


def diff_stats(before: dict[int, dict], after: dict[int, dict], requests: int) -> list[dict]:
    """Threads that ran during the burst, busiest first; times in ms per request."""
    rows = []
    for tid, a in after.items():
        b = before.get(tid, {"cpu_ns": 0, "wait_ns": 0, "vol": 0, "invol": 0, "migr": 0})
        cpu = (a["cpu_ns"] - b["cpu_ns"]) / 1e6
        if cpu <= 0.5:
            continue
        rows.append({"tid": tid, "comm": a["comm"], "cpu_ms": round(cpu, 1),
                     "wait_ms": round((a["wait_ns"] - b["wait_ns"]) / 1e6, 1),
                     "vol": a["vol"] - b["vol"], "invol": a["invol"] - b["invol"], "migr": a["migr"] - b["migr"]})
    rows.sort(key=lambda r: -r["cpu_ms"])
    return rows


def measure(pids: dict[str, int], fn) -> dict:
    before = {name: thread_stats(pid) for name, pid in pids.items()}
    out = fn()
    after = {name: thread_stats(pid) for name, pid in pids.items()}
    n = max(1, out["requests"])
    out["threads"] = {name: diff_stats(before[name], after[name], n) for name in pids}
    out["totals"] = {name: {k: round(sum(r[k] for r in rows), 1) for k in ("cpu_ms", "wait_ms", "vol", "invol")}
                     for name, rows in out["threads"].items()}
    return out


def _spin(period_ms: float, burn_us: float, stop) -> None:
    while not stop.is_set():
        time.sleep(period_ms / 1000)
        end = time.perf_counter() + burn_us / 1e6
        while time.perf_counter() < end:
            pass


def summary(name: str, row: dict) -> str:
    tot = " ".join(f"{p}: cpu {t['cpu_ms']:.0f} wait {t['wait_ms']:.0f} vol {t['vol']} invol {t['invol']}"
                   for p, t in row["totals"].items())
    return f"{name:18s} {row['output_tok_s']:6.2f} tok/s  {tot}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", default="hub,worker,engine_inprocess",
                        help=f"any of {', '.join([*HUBS, *WORKERS, 'engine_inprocess'])}")
    parser.add_argument("--worker-model-dir", type=Path,
                        help="the directly driven workers load this copy of the model (e.g. one written in "
                             "64 KiB pieces, as the hub stores files)")
    parser.add_argument("--hub-env", default="", help="extra AICOMMONS_INFERENCE_* settings of the hub: k=v,k=v")
    parser.add_argument("--spin", action="store_true")
    parser.add_argument("--spin-period-ms", type=float, default=25.0)
    parser.add_argument("--spin-burn-us", type=float, default=500.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    wanted = args.systems.split(",")
    report: dict = {"command": " ".join(sys.argv), "loadavg_before": cb.loadavg(), "rounds": []}
    me = os.getpid()
    bodies = cb.chat_bodies(cb.LLAMA_ID, args.requests, args.max_tokens)
    warm = cb.chat_bodies(cb.LLAMA_ID, 8, args.max_tokens)
    hubs, workers, engine = [], [], None
    systems: dict = {}
    try:
        for name, extra in HUBS.items():
            if name not in wanted:
                continue
            extra = {**extra, **dict(kv.split("=", 1) for kv in args.hub_env.split(",") if kv)}
            hub = start_hub(cb.free_port(), args.threads, {cb.LLAMA_ID: args.model_dir},
                            cb.hub_settings(args.threads, **extra))
            hubs.append(hub)
            url = f"{hub.url}/v1/chat/completions"
            run_chats(url, warm, args.concurrency)
            pids = {"api": hub.pid, "client": me}
            pids.update({f"worker{i}": pid for i, pid in enumerate(children(hub.pid))})
            systems[name] = (pids, lambda url=url: run_chats(url, bodies, args.concurrency))
        for name, extra in WORKERS.items():
            if name not in wanted:
                continue
            from aicommons.inference.engines.process import ProcessLM
            from aicommons.inference.settings import InferenceSettings
            from aicommons.inference.source import ResolvedModel

            settings = InferenceSettings.from_env({}, **cb.hub_settings(args.threads, **extra))
            worker = ProcessLM.load(ResolvedModel(cb.LLAMA_ID, "0" * 40, args.worker_model_dir or args.model_dir),
                                    settings)
            workers.append(worker)
            runner = asyncio.Runner()  # one loop for every burst: the client's reader thread is bound to it
            cb.run_inprocess(worker, warm, args.concurrency, runner)
            systems[name] = ({"client": me, "worker": worker.worker_pid},
                             lambda w=worker, r=runner: cb.run_inprocess(w, bodies, args.concurrency, r))
        if "engine_inprocess" in wanted:
            engine = cb.inprocess_engine(args.model_dir, args.threads)
            cb.run_inprocess(engine, warm, args.concurrency)
            systems["engine_inprocess"] = ({"self": me}, lambda: cb.run_inprocess(engine, bodies, args.concurrency))
        report["memory"] = {name: mapping_summary(pids) for name, (pids, _) in systems.items()}
        print(json.dumps(report["memory"]), flush=True)
        spin_stop = spinner = None
        if args.spin:
            ctx = multiprocessing.get_context("fork")
            spin_stop = ctx.Event()
            spinner = ctx.Process(target=_spin, args=(args.spin_period_ms, args.spin_burn_us, spin_stop), daemon=True)
        for _ in range(args.rounds):
            row = {"loadavg": " ".join(cb.loadavg())}
            for name, (pids, fn) in systems.items():
                row[name] = measure(pids, fn)
                print(summary(name, row[name]), flush=True)
            report["rounds"].append(row)
        if spinner is not None and engine is not None:
            spinner.start()
            for _ in range(args.rounds):
                row = {"loadavg": " ".join(cb.loadavg()), "spin": True}
                row["engine_inprocess_spin"] = measure({"self": me, "spin": spinner.pid},
                                                       lambda: cb.run_inprocess(engine, bodies, args.concurrency))
                print(summary("engine+spin", row["engine_inprocess_spin"]), flush=True)
                report["rounds"].append(row)
            spin_stop.set()
            spinner.join(5)
    finally:
        if engine is not None:
            engine.close()
        for worker in workers:
            worker.close()
        for hub in hubs:
            hub.stop()
    cb.finish_report(report, args.json)


if __name__ == "__main__":
    main()
