"""The server's CPU per GiB of a Xet (or, ``--lfs``, LFS) ``upload_folder``, two source trees side by side (issue 21).

Runs ``bench/upload_timeline.py``'s upload (one fresh hub per run, 100 × 10 MiB of fresh random bytes,
the stock client) for tree A and tree B in alternating order (A B, B A, A B, ...), ``--pairs`` times,
and prints for each run the server process's CPU seconds per GiB uploaded (user + system, from
``/proc``), the upload's wall time, and with ``--perf-stat`` the hub's context switches, futex calls
and write/read system calls per GiB; then the medians of each tree and B's ratio to A.

    flock /work/locks/broad.lock flock /work/locks/bench.lock env PYTHONPATH=src:. \\
        python -m bench.upload_cpu_ab --a /work/main/src --b src --perf-stat --out bench/upload_profiles/session12/ab.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench.upload_timeline import run


def one(src: str, args) -> dict:
    ns = argparse.Namespace(files=args.files, mib=args.mib, src=os.path.abspath(src), py_spy=None, gil=False,
                            perf=None, perf_event=None, perf_stat=args.perf_stat, switch_interval=None, lfs=args.lfs,
                            load_before=os.getloadavg()[0])
    result = run(ns)
    gib = args.files * args.mib / 1024
    user, system = result["server_user_sys"]
    anon = [s["server_anon"] for s in result["cpu"] if s.get("server_anon", -1) >= 0]
    row = {"src": src, "when": result["when"], "load_before": ns.load_before, "load_after": result["load_after"],
           "upload_s": result["upload_s"], "server_cpu_per_gib": (user + system) / gib,
           "user_per_gib": user / gib, "sys_per_gib": system / gib,
           "anon_mib_start_max": [anon[0], max(anon)] if anon else None,
           "counts_per_gib": {k.removeprefix("syscalls:sys_enter_"): v / gib for k, v in result["perf_stat"].items()}}
    counts = ", ".join(f"{k} {v:.0f}" for k, v in row["counts_per_gib"].items()
                       if k in ("context-switches", "futex", "write", "read", "page-faults"))
    print(f"{row['when']} {src}: {row['server_cpu_per_gib']:.2f} CPU-s/GiB (user {row['user_per_gib']:.2f}, "
          f"sys {row['sys_per_gib']:.2f}), upload {row['upload_s']:.2f} s, load {ns.load_before:.2f} → "
          f"{row['load_after']:.2f}"
          + (f", hub anonymous memory {anon[0]:.0f} → at most {max(anon):.0f} MiB" if anon else "")
          + (f"; per GiB: {counts}" if counts else ""), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="source tree A (the baseline, e.g. /work/main/src)")
    parser.add_argument("--b", required=True, help="source tree B")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--perf-stat", action="store_true", help="also count context switches and system calls")
    parser.add_argument("--lfs", action="store_true", help="upload through LFS (HF_HUB_DISABLE_XET=1) instead of Xet")
    parser.add_argument("--out", type=Path, help="write every run's figures here (JSON)")
    args = parser.parse_args()
    rows = []
    for i in range(args.pairs):
        order = (args.a, args.b) if i % 2 == 0 else (args.b, args.a)
        for src in order:
            rows.append(one(src, args))
            time.sleep(1.0)
    summary = {}
    for label, src in (("A", args.a), ("B", args.b)):
        mine = [r for r in rows if r["src"] == src]
        summary[label] = {key: statistics.median(r[key] for r in mine)
                          for key in ("server_cpu_per_gib", "user_per_gib", "sys_per_gib", "upload_s")}
        print(f"{label} {src}: median {summary[label]['server_cpu_per_gib']:.2f} CPU-s/GiB (user "
              f"{summary[label]['user_per_gib']:.2f}, sys {summary[label]['sys_per_gib']:.2f}), "
              f"upload {summary[label]['upload_s']:.2f} s")
    print(f"B / A: CPU {summary['B']['server_cpu_per_gib'] / summary['A']['server_cpu_per_gib']:.2f}, "
          f"upload time {summary['B']['upload_s'] / summary['A']['upload_s']:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"runs": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
