"""Fair access: who may start a request now, and in which order waiting requests run (spec §3.4).

Admission, checked in order, each failing fast with ``Retry-After``:
1. per-principal concurrency cap (429);
2. per-principal token bucket over tokens per minute: ``prompt + max_new_tokens`` is reserved up
   front and the unused part refunded at the end (429);
3. a bounded global queue in front of ``max_running`` slots (503 when full or waited too long).
Waiting requests are ordered by deficit round-robin over per-principal FIFOs, costed in tokens, so
a principal with a hundred queued requests cannot starve one with a single request.

Several replicas share steps 1 and 2 through ``shared`` (``aicommons.db.rate_limits``: one database
transaction per admission and per release), so a principal's limits hold across the whole
deployment; the queue and the running slots are per replica, like the compute they guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from aicommons.errors import Unauthorized
from aicommons.token_bucket import TokenBucket

from .errors import Overloaded, RateLimited

_QUANTUM = 2048  # tokens a principal may spend per round-robin turn
# A shared in-flight lease outlives any request; it only matters when a replica dies mid-request,
# and then bounds how long that request's slot stays taken.
SHARED_LEASE_SECONDS = 900.0
log = logging.getLogger("aicommons.inference")


@dataclass
class Ticket:
    key: str
    reserved: int
    limit: int
    remaining: int
    reset_s: float
    queued_s: float = 0.0
    released: bool = False
    lease: str | None = None  # the shared in-flight lease, when limits are shared across replicas

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
        self._pending: dict[str, int] = {}  # requests resolving or loading their model, not yet admitted
        self._queues: OrderedDict[str, deque[_Waiter]] = OrderedDict()  # round-robin order
        self._deficit: dict[str, int] = {}
        self.running = 0
        self.waiting = 0
        # Set by the app when limits must hold across replicas (an ``aicommons.db.rate_limits``
        # store); None keeps them in this process.
        self.shared = None

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

    def precheck(self, principal) -> None:
        """Refuse, before its model is resolved or loaded and its prompt tokenized, a caller already
        at a limit: as many requests in flight (admitted or still loading) as allowed, or a token
        budget with nothing left. The full check, with the request's cost, is ``admit``."""
        self.check_allowed(principal)
        key = principal.key
        max_concurrent, per_minute = self._limits(principal)
        if self._inflight.get(key, 0) + self._pending.get(key, 0) >= max_concurrent:
            raise self._reject("concurrency", RateLimited(
                f"too many concurrent requests (limit {max_concurrent}); retry when one finishes",
                headers={"Retry-After": "1"}))
        bucket = self._buckets.get(key)
        if bucket is not None:
            wait = bucket.try_take(1)
            if wait > 0:
                raise self._reject("tokens", RateLimited(
                    f"tokens-per-minute limit of {per_minute} reached; retry in {math.ceil(wait)} s",
                    headers={"Retry-After": str(math.ceil(wait)), **_bucket_headers(bucket, per_minute)}))
            bucket.refund(1)

    @contextlib.contextmanager
    def pending(self, principal):
        """Counts a request against its caller's concurrency while its model resolves and loads."""
        key = principal.key
        self._pending[key] = self._pending.get(key, 0) + 1
        try:
            yield
        finally:
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key]

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
        if self.shared is not None:
            ticket = await self._admit_shared(key, cost, per_minute, max_concurrent)
        else:
            ticket = self._admit_local(key, cost, per_minute)
        try:
            ticket.queued_s = await self._acquire_slot(key, cost)
        except BaseException:
            self._undo(ticket)
            raise
        return ticket

    def _admit_local(self, key: str, cost: int, per_minute: int) -> Ticket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(per_minute, self._clock)
        wait = bucket.try_take(cost)
        if wait > 0:
            raise self._reject("tokens", RateLimited(
                f"tokens-per-minute limit of {per_minute} reached; retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait)), **_bucket_headers(bucket, per_minute)}))
        self._inflight[key] = self._inflight.get(key, 0) + 1
        return Ticket(key, cost, per_minute, int(bucket.tokens), bucket.seconds_to_full())

    async def _admit_shared(self, key: str, cost: int, per_minute: int, max_concurrent: int) -> Ticket:
        decision = await asyncio.to_thread(self.shared.admit, key, cost, per_minute, max_concurrent, time.time(),
                                           SHARED_LEASE_SECONDS)
        if decision.refused_for == "concurrency":
            raise self._reject("concurrency", RateLimited(
                f"too many concurrent requests (limit {max_concurrent}); retry when one finishes",
                headers={"Retry-After": "1"}))
        if decision.refused_for == "tokens":
            wait = math.ceil(decision.wait_s)
            raise self._reject("tokens", RateLimited(
                f"tokens-per-minute limit of {per_minute} reached; retry in {wait} s",
                headers={"Retry-After": str(wait), "RateLimit-Limit": str(per_minute),
                         "RateLimit-Remaining": str(int(decision.tokens_left)),
                         "RateLimit-Reset": str(math.ceil(decision.full_in_s)),
                         "RateLimit-Policy": f"{per_minute};w=60"}))
        self._inflight[key] = self._inflight.get(key, 0) + 1
        return Ticket(key, cost, per_minute, int(decision.tokens_left), decision.full_in_s, lease=decision.lease)

    def _undo(self, ticket: Ticket) -> None:
        """Give back what an admitted request took when it never got a slot."""
        self._inflight[ticket.key] -= 1
        if ticket.lease is not None:
            self._finish_shared(ticket, ticket.reserved)
        else:
            self._buckets[ticket.key].refund(ticket.reserved)

    def _finish_shared(self, ticket: Ticket, refund: int) -> None:
        # Off the event loop; a failure only delays the slot until its lease expires.
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self.shared.finish, ticket.lease, ticket.key, refund, ticket.limit,
                                      time.time())
        future.add_done_callback(_log_failure)

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
        except (TimeoutError, asyncio.CancelledError) as exc:
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
        refund = ticket.reserved - used_tokens if used_tokens is not None else 0
        if ticket.lease is not None:
            self._finish_shared(ticket, refund)
        elif refund and ticket.key in self._buckets:
            self._buckets[ticket.key].refund(refund)
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


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not release a shared rate-limit lease: %s", future.exception())
