"""Plain HTTP downloads of chunk-stored files: whole, one range, several ranges, HEAD.

A file uploaded through Xet has no whole-file copy (``hub/objects.py``); its bytes are read from
its xorbs as they are sent (``xet/files.py``), a few MiB at a time on a worker thread, so memory
stays flat whatever the file's size. Ranges follow ``ranges.parse_range`` (the same rules as for
git blobs and Starlette's FileResponse: merged, sorted, at most 100, 416 past the end), and
``If-Range`` with our ETag.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

from starlette.responses import Response, StreamingResponse

from aicommons.api.ranges import parse_range
from aicommons.xet.files import ChunkedFile


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
        return StreamingResponse(source.iter_range(0, size), headers=headers, media_type=media_type)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers.update({"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)})
        if head_only:
            return Response(b"", status_code=206, headers=headers, media_type=media_type)
        return StreamingResponse(source.iter_range(start, end + 1), status_code=206, headers=headers,
                                 media_type=media_type)
    boundary = secrets.token_hex(13)
    heads = [f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Range: bytes {s}-{e}/{size}\r\n\r\n".encode()
             for s, e in ranges]
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(h) + (e - s + 1) + 2 for h, (s, e) in zip(heads, ranges)) + len(tail)
    headers["Content-Length"] = str(length)
    multipart = f"multipart/byteranges; boundary={boundary}"
    if head_only:
        return Response(b"", status_code=206, headers=headers, media_type=multipart)

    def body() -> Iterator[bytes]:
        for head, (start, end) in zip(heads, ranges):
            yield head
            yield from source.iter_range(start, end + 1)
            yield b"\r\n"
        yield tail

    return StreamingResponse(body(), status_code=206, headers=headers, media_type=multipart)
