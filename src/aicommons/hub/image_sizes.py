"""The pixel size of a repo's images, read from their headers, so a card's ``<img>`` can carry its
``width`` and ``height`` and the page does not move when the image arrives (issue 14: layout shift).

PNG, GIF, JPEG and WebP headers are parsed from the file's first 64 KiB at most (a JPEG's size comes
after its other segments). A commit's files never change, so sizes are remembered by
(repo folder, commit id, path).
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

import pygit2

from aicommons.hub import content
from aicommons.hub.objects import ObjectReader
from aicommons.hub.repos import WeightedLru
from aicommons.storage.base import StorageError

HEAD_BYTES = 64 * 1024
MAX_IMAGES = 20  # per card: more are left without sizes


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a PNG, GIF, JPEG or WebP file, or None."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = head[12:16]
        if kind == b"VP8 " and len(head) >= 30:
            w, h = struct.unpack("<HH", head[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if kind == b"VP8L" and len(head) >= 25:
            bits = int.from_bytes(head[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8X" and len(head) >= 30:
            return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
        return None
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        length = struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = struct.unpack(">HH", head[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


class ImageSizes:
    def __init__(self, objects: ObjectReader, capacity: int = 4096) -> None:
        self.objects = objects
        self._known = WeightedLru(capacity)

    def of(self, storage_key: str, git_repo: pygit2.Repository, commit: pygit2.Commit,
           paths: list[str]) -> dict[str, tuple[int, int]]:
        """The sizes of those of ``paths`` that are images at ``commit`` (others are left out)."""
        out: dict[str, tuple[int, int]] = {}
        for path in paths[:MAX_IMAGES]:
            key = (storage_key, str(commit.id), path)
            size = self._known.get(key)
            if size is None:
                size = self._read(git_repo, commit, path) or (0, 0)
                self._known.put(key, size)
            if size[0] > 0 and size[1] > 0:
                out[path] = size
        return out

    def _read(self, git_repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> tuple[int, int] | None:
        entry = content.get_entry(git_repo, commit, path)
        if entry is None or entry.type != "file":
            return None
        try:
            stream: BinaryIO = self.objects.open(entry.lfs.oid) if entry.lfs is not None \
                else io.BytesIO(content.read_blob(git_repo, entry.oid))
            with stream:
                return image_size(stream.read(HEAD_BYTES))
        except (StorageError, OSError, KeyError, ValueError, struct.error):
            return None
