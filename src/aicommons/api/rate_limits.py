"""Requests-per-minute limits on the hub's own API, per caller (security spec A8, API4).

Each caller (a user, or an anonymous client's IP) has two token buckets, as on the Hub:
``resolvers`` for file downloads (``/resolve/``, which a single ``snapshot_download`` calls once
per file) and ``api`` for everything else (API calls, git, web pages). Capacity is a minute's worth
of requests, refilled continuously. A refused request gets 429 ``TooManyRequests`` with
``Retry-After`` and the IETF draft ``RateLimit`` / ``RateLimit-Policy`` headers that
``huggingface_hub`` reads: it names the limit in its error, and its retrying calls (pagination,
uploads) wait exactly until the bucket has room again.

Not limited here: inference (its own admission counts tokens, ``inference/fairness.py``), the health
check, static assets, and transfers authorised by a short-lived signature or token that a limited
call handed out (``/lfs-transfer/``, ``/xet-cas/``).

Buckets live in each replica's memory: with N replicas behind a balancer a caller gets up to N
times the limit, which bounds abuse without a database write per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from aicommons.errors import TooManyRequests
from aicommons.token_bucket import TokenBucket

_EXEMPT_PREFIXES = ("/api/health", "/static/", "/v1/", "/models/", "/metrics", "/lfs-transfer/", "/xet-cas/")


def resource_of(path: str) -> str | None:
    """``resolvers``, ``api``, or None for paths this limiter leaves alone."""
    if path.startswith(_EXEMPT_PREFIXES):
        return None
    return "resolvers" if "/resolve/" in path else "api"


def budget_of(principal) -> str:
    """The budget a caller spends: its user's (``user:<id>``, as a web session's), else its address's."""
    return principal.key if principal.account is None else f"user:{principal.account.id}"


IDLE_FORGET_SECONDS = 120  # a bucket refills in 60 s: after that it is as good as a new one


class RequestLimiter:
    def __init__(self, limits: dict[tuple[str, bool], int], max_callers: int = 100_000, clock=time.monotonic):
        self._limits = limits  # (resource, signed_in) -> requests per minute; 0 = unlimited
        self._max_callers = max_callers
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> RequestLimiter:
        return cls({("api", True): settings.api_requests_per_minute,
                    ("api", False): settings.anon_api_requests_per_minute,
                    ("resolvers", True): settings.resolver_requests_per_minute,
                    ("resolvers", False): settings.anon_resolver_requests_per_minute})

    def take(self, resource: str, budget: str, signed_in: bool) -> dict[str, str]:
        """Count one request against ``budget`` (``budget_of``, or a web session's user); return the
        headers to add to its answer, or raise TooManyRequests."""
        limit = self._limits[(resource, signed_in)]
        if limit <= 0:
            return {}
        with self._lock:
            bucket = self._bucket((resource, budget), limit)
            wait = bucket.try_take(1)
            remaining = int(bucket.tokens)
        policy = f'"token bucket";"{resource}";q={limit};w=60'
        if wait == 0:
            return {"RateLimit": f'"{resource}";r={remaining};t=0', "RateLimit-Policy": policy}
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"Too many requests: you have used your {limit} {resource} requests per minute; retry in {seconds} s",
            headers={"Retry-After": str(seconds), "RateLimit": f'"{resource}";r=0;t={seconds}',
                     "RateLimit-Policy": policy})

    def _bucket(self, key: tuple[str, str], limit: int) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != limit:
            bucket = self._buckets[key] = TokenBucket(limit, self._clock)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_callers:
            self._buckets.popitem(last=False)  # the longest idle: refilled by now, as a new one would be
        # Callers idle for longer than a bucket takes to refill are forgotten as they age out, so
        # memory follows the callers of the last minutes, not every caller ever seen.
        while len(self._buckets) > 1:
            oldest_key, oldest = next(iter(self._buckets.items()))
            if oldest_key == key or oldest.idle_seconds() < IDLE_FORGET_SECONDS:
                break
            self._buckets.popitem(last=False)
        return bucket
