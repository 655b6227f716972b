"""The admin dashboard's rollups (hub/dashboard.py) below HTTP: what the periodic job and the
metrics recorder write, and what the page then shows, on SQLite and PostgreSQL; and the per-day
download counts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from aicommons.db.accounts import AccountStore
from aicommons.db.repos import RepoHead, RepoStore
from aicommons.db.rollups import RollupStore
from aicommons.hub.dashboard import TOP, DashboardService

NOW = datetime(2026, 5, 20, 12, 34)


@pytest.fixture
def world(db_engine):
    yield DashboardService(RollupStore(db_engine)), AccountStore(db_engine), RepoStore(db_engine)


def _repo(accounts, repos, owner: str, name: str, size: int, when: datetime = NOW) -> int:
    account = accounts.get(owner) or accounts.create(owner, "user")
    repo = repos.create(type="model", namespace=owner, name=name, owner_id=account.id, storage_key=f"{owner}-{name}",
                        private=False, now=when)
    _size(repos, repo.id, size)
    return repo.id


def _size(repos, repo_id: int, size: int) -> None:
    """The repo's stored head says ``size`` (as a push leaves it)."""
    with repos.engine.begin() as conn:
        RepoStore._put_head(conn, repo_id, RepoHead("0" * 40, [], size, None))


def test_largest_and_fastest_growing_repos_and_owners(world):
    board, accounts, repos = world
    ids = {n: _repo(accounts, repos, "alice" if n < 15 else "bob", f"m{n}", 1000 * (n + 1)) for n in range(25)}
    board.rollup(NOW - timedelta(days=8))  # a week ago (and more): sizes as they were
    _size(repos, ids[0], 50_000)  # m0 grew by 49 kB
    _size(repos, ids[3], 4_500)  # m3 by 500 bytes
    summary = board.rollup(NOW)
    assert summary["repos"] == 25
    view = board.view(NOW)
    largest, growing, owners, owners_growing = view.ranked
    assert len(largest.rows) == TOP  # the 20 largest, largest first
    assert largest.rows[0] == ("model:alice/m0", 50_000.0) and largest.rows[1] == ("model:bob/m24", 25_000.0)
    assert growing.rows == [("model:alice/m0", 49_000.0), ("model:alice/m3", 500.0)]  # only what grew
    assert owners.rows[0][0] == "bob" and owners.rows[0][1] == sum(1000 * (n + 1) for n in range(15, 25))
    assert owners_growing.rows == [("alice", 49_500.0)]
    assert view.storage.lines["logical"][-1] == sum(s.bytes for s in board.store.repo_sizes())
    assert view.rolled_up_at == NOW


def test_requests_and_inference_per_minute_add_up_across_servers(world):
    board, _, _ = world
    board.add_minute(NOW - timedelta(minutes=2), {("http_requests", "2xx"): 7, ("http_requests", "4xx"): 2})
    board.add_minute(NOW - timedelta(minutes=2, seconds=-30), {("http_requests", "2xx"): 3})  # a second replica
    board.add_minute(NOW, {("http_requests", "5xx"): 1, ("inference_requests", "acme/tiny"): 4,
                           ("inference_tokens", "acme/tiny"): 120, ("inference_queue_seconds", "acme/tiny"): 0.2,
                           ("inference_queue_count", "acme/tiny"): 4})
    view = board.view(NOW)
    assert len(view.requests.labels) == 60 and view.requests.labels[-1] == "12:34"
    assert view.requests.lines["2xx"][-3:] == [10.0, 0.0, 0.0]
    assert view.requests.lines["4xx"][-3] == 2.0 and view.requests.lines["5xx"][-1] == 1.0
    [model] = view.models
    assert (model.model, model.requests, model.tokens) == ("acme/tiny", 4, 120)
    assert model.mean_queue_seconds == pytest.approx(0.05)
    assert board.view(NOW + timedelta(days=2)).models == []  # last 24 hours only


def test_job_failures_signups_and_pruning(world):
    board, accounts, _ = world
    board.job_failed("send_mail", NOW - timedelta(minutes=10))
    board.job_failed("send_mail", NOW - timedelta(minutes=5))
    accounts.create("carol", "user")  # created "now" (the real clock): a sign-up of today
    board.rollup(NOW)
    view = board.view(NOW)
    assert view.job_failures.lines["failed"][-1] == 2.0
    assert view.jobs_waiting.lines["waiting"] == [0.0]
    assert sum(view.signups.lines["sign-ups"]) == 0  # carol joined today, not within NOW's 30 days
    board.add_minute(NOW - timedelta(days=3), {("http_requests", "2xx"): 5})
    board.rollup(NOW)  # prunes per-minute figures older than two days
    assert board.store.since("http_requests", NOW - timedelta(days=4)) == []


def test_downloads_per_day_add_up_and_skip_deleted_repos(world):
    _, accounts, repos = world
    a, b = _repo(accounts, repos, "dora", "a", 1), _repo(accounts, repos, "dora", "b", 1)
    repos.add_downloads({a: 2, b: 1}, date(2026, 5, 19))
    repos.add_downloads({a: 3}, date(2026, 5, 20))
    repos.add_downloads({a: 1}, date(2026, 5, 20))
    repos.delete(b)
    repos.add_downloads({a: 1, b: 4}, date(2026, 5, 20))  # b is gone: a is still counted
    assert repos.downloads_by_day(a, date(2026, 5, 1)) == {date(2026, 5, 19): 2, date(2026, 5, 20): 5}
    assert repos.get_by_id(a).downloads == 7
