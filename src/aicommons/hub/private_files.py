"""The data dir is private to the hub's own account: files 0600, folders 0700.

The data dir holds the signing key (``secret_key``: whoever reads it forges sessions and signed
URLs), the SQLite database (password hashes, token hashes, private repos' metadata), private repos'
git objects and blobs. ``aicommons`` commands run with umask 077, so everything they create is
private; at start-up the hub also fixes what an older version (or a hand-made folder) left
readable: the top folders lose their group/other bits (which alone stops other local users from
reaching anything beneath), and the key and database files are made 0600. That check costs a few
``stat`` calls, never a walk of the tree.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aicommons.config import Settings

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_umask() -> None:
    """Everything this process creates from now on is private (files 0600, folders 0700)."""
    os.umask(PRIVATE_UMASK)


def make_private(path: Path) -> None:
    """Take away group/other access from ``path`` if it exists and is ours (0644 -> 0600, 0755 -> 0700)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
        return  # a link, or someone else's folder the operator pointed us at: leave it alone
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        os.chmod(path, mode & ~0o077)


def write_private_file(path: Path, text: str) -> None:
    """Create ``path`` atomically with mode 0600 whatever the umask (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is not applied to a temp file left by a crash
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def sqlite_files(database_url: str) -> list[Path]:
    if not database_url.startswith("sqlite") or "///" not in database_url:
        return []
    path = database_url.split("///", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:":
        return []
    return [Path(path + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


def local_storage_root(storage_url: str) -> Path | None:
    return Path(storage_url[len("file://"):]) if storage_url.startswith("file://") else None


def secure_data_dir(settings: Settings) -> None:
    """Fix the modes of what holds secrets: the data dir and the folders and files beside it."""
    folders = [settings.data_dir, Path(settings.git_dir), settings.tmp_dir,
               local_storage_root(settings.storage_url)]
    for folder in folders:
        if folder is not None:
            make_private(Path(folder))
    make_private(settings.data_dir / "secret_key")
    for path in sqlite_files(settings.database_url):
        make_private(path)
