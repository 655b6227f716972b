"""The ASGI "Zero Copy Send" extension (``http.response.zerocopy``) for uvicorn's httptools protocol,
and its receiving twin for uploads (``aicommons.request.socket_body``: ``api/socket_body.py``).

Python copying a file through uvicorn serves about half what nginx ``sendfile`` does (issue 11,
docs/benchmarks.md). This protocol lets a response hand an open file, an offset and a count to the
server, which moves the bytes with ``os.sendfile``: the kernel copies from the page cache to the
socket and the bytes never enter Python. Messages follow the ASGI spec's extension: ``{"type":
"http.response.zerocopy", "file": <file object>, "offset": int, "count": int, "more_body": bool}``,
between ``http.response.start`` and the last body message, and mixed freely with
``http.response.body`` (multipart ranges). The response must carry a ``Content-Length``.

One addition of ours: ``{"type": "http.response.zerocopy", "parts": [...], "more_body": bool}`` sends
a list of parts in one hand-off, each either ``(file, offset, count)`` (sendfile) or bytes (written
as they are): a chunk-stored file rebuilt from its xorbs (``api/chunked.py``) is a run of spans of
the xorb files (chunks stored uncompressed) with a few decoded chunks between them.

How it stays safe:
- ``sendfile`` runs on a worker thread (both cores move bytes for 8 concurrent ranges), on a
  duplicate of the socket's descriptor, so a connection that closes meanwhile can never let the
  descriptor number be reused by another client's socket under us.
- The thread writes the whole part while the reader keeps up: one hand-off from the event loop per
  part, not one per ``MAX_CALL`` (each hand-off wakes the loop and passes the GIL twice). It gives
  the thread back early in two cases: the socket's buffer stays full for ``THREAD_WAIT_MS`` (a slow
  reader holds no thread: the event loop waits for the socket to drain), or other sends are
  queued for a thread (every ``MAX_CALL`` bytes then, so downloads share the pool's threads). A
  reader that takes nothing for ``STALL_SECONDS`` is disconnected.
- A client that goes away (EPIPE, ECONNRESET) ends the response like any disconnect.
"""

from __future__ import annotations

import asyncio
import os
import select
from concurrent.futures import ThreadPoolExecutor

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from aicommons.api import socket_body

EXTENSION = "http.response.zerocopy"
STALL_SECONDS = 60.0
THREAD_WAIT_MS = 50  # a full socket buffer is waited for on the thread this long (half the CPU of going back)
MAX_CALL = 8 * 1024 * 1024  # bytes per sendfile call; a thread others wait for comes back this often
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sendfile")


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, offering ``http.response.zerocopy`` to file downloads and
    ``aicommons.request.socket_body`` (``api/socket_body.py``) to uploads."""

    body_parsed = 0  # body bytes of the request being parsed that the parser has handed on so far

    def on_message_begin(self) -> None:
        self.body_parsed = 0
        super().on_message_begin()

    def on_body(self, body: bytes) -> None:
        self.body_parsed += len(body)
        super().on_body(body)

    def _start_asgi_task(self, cycle, app) -> None:
        # Offered to file downloads and uploads only (``/resolve/``, LFS transfer links, xorbs): every
        # other request runs exactly as under uvicorn's own protocol. (Offering zerocopy everywhere broke
        # a Gradio Space in its frame, tests/spaces/test_browser.py, for a reason not found yet.)
        raw_path = cycle.scope.get("raw_path") or b""
        method = cycle.scope["method"]
        plain = self.transport.get_extra_info("socket") is not None and self.transport.get_extra_info("sslcontext") is None
        if plain and method in ("GET", "HEAD") and (b"/resolve/" in raw_path or raw_path.startswith(b"/lfs-transfer/")):
            cycle.scope.setdefault("extensions", {})[EXTENSION] = {}
            cycle.send = _ZeroCopySend(cycle)
        elif plain and ((method == "PUT" and raw_path.startswith(b"/lfs-transfer/"))
                        or (method == "POST" and raw_path.startswith(b"/xet-cas/") and b"/v1/xorbs/" in raw_path)):
            length = _content_length(cycle.scope["headers"])
            if length is not None:
                cycle.scope.setdefault("extensions", {})[socket_body.EXTENSION] = {
                    "body": socket_body.SocketBody(self, cycle, length)}
        super()._start_asgi_task(cycle, app)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's length if the request declares one and is not chunked (or sends it twice)."""
    lengths = [value for name, value in headers if name == b"content-length"]
    if len(lengths) != 1 or not lengths[0].isdigit() or any(name == b"transfer-encoding" for name, _ in headers):
        return None
    return int(lengths[0])


