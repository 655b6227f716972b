"""Backup and restore: database dump + git folder copy + blob copy, taken in that order.

Order matters because nothing is stopped. Blobs are immutable and only GC deletes them, and git
objects are append-only, so copying *after* the database dump captures every blob and commit the
dump refers to. Within each git repository the refs are copied before the objects, so every copied
ref points at objects that exist by the time the objects are copied. ``aicommons backup`` holds
the GC lock throughout, so no blob the dump references is collected before it is copied.

Layout of a backup folder::

    manifest.json      what was backed up, from which kind of database
    hub.db             SQLite online-backup copy            (or)
    database.dump      ``pg_dump --format=custom``
    git/               the bare repositories, as under AICOMMONS_GIT_DIR
    <KEY_FILE>         the hub's key file, when the key is not a setting (one SQLite machine)
    blobs/             every blob, by key (absent with ``--skip-blobs``: copy the bucket yourself)

Neither command leaves anything half-done when interrupted (Ctrl-C) or failing: a backup removes
what it wrote (``manifest.json`` is written last), a restore leaves the database empty and removes
the repositories it copied, so it can simply be run again.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from aicommons.config import Settings
from aicommons.db.engine import normalise_url
from aicommons.hub.keys import KEY_FILE, current_key_id, install_key_file, key_file_text, setting_key_id
from aicommons.hub.private_files import write_private_file
from aicommons.hub.progress import SILENT, Progress
from aicommons.storage import open_blob_store
from aicommons.storage.base import BlobStore
from aicommons.times import iso_z, utcnow

FORMAT = 1
CHUNK = 1024 * 1024


class BackupError(Exception):
    pass


def _dialect(url: str) -> str:
    return "sqlite" if normalise_url(url).startswith("sqlite") else "postgresql"


def _sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def _libpq_url(url: str) -> str:
    """pg_dump wants a libpq URL: ``postgresql://``, without SQLAlchemy's ``+psycopg``."""
    return "postgresql://" + normalise_url(url).split("://", 1)[1]


def pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: from PATH, else the newest Debian-installed version."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise BackupError(f"{name} not found: install the PostgreSQL client (postgresql-client)")
    return candidates[-1]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {proc.stderr.strip()}")


# --- git ----------------------------------------------------------------------------------------

def git_repo_dirs(root: Path) -> list[Path]:
    """Bare repositories under ``root`` (``<root>/<xx>/<key>.git``), relative to it."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root) for p in root.glob("*/*.git") if p.is_dir())


def copy_git_repo(src: Path, dst: Path) -> None:
    """Everything but the objects first (refs included), then the objects: refs never dangle."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        if entry.name == "objects":
            continue
        if entry.is_dir():
            shutil.copytree(entry, dst / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, dst / entry.name)
    shutil.copytree(src / "objects", dst / "objects", dirs_exist_ok=True)


# --- blobs --------------------------------------------------------------------------------------

def copy_blob_out(store: BlobStore, key: str, dest_root: Path) -> int:
    dest = dest_root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    size = 0
    with store.open(key) as src, open(tmp, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest)
    return size


# --- backup -------------------------------------------------------------------------------------

def backup(settings: Settings, dest: Path, *, skip_blobs: bool = False, progress: Progress = SILENT) -> dict[str, Any]:
    """Write a backup into ``dest`` (new or empty). Interrupted or failed, it removes what it wrote:
    a folder with a ``manifest.json`` is always a whole backup."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    created = not dest.exists()
    try:
        return _write_backup(settings, dest, skip_blobs, progress)
    except BaseException:
        _remove_contents(dest, remove_folder=created)
        raise
    finally:
        progress.close()


def _write_backup(settings: Settings, dest: Path, skip_blobs: bool, progress: Progress) -> dict[str, Any]:
    # A backup holds the signing secrets' victims (password and token hashes, private repos): the
    # folder is the owner's alone from the start, and every file in it 0600 at the end.
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(dest, 0o700)
    dialect = _dialect(settings.database_url)
    manifest = {"format": FORMAT, "created_at": iso_z(utcnow()), "database": dialect}
    # The hub's key sealed Space secrets and linked upstream tokens in the database: the restored
    # hub needs the same one. A key file travels with the backup; a setting is only named.
    named = current_key_id(settings)
    if named is not None:
        manifest["key_id"] = named
        carried = key_file_text(settings)
        if carried is not None:
            write_private_file(dest / KEY_FILE, carried)
    # 1. The database, consistently, while the hub runs.
    progress.stage("database", items=1)
    if dialect == "sqlite":
        src = sqlite3.connect(_sqlite_path(settings.database_url))
        dst = sqlite3.connect(dest / "hub.db")
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    else:
        _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
              "--file", str(dest / "database.dump"), "--dbname", _libpq_url(settings.database_url)])
    progress.advance()
    # 2. Git repositories.
    repos = git_repo_dirs(Path(settings.git_dir))
    progress.stage("git repositories", items=len(repos))
    for rel in repos:
        copy_git_repo(Path(settings.git_dir) / rel, dest / "git" / rel)
        progress.advance()
    manifest["git_repositories"] = len(repos)
    # 3. Blobs.
    if not skip_blobs:
        store = open_blob_store(settings.storage_url, settings.tmp_dir)
        listing = list(store.list_blobs(""))
        progress.stage("blobs", items=len(listing), nbytes=sum(info.size for info in listing))
        count = total = 0
        for info in listing:
            size = copy_blob_out(store, info.key, dest / "blobs")
            total += size
            count += 1
            progress.advance(1, size)
        manifest.update(blobs=count, blob_bytes=total)
    # The manifest last: it is what makes the folder a backup.
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _make_tree_private(dest)
    return manifest


def _remove_contents(folder: Path, *, remove_folder: bool) -> None:
    if not folder.exists():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if remove_folder:
        folder.rmdir()


def _make_tree_private(root: Path) -> None:
    """Copies keep their source's mode (``copy2``): take group/other bits off everything."""
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & 0o700)


