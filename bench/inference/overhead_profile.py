"""Where the hub's per-request time goes over the engine alone (issue 17), without the full benchmark:

    python -m bench.inference.overhead_profile [--shape qwen2.5-0.5b] [--model-dir DIR] [--rounds 2]

The same burst as ``cpu_bench --real-size`` (16 chats, 8 streams, 32 tokens, greedy) against:
``hub`` (the model in its worker process), ``hub_thread`` (a hub with the engine in the hub's own
process, ``ISOLATION=thread``: the HTTP path without the worker), ``hub_no_burst_wait`` (a hub with
``BURST_WAIT_STEPS=0``, as before session 10) and ``engine_inprocess`` (our engine driven in this
process). Rounds interleave the systems. Each result carries the CPU seconds of every
process involved, split by thread, so the extra milliseconds per request can be put on a process
and a thread; ``--py-spy DIR`` records the hub's processes with py-spy during one extra burst.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.inference.cpu_bench import (
    LLAMA_ID,
    chat_bodies,
    finish_report,
    free_port,
    hub_settings,
    inprocess_engine,
    loadavg,
    run_inprocess,
)
from bench.inference.hub_server import start_hub
from bench.inference.loadgen import run_chats

_TICK = os.sysconf("SC_CLK_TCK")


def threads_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of ``pid``."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out.extend(int(c) for c in task.read_text().split())
    return out


def cpu_by_thread(before: dict[int, float], after: dict[int, float]) -> list[float]:
    """Per-thread CPU seconds spent between two snapshots, largest first (threads that did work)."""
    spent = [after[t] - before.get(t, 0.0) for t in after]
    return sorted((round(s, 3) for s in spent if s > 0.0), reverse=True)


def measure(pids: dict[str, int], fn) -> dict:
    before = {name: threads_cpu(pid) for name, pid in pids.items()}
    out = fn()
    after = {name: threads_cpu(pid) for name, pid in pids.items()}
    n = max(1, out["requests"])
    out["cpu_ms_per_request"] = {name: round(1000 * sum(after[name].values()) - 1000 * sum(before[name].values()), 1)
                                 / n for name in pids}
    out["threads_cpu_s"] = {name: cpu_by_thread(before[name], after[name]) for name in pids}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["smollm2-135m", "qwen2.5-0.5b"], default="qwen2.5-0.5b")
    parser.add_argument("--model-dir", type=Path, help="a model built before (else built here, under /tmp)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", default="hub,hub_thread,engine_inprocess")
    parser.add_argument("--py-spy", type=Path, help="record the hub's processes into this folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from aicommons.inference import devmodels

    model_dir = args.model_dir or Path(f"/tmp/aicommons-profile-{args.shape}")
    if not (model_dir / "config.json").exists():
        builder = devmodels.build_qwen25_05b if args.shape == "qwen2.5-0.5b" else devmodels.build_smollm2_135m
        builder(model_dir)
    wanted = args.systems.split(",")
    report: dict = {"command": " ".join(sys.argv), "loadavg_before": loadavg(), "rounds": []}
    hubs, engine = {}, None
    me = os.getpid()
    bodies = chat_bodies(LLAMA_ID, args.requests, args.max_tokens)
    try:
        systems = {}
        for name, extra in (("hub", {}), ("hub_thread", {"isolation": "thread"}),
                            ("hub_no_burst_wait", {"burst_wait_steps": 0})):
            if name not in wanted:
                continue
            hub = start_hub(free_port(), args.threads, {LLAMA_ID: model_dir}, hub_settings(args.threads, **extra))
            hubs[name] = hub
            url = f"{hub.url}/v1/chat/completions"
            run_chats(url, chat_bodies(LLAMA_ID, 8, args.max_tokens), args.concurrency)  # load + warm up
            pids = {"api": hub.pid, "client": me}
            pids.update({f"worker{i}": pid for i, pid in enumerate(children(hub.pid))})
            systems[name] = (pids, lambda url=url: run_chats(url, bodies, args.concurrency))
        if "engine_inprocess" in wanted:
            engine = inprocess_engine(model_dir, args.threads)
            run_inprocess(engine, chat_bodies(LLAMA_ID, 8, args.max_tokens), args.concurrency)
            systems["engine_inprocess"] = ({"self": me}, lambda: run_inprocess(engine, bodies, args.concurrency))
        for _ in range(args.rounds):
            row = {"loadavg": " ".join(loadavg())}
            for name, (pids, fn) in systems.items():
                row[name] = measure(pids, fn)
                print(name, json.dumps({k: row[name][k] for k in ("output_tok_s", "ttft_p50_ms",
                                                                    "cpu_ms_per_request", "threads_cpu_s")}),
                      flush=True)
            report["rounds"].append(row)
        if args.py_spy and "hub" in hubs:
            args.py_spy.mkdir(parents=True, exist_ok=True)
            hub = hubs["hub"]
            url = f"{hub.url}/v1/chat/completions"
            recorders = []
            for label, pid in [("api", hub.pid)] + [(f"worker{i}", p) for i, p in enumerate(children(hub.pid))]:
                py_spy = Path(sys.executable).parent / "py-spy"
                recorders.append(subprocess.Popen(
                    [str(py_spy), "record", "--pid", str(pid), "--rate", "200", "--threads", "--idle",
                     "--format", "raw", "--output", str(args.py_spy / f"{label}.txt"), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
            run_chats(url, bodies, args.concurrency)
            for rec in recorders:
                rec.send_signal(2)  # SIGINT: py-spy writes its file and exits
                rec.wait(timeout=60)
    finally:
        if engine is not None:
            engine.close()
        for hub in hubs.values():
            hub.stop()
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
