"""The sign-up stores (db/signup.py, and the e-mail lookups of db/accounts.py) on every database:
SQLite and PostgreSQL 15. Single-use links stay single-use under concurrent use; the throttle counts
per client; retired names are case-insensitive."""

from __future__ import annotations

from datetime import datetime, timedelta

from aicommons.db.accounts import AccountStore
from aicommons.db.signup import LinkRow, LinkStore, RetiredNameStore, SignupAttemptStore
from tests.contracts.test_db_backends import engine, run_concurrently  # noqa: F401 - shared fixture

NOW = datetime(2026, 1, 2, 3, 4, 5)


def test_email_lookup_verification_and_admins(engine):  # noqa: F811
    accounts = AccountStore(engine)
    assert not accounts.any_admin()
    user = accounts.create("ann", "user", email="Ann@Example.org", email_verified=False, status="pending", now=NOW)
    assert (user.email_verified, user.status) == (False, "pending")
    assert accounts.get_by_email("ann@example.ORG").id == user.id
    assert accounts.get_by_email("bob@example.org") is None
    assert accounts.get_by_email("\x00@x") is None
    accounts.update(user.id, email_verified=True, status="active")
    assert (accounts.get("ann").email_verified, accounts.get("ann").status) == (True, "active")
    accounts.create("root", "user", is_admin=True, now=NOW)
    assert accounts.any_admin()


def test_a_link_is_taken_once_even_by_racing_requests(engine):  # noqa: F811
    links = LinkStore(engine)
    links.add(LinkRow("h" * 64, "reset", None, "a@example.org", None, NOW, NOW + timedelta(hours=1)))
    assert links.get("h" * 64, "verify", NOW) is None  # another purpose
    assert links.get("h" * 64, "reset", NOW + timedelta(hours=2)) is None  # expired
    taken = []
    assert run_concurrently(lambda i: taken.append(links.take("h" * 64, "reset", NOW))) == []
    assert len([t for t in taken if t is not None]) == 1
    assert links.get("h" * 64, "reset", NOW) is None
    links.add(LinkRow("e" * 64, "invite", None, None, "root", NOW, NOW + timedelta(minutes=1)))
    assert links.take("e" * 64, "invite", NOW + timedelta(minutes=2)) is None  # expired: refused and gone
    assert links.list("invite", NOW) == []


def test_throttle_counts_per_client_within_the_window(engine):  # noqa: F811
    attempts = SignupAttemptStore(engine)
    since = NOW - timedelta(hours=1)
    assert [attempts.take("10.0.0.1", 3, NOW + timedelta(seconds=i), since) for i in range(3)] == [None] * 3
    assert attempts.take("10.0.0.1", 3, NOW + timedelta(seconds=9), since) == NOW
    assert attempts.take("10.0.0.2", 3, NOW, since) is None
    later = NOW + timedelta(hours=1, seconds=1)
    assert attempts.take("10.0.0.1", 3, later, later - timedelta(hours=1)) is None  # the oldest aged out


def test_retired_names_are_case_insensitive_and_kept_once(engine):  # noqa: F811
    retired = RetiredNameStore(engine)
    assert retired.add("TheBloke", "user", 7, "deleted", NOW)
    assert not retired.add("thebloke", "org", 8, "again", NOW)
    assert retired.get("THEBLOKE").account_id == 7
    assert [r.name for r in retired.list()] == ["TheBloke"]
    assert retired.delete("theBLOKE") and retired.get("TheBloke") is None