# --- the hub's key -------------------------------------------------------------------------------

def _check_key(settings: Settings, src: Path, manifest: dict[str, Any]) -> str | None:
    """Refuse a target whose key would not open what the backup's key sealed; return the key file
    to install when the backup carries one and the target keeps its key in a file too."""
    if "key_id" not in manifest:  # a backup from before keys were recorded
        return None
    carried = src / KEY_FILE
    if carried.exists():
        setting = setting_key_id(settings)
        if setting is None:
            return carried.read_text().strip()
        if setting != manifest["key_id"]:
            raise BackupError(f"this backup's hub kept its key in its data folder ({carried}), and "
                              "AICOMMONS_SECRET_KEY is another one: unset it, or set it to that file's contents; "
                              "otherwise Space secrets and linked upstream tokens cannot be opened")
        return None
    if current_key_id(settings) != manifest["key_id"]:
        raise BackupError("set AICOMMONS_SECRET_KEY to the one the backed-up hub used (this backup does not hold "
                          "it): Space secrets and linked upstream tokens are sealed with it")
    return None


# --- restore ------------------------------------------------------------------------------------

def _check_empty_target(settings: Settings) -> None:
    from aicommons.db.engine import has_tables

    if has_tables(settings.database_url):
        raise BackupError("the target database is not empty: restore into a new, empty database")
    if git_repo_dirs(Path(settings.git_dir)):
        raise BackupError(f"the target git folder {settings.git_dir} already holds repositories")


def restore(settings: Settings, src: Path, *, progress: Progress = SILENT) -> dict[str, Any]:
    """Restore a backup into the configured (empty) database, git folder and blob store.

    Blobs go first (content-addressed: putting one twice is harmless), then the git repositories,
    then the database in one step (SQLite: a copy renamed into place; PostgreSQL: one transaction),
    so that an interrupted or failed restore leaves the database empty; the repositories it copied
    are removed again, and running the same restore once more completes it."""
    src = Path(src)
    manifest_path = src / "manifest.json"
    if not manifest_path.exists():
        raise BackupError(f"{src} is not a complete backup (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    dialect = _dialect(settings.database_url)
    if manifest["database"] != dialect:
        raise BackupError(f"this backup holds a {manifest['database']} database; the target is {dialect}")
    _check_empty_target(settings)
    key_file = _check_key(settings, src, manifest)
    copied: list[Path] = []
    try:
        restored = _restore_blobs(settings, src / "blobs", progress)
        repos = git_repo_dirs(src / "git")
        progress.stage("git repositories", items=len(repos))
        for rel in repos:
            target = Path(settings.git_dir) / rel
            copied.append(target)
            copy_git_repo(src / "git" / rel, target)
            progress.advance()
        if key_file is not None:  # the target's database is empty: nothing is sealed with its own key
            install_key_file(settings, key_file)
        progress.stage("database", items=1)
        _restore_database(settings, src, dialect)
        progress.advance()
    except BaseException:
        for target in copied:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        progress.close()
    # A backup from an older version gets the newer migrations.
    from aicommons.db.engine import make_engine, upgrade_schema

    engine = make_engine(settings.database_url)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()
    return {**manifest, "restored_blobs": restored}


def _restore_blobs(settings: Settings, blob_root: Path, progress: Progress) -> int:
    """Every blob, through the store's normal verified write path."""
    from aicommons.storage.staging import Stager

    if not blob_root.exists():
        return 0
    paths = sorted(p for p in blob_root.rglob("*") if p.is_file())
    progress.stage("blobs", items=len(paths), nbytes=sum(p.stat().st_size for p in paths))
    store = open_blob_store(settings.storage_url, settings.tmp_dir)
    for path in paths:
        key = path.relative_to(blob_root).as_posix()
        with Stager(settings.tmp_dir) as stager, open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                stager.write(chunk)
            staged = stager.finish()
        store.put_file(key, staged.path)
        progress.advance(1, staged.size)
    return len(paths)


def _restore_database(settings: Settings, src: Path, dialect: str) -> None:
    if dialect == "sqlite":
        target = _sqlite_path(settings.database_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".restoring")
        partial.unlink(missing_ok=True)
        source = sqlite3.connect(src / "hub.db")
        dst = sqlite3.connect(partial)
        try:
            source.backup(dst)
        finally:
            dst.close()
            source.close()
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        os.replace(partial, target)
    else:
        _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
              "--dbname", _libpq_url(settings.database_url), str(src / "database.dump")])