class _ZeroCopySend:
    def __init__(self, cycle: RequestResponseCycle):
        self.cycle = cycle
        self.send = RequestResponseCycle.send.__get__(cycle)

    async def __call__(self, message) -> None:
        if message["type"] != EXTENSION:
            return await self.send(message)
        cycle = self.cycle
        if cycle.disconnected:
            return
        if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
            raise RuntimeError("http.response.zerocopy needs a started response with a Content-Length")
        if "parts" in message:
            parts = message["parts"]
        else:
            file = message["file"]
            offset = message.get("offset")
            if offset is None:
                offset = file.tell()
            count = message.get("count")
            if count is None:
                count = os.fstat(file.fileno()).st_size - offset
            parts = [(file, offset, count)]
        count = sum(p[2] if isinstance(p, tuple) else len(p) for p in parts)
        more_body = message.get("more_body", False)
        if cycle.scope["method"] != "HEAD" and count:
            if count > cycle.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            try:
                await _send_parts(cycle.transport, parts)
            except OSError:  # the client went away (or stopped reading): the connection ends here
                cycle.disconnected = True
                cycle.transport.close()
                return
            cycle.expected_content_length -= count
        await self.send({"type": "http.response.body", "body": b"", "more_body": more_body})


async def _send_parts(transport: asyncio.Transport, parts: list) -> None:
    """Send ``parts``: each ``(file or descriptor, offset, count)`` (sendfile) or bytes (written)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STALL_SECONDS
    while transport.get_write_buffer_size():  # the status line and headers, or a multipart head
        if transport.is_closing() or loop.time() > deadline:
            raise ConnectionResetError("the client stopped reading")
        await asyncio.sleep(0.001)
    sock = os.dup(transport.get_extra_info("socket").fileno())
    try:
        cursor = [0, 0]
        while cursor[0] < len(parts):
            sent = await loop.run_in_executor(_pool, _send_parts_until_full, sock, parts, cursor)
            if not sent:
                if not await socket_body.fd_ready(loop, sock, write=True, seconds=STALL_SECONDS):
                    raise ConnectionResetError("the client took nothing for a minute")
    finally:
        os.close(sock)


def _send_parts_until_full(sock: int, parts: list, cursor: list[int]) -> int:
    """Bytes of ``parts`` sent, from ``cursor`` (the part under way, and how many of its bytes are
    sent, which it moves on), before the socket's buffer stayed full for ``THREAD_WAIT_MS`` or another
    send queued for a thread got its turn (0: nothing sent)."""
    total = 0
    poller = None
    i, done = cursor
    while i < len(parts):
        part = parts[i]
        try:
            if isinstance(part, tuple):
                file, offset, count = part
                fd = file if isinstance(file, int) else file.fileno()
                sent = os.sendfile(sock, fd, offset + done, min(count - done, MAX_CALL)) if count > done else 0
                if not sent and count > done:
                    raise ConnectionResetError("the file ended before its Content-Length (it changed on disk)")
            else:
                count = len(part)
                sent = os.write(sock, memoryview(part)[done:done + MAX_CALL]) if count > done else 0
        except BlockingIOError:
            if THREAD_WAIT_MS <= 0:
                break
            if poller is None:
                poller = select.poll()
                poller.register(sock, select.POLLOUT)
            if not poller.poll(THREAD_WAIT_MS):
                break  # a slow reader: the event loop waits for it, not this thread
            continue
        total += sent
        done += sent
        if done >= count:
            i, done = i + 1, 0
        if total >= MAX_CALL and socket_body.others_wait(_pool):
            break
    cursor[:] = i, done
    return total
