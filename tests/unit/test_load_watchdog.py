"""A worker process that stops using CPU while it loads a model is stuck, not slow: the hub dumps
where it is and replaces it (``engines/process.py``, ``_wait_ready``), instead of holding the one
loader thread for the whole load timeout (a Try-it answer waited past 10 minutes in a full run)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection

import pytest

from aicommons.inference.engines import process


@pytest.fixture
def fast_watchdog(monkeypatch):
    monkeypatch.setattr(process, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(process, "STALL_SECONDS", 1.0)


def worker(code: str) -> tuple[subprocess.Popen, Connection, socket.socket]:
    mine, theirs = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())], pass_fds=(theirs.fileno(),))
    theirs.close()
    return proc, Connection(mine.detach()), mine


def run(code: str, timeout: float) -> tuple[str, float]:
    proc, conn, _ = worker(code)
    started = time.monotonic()
    try:
        return process._wait_ready(proc, conn, timeout, "a/model"), time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
        conn.close()


def test_a_worker_using_no_cpu_is_stuck(fast_watchdog):
    waited, took = run("import time; time.sleep(60)", timeout=30)
    assert waited == "stalled" and took < 15


def test_a_busy_worker_is_only_slow(fast_watchdog):
    waited, took = run("while True: pass", timeout=3)
    assert waited == "timeout" and took >= 3


def test_a_worker_that_answers_is_ready(fast_watchdog):
    code = ("import sys, time\nfrom multiprocessing.connection import Connection\n"
            "time.sleep(0.3); Connection(int(sys.argv[1])).send('ready'); time.sleep(5)")
    assert run(code, timeout=30)[0] == "ready"
