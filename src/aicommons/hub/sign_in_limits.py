"""Throttling of failed password sign-ins, per account name and per client IP.

Every refused password (web sign-in form, or HTTP Basic on the API and git) takes one token from
two buckets: the account name's and the client IP's. A bucket holds ``limit`` failures and refills
at ``limit`` per ``window`` seconds. While either bucket is empty, password sign-ins for that name
or from that IP are refused with 429 ``TooManyRequests`` and ``Retry-After`` *before* the password
is checked, so a guesser learns nothing more until the bucket refills. A correct password spends
nothing. Unknown names have buckets too, so throttling does not tell which names exist.

The per-account limit lets anyone slow down sign-ins to a name they know; access tokens are not
affected (they are not guessable, and are checked first), so git and API clients using tokens keep
working while an account is under attack. Buckets live in each replica's memory (as the request
limits do): with N replicas a guesser gets at most N times the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from aicommons.errors import TooManyRequests
from aicommons.token_bucket import TokenBucket


class SignInLimiter:
    def __init__(self, per_account: int, per_ip: int, window_seconds: float = 900,
                 max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._limits = {"account": per_account, "ip": per_ip}
        self._window = window_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def _keys(self, user_name: str, ip: str | None) -> list[tuple[str, str]]:
        keys = [("account", user_name.lower()[:256])]
        if ip:
            keys.append(("ip", ip))
        return [k for k in keys if self._limits[k[0]] > 0]

    def _bucket(self, key: tuple[str, str]) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self._limits[key[0]]
            bucket = TokenBucket(limit, self._clock)
            bucket.rate = limit / self._window
            self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)  # the longest idle: refilled by now, as a new one would be
        return bucket

    def check(self, user_name: str, ip: str | None) -> None:
        """Refuse with 429 while the name or the IP has no failures left."""
        with self._lock:
            waits = []
            for key in self._keys(user_name, ip):
                if key in self._buckets:
                    bucket = self._bucket(key)
                    bucket._refill()
                    if bucket.tokens < 1:
                        waits.append((1 - bucket.tokens) / bucket.rate)
        if waits:
            seconds = max(1, math.ceil(max(waits)))
            raise TooManyRequests(f"Too many failed sign-ins: retry in {seconds} s",
                                  headers={"Retry-After": str(seconds)})

    def failed(self, user_name: str, ip: str | None) -> None:
        with self._lock:
            for key in self._keys(user_name, ip):
                self._bucket(key).try_take(1)
