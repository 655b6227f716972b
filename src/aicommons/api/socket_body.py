"""Upload bodies read straight from the socket by the thread that hashes and writes them (issue 21).

Through uvicorn, a request body comes to the app as one message per read of the event loop: each
piece is read into a fresh ``bytes`` by the loop, appended to a ``bytearray``, copied again into the
message, then handed to a worker thread to be hashed and written. For a GiB that is thousands of
trips through the event loop's Python, three copies, fresh memory for every piece, and a thread
hand-off (two GIL passes) per batch. Here the receiving thread does it all in one place instead:
it reads (``readv``) into a buffer it reuses, then hashes and writes from that same buffer, up to a
MiB at a time.

How it works, for one request (``SocketBody.pump``):
- The server (``api/zerocopy_server.py``) offers it to upload routes only (``PUT`` of an LFS object,
  ``POST`` of a xorb), for a plain-HTTP connection and a body with a ``Content-Length`` (not chunked).
- The app asks for it before reading any of the body. The connection's reading is paused (the event
  loop no longer reads that socket), the body bytes the parser already has are consumed first, then
  a thread of the receiving pool reads the rest, exactly ``Content-Length`` minus what was parsed: it
  never reads into the next request of a kept-alive connection.
- The thread gives its turn back when the socket has been empty for ``THREAD_WAIT_MS`` (the event loop
  then waits for it to become readable: a slow client holds no thread) or after ``TURN_BYTES`` when
  other uploads are waiting for the pool.
- Once the whole body is read, the connection gets a fresh HTTP parser (the old one was left in the
  middle of the body) and reading resumes: keep-alive works as before. A body the consumer refuses
  midway (too large, malformed) is read to its end and dropped, up to ``DRAIN_BYTES``, so that the
  client hears why, as over uvicorn; beyond that, or when the client goes away or sends nothing for
  ``STALL_SECONDS``, the connection is closed after the response.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import httptools
from starlette.requests import ClientDisconnect, Request

EXTENSION = "aicommons.request.socket_body"
BUFFER_BYTES = 1024 * 1024  # one read at most; each thread keeps one such buffer
THREAD_WAIT_MS = 50  # an empty socket is waited for on the thread this long before the loop takes over
TURN_BYTES = 8 * 1024 * 1024  # a turn on the pool ends after this many bytes when others are waiting
STALL_SECONDS = 60.0  # a client that sends nothing for this long is disconnected
DRAIN_BYTES = 128 * 1024 * 1024  # a refused body's rest is read and dropped up to this size, else cut off


class ClientGone(ClientDisconnect):
    """The client closed the connection or stopped sending before the whole body arrived."""


class SocketBody:
    """One request's body, to be read from the socket by ``pump``. Made by the server protocol for the
    request being parsed; ``usable()`` says whether it can still be taken over (nothing read yet)."""

    def __init__(self, protocol: Any, cycle: Any, length: int):
        self._protocol = protocol
        self._cycle = cycle
        self.length = length

    def usable(self) -> bool:
        protocol, cycle = self._protocol, self._cycle
        return (protocol.cycle is cycle and not protocol.pipeline and cycle.more_body
                and not cycle.disconnected and not protocol.transport.is_closing()
                and len(cycle.body) == protocol.body_parsed)  # nothing taken by receive() yet

    async def pump(self, consume: Callable[[list[memoryview]], Any], executor: Executor) -> None:
        """Feed the whole body to ``consume``, in order, on ``executor``'s threads; raises what
        ``consume`` raises, or ``ClientGone``. The views passed are only valid during the call."""
        protocol, cycle = self._protocol, self._cycle
        if not self.usable():
            raise RuntimeError("the body was read already")
        protocol.flow.pause_reading()
        if cycle.waiting_for_100_continue:
            protocol.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        already = bytes(cycle.body)
        cycle.body = bytearray()
        left = [self.length - protocol.body_parsed]
        loop = asyncio.get_running_loop()
        sock = os.dup(protocol.transport.get_extra_info("socket").fileno())
        turns: list[Future[Any]] = []  # the last turn handed to a thread
        try:
            try:
                if already:
                    await loop.run_in_executor(executor, consume, [memoryview(already)])
                await _read_rest(executor, sock, left, consume, turns)
            except Exception as exc:
                # Refused midway (too large, malformed): the client hears why once it has sent the
                # rest, as over uvicorn, and its connection stays usable; a large rest is not waited for.
                if isinstance(exc, ClientGone) or left[0] > DRAIN_BYTES:
                    raise
                await _read_rest(executor, sock, left, _discard, turns)
                raise
        except ClientGone:
            cycle.disconnected = True
            protocol.transport.close()
            raise
        finally:
            # A cancelled wait leaves its thread's turn running on the descriptor: closed after it.
            if turns:
                turns[-1].add_done_callback(lambda _: os.close(sock))
            else:
                os.close(sock)
            if left[0] > 0:
                cycle.keep_alive = False  # the rest of the body is unread: close after the response
            elif not cycle.disconnected:
                self._read_whole(protocol, cycle)

    @staticmethod
    def _read_whole(protocol: Any, cycle: Any) -> None:
        """The body is read: the old parser stopped in the middle of it, the next request starts afresh."""
        cycle.more_body = False
        protocol.parser = fresh_parser(protocol)
        protocol.flow.resume_reading()


async def _read_rest(executor: Executor, sock: int, left: list[int], consume: Callable[[list[memoryview]], Any],
                     turns: list[Future[Any]]) -> None:
    loop = asyncio.get_running_loop()
    while left[0] > 0:
        turns[:] = [executor.submit(_read_turn, sock, left, consume, executor)]
        got = await asyncio.wrap_future(turns[0])
        if not got and left[0] > 0:
            if not await fd_ready(loop, sock, write=False, seconds=STALL_SECONDS):
                raise ClientGone(f"the client sent nothing for {STALL_SECONDS:.0f} s")


def _discard(pieces: list[memoryview]) -> None:
    pass


_local = threading.local()


def _buffer() -> memoryview:
    """This thread's receive buffer, reused for every body it reads (threads of the pool live as long
    as the server)."""
    buffer = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = memoryview(bytearray(BUFFER_BYTES))
    return buffer


def _read_turn(sock: int, left: list[int], consume: Callable[[list[memoryview]], Any], executor: Executor) -> int:
    """One turn on a receiving thread: read and consume body bytes until the body is done, the socket
    stays empty for ``THREAD_WAIT_MS``, or others wait for the pool after ``TURN_BYTES``. Returns the
    bytes read this turn (0: the socket was empty; the event loop then waits for it)."""
    buffer = _buffer()
    total = 0
    poller: select.poll | None = None
    while left[0] > 0:
        try:
            n = os.readv(sock, [buffer[:min(len(buffer), left[0])]])
        except BlockingIOError:
            if others_wait(executor):
                break
            if poller is None:
                poller = select.poll()
                poller.register(sock, select.POLLIN)
            if not poller.poll(THREAD_WAIT_MS):
                break
            continue
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ClientGone("the client closed the connection during the upload") from exc
        if n == 0:
            raise ClientGone("the client closed the connection during the upload")
        left[0] -= n
        total += n
        consume([buffer[:n]])
        if total >= TURN_BYTES and others_wait(executor):
            break
    return total


def others_wait(executor: Executor) -> bool:
    """Whether work is queued for the pool (all its threads busy). ThreadPoolExecutor has no public
    view of its queue, hence the private attribute."""
    queue = getattr(executor, "_work_queue", None) if isinstance(executor, ThreadPoolExecutor) else None
    return queue is not None and not queue.empty()


async def fd_ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool, seconds: float) -> bool:
    """Wait, on the event loop, until ``fd`` is readable (or writable); False after ``seconds``."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await asyncio.wait_for(ready, seconds)
        return True
    except TimeoutError:
        return False
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


def upload_body(request: Request) -> AsyncIterator[bytes] | SocketBody:
    """The body of an upload request: read from the socket by the receiving thread where the server
    offers it and nothing of it was read yet, else Starlette's stream of ASGI messages."""
    offered = request.scope.get("extensions", {}).get(EXTENSION)
    body = offered.get("body") if offered else None
    return body if isinstance(body, SocketBody) and body.usable() else request.stream()


def fresh_parser(protocol: Any) -> httptools.HttpRequestParser:
    parser = httptools.HttpRequestParser(protocol)
    try:
        parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn sets it
    except AttributeError:  # httptools < 0.6.3
        pass
    return parser
