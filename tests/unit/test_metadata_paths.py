"""Metadata paths that scale (issue 10), below HTTP: keyset tree paging, one bounded history walk for
a page's last commits, and batched download counts."""

from __future__ import annotations

import pygit2
import pytest

from aicommons.gitrepo import GitStore
from aicommons.gitrepo.trees import TreeChange, apply_changes
from aicommons.hub import content
from aicommons.hub.downloads import DownloadCounter
from aicommons.times import utcnow

# Names chosen to hit git's ordering rule (a folder sorts as if its name ended with "/"): since
# "-" (0x2d) < "." (0x2e) < "/" (0x2f) < "0", git orders a-b, a.txt, a/, and inside a/: x, y/, y0.
PATHS = ["a-b", "a.txt", "a/x", "a/y/z.bin", "a/y/zz", "a/y0", "b", "c/d/e/f", "c/d/g", "c/h", "é/ü"]


def _commit(repo, parent, files: dict[str, bytes | None], message: str, when: int) -> pygit2.Commit:
    base = parent.tree if parent is not None else None
    changes = [TreeChange(p, str(repo.create_blob(d)) if d is not None else None) for p, d in files.items()]
    tree = apply_changes(repo, base, changes)
    oid = GitStore.write_commit(repo, tree, [str(parent.id)] if parent is not None else [], message, "t", "t@x",
                                when=when)
    return repo[pygit2.Oid(hex=oid)]


@pytest.fixture
def repo(tmp_path):
    return pygit2.init_repository(str(tmp_path / "r.git"), bare=True)


@pytest.mark.parametrize("recursive", [True, False])
@pytest.mark.parametrize("folder", ["", "a", "c/d"])
def test_tree_pages_resume_after_any_entry_without_walking_what_came_before(repo, recursive, folder):
    head = _commit(repo, None, {p: p.encode() for p in PATHS}, "all", 1_700_000_000)
    full = [e.path for e in content.list_tree(repo, head, folder, recursive)]
    assert len(full) == len(set(full)) > 1
    for i, path in enumerate(full):
        rest = [e.path for e in content.list_tree(repo, head, folder, recursive, after=path)]
        assert rest == full[i + 1:], path
    # A cursor naming a path that is gone (the branch moved between pages) resumes where it would sort.
    gone = [e.path for e in content.list_tree(repo, head, "", True, after="a/y/zy")]
    assert gone == [e.path for e in content.list_tree(repo, head, "", True, after="a/y/z.bin")]
    assert gone[0] == "a/y/zz"
    with pytest.raises(ValueError):
        list(content.list_tree(repo, head, "a", True, after="b"))  # not under the listed folder


def test_a_page_finds_its_last_commits_in_one_walk(repo):
    c1 = _commit(repo, None, {"keep.txt": b"1", "dir/one": b"1", "dir/two": b"1", "gone": b"1"}, "first", 1_700_000_000)
    c2 = _commit(repo, c1, {"dir/two": b"2", "new.txt": b"2"}, "second", 1_700_000_100)
    c3 = _commit(repo, c2, {"keep.txt": b"3", "gone": None}, "third", 1_700_000_200)
    paths = ["keep.txt", "dir", "dir/one", "dir/two", "new.txt", ""]
    batched = content.last_commits_for(repo, c3, paths)
    for p in paths:
        assert batched[p].id == content.last_commit_for(repo, c3, p).id, p
    assert {p: batched[p].title for p in paths} == {"keep.txt": "third", "dir": "second", "dir/one": "first",
                                                    "dir/two": "second", "new.txt": "second", "": "third"}
    # Bounded: past max_walk, the remaining paths get the oldest commit seen.
    assert content.last_commits_for(repo, c3, ["dir/one"], max_walk=1)["dir/one"].title == "second"


@pytest.fixture
def store(sqlite_repos):
    repos, owner = sqlite_repos
    ids = [repos.create(type="model", namespace="alice", name=f"m{i}", owner_id=owner.id, storage_key=f"k{i}",
                        private=False, now=utcnow()).id for i in range(3)]
    return repos, ids


def test_download_counts_wait_in_memory_and_reach_the_database_on_flush_and_close(store):
    repos, (a, b, c) = store
    counter = DownloadCounter(repos, flush_seconds=3600)
    for repo_id in [a, a, b, a]:
        counter.count(repo_id)
    assert counter.pending() == 4
    assert [repos.get_by_id(i).downloads for i in (a, b)] == [0, 0]  # no write per download
    counter.flush()
    assert [repos.get_by_id(i).downloads for i in (a, b, c)] == [3, 1, 0]
    counter.count(c)
    counter.count(c)
    counter.close()  # a clean shutdown loses nothing
    assert repos.get_by_id(c).downloads == 2 and counter.pending() == 0


