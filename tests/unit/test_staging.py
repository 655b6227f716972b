"""The upload stager: what it writes, how it hashes, and the size of each write into the page cache."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aicommons.storage import staging
from aicommons.storage.staging import WRITE_PIECE, Stager, keep_freed_memory, receive


def test_pieces_of_any_size_are_written_in_small_writes_and_hashed(tmp_path, monkeypatch):
    """Request body pieces (up to 256 KiB) and verified xorb spans (up to MiBs) reach the file in
    writes of at most WRITE_PIECE bytes (large writes cost ~10x the system CPU in new page cache on
    this VM); the file and its sha256 are the bytes given, in order."""
    sizes: list[int] = []

    class Spy:
        def __init__(self, raw):
            self.raw = raw

        def write(self, data):
            sizes.append(len(data))
            return self.raw.write(data)

        def __getattr__(self, name):
            return getattr(self.raw, name)

    pieces = [os.urandom(n) for n in (1, WRITE_PIECE - 1, WRITE_PIECE, WRITE_PIECE + 1, 256 * 1024, 3 * 1024 * 1024 + 5)]
    with Stager(tmp_path) as stager:
        stager._file = Spy(stager._file)  # type: ignore[assignment]
        stager.write_all(pieces[:3])
        for piece in pieces[3:]:
            stager.write(memoryview(piece))
        staged = stager.finish()
    whole = b"".join(pieces)
    assert staged.path.read_bytes() == whole
    assert staged.size == len(whole) and staged.sha256 == hashlib.sha256(whole).hexdigest()
    assert max(sizes) == WRITE_PIECE and sum(sizes) == len(whole)


def test_a_stager_refuses_more_than_its_limit_and_leaves_nothing(tmp_path):
    with pytest.raises(OverflowError), Stager(tmp_path, max_bytes=10) as stager:
        stager.write(b"x" * 11)
    assert not list(tmp_path.glob("upload-*"))



def test_receive_consumes_every_piece_in_order_on_the_given_executor():
    """The xorb route hands its batches to one dedicated thread (xet/service.py): each piece reaches
    ``consume`` once, in order, in batches of about ``batch_bytes``, on that executor's thread, with
    at most two batches held; an error in ``consume`` is raised to the caller."""
    pieces = [bytes([i]) * (1000 + i) for i in range(50)]
    seen: list[bytes] = []
    threads: set[str] = set()

    async def body():
        for piece in pieces:
            await asyncio.sleep(0)
            yield piece
            yield b""  # empty pieces are skipped

    def consume(batch):
        threads.add(threading.current_thread().name)
        assert sum(map(len, batch)) < 4000 + 1049
        seen.extend(batch)

    with ThreadPoolExecutor(1, thread_name_prefix="receiving-test") as pool:
        asyncio.run(receive(body(), consume, batch_bytes=4000, executor=pool))
        assert seen == pieces and threads == {"receiving-test_0"}

        def refuse(batch):
            raise ValueError("bad chunk")

        with pytest.raises(ValueError, match="bad chunk"):
            asyncio.run(receive(body(), refuse, batch_bytes=4000, executor=pool))


def test_freed_request_memory_is_kept_for_reuse():
    """glibc's settings for the server (cli serve): a block of a body piece's size comes back from
    the heap after it was freed, not from a new mapping (which would cost fresh pages each time)."""
    if not hasattr(ctypes.CDLL(None), "mallopt") or os.uname().sysname != "Linux":
        pytest.skip("glibc only")
    assert keep_freed_memory()
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_long]
    first = libc.malloc(320 * 1024)
    assert first < libc.sbrk(0)  # in the heap (glibc's default maps a fresh block of this size)
    libc.free(first)
    second = libc.malloc(320 * 1024)
    libc.free(second)
    assert first == second  # the same block again (an mmap'ed one would be unmapped on free)


@pytest.mark.parametrize("where", ["data_dir", "tmpfs"])
def test_direct_stagers_write_exactly_the_bytes_around_the_page_cache_where_they_can(tmp_path, where):
    """``direct=True`` (LFS bodies): whole aligned MiBs written with O_DIRECT from a reused buffer, the
    tail buffered; on tmpfs (which refuses O_DIRECT before Linux 6.6) the same bytes, however written."""
    folder = tmp_path if where == "data_dir" else Path("/dev/shm") / tmp_path.name
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(folder.parent if where == "tmpfs" else folder)],
                        capture_output=True, text=True).stdout.strip()
    if where == "tmpfs" and fs != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    MiB = 1024 * 1024
    try:
        for size in (0, 1, 4095, MiB, MiB + 1, 3 * MiB + 12345):
            data = os.urandom(size)
            with Stager(folder, max_bytes=size, direct=True) as stager:
                engaged = stager._direct is not None
                for start in range(0, size, 300_000):  # pieces that straddle the aligned buffer
                    stager.write(memoryview(data)[start:start + 300_000])
                staged = stager.finish()
            assert staged.path.read_bytes() == data and staged.size == size
            assert staged.sha256 == hashlib.sha256(data).hexdigest()
            staged.discard()
            if fs in ("ext2/ext3", "xfs", "btrfs"):
                assert engaged, fs
        with pytest.raises(OverflowError), Stager(folder, max_bytes=10, direct=True) as stager:
            stager.write(b"x" * 11)
        assert not list(folder.glob("upload-*"))  # nothing left behind
        assert len(staging._DIRECT_BUFFERS) >= 1  # buffers go back to the pool for the next upload
    finally:
        if where == "tmpfs":
            for path in folder.glob("*"):
                path.unlink()
            folder.rmdir()
