"""Receive an upload into a local staging file while hashing it, then fsync.

The staged file lives in the data dir's ``tmp/`` (same filesystem as a local store, so the final
link is atomic). Callers check the hash and size before handing the file to ``BlobStore.put_file``.

Each byte is touched once on the way in (issue 21): ``receive`` hands the request body to a worker
thread in batches of pieces, reading the next batch while the thread hashes and writes the last (the
event loop never waits on a hash or a write, and no piece is copied into a bigger buffer); the
writer asks the kernel to start writing back every few MiB (``sync_file_range``), so the fsync
that makes the upload durable waits only for the tail instead of the whole file.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import mmap
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from aicommons.storage.base import translate_os_error as _as_storage_error


@dataclass
class StagedFile:
    path: Path
    sha256: str
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


WRITEBACK_BYTES = 8 * 1024 * 1024  # start the kernel's writeback of each this many bytes written
# Bytes per write() into the staged file. The kernel (ext4, large folios) puts a write into page-cache
# folios about its size; on a VM whose host takes back free memory (free page reporting), the large
# free blocks those come from must be faulted in again by the host: writing 256 MiB into a new file
# costs ~0.6 s of system CPU in 256 KiB or 4 MiB writes and ~0.07 s in 64 KiB ones
# (``python -m bench.page_cache_writes``; docs/benchmarks.md, mirror and upload sections). Request
# body pieces are up to 256 KiB and xorb chunks up to 128 KiB, so every write is cut to this size.
WRITE_PIECE = 64 * 1024
SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (Linux), or None where there is none: writeback then all happens at
    the fsync, which is slower, never less safe."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _sync_file_range()


def _set_direct(fd: int, on: bool) -> bool:
    """Turn ``O_DIRECT`` on or off for ``fd``; False where the filesystem refuses it (tmpfs) or the
    platform has none."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | flag) if on else (flags & ~flag))
    except OSError:
        return False
    return True


DIRECT_PIECE = 1024 * 1024  # bytes per O_DIRECT write: one aligned buffer's worth
_DIRECT_BUFFERS: list[mmap.mmap] = []  # aligned buffers of finished stagers, for the next ones
_DIRECT_BUFFERS_LOCK = threading.Lock()


def _direct_buffer() -> mmap.mmap:
    with _DIRECT_BUFFERS_LOCK:
        if _DIRECT_BUFFERS:
            return _DIRECT_BUFFERS.pop()
    return mmap.mmap(-1, DIRECT_PIECE)  # page-aligned, as O_DIRECT wants


def _give_back(buffer: mmap.mmap) -> None:
    with _DIRECT_BUFFERS_LOCK:
        if len(_DIRECT_BUFFERS) < 16:
            _DIRECT_BUFFERS.append(buffer)
            return
    buffer.close()


