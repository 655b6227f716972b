"""The bucket copies' rows (db/download_copies.py, hub/bucket_copies.py) on SQLite and PostgreSQL:
one claim per object, room made least recently served first, a copy deleted during its upload never
served, claims of dead uploaders taken over, and copies of unreferenced objects retired."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from aicommons.db.accounts import AccountStore
from aicommons.db.download_copies import DownloadCopyStore
from aicommons.db.repos import RepoStore

NOW = datetime(2026, 1, 1, 12, 0, 0)
MiB = 1024 * 1024
LATER = NOW + timedelta(minutes=11)


def oid(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def setup(db_engine):
    owner = AccountStore(db_engine).create("alice", "user", fullname="Alice", now=NOW)
    repos = RepoStore(db_engine)
    repo = repos.create(type="model", namespace="alice", name="m", owner_id=owner.id, storage_key="k-m",
                        private=False, now=NOW)
    for n in range(1, 6):
        repos.add_lfs_object(repo.id, oid(n), 3 * MiB, NOW)
    return DownloadCopyStore(db_engine), repos, repo


def claim(store, n: int, at: datetime = NOW, key: str | None = None) -> bool:
    return store.claim(oid(n), key or f"download-cache/{oid(n)}/{n}", 3 * MiB, at, max_bytes=7 * MiB,
                       evict_due=at + timedelta(minutes=11), stale_before=at - timedelta(hours=1))


def test_one_claim_per_object_and_the_least_recently_served_make_room(setup):
    store, _, _ = setup
    assert claim(store, 1) and not claim(store, 1, key="download-cache/other")  # one uploader
    assert store.get(oid(1)).ready is False
    # A copy being made holds its room: a third one does not fit while two are in flight.
    assert claim(store, 2)
    assert not claim(store, 3) and store.get(oid(3)) is None and store.totals() == (2, 6 * MiB, 0)
    assert store.mark_ready(oid(1), f"download-cache/{oid(1)}/1")
    assert store.mark_ready(oid(2), f"download-cache/{oid(2)}/2")
    store.touch(oid(2), NOW - timedelta(hours=1), NOW + timedelta(days=1))  # 2 served least lately
    store.touch(oid(1), NOW + timedelta(seconds=1), NOW)  # recorded lately: no write
    assert store.get(oid(1)).last_served_at == NOW
    assert claim(store, 3)
    assert store.get(oid(2)) is None and store.get(oid(1)) is not None
    assert store.totals() == (2, 6 * MiB, 3 * MiB)
    # The evicted object is deleted only once its URLs have expired.
    assert store.due(NOW) == [] and store.due(LATER) == [f"download-cache/{oid(2)}/2"]
    store.deleted(f"download-cache/{oid(2)}/2")
    assert store.totals()[2] == 0


def test_a_copy_deleted_during_its_upload_is_never_served(setup, db_engine):
    store, repos, repo = setup
    assert claim(store, 1)
    assert store.retire_unreferenced(NOW) == 0  # still referenced
    repos.delete(repo.id)  # its references go with it
    assert store.retire_unreferenced(NOW) == 1 and store.get(oid(1)) is None
    assert store.due(NOW) == [f"download-cache/{oid(1)}/1"]  # deleted at once
    assert not store.mark_ready(oid(1), f"download-cache/{oid(1)}/1")  # the uploader deletes its object


def test_a_claim_whose_uploader_died_is_taken_over(setup):
    store, _, _ = setup
    assert claim(store, 1)
    assert not claim(store, 1, NOW + timedelta(minutes=30), key="download-cache/b")
    assert claim(store, 1, NOW + timedelta(hours=2), key="download-cache/b")
    assert store.get(oid(1)).key == "download-cache/b"
    assert store.due(NOW + timedelta(hours=2)) == [f"download-cache/{oid(1)}/1"]
    assert not store.mark_ready(oid(1), f"download-cache/{oid(1)}/1")  # the late uploader's copy is not served
    assert store.mark_ready(oid(1), "download-cache/b")
    assert store.retire([oid(1)], LATER) == 1 and store.copies() == []
