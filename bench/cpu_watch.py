"""Where the CPU of one transfer goes: per process, per thread, and how busy the machine's cores were
(``bench/mirror_bench.py``, docs/benchmarks.md "Pull-through mirror", session 11).

A process's CPU is read from its CPU-time clock (``clock_gettime`` on the process's clock id, in
nanoseconds, dead threads included). Its threads' are read from ``/proc/PID/task/TID/stat``, which
counts in clock ticks (10 ms here): threads alive when the watch starts are read at its start and end,
threads born during it (a download's receiving and hashing threads, which end with the download) are
read every ``INTERVAL`` seconds (10 ms, the ticks' own resolution) by a sampler thread, so up to one interval of a thread that ends is
missed; what no thread accounts for is reported as ``unattributed``. Threads are told apart by their
kernel name (``/proc/.../comm``: the hub names its download threads) and the main thread is the
event loop. A child like ``curl`` is timed with ``wait4``'s rusage. The cores' use comes from
``/proc/stat``: busy (not idle, not iowait) CPU seconds over the wall time, so 2.0 means both cores
of a 2-core machine did nothing else; ``steal`` is time the hypervisor gave to someone else.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
INTERVAL = 0.01


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads, dead ones too) of ``pid`` so far, to the nanosecond."""
    return time.clock_gettime(((~pid) << 3) | 2)  # the kernel's CPUCLOCK_SCHED clock of that process


def _thread(pid: int, tid: str) -> tuple[str, float, float] | None:
    try:
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it ended
        return None
    return name, int(fields[11]) / TICK, int(fields[12]) / TICK


def _threads(pid: int, only_new: dict | None = None) -> dict[str, tuple[str, float, float]]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        if only_new is not None and tid in only_new:
            continue
        seen = _thread(pid, tid)
        if seen is not None:
            out[tid] = seen
    return out


def machine() -> tuple[float, float, float]:
    """(busy, steal, all) CPU seconds of the machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    total = sum(values[:8])
    return (total - idle - steal) / TICK, steal / TICK, total / TICK


def classify(pid: int, tid: str, name: str) -> str:
    if tid == str(pid):
        return "event_loop"
    if name.startswith("upstream-fetch"):
        return "receive"
    if name.startswith("upstream-hash"):
        return "hash"
    return "other_threads"


class Watch:
    """CPU of some processes (``{role: pid}``) from now on, by thread; ``mark`` takes a reading (the
    moment a client finished), ``stop`` the last one and ends the sampler."""

    def __init__(self, processes: dict[str, int]):
        self.processes = processes
        self.start_cpu = {role: process_cpu(pid) for role, pid in processes.items()}
        self.start_threads = {role: _threads(pid) for role, pid in processes.items()}
        self.born: dict[str, dict] = {role: {} for role in processes}  # threads that started since
        self.start_machine = machine()
        self.started = time.perf_counter()
        self.sampler_cpu = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        begin = time.thread_time()
        while not self._stop.wait(INTERVAL):
            self._sample_once()
        self.sampler_cpu = time.thread_time() - begin

    def _sample_once(self) -> None:
        for role, pid in self.processes.items():
            with_new = _threads(pid, only_new=self.start_threads[role])
            self.born[role].update(with_new)

    def reading(self) -> dict:
        """CPU seconds since the start: per role, its total and its threads by kind; the machine's."""
        self._sample_once()
        wall = time.perf_counter() - self.started
        busy, steal, _ = (b - a for a, b in zip(self.start_machine, machine(), strict=True))
        out: dict = {"wall_s": wall, "cores_busy": busy / wall, "steal_s": steal}
        for role, pid in self.processes.items():
            total = process_cpu(pid) - self.start_cpu[role]
            kinds: dict[str, float] = {}
            now = _threads(pid)
            for tid, (name, user, system) in {**self.born[role], **now}.items():
                user0, system0 = self.start_threads[role].get(tid, (name, 0.0, 0.0))[1:]
                kind = classify(pid, tid, name)
                kinds[kind] = kinds.get(kind, 0.0) + (user - user0) + (system - system0)
                if kind in ("receive", "hash"):
                    kinds[kind + "_system"] = kinds.get(kind + "_system", 0.0) + system - system0
            kinds["unattributed"] = total - sum(v for k, v in kinds.items() if not k.endswith("_system"))
            out[role] = {"cpu_s": total, **{k: round(v, 3) for k, v in sorted(kinds.items())}}
        return out

    def stop(self) -> dict:
        self._stop.set()
        self._sampler.join()
        out = self.reading()
        out["sampler_cpu_s"] = self.sampler_cpu
        return out


def curl(url: str) -> dict:
    """One ``curl`` of ``url`` to /dev/null: wall seconds and curl's own user and system CPU."""
    start = time.perf_counter()
    process = subprocess.Popen(["curl", "-sfL", "-o", "/dev/null", url])
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"curl {url} failed ({process.returncode})")
    return {"s": wall, "user_s": usage.ru_utime, "system_s": usage.ru_stime}
