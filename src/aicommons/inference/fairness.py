"""Fair access: who may start a request now, and in which order waiting requests run (spec §3.4).

Admission, checked in order, each failing fast with ``Retry-After``:
1. per-principal concurrency cap (429);
2. per-principal token bucket over tokens per minute: ``prompt + max_new_tokens`` is reserved up
   front and the unused part refunded at the end (429);
3. a bounded global queue in front of ``max_running`` slots (503 when full or waited too long).
Waiting requests are ordered by deficit round-robin over per-principal FIFOs, costed in tokens, so
a principal with a hundred queued requests cannot starve one with a single request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from aicommons.errors import Unauthorized

from .errors import Overloaded, RateLimited

_QUANTUM = 2048  # tokens a principal may spend per round-robin turn


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


@dataclass
class Ticket:
    key: str
    reserved: int
    limit: int
    remaining: int
    reset_s: float
    queued_s: float = 0.0
    released: bool = False

    @property
    def headers(self) -> dict:
        # IETF RateLimit fields plus the x-ratelimit-* names OpenAI clients show to users.
        reset = str(max(0, math.ceil(self.reset_s)))
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": reset, "RateLimit-Policy": f"{self.limit};w=60",
                "x-ratelimit-limit-tokens": str(self.limit),
                "x-ratelimit-remaining-tokens": str(self.remaining),
                "x-ratelimit-reset-tokens": f"{reset}s"}


@dataclass
class _Waiter:
    cost: int
    future: asyncio.Future
    since: float = field(default_factory=time.monotonic)


class Admission:
    def __init__(self, settings, metrics=None, clock=time.monotonic):
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._inflight: dict[str, int] = {}
        self._queues: OrderedDict[str, deque[_Waiter]] = OrderedDict()  # round-robin order
        self._deficit: dict[str, int] = {}
        self.running = 0
        self.waiting = 0

    def _limits(self, principal) -> tuple[int, int]:
        s = self.settings
        if getattr(principal, "is_anonymous", True):
            return s.anon_max_concurrent, s.anon_tokens_per_minute
        return s.max_concurrent_per_user, s.tokens_per_minute

    def _reject(self, reason: str, exc: Exception) -> Exception:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(reason=reason).inc()
        return exc

    def check_allowed(self, principal) -> None:
        if getattr(principal, "is_anonymous", True) and not self.settings.anon_allowed:
            raise Unauthorized("inference needs a token on this hub")

    async def admit(self, principal, cost: int) -> Ticket:
        self.check_allowed(principal)
        key = principal.key
        max_concurrent, per_minute = self._limits(principal)
        if self._inflight.get(key, 0) >= max_concurrent:
            raise self._reject("concurrency", RateLimited(
                f"too many concurrent requests (limit {max_concurrent}); retry when one finishes",
                headers={"Retry-After": "1"}))
        if cost > per_minute:
            raise self._reject("tokens", RateLimited(
                f"request needs {cost} tokens, more than your limit of {per_minute} tokens per minute; "
                "lower max_tokens or shorten the input", headers={"x-should-retry": "false"}))
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(per_minute, self._clock)
        wait = bucket.try_take(cost)
        if wait > 0:
            raise self._reject("tokens", RateLimited(
                f"tokens-per-minute limit of {per_minute} reached; retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait)), **_bucket_headers(bucket, per_minute)}))
        self._inflight[key] = self._inflight.get(key, 0) + 1
        ticket = Ticket(key, cost, per_minute, int(bucket.tokens), bucket.seconds_to_full())
        try:
            ticket.queued_s = await self._acquire_slot(key, cost)
        except BaseException:
            self._inflight[key] -= 1
            bucket.refund(cost)
            raise
        return ticket

    async def _acquire_slot(self, key: str, cost: int) -> float:
        if self.running < self.settings.max_running and self.waiting == 0:
            self.running += 1
            return 0.0
        if self.waiting >= self.settings.max_queue:
            raise self._reject("queue_full", Overloaded("the inference queue is full; retry shortly",
                                                        headers={"Retry-After": "2"}))
        waiter = _Waiter(cost, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, deque()).append(waiter)
        self.waiting += 1
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), self.settings.queue_timeout_seconds)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                self._free_slot()  # granted just as we gave up: hand it on
            else:
                waiter.future.cancel()
                self._drop(key, waiter)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise self._reject("queue_timeout", Overloaded("waited too long for a free slot; retry shortly",
                                                           headers={"Retry-After": "5"})) from None
        return time.monotonic() - started

    def _drop(self, key: str, waiter: _Waiter) -> None:
        queue = self._queues.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self.waiting -= 1
            if not queue:
                del self._queues[key]
                self._deficit.pop(key, None)

    def release(self, ticket: Ticket, used_tokens: int | None = None) -> None:
        if ticket.released:
            return
        ticket.released = True
        self._inflight[ticket.key] = max(0, self._inflight.get(ticket.key, 1) - 1)
        if not self._inflight[ticket.key]:
            del self._inflight[ticket.key]
        if used_tokens is not None and ticket.key in self._buckets:
            self._buckets[ticket.key].refund(ticket.reserved - used_tokens)
        self._free_slot()

    def _free_slot(self) -> None:
        self.running -= 1
        while self.running < self.settings.max_running and self.waiting:
            waiter = self._next_waiter()
            if waiter is None:
                break
            self.running += 1
            waiter.future.set_result(None)

    def _next_waiter(self) -> _Waiter | None:
        """Deficit round-robin: visit principals in turn, each spending up to a quantum of tokens."""
        while self._queues:
            key, queue = next(iter(self._queues.items()))
            head = queue[0]
            if head.future.done():  # cancelled while waiting
                queue.popleft()
                self.waiting -= 1
            elif self._deficit.get(key, 0) >= head.cost:
                queue.popleft()
                self.waiting -= 1
                self._deficit[key] -= head.cost
                if not queue:
                    del self._queues[key]
                    self._deficit.pop(key, None)
                else:
                    self._queues.move_to_end(key)  # one request per turn: interleave principals
                return head
            else:
                self._deficit[key] = self._deficit.get(key, 0) + max(_QUANTUM, head.cost)
                self._queues.move_to_end(key)  # its turn is over; the next principal goes
                continue
            if not queue:
                del self._queues[key]
                self._deficit.pop(key, None)
        return None


def _bucket_headers(bucket: TokenBucket, limit: int) -> dict:
    reset = str(max(0, math.ceil(bucket.seconds_to_full())))
    return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(int(bucket.tokens)),
            "RateLimit-Reset": reset, "RateLimit-Policy": f"{limit};w=60"}
