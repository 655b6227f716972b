"""HTTP Range parsing (pure) and in-memory ranged responses for small git blobs.

Large LFS files are served by Starlette's FileResponse, which does its own ranges; this module is
for regular files read from git into memory.
"""

from __future__ import annotations

import re
import secrets

from starlette.responses import Response

from aicommons.errors import RangeNotSatisfiable

MAX_RANGES = 100
_DIGITS = re.compile(r"[0-9]+")


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """Inclusive (start, end) pairs, merged and sorted; None when the header should be ignored."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    ranges = []
    for part in spec.split(","):
        part = part.strip()
        start_s, dash, end_s = part.partition("-")
        if not dash or not _DIGITS.fullmatch(start_s + end_s or "x") or len(start_s) > 19 or len(end_s) > 19:
            return None  # ASCII digits only: int() would take "1_0", "+1", " 1" and "١"
        try:
            if start_s == "":
                length = int(end_s)
                if length <= 0:
                    continue
                start, end = max(0, size - length), size - 1
            else:
                start = int(start_s)
                end = int(end_s) if end_s else max(start, size - 1)
        except ValueError:
            return None
        if start > end:
            return None  # syntactically invalid: serve the whole file, as RFC 9110 says
        if start >= size:
            continue
        ranges.append((start, min(end, size - 1)))
    if not ranges:
        raise RangeNotSatisfiable(f"Range {header!r} is outside the file (size {size})",
                                  headers={"Content-Range": f"bytes */{size}"})
    if len(ranges) > MAX_RANGES:
        return None
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end + 1:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def bytes_response(data: bytes, headers: dict, range_header: str | None, media_type: str,
                   head_only: bool = False) -> Response:
    size = len(data)
    headers = {**headers, "Accept-Ranges": "bytes"}
    ranges = parse_range(range_header, size) if range_header else None
    if not ranges:
        return Response(b"" if head_only else data, headers={**headers, "Content-Length": str(size)},
                        media_type=media_type)
    if len(ranges) == 1:
        start, end = ranges[0]
        body = data[start:end + 1]
        headers.update({"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(len(body))})
        return Response(b"" if head_only else body, status_code=206, headers=headers, media_type=media_type)
    boundary = secrets.token_hex(13)
    parts = []
    for start, end in ranges:
        parts.append(f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n"
                     .encode() + data[start:end + 1] + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers["Content-Length"] = str(len(body))
    return Response(b"" if head_only else body, status_code=206, headers=headers,
                    media_type=f"multipart/byteranges; boundary={boundary}")
