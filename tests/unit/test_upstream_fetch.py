"""The pieces of a first download through the mirror (hub/upstream.py ``_Fetch``): the hashing thread
hashes exactly what was written (read back from the file, in pieces of any size), and a coroutine
waiting for more bytes is woken by the write itself, not by a timeout."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from types import SimpleNamespace

from aicommons.hub import upstream
from aicommons.hub.upstream import _Fetch, _Hasher


def fetch_of(tmp_path, data: bytes) -> _Fetch:
    service = SimpleNamespace(lfs=SimpleNamespace(tmp_dir=tmp_path))
    return _Fetch(service, None, "http://upstream.invalid/x", hashlib.sha256(data).hexdigest(), len(data), {})


def test_the_hash_is_of_the_bytes_written_in_pieces_of_any_size(tmp_path, monkeypatch):
    monkeypatch.setattr(upstream, "HASH_WINDOW", 64 * 1024)  # several windows, not aligned to the pieces
    data = os.urandom(1_000_003)
    fetch = fetch_of(tmp_path, data)
    hasher = _Hasher(fetch)
    with open(fetch.path, "wb", buffering=0) as out:
        hasher.start()
        position = 0
        for size in (1, 4095, 70_000, 1, 300_000, 12_345):
            fetch._append(out, memoryview(data)[position:position + size])
            position += size
            time.sleep(0.01)  # let the hashing thread catch up midway, at odd offsets
        fetch._append(out, memoryview(data)[position:])
    assert hasher.hexdigest() == fetch.oid


def test_a_flipped_byte_in_the_file_changes_the_hash(tmp_path):
    data = bytearray(os.urandom(300_000))
    fetch = fetch_of(tmp_path, bytes(data))
    data[123_456] ^= 1
    hasher = _Hasher(fetch)
    with open(fetch.path, "wb", buffering=0) as out:
        hasher.start()
        fetch._append(out, memoryview(data))
    assert hasher.hexdigest() != fetch.oid


def test_a_waiting_coroutine_is_woken_by_the_write_and_by_the_end(tmp_path):
    data = os.urandom(100_000)
    fetch = fetch_of(tmp_path, data)

    async def scenario() -> None:
        out = open(fetch.path, "wb", buffering=0)  # noqa: SIM115

        def later(action) -> None:
            threading.Timer(0.2, action).start()

        later(lambda: fetch._append(out, memoryview(data)[:1000]))
        start = time.monotonic()
        assert await fetch.next_beyond(0) == (1000, None)
        woken = time.monotonic() - start
        assert 0.15 < woken < 0.6  # woken by the write (the guard timeout is 1 s)

        def cut() -> None:
            with fetch.changed:
                fetch.error, fetch.done = "upstream went away", True
                fetch._wake()

        later(cut)
        start = time.monotonic()
        assert await fetch.next_beyond(1000) == (1000, "upstream went away")
        assert time.monotonic() - start < 0.6
        out.close()

    asyncio.run(scenario())
