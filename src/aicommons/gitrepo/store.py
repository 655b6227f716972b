"""Where bare repositories live and the operations on refs and commits."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pygit2

from aicommons.gitrepo.loose import guard, open_repository

ZERO_OID = "0" * 40
# Deleted repositories are renamed into this folder of the store's root, then removed (GitStore.delete).
TRASH = ".trash"
# A file in a bare repository saying that some ref once moved backwards or was deleted: its history
# may have lost commits, so what the refs reach is checked, not assumed (hub/reachability.py).
REWRITTEN_MARK = "aicommons-history-rewritten"
HEX_RE = re.compile(r"^[0-9a-f]{4,40}$")


class RefUpdateConflict(Exception):
    """The ref moved since it was read (compare-and-swap lost)."""


@dataclass(frozen=True)
class CommitInfo:
    id: str
    title: str
    message: str
    author_name: str
    author_email: str
    timestamp: int
    parents: tuple[str, ...]


def commit_info(commit: pygit2.Commit) -> CommitInfo:
    message = commit.message
    title = message.split("\n", 1)[0]
    return CommitInfo(
        id=str(commit.id), title=title, message=message, author_name=commit.author.name,
        author_email=commit.author.email, timestamp=commit.author.time,
        parents=tuple(str(p) for p in commit.parent_ids),
    )


def extends(repo: pygit2.Repository, old: str, new: str) -> bool:
    """Whether moving a ref from ``old`` to ``new`` keeps every commit ``old`` reached (a fast-forward
    or no move). Anything that cannot be told (a tag object, a missing object) counts as no."""
    if old == new:
        return True
    try:
        old_commit = repo[old].peel(pygit2.Commit).id
        new_commit = repo[new].peel(pygit2.Commit).id
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return False
    return old_commit == new_commit or repo.descendant_of(new_commit, old_commit)



def commit_address(name: str) -> str:
    """The e-mail address of the commits and tags the hub writes for account ``name``: never the
    account's own address, which anyone cloning a public repo would otherwise read in its history
    (on huggingface.co too, huggingface_hub#957). Pushes keep what the pusher's git wrote."""
    return f"{name}@users.noreply"

class GitStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, storage_key: str) -> Path:
        return self.root / storage_key[:2] / f"{storage_key}.git"

    def init(self, storage_key: str) -> pygit2.Repository:
        path = self.path(storage_key)
        repo = pygit2.init_repository(str(path), bare=True, initial_head="main")
        # Let `git http-backend` serve pushes; the hub checks each push before it lands.
        repo.config["http.receivepack"] = True
        repo.config["core.logAllRefUpdates"] = False
        return guard(repo)

    def open(self, storage_key: str) -> pygit2.Repository:
        return open_repository(self.path(storage_key))

    def delete(self, storage_key: str) -> None:
        """Remove the repository. Its folder is first renamed away (one atomic step), so a reader
        racing the deletion finds either the whole repository or no folder at all, never one half
        removed (which libgit2 reports as "Repository not found" while the folder still exists)."""
        import shutil

        trash = self.root / TRASH
        trash.mkdir(exist_ok=True)
        doomed = trash / f"{storage_key}.{secrets.token_hex(4)}"
        try:
            os.rename(self.path(storage_key), doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def empty_trash(self) -> None:
        """Finish deletions a crash interrupted (folders renamed into the trash, not yet removed)."""
        import shutil

        shutil.rmtree(self.root / TRASH, ignore_errors=True)

    def disk_usage(self, storage_key: str) -> int:
        """Bytes used by the bare repository (objects, packs, refs)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.path(storage_key)):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
        return total

    # --- refs -----------------------------------------------------------------------------------

    def update_ref(self, storage_key: str, ref: str, new: str, old: str | None) -> None:
        """Point ``ref`` at ``new`` only if it still points at ``old`` (None: must not exist)."""
        if old is not None and not extends(self.open(storage_key), old, new):
            self.mark_history_rewritten(storage_key)
        cmd = ["git", "update-ref", ref, new, old or ZERO_OID]
        self._git(storage_key, cmd)

    def delete_ref(self, storage_key: str, ref: str, old: str) -> None:
        self.mark_history_rewritten(storage_key)
        self._git(storage_key, ["git", "update-ref", "-d", ref, old])

    def copy_branch(self, source_key: str, target_key: str, ref: str) -> str:
        """Fetch ``ref`` of one repository into another, replacing it there; returns its commit id."""
        env = {**os.environ, "GIT_DIR": str(self.path(target_key))}
        proc = subprocess.run(["git", "fetch", "--no-tags", "--quiet", str(self.path(source_key)), f"+{ref}:{ref}"],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RefUpdateConflict(proc.stderr.strip())
        self.mark_history_rewritten(target_key)  # the copy's first commit is gone from its history
        return str(self.open(target_key).references[ref].target)

    # Set *before* a ref loses history (a squash, a force-push, a deleted branch or tag), so that no
    # reader ever sees the shorter history without the mark. Never cleared: it only costs a check.
    def mark_history_rewritten(self, storage_key: str) -> None:
        mark = self.path(storage_key) / REWRITTEN_MARK
        if not mark.exists():
            mark.touch()

    def history_rewritten(self, storage_key: str) -> bool:
        return (self.path(storage_key) / REWRITTEN_MARK).exists()

    def _git(self, storage_key: str, cmd: list[str]) -> None:
        env = {**os.environ, "GIT_DIR": str(self.path(storage_key))}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RefUpdateConflict(proc.stderr.strip())

    # --- objects --------------------------------------------------------------------------------

    @staticmethod
    def write_commit(repo: pygit2.Repository, tree: str, parents: list[str], message: str,
                     author_name: str, author_email: str, when: int | None = None) -> str:
        sig = pygit2.Signature(author_name, author_email or commit_address(author_name), int(when or time.time()), 0)
        oid = repo.create_commit(None, sig, sig, message, pygit2.Oid(hex=tree),
                                 [pygit2.Oid(hex=p) for p in parents])
        return str(oid)
