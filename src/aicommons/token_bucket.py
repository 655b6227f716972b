"""A token bucket: ``per_minute`` tokens of capacity, refilled continuously at ``per_minute / 60``
per second. Used for inference's tokens-per-minute limits (``inference/fairness.py``) and the hub
API's requests-per-minute limits (``api/rate_limits.py``)."""

from __future__ import annotations

import math
import time


class TokenBucket:
    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = float(per_minute)
        self._clock = clock
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_take(self, n: int) -> float:
        """Take ``n`` tokens, or return how many seconds until they would be there (0 = taken)."""
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate if self.rate > 0 else math.inf

    def refund(self, n: int) -> None:
        self._refill()
        self.tokens = min(self.capacity, self.tokens + max(0, n))

    def seconds_to_full(self) -> float:
        self._refill()
        return (self.capacity - self.tokens) / self.rate if self.rate > 0 else 0.0

    def idle_seconds(self) -> float:
        """Seconds since it was last used (a bucket idle for a minute is full: as good as a new one)."""
        return self._clock() - self._updated
