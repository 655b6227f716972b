"""Every use of huey beyond its documented ``Huey`` API, in one module.

huey ships no type information and no stability promise for these names, so they are imported here
only, and ``tests/unit/test_private_internals.py`` checks that the installed huey still has each of
them (the test names the version it found when one is missing):

- ``BaseStorage`` and ``EmptyData``: huey's storage contract, which ``db/jobs.py`` implements over our
  own tables (the method names and parameters of ``STORAGE_METHODS`` are what huey calls);
- ``start_consumer_threads``: a consumer's scheduler and worker threads started without
  ``Consumer.start()``, which also installs signal handlers (only allowed on the main thread, and
  ``aicommons serve`` owns its process's signals).
"""

from __future__ import annotations

import inspect
from typing import Any

import huey  # type: ignore[import-untyped]  # huey has no type information
from huey.constants import EmptyData  # type: ignore[import-untyped]  # huey has no type information
from huey.storage import BaseStorage  # type: ignore[import-untyped]  # huey has no type information

TESTED_VERSIONS = ("3.5",)  # the huey releases these uses were checked against

# The storage methods huey calls, with the parameters it passes (db/jobs.py implements each).
STORAGE_METHODS: dict[str, tuple[str, ...]] = {
    "enqueue": ("data", "priority"),
    "dequeue": (),
    "queue_size": (),
    "enqueued_items": ("limit",),
    "flush_queue": (),
    "add_to_schedule": ("data", "ts"),
    "read_schedule": ("ts",),
    "schedule_size": (),
    "scheduled_items": ("limit",),
    "flush_schedule": (),
    "put_data": ("key", "value", "is_result"),
    "peek_data": ("key",),
    "pop_data": ("key",),
    "has_data_for_key": ("key",),
    "put_if_empty": ("key", "value", "ttl"),
    "result_store_size": (),
    "result_items": (),
    "flush_results": (),
    "incr": ("key", "amount"),
    "delete_counter": ("key",),
    "flush_counters": (),
}

__all__ = ["BaseStorage", "EmptyData", "STORAGE_METHODS", "missing_internals", "start_consumer_threads"]


def start_consumer_threads(consumer: Any) -> None:
    """Start a thread consumer's scheduler and workers, as ``Consumer.start()`` does, minus its
    signal handlers."""
    consumer.scheduler.start()
    for _worker, thread in consumer.worker_threads:
        thread.start()


def missing_internals() -> list[str]:
    """What the installed huey lacks of the internals above (empty when all is there)."""
    missing = []
    for name, params in STORAGE_METHODS.items():
        method = getattr(BaseStorage, name, None)
        if method is None:
            missing.append(f"huey.storage.BaseStorage.{name}")
            continue
        have = tuple(p for p in inspect.signature(method).parameters if p != "self")
        if have != params:
            missing.append(f"huey.storage.BaseStorage.{name}{params} (found {have})")
    probe = huey.MemoryHuey("aicommons-probe", utc=True)
    consumer = probe.create_consumer(workers=1, worker_type="thread", periodic=False)
    for attr in ("scheduler", "worker_threads"):
        if not hasattr(consumer, attr):
            missing.append(f"huey.consumer.Consumer.{attr}")
    if not hasattr(getattr(consumer, "scheduler", None), "start"):
        missing.append("huey.consumer.Consumer.scheduler.start()")
    threads = getattr(consumer, "worker_threads", None) or []
    if not all(isinstance(pair, tuple) and len(pair) == 2 and hasattr(pair[1], "start") for pair in threads):
        missing.append("huey.consumer.Consumer.worker_threads as (worker, thread) pairs")
    return missing
