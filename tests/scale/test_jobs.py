"""Background jobs (huey over our database) on SQLite and PostgreSQL: each job runs once, failed
jobs are retried, locked jobs never overlap, and a dead holder's lock expires."""

from __future__ import annotations

import threading
import time

import pytest
from huey import Huey

from aicommons.db.jobs import SqlJobStorage


@pytest.fixture
def engine(db_engine):
    return db_engine


def queue(engine, name="test") -> Huey:
    return Huey(name, storage_class=SqlJobStorage, engine=engine, results=False, utc=True)


def run_consumers(hueys, workers: int, until, timeout: float = 60) -> None:
    """Start a consumer per Huey (as separate processes would), wait for ``until()``, stop them."""
    consumers = []
    for huey in hueys:
        consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=False,
                                        initial_delay=0.01, max_delay=0.05, check_worker_health=False)
        consumer.scheduler.start()
        for _, thread in consumer.worker_threads:
            thread.start()
        consumers.append(consumer)
    deadline = time.time() + timeout
    try:
        while not until() and time.time() < deadline:
            time.sleep(0.05)
    finally:
        for consumer in consumers:
            consumer.stop(graceful=True)


def test_each_job_runs_exactly_once_across_competing_workers(engine):
    ran: list[int] = []
    lock = threading.Lock()
    hueys = [queue(engine), queue(engine)]  # two "replicas" sharing the database
    tasks = []
    for huey in hueys:
        @huey.task(name="record")
        def record(i):
            with lock:
                ran.append(i)
        tasks.append(record)
    for i in range(60):
        tasks[i % 2](i)
    run_consumers(hueys, workers=2, until=lambda: len(ran) >= 60)
    time.sleep(0.3)
    assert sorted(ran) == list(range(60))


def test_failed_jobs_are_retried(engine):
    huey = queue(engine)
    attempts = []

    @huey.task(retries=2, retry_delay=0, name="flaky")
    def flaky():
        attempts.append(time.time())
        if len(attempts) < 3:
            raise RuntimeError("transient")

    flaky()
    run_consumers([huey], workers=1, until=lambda: len(attempts) >= 3)
    time.sleep(0.3)
    assert len(attempts) == 3


def test_a_locked_job_never_runs_twice_at_once(engine):
    hueys = [queue(engine), queue(engine)]
    spans: list[tuple[float, float]] = []
    finished = []
    tasks = []
    for huey in hueys:
        @huey.task(name="exclusive")
        @huey.lock_task("exclusive", ttl=60)
        def exclusive():
            start = time.monotonic()
            time.sleep(0.2)
            spans.append((start, time.monotonic()))

        @huey.signal()
        def on_done(signal, task, exc=None):
            if signal in ("complete", "error", "locked"):
                finished.append(signal)
        tasks.append(exclusive)
    for i in range(6):
        tasks[i % 2]()
    run_consumers(hueys, workers=2, until=lambda: len(finished) >= 6)
    spans.sort()
    assert spans, "at least one run took the lock"
    for (_, end), (next_start, _) in zip(spans, spans[1:]):
        assert next_start >= end, "two runs overlapped"


def test_a_dead_holders_lock_expires(engine):
    storage = queue(engine).storage
    assert storage.put_if_empty("q.lock.gc", b"1", ttl=1)
    assert not storage.put_if_empty("q.lock.gc", b"1", ttl=1)
    time.sleep(1.2)
    assert storage.put_if_empty("q.lock.gc", b"1", ttl=1)
    assert storage.pop_data("q.lock.gc") == b"1"
    assert not storage.has_data_for_key("q.lock.gc")


def test_delayed_jobs_wait_for_their_time(engine):
    huey = queue(engine)
    ran = []

    @huey.task(name="later")
    def later():
        ran.append(time.time())

    start = time.time()
    later.schedule(delay=1)
    run_consumers([huey], workers=1, until=lambda: ran)
    assert ran and ran[0] - start >= 1


def test_counters(engine):
    storage = queue(engine).storage
    assert storage.incr("k") == 1
    assert storage.incr("k", 5) == 6
    storage.delete_counter("k")
    assert storage.incr("k") == 1


def test_the_worker_command_runs_queued_jobs_and_stops_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys

    from aicommons.hub.jobs import Jobs
    from tests.conftest import server_env
    from tests.scale.conftest import in_process_hub

    env = server_env(tmp_path / "data", 0, AICOMMONS_JOB_WORKERS="0")
    hub = in_process_hub(env)
    worker = subprocess.Popen([sys.executable, "-m", "aicommons.cli.main", "worker", "--workers", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        jobs = Jobs(hub)
        for _ in range(3):
            jobs.blob_gc(False, 24)
        deadline = time.time() + 30
        while jobs.huey.storage.queue_size() and time.time() < deadline:
            time.sleep(0.2)
        assert jobs.huey.storage.queue_size() == 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.stdout.close()
        hub.close()
