"""The objects a ``git-upload-pack`` request *wants*, checked before git sees the request.

Protocol v2's upload-pack sends any object it has, whatever ``uploadpack.allow*SHA1InWant`` say,
so an old commit no ref reaches any more (squashed, force-pushed over: a leaked secret) stays
fetchable by id until it is purged. The request (the fetch negotiation: wants and haves, small) is
read here, gunzipped if git compressed it, and every ``want <oid>`` is checked against what the
refs reach (``hub/reachability.py``); then the same bytes are replayed to ``git http-backend``.
"""

from __future__ import annotations

import re
import zlib

from aicommons.errors import HubError

MAX_REQUEST_BYTES = 32 * 1024 * 1024  # compressed or not; a negotiation of 100k haves is ~5 MiB
_WANT = re.compile(rb"^want ([0-9a-f]{40}|[0-9a-f]{64})\b")


class TooLarge(HubError):
    status = 413


def gunzip(body: bytes, limit: int = MAX_REQUEST_BYTES) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise HubError("Malformed gzip request body", status=400) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge("The fetch request is too large")
    return out


def wants(body: bytes) -> list[str]:
    """The object ids of the ``want`` lines of a pkt-line stream (protocol v0/v1 or v2)."""
    found, pos = [], 0
    while pos + 4 <= len(body):
        try:
            length = int(body[pos:pos + 4], 16)
        except ValueError:
            break  # not pkt-lines: git will say so itself
        if length < 4:  # flush (0000), delim (0001), response-end (0002)
            pos += 4
            continue
        line = body[pos + 4:pos + length]
        pos += length
        match = _WANT.match(line)
        if match:
            found.append(match.group(1).decode())
    return found


async def read_request(receive, limit: int = MAX_REQUEST_BYTES) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HubError("Client disconnected", status=400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge("The fetch request is too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def not_our_ref(oid: str) -> bytes:
    """An ``ERR`` pkt-line: git prints ``remote error: upload-pack: not our ref <oid>``."""
    payload = f"ERR upload-pack: not our ref {oid}\n".encode()
    return f"{len(payload) + 4:04x}".encode() + payload


class Replay:
    """An ASGI app running ``app`` with a request body already read."""

    def __init__(self, app, body: bytes):
        self.app = app
        self.body = body

    async def __call__(self, scope, receive, send):
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
