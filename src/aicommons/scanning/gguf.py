"""GGUF (llama.cpp): the header's key/value section is parsed with bounds, and a
``tokenizer.chat_template`` in it is checked like any chat template. Tensors are not read."""

from __future__ import annotations

import struct
from typing import BinaryIO

from .results import Finding
from .text_checks import check_template

_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> bytes
_STRING, _ARRAY = 8, 9
MAX_KV = 100_000
MAX_STRING = 64 * 1024 * 1024
MAX_ARRAY = 100_000_000


class _Malformed(ValueError):
    pass


def _read(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise _Malformed("truncated")
    return data


def _skip(stream: BinaryIO, n: int) -> None:
    """Read past ``n`` bytes in bounded chunks (a truncated file is still noticed)."""
    while n > 0:
        n -= len(_read(stream, min(n, 1 << 20)))


def _string(stream: BinaryIO) -> bytes:
    (n,) = struct.unpack("<Q", _read(stream, 8))
    if n > MAX_STRING:
        raise _Malformed(f"a {n}-byte string")
    return _read(stream, n)


def _skip_value(stream: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        _read(stream, _FIXED[kind])
    elif kind == _STRING:
        _string(stream)
    elif kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", _read(stream, 12))
        if count > MAX_ARRAY:
            raise _Malformed(f"an array of {count} items")
        if item_kind in _FIXED:
            _skip(stream, _FIXED[item_kind] * count)
        else:
            for _ in range(count):
                _skip_value(stream, item_kind)
    else:
        raise _Malformed(f"unknown value type {kind}")


def scan_gguf(stream: BinaryIO) -> list[Finding]:
    try:
        magic, version = struct.unpack("<4sI", _read(stream, 8))
        if magic != b"GGUF" or version not in (2, 3):
            raise _Malformed(f"magic {magic!r} version {version}")
        _tensors, kv_count = struct.unpack("<QQ", _read(stream, 16))
        if kv_count > MAX_KV:
            raise _Malformed(f"{kv_count} metadata entries")
        findings = []
        for _ in range(kv_count):
            key = _string(stream).decode("utf-8", "replace")
            (kind,) = struct.unpack("<I", _read(stream, 4))
            if key == "tokenizer.chat_template" and kind == _STRING:
                findings += check_template(_string(stream).decode("utf-8", "replace"), "GGUF chat template")
            else:
                _skip_value(stream, kind)
        return findings
    except (_Malformed, struct.error, OSError) as exc:
        return [Finding("gguf-header", "error", f"malformed GGUF header: {exc}")]