class Stager:
    """Writes chunks to a temp file, hashing (sha256) as it goes unless ``hash=False`` (content that
    is named by another hash, checked by its caller: xorbs). Use as a context manager.

    ``direct=True`` writes around the page cache (``O_DIRECT``, 1 MiB aligned writes from a reused
    buffer; the last partial piece buffered), where the filesystem allows it: for a body that nothing
    reads back soon (an LFS object is hashed as it arrives). On this VM filling new page-cache pages
    is the costliest part of a write (docs/benchmarks.md, sessions 12 and 14): 512 MiB took 0.14-0.23 s
    of system CPU in 64 KiB buffered writes and 0.04 s direct. A xorb is read back by the shard's
    check moments later, so xorbs stay buffered."""

    def __init__(self, tmp_dir: Path, max_bytes: int | None = None, *, hash: bool = True, direct: bool = False):
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        self._file = os.fdopen(fd, "wb", buffering=0)  # pieces are large: no second copy in a buffer
        self.path = Path(name)
        self._hash = hashlib.sha256() if hash else None
        self.size = 0
        self._written_back = 0  # bytes handed to the kernel's writeback so far
        self.max_bytes = max_bytes
        self._done = False
        self._direct: mmap.mmap | None = None  # the aligned buffer, while writing around the page cache
        self._filled = 0  # bytes waiting in it
        if direct and _set_direct(fd, True):
            self._direct = _direct_buffer()

    def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise OverflowError(self.max_bytes)
        if self._hash is not None:
            self._hash.update(chunk)
        try:
            if self._direct is not None:
                self._write_direct(memoryview(chunk))
                return
            view = memoryview(chunk)
            while view:  # an unbuffered write may be short
                view = view[self._file.write(view[:WRITE_PIECE]) or 0:]
        except OSError as exc:
            raise _as_storage_error(exc) from exc
        if _SYNC_FILE_RANGE is not None and self.size - self._written_back >= WRITEBACK_BYTES:
            _SYNC_FILE_RANGE(self._file.fileno(), self._written_back, self.size - self._written_back,
                             SYNC_FILE_RANGE_WRITE)
            self._written_back = self.size

    def _write_direct(self, view: memoryview) -> None:
        buffer = self._direct
        assert buffer is not None
        while view:
            n = min(len(view), DIRECT_PIECE - self._filled)
            buffer[self._filled:self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == DIRECT_PIECE:
                written = os.write(self._file.fileno(), buffer)
                if written != DIRECT_PIECE:  # never short on a regular file unless the disk is full
                    raise OSError(errno.ENOSPC, "short write to the staging file")
                self._filled = 0

    def _end_direct(self) -> None:
        """The last partial piece, buffered (O_DIRECT wants whole blocks), and the buffer given back."""
        buffer, self._direct = self._direct, None
        if buffer is None:
            return
        try:
            if self._filled:
                _set_direct(self._file.fileno(), False)
                done = 0
                while done < self._filled:  # an unbuffered write may be short
                    done += self._file.write(memoryview(buffer)[done:self._filled]) or 0
        finally:
            _give_back(buffer)

    def write_all(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.write(piece)

    def finish(self) -> StagedFile:
        try:
            self._end_direct()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise _as_storage_error(exc) from exc
        self._done = True
        return StagedFile(self.path, self._hash.hexdigest() if self._hash is not None else "", self.size)

    def __enter__(self) -> Stager:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._done:
            if self._direct is not None:
                _give_back(self._direct)
                self._direct = None
            self._file.close()
            self.path.unlink(missing_ok=True)


# The threads that hash/verify and write every upload body being received (LFS objects and Xet
# xorbs alike), a batch at a time. One thread per upload (anyio's pool) had up to a dozen threads
# taking the GIL from each other at every write of every piece: for a Xet folder 23-47k futex calls
# and 14-24k context switches per GiB against 9-20k and 6-9k with one thread, for 0.3 fewer CPU-s
# per GiB and no slower an upload (issue 21, session 12; docs/benchmarks.md). The work is mostly the
# page cache's copy and a hash, so on this 2-core box a second thread added hand-offs and no speed
# (Xet: +10 % CPU, +12 % time). A server with more cores gets one thread per two of them: the hashes
# and the writes release the GIL, so there more threads do overlap, and one busy upload must not
# queue every other user's behind it.
RECEIVING_THREADS = max(1, (os.cpu_count() or 2) // 2)
RECEIVING = ThreadPoolExecutor(RECEIVING_THREADS, thread_name_prefix="receive")


RECEIVE_BATCH_BYTES = 4 * 1024 * 1024


@runtime_checkable
class DirectBody(Protocol):
    """A request body that a worker thread reads from the connection itself, passing each piece to
    ``consume`` as it comes (``api/socket_body.py``); the pieces are views of a reused buffer, valid
    only during the call."""

    async def pump(self, consume: Callable[[list[memoryview]], Any], executor: Executor) -> None: ...


Body = AsyncIterator[bytes] | DirectBody
# Upload bodies received by this process, by how they were read: from the socket by the receiving
# threads, or as the server's ASGI messages (a chunked body, one sent with its headers, no server
# support). Exported by /metrics (``hub_upload_bodies_total``), so an operator sees which path runs.
BODIES_RECEIVED = {"socket": 0, "messages": 0}


async def receive(pieces: Body, consume: Callable[[list[Any]], Any],
                  batch_bytes: int = RECEIVE_BATCH_BYTES, executor: Executor = RECEIVING) -> None:
    """Hand a request body to ``consume`` in a worker thread, a batch of pieces at a time, while the
    event loop reads the next batch (at most two batches are held: memory stays flat). ``consume``
    sees the pieces in order, each once; whatever it raises is raised here. If reading fails (the
    client went away), the batch in the thread is finished first, so that the caller may clean up.
    ``executor``: the threads that consume (the receiving pool of every upload by default). A
    ``DirectBody`` is read by those threads themselves (no batches: one piece per read)."""
    if isinstance(pieces, DirectBody):
        BODIES_RECEIVED["socket"] += 1
        await pieces.pump(consume, executor)
        return
    BODIES_RECEIVED["messages"] += 1

    def run(batch: list[bytes]) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(executor, consume, batch)

    pending: asyncio.Future[Any] | None = None
    batch: list[bytes] = []
    size = 0
    try:
        async for piece in pieces:
            if not piece:
                continue
            batch.append(piece)
            size += len(piece)
            if size >= batch_bytes:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(run(batch))
                batch, size = [], 0
        if pending is not None:
            await pending
            pending = None
        if batch:
            await run(batch)
    finally:
        if pending is not None and not pending.done():
            try:
                await asyncio.shield(pending)
            except BaseException:  # noqa: BLE001 - the first error is the one raised
                pass


# glibc's malloc options (mallopt): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 128 * 1024 * 1024
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Let the server's allocator reuse the memory of request bodies instead of giving it back to
    the kernel and faulting it in again (issue 21, session 12). A body arrives in pieces of up to
    ~320 KiB (uvloop's reads, uvicorn's buffer), each allocated, copied and freed within
    milliseconds; glibc hands the top of its heap back to the kernel whenever more than a few
    hundred KiB there are free, so the next pieces land on new pages, each a page fault and a
    page clearing (on a virtual machine whose host takes free memory back, new pages cost the
    most). Here freed memory is kept up to ``KEEP_FREED_BYTES`` and blocks up to
    ``MMAP_THRESHOLD_BYTES`` come from the heap: a Xet upload's page faults fell from ~60k to ~41k
    per GiB. What the process holds stays bounded by the bodies in flight plus that margin.
    Returns whether the allocator took the settings (glibc only; elsewhere nothing changes)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Setting either turns glibc's own adjustment of both off: set both.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES))


def sweep_stale(tmp_dir: Path, max_age_seconds: float = 24 * 3600) -> int:
    """Remove staged uploads older than ``max_age_seconds``: what a killed process left behind.
    (Live uploads keep writing, so their files stay young.) Returns how many were removed."""
    import time

    removed = 0
    cutoff = time.time() - max_age_seconds
    for path in Path(tmp_dir).glob("upload-*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
