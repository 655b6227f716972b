"""Serving a whole file from local disk: whole, one range, several ranges, HEAD; zero-copy where the
server offers it (``api/zerocopy_server.py``), 1 MiB reads on a worker thread otherwise.

Ranges follow ``ranges.parse_range`` (merged, sorted, at most 100, 416 past the end) and ``If-Range``
with our ETag, exactly like chunk-stored files (``api/chunked.py``), so a file answers the same
whichever way it is stored.
"""

from __future__ import annotations

import os
import secrets
from typing import BinaryIO, Protocol

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from aicommons.api.errors import error_response
from aicommons.api.ranges import parse_range
from aicommons.api.zerocopy_server import EXTENSION
from aicommons.errors import RangeNotSatisfiable

READ_SIZE = 1024 * 1024


class LocalFileResponse(Response):
    def __init__(self, path: str | os.PathLike[str], size: int, headers: dict, media_type: str):
        super().__init__(None, 200, headers, media_type)
        self.path, self.size = os.fspath(path), size
        self.file_headers = {**headers, "Accept-Ranges": "bytes"}
        self.media_type = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        range_header = request_headers.get("range")
        if_range = request_headers.get("if-range")
        if if_range is not None and if_range.strip() != self.file_headers.get("ETag"):
            range_header = None  # the client's copy is of another version: the whole file
        head_only = scope["method"] == "HEAD"
        try:
            ranges = parse_range(range_header, self.size) if range_header and self.size else None
        except RangeNotSatisfiable as exc:
            return await error_response(exc)(scope, receive, send)
        headers = dict(self.file_headers)
        status, media_type = 200, self.media_type
        parts: list[tuple[bytes, int, int]] = []  # (bytes sent before, first byte, byte count)
        tail = b""
        if not ranges:
            parts.append((b"", 0, self.size))
        elif len(ranges) == 1:
            status = 206
            start, end = ranges[0]
            headers["Content-Range"] = f"bytes {start}-{end}/{self.size}"
            parts.append((b"", start, end - start + 1))
        else:
            status = 206
            boundary = secrets.token_hex(13)
            media_type = f"multipart/byteranges; boundary={boundary}"
            for i, (start, end) in enumerate(ranges):
                head = (("\r\n" if i else "") + f"--{boundary}\r\nContent-Type: {self.media_type}\r\n"
                        f"Content-Range: bytes {start}-{end}/{self.size}\r\n\r\n").encode()
                parts.append((head, start, end - start + 1))
            tail = f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Length"] = str(sum(len(h) + n for h, _, n in parts) + len(tail))
        headers["Content-Type"] = media_type
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if head_only:
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        zerocopy = EXTENSION in scope.get("extensions", {})
        with open(self.path, "rb") as file:  # opened first: a file that is gone is an error, not a cut answer
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            for head, start, count in parts:
                if head:
                    await send({"type": "http.response.body", "body": head, "more_body": True})
                if zerocopy:
                    await send({"type": EXTENSION, "file": file, "offset": start, "count": count, "more_body": True})
                else:
                    await _copy(file, start, count, send)
        await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _copy(file, start: int, count: int, send: Send) -> None:
    while count > 0:
        chunk = await anyio.to_thread.run_sync(os.pread, file.fileno(), min(READ_SIZE, count), start)
        if not chunk:
            raise RuntimeError("the file is shorter than its recorded size")
        start += len(chunk)
        count -= len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})


class GrowingFile(Protocol):
    async def next_beyond(self, position: int) -> tuple[int, str | None]: ...


class GrowingFileResponse(Response):
    """A whole file that another thread is still writing (a first download through the mirror,
    ``hub/upstream.py``): each part is sent as soon as it is written, zero-copy where the server
    offers it. ``file`` is open on it (this response closes it); ``source.next_beyond`` says how far
    it is written, or why it ended short (then the connection is cut: the client sees a broken
    download, never a short one that looks whole). It waits on the event loop, woken by the writing
    thread as each piece is written: no polling, and no worker thread held per client."""

    def __init__(self, file: BinaryIO, source: GrowingFile, size: int, headers: dict, media_type: str):
        super().__init__(None, 200, {**headers, "Content-Length": str(size)}, media_type)
        self.file, self.source, self.size = file, source, size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        zerocopy = EXTENSION in scope.get("extensions", {})
        with self.file:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            position = 0
            while position < self.size:
                written, error = await self.source.next_beyond(position)
                if written > position:
                    count = min(written, self.size) - position
                    if zerocopy:
                        await send({"type": EXTENSION, "file": self.file, "offset": position, "count": count,
                                    "more_body": True})
                    else:
                        await _copy(self.file, position, count, send)
                    position += count
                elif error is not None:
                    raise ConnectionAbortedError(error)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
