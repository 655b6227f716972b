"""Scans run in separate worker processes with memory, CPU-time and wall-clock limits.

The scanner reads hostile bytes: a bug or a missed bound in a parser (``tarfile``, ``zipfile``,
``json``, the pickle walk) must cost a worker process, never the server. ``ScanWorkerPool.scan``
sends one file to a worker (``python -m aicommons.scanning.worker``) and returns its ``FileScan``:

- **memory**: the worker runs under ``RLIMIT_AS`` (``SCAN_MEMORY_MB``); an allocation past it
  raises ``MemoryError`` there, reported as ``error`` "scan exceeded the memory limit", and the
  worker exits (a fresh one replaces it);
- **CPU time**: before each scan the worker sets its soft ``RLIMIT_CPU`` to the CPU it has used
  plus ``SCAN_CPU_SECONDS``; past it the kernel ends the worker with ``SIGXCPU``;
- **wall clock**: the pool waits ``SCAN_TIMEOUT_SECONDS`` for the answer, then kills the worker.

Any of these ends as an ``error`` result with the reason; the worker is replaced. Workers are
reused (the imports cost ~0.2 s) for at most ``recycle_after`` scans. The worker reads the file
itself — a local path, or a blob of a git repository by id — so the server never holds its bytes.

Protocol: one JSON object per line on the worker's stdin (``{"path", "size", "file"}`` or
``{"path", "size", "git_dir", "oid"}``, optional ``"limits"``: ``ScanLimits`` fields), one JSON
line back on its stdout (``{"scan": FileScan.to_json()}``).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time

from .limits import WorkerLimits
from .results import MEMORY_ERROR, FileScan, Finding

log = logging.getLogger("aicommons.scans")


class _Worker:
    def __init__(self, limits: WorkerLimits):
        self.scans = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aicommons.scanning.worker", "--memory-mb", str(limits.memory_mb),
             "--cpu-seconds", str(limits.cpu_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def ask(self, request: dict, deadline: float) -> dict | None:
        """The worker's answer, or None if it died or the deadline passed (then it is killed)."""
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        fd = self.process.stdout.fileno()
        buffer = b""
        while not buffer.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None  # the worker died
            buffer += chunk
        return json.loads(buffer)


class ScanWorkerPool:
    """Scans files in limited worker processes; safe to call from several threads."""

    def __init__(self, limits: WorkerLimits | None = None, *, recycle_after: int = 200):
        self.limits = limits or WorkerLimits()
        self.recycle_after = recycle_after
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def scan_path(self, path_in_repo: str, file: str, size: int, *, limits: dict | None = None) -> FileScan:
        """Scan a local file, named ``path_in_repo`` in its repo."""
        return self._scan({"path": path_in_repo, "size": size, "file": str(file)}, limits)

    def scan_git_blob(self, path_in_repo: str, git_dir: str, oid: str, size: int, *,
                      limits: dict | None = None) -> FileScan:
        """Scan a blob of a git repository (read by the worker, not here)."""
        return self._scan({"path": path_in_repo, "size": size, "git_dir": str(git_dir), "oid": oid}, limits)

    def _scan(self, request: dict, limits: dict | None) -> FileScan:
        if limits:
            request["limits"] = limits
        path = request["path"]
        worker = self._take()
        started = time.monotonic()
        answer = worker.ask(request, started + self.limits.timeout_seconds)
        if answer is None:
            elapsed = time.monotonic() - started
            reason = self._why_dead(worker, elapsed)
            worker.kill()
            log.warning("scan of %s: %s", path, reason)
            return FileScan.from_findings(path, "none", [Finding("limit", "error", reason)])
        worker.scans += 1
        scan = FileScan.from_json(path, answer["scan"])
        if answer.get("exit") or worker.scans >= self.recycle_after:
            worker.kill()
        else:
            self._give_back(worker)
        return scan

    def _why_dead(self, worker: _Worker, elapsed: float) -> str:
        code = worker.process.poll()
        if code is None and elapsed < self.limits.timeout_seconds:
            # Its pipe closed: it is exiting (the pipe closes before the exit status is ready).
            try:
                code = worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if code is None:
            return f"scan exceeded the {self.limits.timeout_seconds:g}-second time limit"
        if code == -signal.SIGXCPU:
            return f"scan exceeded the {self.limits.cpu_seconds}-second CPU time limit"
        if code == -signal.SIGKILL:
            return "the scan worker was killed (out of memory?)"
        return f"the scan worker died (exit status {code})"

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the scan worker pool is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        return _Worker(self.limits)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


# --- the worker process ---------------------------------------------------------------------------


def _open(request: dict):
    if "file" in request:
        return lambda: open(request["file"], "rb")
    import io

    import pygit2

    from aicommons.gitrepo.loose import open_repository

    def open_blob():
        # Loose objects read as the hub reads them: libgit2's own loose backend spins (holding the GIL)
        # on a truncated one until the CPU limit ends the worker; this raises CorruptGitObject, which
        # scan_file reports as this file's error.
        repo = open_repository(request["git_dir"])
        blob = repo[pygit2.Oid(hex=request["oid"])]
        if not isinstance(blob, pygit2.Blob):
            raise ValueError("not a blob")
        return io.BytesIO(blob.data)

    return open_blob


def _set_cpu_limit(seconds: int) -> None:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + 1 + seconds
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def serve(memory_mb: int, cpu_seconds: int) -> int:
    """Answer scan requests on stdin until it closes."""
    import resource

    import pygit2  # imported before the memory limit, like everything a scan needs

    import aicommons.gitrepo.loose  # noqa: F401 - the same

    from . import scan_file
    from .limits import ScanLimits

    # libgit2 maps packfiles in 1 GiB windows (8 GiB in all) by default: that address space would
    # count against RLIMIT_AS, and a big pack could not be read at all.
    pygit2.settings.mwindow_size = 32 * 1024 * 1024
    pygit2.settings.mwindow_mapped_limit = 128 * 1024 * 1024

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to stderr, never into the answers
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)  # the CPU limit ends the process
    if memory_mb > 0:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if cpu_seconds > 0:
            _set_cpu_limit(cpu_seconds)
        limits = ScanLimits(**request["limits"]) if request.get("limits") else ScanLimits()
        try:
            result = scan_file(request["path"], _open(request), request["size"], limits=limits)
            answer = {"scan": result.to_json()}
            exit_after = any(f.message == MEMORY_ERROR for f in result.findings)
        except MemoryError:
            answer = {"scan": {"status": "error", "scanner": "none",
                               "findings": [{"kind": "limit", "severity": "error", "message": MEMORY_ERROR}]}}
            exit_after = True
        if exit_after:
            answer["exit"] = True  # memory may be fragmented or a structure half-built: start afresh
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()
        if exit_after:
            return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aicommons.scanning.worker")
    parser.add_argument("--memory-mb", type=int, default=WorkerLimits.memory_mb)
    parser.add_argument("--cpu-seconds", type=int, default=WorkerLimits.cpu_seconds)
    args = parser.parse_args(argv)
    return serve(args.memory_mb, args.cpu_seconds)


if __name__ == "__main__":
    sys.exit(main())
