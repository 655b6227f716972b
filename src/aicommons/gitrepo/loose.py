"""Loose git objects read by Python's zlib instead of libgit2's loose backend.

libgit2 (1.9, through pygit2) spins forever on a loose object whose zlib stream was cut short on
disk (a truncated file: a full disk, a crash, a bad copy), and it spins holding the GIL, so one read
of such an object stops every thread of the server. Every repository the hub opens gets
:class:`SafeLooseBackend` ahead of libgit2's own backends: it answers reads of loose objects, and
refuses a truncated or corrupt one with :class:`CorruptGitObject` (which names the object and
``aicommons fsck``). Packed objects are still read by libgit2 (the backend passes on them), and
objects are still written by libgit2's loose backend, as before.
"""

from __future__ import annotations

import os
import zlib

import pygit2

from aicommons.errors import HubError

_TYPES = {b"commit": pygit2.GIT_OBJECT_COMMIT, b"tree": pygit2.GIT_OBJECT_TREE,
          b"blob": pygit2.GIT_OBJECT_BLOB, b"tag": pygit2.GIT_OBJECT_TAG}
_HEADER_BYTES = 64  # "<type> <size>\0" with room to spare
PRIORITY = 1000  # ahead of libgit2's pack (2) and loose (1) backends


class CorruptGitObject(HubError):
    """A git object of a repository that cannot be read back (damaged on disk). Not a
    ``pygit2.GitError``, which callers take for "no such revision": this one is the server's fault."""

    status = 500
    code = "CorruptGitObject"

    def __init__(self, oid: str, why: str):
        super().__init__(f"git object {oid} of this repository is damaged on disk ({why}); the rest of "
                         "the repository can still be read. An administrator can run `aicommons fsck` "
                         "to list what is damaged and restore it from a backup.")
        self.oid = oid


class SafeLooseBackend(pygit2.OdbBackend):
    def __init__(self, objects_dir: str):
        super().__init__()
        self.objects_dir = objects_dir
        # libgit2 offers a write to the first backend only: hand it to its own loose writer, with
        # libgit2's defaults (the speed-first compression level, no fsync), as before.
        self._writer = pygit2.Odb()
        self._writer.add_backend(pygit2.OdbBackendLoose(objects_dir, -1, False), 1)

    def _path(self, hex_id: str) -> str:
        return os.path.join(self.objects_dir, hex_id[:2], hex_id[2:])

    def _raw(self, hex_id: str, limit: int = -1) -> bytes:
        try:
            with open(self._path(hex_id), "rb") as f:
                return f.read(limit)
        except (FileNotFoundError, NotADirectoryError):
            raise KeyError(hex_id) from None  # not loose: libgit2 asks the next backend

    def _parse(self, hex_id: str, data: bytes, *, whole: bool) -> tuple[int, int, bytes]:
        head, sep, body = data.partition(b"\0")
        kind, _, size_text = head.partition(b" ")
        if not sep or kind not in _TYPES or not size_text.isdigit():
            raise CorruptGitObject(hex_id, "invalid header")
        size = int(size_text)
        if whole and len(body) != size:
            raise CorruptGitObject(hex_id, f"{len(body)} bytes where the header says {size}")
        return _TYPES[kind], size, body

    def _load(self, hex_id: str) -> tuple[int, bytes]:
        raw = self._raw(hex_id)
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(raw)
        except zlib.error as exc:
            raise CorruptGitObject(hex_id, f"zlib: {exc}") from None
        if not inflater.eof:
            raise CorruptGitObject(hex_id, "the file is truncated")
        kind, _size, body = self._parse(hex_id, data, whole=True)
        return kind, body

    def read_cb(self, oid: pygit2.Oid) -> tuple[int, bytes]:
        return self._load(str(oid))

    def read_header_cb(self, oid: pygit2.Oid) -> tuple[int, int]:
        hex_id = str(oid)
        try:
            head = zlib.decompressobj().decompress(self._raw(hex_id, 4096), _HEADER_BYTES)
        except zlib.error as exc:
            raise CorruptGitObject(hex_id, f"zlib: {exc}") from None
        kind, size, _body = self._parse(hex_id, head, whole=False)
        return kind, size

    def read_prefix_cb(self, prefix: str) -> tuple[int, bytes, pygit2.Oid]:
        # (pygit2 looks up every object by "prefix", most often a whole id: no listing for that)
        hex_id = pygit2.Oid(hex=prefix) if len(prefix) == 40 else self.exists_prefix_cb(prefix)
        kind, body = self._load(str(hex_id))
        return kind, body, hex_id

    def exists_cb(self, oid: pygit2.Oid) -> bool:
        return os.path.isfile(self._path(str(oid)))

    def exists_prefix_cb(self, prefix: str) -> pygit2.Oid:
        prefix = prefix.lower()
        try:
            names = os.listdir(os.path.join(self.objects_dir, prefix[:2]))
        except (FileNotFoundError, NotADirectoryError):
            raise KeyError(prefix) from None
        found = [prefix[:2] + name for name in names if len(name) == 38 and (prefix[:2] + name).startswith(prefix)]
        if not found:
            raise KeyError(prefix)
        if len(found) > 1:
            raise ValueError(f"ambiguous object id {prefix}")
        return pygit2.Oid(hex=found[0])

    def write_cb(self, oid: pygit2.Oid, data: bytes, kind: int) -> None:
        self._writer.write(kind, data)

    def refresh_cb(self) -> None:
        return None


def guard(repo: pygit2.Repository) -> pygit2.Repository:
    """``repo`` with its loose objects read by :class:`SafeLooseBackend` first."""
    repo.odb.add_backend(SafeLooseBackend(os.path.join(repo.path, "objects")), PRIORITY)
    return repo


def open_repository(path: str | os.PathLike[str]) -> pygit2.Repository:
    return guard(pygit2.Repository(str(path)))
