"""Deleting a repository's git folder (GitStore.delete): a reader racing the deletion sees the whole
repository or no folder, never a folder half removed. A read that opened a half-removed folder got
libgit2's "Repository not found" while the folder still existed, and answered 500 (seen in CI's
server log: hub/refs.py answers 404 only when the folder is gone)."""

from __future__ import annotations

import shutil

from aicommons.gitrepo import GitStore
from aicommons.gitrepo.store import TRASH

KEY = "0462b798f8ac89732f043d470a410cd5"


def test_the_folder_is_gone_before_any_file_is_removed(tmp_path, monkeypatch):
    store = GitStore(tmp_path)
    store.init(KEY)
    seen = []
    real_rmtree = shutil.rmtree

    def watching_rmtree(path, *args, **kwargs):
        seen.append((path, store.path(KEY).exists()))
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", watching_rmtree)
    store.delete(KEY)
    assert len(seen) == 1
    removed, repo_folder_existed = seen[0]
    assert not repo_folder_existed and removed != store.path(KEY)
    assert not store.path(KEY).exists() and list((tmp_path / TRASH).iterdir()) == []


def test_deleting_a_missing_repository_does_nothing(tmp_path):
    store = GitStore(tmp_path)
    store.delete(KEY)
    assert not store.path(KEY).exists()


def test_emptying_the_trash_finishes_an_interrupted_deletion(tmp_path):
    store = GitStore(tmp_path)
    store.init(KEY)
    (tmp_path / TRASH).mkdir()
    store.path(KEY).rename(tmp_path / TRASH / f"{KEY}.deadbeef")  # a crash came before the removal
    store.init("1" * 32)
    store.empty_trash()
    assert not (tmp_path / TRASH).exists()
    assert store.open("1" * 32) is not None  # the live repositories are untouched
