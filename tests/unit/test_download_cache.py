"""The bounded whole-file cache for downloads of chunk-stored files (hub/download_cache.py)."""

from __future__ import annotations

import hashlib
import os
import threading
import time

from aicommons.hub.download_cache import MIN_BYTES, STALE_TMP_SECONDS, DownloadCache


def _blob(n: int) -> tuple[str, bytes]:
    data = os.urandom(n)
    return hashlib.sha256(data).hexdigest(), data


def _wait(cache: DownloadCache, oid: str, size: int, timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cache.get(oid, size, fill=False) is not None:
            return True
        time.sleep(0.02)
    return False


def test_first_get_queues_a_copy_later_gets_serve_it(tmp_path):
    oid, data = _blob(MIN_BYTES + 5)
    reads = []

    def read(o):
        reads.append(o)
        return iter([data[:1000], data[1000:]])

    cache = DownloadCache(tmp_path, 10 * MIN_BYTES, read)
    assert cache.get(oid, len(data)) is None  # served from the chunks this time
    assert _wait(cache, oid, len(data))
    assert cache.get(oid, len(data)).read_bytes() == data
    assert reads == [oid]  # copied once
    assert not any((tmp_path / ".tmp").iterdir())
    cache.close()


def test_wrong_bytes_small_files_and_bad_names_are_never_cached(tmp_path):
    oid, data = _blob(MIN_BYTES + 5)
    cache = DownloadCache(tmp_path, 10 * MIN_BYTES, lambda o: iter([data[:-1] + b"x"]))
    assert cache.get(oid, len(data)) is None
    cache.close()  # waits for the copy
    assert cache.get(oid, len(data), fill=False) is None and not cache.entries()
    small_oid, small = _blob(1000)
    assert DownloadCache(tmp_path, 10 * MIN_BYTES, lambda o: iter([small])).get(small_oid, len(small)) is None
    assert DownloadCache(tmp_path, 10 * MIN_BYTES, lambda o: iter([data])).get("../../etc/x" + "0" * 53,
                                                                               len(data)) is None
    assert DownloadCache(tmp_path, 0, lambda o: iter([data])).get(oid, len(data)) is None  # off


def test_least_recently_served_go_first_within_the_bound(tmp_path):
    blobs = dict(_blob(MIN_BYTES) for _ in range(3))
    cache = DownloadCache(tmp_path, 2 * MIN_BYTES + 10, lambda o: iter([blobs[o]]))
    a, b, c = blobs
    for oid in (a, b):
        cache.get(oid, MIN_BYTES)
        assert _wait(cache, oid, MIN_BYTES)
        time.sleep(0.05)
    os.utime(cache.path(a), (time.time() + 5, time.time() + 5))  # a served more recently than b
    cache.get(c, MIN_BYTES)
    assert _wait(cache, c, MIN_BYTES)
    assert cache.get(b, MIN_BYTES, fill=False) is None  # evicted
    assert cache.get(a, MIN_BYTES, fill=False) is not None
    assert sum(size for _, size, _ in cache.entries()) <= cache.max_bytes
    cache.close()


def test_a_deletion_empties_the_cache_and_discards_a_copy_being_made(tmp_path):
    oid, data = _blob(MIN_BYTES)
    other, other_data = _blob(MIN_BYTES)
    release = threading.Event()

    def read(o):
        if o == oid:
            yield data
        else:
            release.wait(10)
            yield other_data

    cache = DownloadCache(tmp_path, 10 * MIN_BYTES, read)
    cache.get(oid, MIN_BYTES)
    assert _wait(cache, oid, MIN_BYTES)
    cache.get(other, MIN_BYTES)  # being copied
    cache.clear()
    release.set()
    cache.close()
    assert cache.entries() == []

    cache = DownloadCache(tmp_path, 10 * MIN_BYTES, lambda o: iter([data if o == oid else other_data]))
    for o in (oid, other):
        cache.get(o, MIN_BYTES)
        assert _wait(cache, o, MIN_BYTES)
    assert cache.drop_unless(lambda o: o == oid) == 1  # GC removed the other object
    assert [p.name for _, _, p in cache.entries()] == [oid]
    cache.close()


def test_a_copy_rebuilt_elsewhere_is_kept_once_checked(tmp_path):
    """``adopt``: the Parquet conversion's checkout offers the file it rebuilt from the chunks; the
    cache links it (the checkout is deleted right after), keeps it only if it hashes to its name and
    no deletion emptied the cache since the chunks were read, and never reads the chunks itself."""
    oid, data = _blob(MIN_BYTES + 5)
    cache = DownloadCache(tmp_path / "cache", 10 * MIN_BYTES, lambda o: (_ for _ in ()).throw(AssertionError(o)))
    checkout = tmp_path / "checkout"
    checkout.write_bytes(data)
    cache.adopt(oid, len(data), checkout, cache.generation)
    checkout.unlink()  # the conversion's temporary folder goes
    cache.close()
    kept = cache.get(oid, len(data), fill=False)
    assert kept is not None and kept.read_bytes() == data
    assert not any((tmp_path / "cache" / ".tmp").iterdir())

    wrong_oid, _ = _blob(MIN_BYTES + 5)  # bytes that are not the object's: not kept
    checkout.write_bytes(data)
    cache.adopt(wrong_oid, len(data), checkout, cache.generation)
    cache.close()
    assert cache.get(wrong_oid, len(data), fill=False) is None

    other, other_data = _blob(MIN_BYTES)  # a deletion between reading the chunks and offering the copy
    generation = cache.generation
    cache.clear()
    checkout.write_bytes(other_data)
    cache.adopt(other, len(other_data), checkout, generation)
    cache.close()
    assert cache.get(other, len(other_data), fill=False) is None and cache.entries() == []

    small_oid, small = _blob(1000)  # below MIN_BYTES, or the cache off: nothing linked
    checkout.write_bytes(small)
    cache.adopt(small_oid, len(small), checkout, cache.generation)
    DownloadCache(tmp_path / "off", 0, lambda o: None).adopt(oid, len(data), checkout, 0)
    assert not (tmp_path / "off").exists() and cache.entries() == []
    assert os.stat(checkout).st_nlink == 1


def test_half_made_copies_a_crash_left_are_swept_later(tmp_path):
    """A server that died while writing a copy leaves it in ``.tmp``; the lifecycle sweep
    (``drop_unless``) removes it once it has not changed for a day, and leaves one being written
    (or linked, whose mtime is its old file's: the inode's ctime is what counts)."""
    cache = DownloadCache(tmp_path, 10 * MIN_BYTES, lambda o: None)
    (tmp_path / ".tmp").mkdir()
    stale, fresh = tmp_path / ".tmp" / "a.1.1", tmp_path / ".tmp" / "b.2.2"
    stale.write_bytes(b"left by a crash")
    time.sleep(0.05)
    between = time.time()
    time.sleep(0.05)
    old_file = tmp_path / "old"
    old_file.write_bytes(b"linked now")
    os.utime(old_file, (0, 0))  # an old copy: its mtime is 1970
    os.link(old_file, fresh)
    assert cache.drop_unless(lambda o: True, now=between + STALE_TMP_SECONDS) == 0
    assert not stale.exists() and fresh.exists()
    cache.close()