def test_downloads_are_also_counted_per_utc_day_and_a_deleted_repo_does_not_stop_the_flush(store, monkeypatch):
    from datetime import date, datetime

    import aicommons.hub.downloads as downloads

    repos, (a, b, c) = store
    counter = DownloadCounter(repos, flush_seconds=3600)
    monkeypatch.setattr(downloads, "utcnow", lambda: datetime(2026, 3, 1, 23, 59, 59))
    counter.count(a)
    counter.count(b)
    monkeypatch.setattr(downloads, "utcnow", lambda: datetime(2026, 3, 2, 0, 0, 1))  # past midnight, same batch
    counter.count(a)
    counter.count(a)
    counter.count(c)
    repos.delete(c)  # deleted while its download waited in memory
    counter.flush()
    assert counter.pending() == 0  # nothing left to retry forever
    assert repos.downloads_by_day(a, date(2026, 2, 1)) == {date(2026, 3, 1): 1, date(2026, 3, 2): 2}
    assert repos.downloads_by_day(b, date(2026, 3, 2)) == {}  # only from ``since`` on
    counter.count(a)
    counter.close()
    assert repos.downloads_by_day(a, date(2026, 3, 2)) == {date(2026, 3, 2): 3}  # added to, not replaced
    assert repos.get_by_id(a).downloads == 4


def test_a_failed_flush_keeps_its_counts(store, monkeypatch):
    repos, (a, _b, _c) = store
    counter = DownloadCounter(repos, flush_seconds=3600)
    counter.count(a)
    real = repos.add_downloads

    def busy(counts, day=None):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(repos, "add_downloads", busy)
    counter.flush()
    assert counter.pending() == 1
    monkeypatch.setattr(repos, "add_downloads", real)
    counter.close()
    assert repos.get_by_id(a).downloads == 1


def test_the_flusher_writes_periodically(store):
    import time

    repos, (a, _b, _c) = store
    counter = DownloadCounter(repos, flush_seconds=0.05)
    counter.count(a)
    deadline = time.monotonic() + 10
    while repos.get_by_id(a).downloads != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert repos.get_by_id(a).downloads == 1
    counter.close()


def test_stored_file_rows_follow_each_commit_by_its_difference_alone(repo):
    """``file_rows`` with the previous head's rows reads only what changed, and must give exactly
    what a full walk gives, in the same order, whatever the change (adds, edits, deletions, a folder
    removed, a file becoming a folder, LFS pointers)."""
    import random

    rng = random.Random(7)
    pointer = (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"ab" * 32 + b"\nsize 123456\n")
    names = ["a", "a-b", "a.txt", "b/c", "b/d/e", "b/d/f.bin", "é/ü", "z", "x/y/z/w"]
    head = _commit(repo, None, {".gitattributes": b"*.bin filter=lfs\n"}, "init", 1_700_000_000)
    rows = content.file_rows(repo, head)
    committed, saw_lfs = 0, False
    for step in range(60):
        files: dict[str, bytes | None] = {}
        current = {e.path for e in content.iter_files(repo, head)}
        for _ in range(rng.randint(1, 4)):
            path = rng.choice(names) if rng.random() < 0.7 else f"{rng.choice(['n', 'b/d', 'a-b2'])}/{rng.randint(0, 9)}"
            if path in current and rng.random() < 0.4:
                files[path] = None
            else:
                files[path] = pointer if path.endswith(".bin") else f"{step}:{rng.random()}".encode()
        # A file where a folder is (or the reverse) replaces it: delete the other first, as commits do.
        for path in list(files):
            for other in current:
                if other.startswith(path + "/") or path.startswith(other + "/"):
                    files.setdefault(other, None)
                    if files[other] is not None:
                        files[other] = None
        try:
            nxt = _commit(repo, head, files, f"step {step}", 1_700_000_000 + step)
        except Exception:  # noqa: BLE001 - a change set git cannot apply (a path and its folder): skip it
            continue
        incremental = content.file_rows(repo, nxt, (str(head.id), rows))
        assert incremental == content.file_rows(repo, nxt), step
        head, rows = nxt, incremental
        committed += 1
        saw_lfs = saw_lfs or any(r[3] is not None for r in rows)
    assert committed >= 30 and saw_lfs
    # A base commit that no longer exists falls back to a full walk.
    assert content.file_rows(repo, head, ("0" * 40, [])) == rows
