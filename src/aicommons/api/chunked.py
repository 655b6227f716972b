"""Plain HTTP downloads of chunk-stored files: whole, one range, several ranges, HEAD.

A file uploaded through Xet has no whole-file copy (``hub/objects.py``); its bytes are read from
its xorbs as they are sent (``xet/files.py``), a few MiB at a time on a worker thread, so memory
stays flat whatever the file's size. Where the server offers zero-copy sends
(``api/zerocopy_server.py``) and the xorbs are local files, the chunks stored uncompressed (most of
a model's weights) go from the xorb files to the socket with sendfile, and only compressed chunks
are decoded in Python: each list of parts (``ChunkedFile.iter_parts``, 16 MiB of the file) is
planned on a worker thread while the one before it is sent, in one hand-off to the server. Ranges follow ``ranges.parse_range`` (the same
rules as for git blobs and Starlette's FileResponse: merged, sorted, at most 100, 416 past the
end), and ``If-Range`` with our ETag.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from aicommons.api.ranges import parse_range
from aicommons.api.zerocopy_server import EXTENSION
from aicommons.xet.files import PART_BYTES, READ_BYTES, ChunkedFile, StoredSpan, close_all

# Threads start only when needed; the bound is what concurrent downloads of chunk-stored files from an
# object store (whose reads wait here) can use before they queue.
_planners = ThreadPoolExecutor(max_workers=64, thread_name_prefix="chunked-parts")


def chunked_file_response(source: ChunkedFile, headers: dict, range_header: str | None, if_range: str | None,
                          media_type: str, head_only: bool = False) -> Response:
    size = source.size
    headers = {**headers, "Accept-Ranges": "bytes"}
    if if_range is not None and if_range.strip() != headers.get("ETag"):
        range_header = None  # the client's copy is of another version: the whole file
    ranges = parse_range(range_header, size) if range_header and size else None
    if not ranges:
        headers["Content-Length"] = str(size)
        if head_only:
            return Response(b"", headers=headers, media_type=media_type)
        return ChunkedFileResponse(source, [(b"", 0, size)], b"", 200, headers, media_type)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers.update({"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)})
        if head_only:
            return Response(b"", status_code=206, headers=headers, media_type=media_type)
        return ChunkedFileResponse(source, [(b"", start, end + 1)], b"", 206, headers, media_type)
    boundary = secrets.token_hex(13)
    heads = [f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Range: bytes {s}-{e}/{size}\r\n\r\n".encode()
             for s, e in ranges]
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(h) + (e - s + 1) + 2 for h, (s, e) in zip(heads, ranges)) + len(tail)
    headers["Content-Length"] = str(length)
    multipart = f"multipart/byteranges; boundary={boundary}"
    if head_only:
        return Response(b"", status_code=206, headers=headers, media_type=multipart)
    # Each part after the first starts with the CRLF that ends the one before.
    pieces = [((b"\r\n" if i else b"") + head, start, end + 1) for i, (head, (start, end)) in enumerate(zip(heads, ranges))]
    return ChunkedFileResponse(source, pieces, b"\r\n" + tail, 206, headers, multipart)


class ChunkedFileResponse(Response):
    """``pieces``: (bytes sent first, file byte range ``[start, end)``) in order, then ``tail``."""

    def __init__(self, source: ChunkedFile, pieces: list[tuple[bytes, int, int]], tail: bytes, status: int,
                 headers: dict, media_type: str):
        super().__init__(None, status, headers, media_type)
        self.source, self.pieces, self.tail = source, pieces, tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        zerocopy = EXTENSION in scope.get("extensions", {})
        async with anyio.create_task_group() as tasks:
            async def stream() -> None:
                await self._stream(send, zerocopy)
                tasks.cancel_scope.cancel()

            tasks.start_soon(stream)
            while (await receive())["type"] != "http.disconnect":  # a client that leaves ends the reads
                pass
            tasks.cancel_scope.cancel()

    async def _stream(self, send: Send, zerocopy: bool) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        handles: dict[bytes, BinaryIO] = {}  # the xorbs read, open until every span of them is sent
        planning: Future | None = None
        try:
            for head, start, end in self.pieces:
                if head:
                    await send({"type": "http.response.body", "body": head, "more_body": True})
                parts = self.source.iter_parts(start, end, PART_BYTES if zerocopy else READ_BYTES, handles)
                planning = _planners.submit(_next_batch, parts, zerocopy)
                while (batch := await asyncio.wrap_future(planning)) is not None:
                    # The next list is planned (or read) on a worker thread while this one is sent.
                    planning = _planners.submit(_next_batch, parts, zerocopy)
                    if zerocopy:
                        await send({"type": EXTENSION, "parts": batch, "more_body": True})  # spans are tuples
                    else:
                        await send({"type": "http.response.body", "body": batch, "more_body": True})
            await send({"type": "http.response.body", "body": self.tail, "more_body": False})
        finally:
            # Cut short (a client gone, a damaged xorb): the xorbs are closed once the thread is done with them.
            if planning is not None and not planning.done():
                planning.add_done_callback(lambda _: close_all(handles))
            else:
                close_all(handles)


def _next_batch(parts: Iterator[list[bytes | StoredSpan]], zerocopy: bool) -> list | bytes | None:
    """The next list of parts, or None at the end; without zero-copy sends, the bytes of the next
    list, spans read here."""
    batch = next(parts, None)
    if batch is None or zerocopy:
        return batch
    return b"".join(_read_span(p) if isinstance(p, StoredSpan) else p for p in batch)


def _read_span(span: StoredSpan) -> bytes:
    data = os.pread(span.file.fileno(), span.size, span.offset)
    if len(data) != span.size:
        raise RuntimeError("a stored xorb changed while it was read")
    return data
