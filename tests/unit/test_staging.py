"""The upload stager: what it writes, how it hashes, and the size of each write into the page cache."""

from __future__ import annotations

import hashlib
import os

import pytest

from aicommons.storage.staging import WRITE_PIECE, Stager


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

