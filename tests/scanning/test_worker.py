"""Scans in worker processes: memory, CPU-time and wall-clock limits end as ``error`` results with
the reason, the worker is replaced, and the calling process never holds the file."""

from __future__ import annotations

import os
import pickle
import signal
import time

import pygit2
import pytest

from aicommons.scanning.results import MEMORY_ERROR
from aicommons.scanning.worker import ScanWorkerPool, WorkerLimits

from .samples import RunsAShell

FLOOD = b"\x80\x02" + b"cos\nsystem\n" * 2_000_000 + b"."  # 22 MB of one GLOBAL: seconds of CPU


@pytest.fixture
def pool():
    pool = ScanWorkerPool(WorkerLimits(memory_mb=512, cpu_seconds=60, timeout_seconds=120))
    yield pool
    pool.close()


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_files_are_scanned_in_a_reused_worker_process(pool, tmp_path):
    evil = write(tmp_path, "evil.pkl", pickle.dumps(RunsAShell(), protocol=4))
    plain = write(tmp_path, "plain.pkl", pickle.dumps([1, 2]))
    assert pool.scan_path("models/evil.pkl", evil, evil.stat().st_size).status == "unsafe"
    (worker,) = pool._idle
    assert worker.process.pid != os.getpid()
    result = pool.scan_path("plain.pkl", plain, plain.stat().st_size)
    assert result.status == "safe" and result.path == "plain.pkl"
    assert pool._idle == [worker]  # the same process answered


def test_a_git_blob_is_read_by_the_worker(pool, tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "repo.git"), bare=True)
    oid = repo.create_blob(pickle.dumps(RunsAShell(), protocol=2))
    result = pool.scan_git_blob("evil.pkl", repo.path, str(oid), 100)
    assert result.status == "unsafe", result.to_json()


def test_a_scan_over_the_memory_limit_is_an_error_and_the_worker_is_replaced(tmp_path):
    # A 15 MB config.json of floats: parsed whole it takes ~150 MB, over a 120 MB limit.
    config = write(tmp_path, "config.json", b"[" + b"0.5," * 3_700_000 + b"0.5]")
    pool = ScanWorkerPool(WorkerLimits(memory_mb=120, cpu_seconds=60, timeout_seconds=120))
    try:
        result = pool.scan_path("config.json", config, config.stat().st_size)
        assert result.status == "error"
        assert [f.message for f in result.findings] == [MEMORY_ERROR]
        assert pool._idle == []  # that worker exited; the next scan gets a fresh one
        small = write(tmp_path, "small.pkl", pickle.dumps({"a": 1}))
        assert pool.scan_path("small.pkl", small, small.stat().st_size).status == "safe"
    finally:
        pool.close()


def test_a_scan_over_the_cpu_limit_is_an_error(tmp_path):
    flood = write(tmp_path, "flood.pkl", FLOOD)
    pool = ScanWorkerPool(WorkerLimits(memory_mb=512, cpu_seconds=1, timeout_seconds=120))
    try:
        result = pool.scan_path("flood.pkl", flood, len(FLOOD))
        assert result.status == "error"
        assert [f.message for f in result.findings] == ["scan exceeded the 1-second CPU time limit"]
        small = write(tmp_path, "small.pkl", pickle.dumps({"a": 1}))
        assert pool.scan_path("small.pkl", small, small.stat().st_size).status == "safe"
    finally:
        pool.close()


def test_a_scan_over_the_time_limit_is_killed(tmp_path):
    flood = write(tmp_path, "flood.pkl", FLOOD)
    pool = ScanWorkerPool(WorkerLimits(memory_mb=512, cpu_seconds=0, timeout_seconds=1))
    try:
        result = pool.scan_path("flood.pkl", flood, len(FLOOD))
        assert result.status == "error"
        assert [f.message for f in result.findings] == ["scan exceeded the 1-second time limit"]
        assert pool._idle == []
    finally:
        pool.close()


def test_a_dead_idle_worker_is_replaced(pool, tmp_path):
    small = write(tmp_path, "small.pkl", pickle.dumps({"a": 1}))
    assert pool.scan_path("small.pkl", small, small.stat().st_size).status == "safe"
    (worker,) = pool._idle
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    assert pool.scan_path("small.pkl", small, small.stat().st_size).status == "safe"
    assert pool._idle and pool._idle[0] is not worker


def test_a_blob_in_a_large_packfile_is_read_under_the_memory_limit(tmp_path):
    # libgit2 maps packs in 1 GiB windows by default: the whole pack, over a 200 MiB address-space limit.
    repo = pygit2.init_repository(str(tmp_path / "repo.git"), bare=True)
    evil = repo.create_blob(pickle.dumps(RunsAShell(), protocol=2))
    filler = repo.create_blob(os.urandom(160 << 20))  # incompressible: a 160 MB pack
    builder = repo.TreeBuilder()
    builder.insert("evil.pkl", evil, pygit2.GIT_FILEMODE_BLOB)
    builder.insert("filler.bin", filler, pygit2.GIT_FILEMODE_BLOB)
    repo.create_commit("refs/heads/main", pygit2.Signature("a", "a@example.org"),
                       pygit2.Signature("a", "a@example.org"), "m", builder.write(), [])
    import subprocess
    subprocess.run(["git", "-C", repo.path, "-c", "pack.window=0", "repack", "-a", "-d", "-q"], check=True)
    assert not (tmp_path / "repo.git" / "objects" / str(evil)[:2]).exists()  # packed
    pool = ScanWorkerPool(WorkerLimits(memory_mb=200, cpu_seconds=60, timeout_seconds=120))
    try:
        result = pool.scan_git_blob("evil.pkl", repo.path, str(evil), 100)
        assert result.status == "unsafe", result.to_json()
    finally:
        pool.close()


def test_a_damaged_git_object_is_a_scan_error_not_a_hang(tmp_path):
    # The worker opened repos with plain pygit2, whose loose backend spins on a truncated object until
    # the CPU limit ends the worker. It reads them as the hub does (gitrepo/loose.py): a clear error.
    repo = pygit2.init_repository(str(tmp_path / "repo.git"), bare=True)
    data = pickle.dumps(list(range(200)))
    oid = str(repo.create_blob(data))
    loose = tmp_path / "repo.git" / "objects" / oid[:2] / oid[2:]
    raw = loose.read_bytes()
    loose.chmod(0o600)
    loose.write_bytes(raw[:20])  # cut short on disk
    pool = ScanWorkerPool(WorkerLimits(memory_mb=512, cpu_seconds=10, timeout_seconds=60))
    try:
        started = time.monotonic()
        result = pool.scan_git_blob("weights.pkl", repo.path, oid, len(data))
        assert time.monotonic() - started < 8, result.to_json()
        assert result.status == "error"
        [finding] = result.findings
        assert "CorruptGitObject" in finding.message and oid in finding.message, finding.message
        assert pool._idle  # the worker lives on for the next scan
    finally:
        pool.close()
