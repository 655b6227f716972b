"""A small thread-safe map whose entries expire a fixed time after they were stored.

Used to remember model resolutions (``aicommons.hub.snapshots.ModelSnapshots``) and signed-in
callers (``aicommons.hub.accounts.AccountService``) for a bounded time: entries are read on the
event loop and written from worker threads, hence the lock. ``generation``
lets a writer detect that an invalidation happened while it was computing a value, so a result
computed before a ref moved is never stored after the move was announced.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl_s: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()  # key -> (expires, value)
        self.generation = 0  # bumped by every invalidation

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def get(self, key: K) -> V | None:
        """The value stored under ``key`` less than ``ttl_s`` ago, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V, generation: int | None = None) -> None:
        """Store ``value``, unless an invalidation happened since ``generation`` was read (the value
        may predate it)."""
        if not self.enabled:
            return
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            self._entries[key] = (self._clock() + self.ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)  # the oldest stored

    def clear(self) -> None:
        self.drop_where(lambda key: True)

    def drop_where(self, predicate: Callable[[K], bool]) -> None:
        with self._lock:
            self.generation += 1
            for key in [k for k in self._entries if predicate(k)]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
