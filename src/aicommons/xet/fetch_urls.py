"""Signed URLs for byte ranges of stored xorbs: where a reconstruction sends hf_xet for the data.

hf_xet fetches these without any credentials (like presigned object-store URLs), so the URL itself
must say what it grants: one xorb, one stored byte range, until an expiry, signed with a key derived
from the hub secret (its own key: neither a token nor an LFS signature can pass as one). Binding the
range matters because a xorb can hold chunks of several files, some of which the reader may not be
allowed to see: a reconstruction only ever signs the chunks of the file it was asked about.

hf_xet sends the range back as ``Range: bytes=first-last``. An expired URL or a bad signature is
refused with 403, on which hf_xet asks for a new reconstruction; a range outside the signed one
with 416.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from aicommons.errors import Forbidden, RangeNotSatisfiable

_SPAN_RE = re.compile(r"^(\d+)-(\d+)$")
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d+)$")


class XorbRangeSigner:
    def __init__(self, key: bytes, ttl_seconds: int):
        self._key = key  # its own key, derived by hub/keys.py
        self.ttl = ttl_seconds

    def _sign(self, xorb_hex: str, first: int, last: int, expires: int) -> str:
        body = f"{xorb_hex}:{first}-{last}:{expires}".encode()
        digest = hmac.new(self._key, body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def query(self, xorb_hex: str, first: int, last: int, now: float | None = None) -> str:
        """The query string of a URL granting stored bytes ``first..last`` (inclusive) of a xorb."""
        expires = int(now if now is not None else time.time()) + self.ttl
        return f"bytes={first}-{last}&expires={expires}&signature={self._sign(xorb_hex, first, last, expires)}"

    def check(self, xorb_hex: str, params: dict[str, str], now: float | None = None) -> tuple[int, int]:
        """The signed (first, last) of a valid, unexpired URL; ``Forbidden`` otherwise."""
        match = _SPAN_RE.match(params.get("bytes", ""))
        expires = params.get("expires", "")
        if match is None or not expires.isdigit():
            raise Forbidden("Invalid xorb URL: ask the CAS for a new reconstruction")
        first, last = int(match[1]), int(match[2])
        if not hmac.compare_digest(self._sign(xorb_hex, first, last, int(expires)), params.get("signature", "")):
            raise Forbidden("Invalid xorb URL: bad signature")
        if int(expires) < (now if now is not None else time.time()):
            raise Forbidden("Expired xorb URL: ask the CAS for a new reconstruction")
        return first, last


def requested_range(header: str | None, first: int, last: int) -> tuple[int, int]:
    """The single ``Range`` a client asks of a signed URL, which must lie within ``first..last``;
    the whole signed range when there is no header."""
    if header is None:
        return first, last
    match = _RANGE_RE.match(header.strip())
    if match is None:
        raise RangeNotSatisfiable("Only a single 'bytes=first-last' range is served from a xorb URL")
    start, end = int(match[1]), int(match[2])
    if not first <= start <= end <= last:
        raise RangeNotSatisfiable(f"Range {header!r} is outside the bytes {first}-{last} this URL grants")
    return start, end
