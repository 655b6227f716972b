"""``LfsHistory`` (hub/reachability.py): the pointers a repo's refs reach, kept up to date by looking
only at new commits, always equal to a full recomputation, through commits, merges, branches,
deletions and rewrites."""

from __future__ import annotations

import hashlib
import random

import pygit2
import pytest

from aicommons.gitrepo import GitStore
from aicommons.hub.reachability import LfsHistory, pointers_in_history


def pointer(content: str) -> bytes:
    oid = hashlib.sha256(content.encode()).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n".encode()


class Repo:
    def __init__(self, store: GitStore, key: str):
        self.store, self.key = store, key
        self.git = store.init(key)
        self.sig = pygit2.Signature("t", "t@example.com", 1700000000, 0)

    def commit(self, files: dict[str, bytes], parents: list[str]) -> str:
        builder = self.git.TreeBuilder()
        for name, data in sorted(files.items()):
            builder.insert(name, self.git.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
        return str(self.git.create_commit(None, self.sig, self.sig, "m", builder.write(),
                                          [pygit2.Oid(hex=p) for p in parents]))

    def head(self, ref: str) -> str | None:
        found = self.git.references.get(ref)
        return str(found.target) if found is not None else None


@pytest.mark.parametrize("seed", range(12))
def test_incremental_pointers_equal_a_full_walk(tmp_path, seed):
    rng = random.Random(seed)
    store = GitStore(tmp_path)
    repo = Repo(store, f"{seed:02d}" + "ab" * 10)
    history = LfsHistory(store)
    files: dict[str, dict[str, bytes]] = {}
    branches = ["refs/heads/main"]
    for step in range(40):
        ref = rng.choice(branches)
        old = repo.head(ref)
        current = dict(files.get(ref, {}))
        action = rng.random()
        if action < 0.55 or old is None:  # a commit adding or changing files
            for _ in range(rng.randint(1, 3)):
                name = f"f{rng.randint(0, 6)}.bin"
                current[name] = pointer(f"{seed}-{step}-{name}") if rng.random() < 0.7 else b"plain text"
            if current and rng.random() < 0.2:
                current.pop(rng.choice(sorted(current)))
            new = repo.commit(current, [old] if old else [])
            store.update_ref(repo.key, ref, new, old)
            files[ref] = current
        elif action < 0.65 and len(branches) > 1:  # a merge of another branch
            other = rng.choice([b for b in branches if b != ref])
            if (theirs := repo.head(other)) is None:
                continue
            merged = {**files.get(other, {}), **current}
            new = repo.commit(merged, [old, theirs])
            store.update_ref(repo.key, ref, new, old)
            files[ref] = merged
        elif action < 0.75:  # a new branch
            name = f"refs/heads/b{step}"
            store.update_ref(repo.key, name, old, None)
            branches.append(name)
            files[name] = current
        elif action < 0.85 and ref != "refs/heads/main":  # a deleted branch
            store.delete_ref(repo.key, ref, old)
            branches.remove(ref)
            files.pop(ref, None)
        else:  # a squash: one commit with the same files, no parents
            new = repo.commit(current, [])
            store.update_ref(repo.key, ref, new, old)
        full = pointers_in_history(store.open(repo.key))
        assert history.pointers(repo.key) == full, f"step {step}"
        assert LfsHistory(store).pointers(repo.key) == full


def test_a_history_that_only_grew_is_not_walked(tmp_path):
    store = GitStore(tmp_path)
    repo = Repo(store, "cd" * 10)
    first = repo.commit({"a.bin": pointer("a")}, [])
    store.update_ref(repo.key, "refs/heads/main", first, None)
    second = repo.commit({"b.bin": pointer("b")}, [first])  # a.bin removed, still in history
    store.update_ref(repo.key, "refs/heads/main", second, first)
    assert not store.history_rewritten(repo.key)
    assert LfsHistory(store).references(repo.key, "0" * 64)  # never rewritten: nothing to check
    squashed = repo.commit({"b.bin": pointer("b")}, [])
    store.update_ref(repo.key, "refs/heads/main", squashed, second)
    assert store.history_rewritten(repo.key)
    a_oid = hashlib.sha256(b"a").hexdigest()
    b_oid = hashlib.sha256(b"b").hexdigest()
    assert not LfsHistory(store).references(repo.key, a_oid)
    assert LfsHistory(store).references(repo.key, b_oid)
