"""The rate limiter names a web session's user (``SessionService.budget_key``) on every request
that carries the cookie: from memory after the first lookup, for live and unknown cookies alike; an
expired session is anonymous at once, an ended one at once when ended through the same service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aicommons.db.accounts import AccountStore
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.sessions import SessionStore
from aicommons.hub import sessions as sessions_module
from aicommons.hub.accounts import AccountService
from aicommons.hub.sessions import SessionService
from aicommons.times import utcnow


@pytest.fixture
def service(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_schema(engine)
    accounts = AccountStore(engine)
    service = SessionService(SessionStore(engine), accounts, lifetime_seconds=3600)
    service.lookups = []  # the session lookups that reach the database
    original = service.store.get

    def get(id_hash):
        service.lookups.append(id_hash)
        return original(id_hash)

    service.store.get = get
    yield service
    engine.dispose()


def user(service: SessionService, name: str):
    return AccountService(service.accounts).create_user(name)


def test_a_live_session_names_its_user_from_memory_after_one_lookup(service):
    alice = user(service, "alice")
    session = service.start(alice)
    assert service.cached_budget_key(session) == (False, None)
    assert service.budget_key(session) == f"user:{alice.id}"
    assert service.cached_budget_key(session) == (True, f"user:{alice.id}")
    for _ in range(3):
        assert service.budget_key(session) == f"user:{alice.id}"
    assert len(service.lookups) == 1


def test_a_forged_cookie_is_looked_up_once(service):
    for _ in range(3):
        assert service.budget_key("x" * 43) is None
    assert len(service.lookups) == 1
    assert service.budget_key("x" * 129) is None and len(service.lookups) == 1  # never a session id


def test_an_expired_session_is_anonymous_at_once(service, monkeypatch):
    alice = user(service, "alice")
    session = service.start(alice)
    assert service.budget_key(session) == f"user:{alice.id}"
    later = utcnow() + timedelta(seconds=3601)
    monkeypatch.setattr(sessions_module, "utcnow", lambda: later)
    assert service.cached_budget_key(session) == (True, None)  # its remembered expiry: no lookup
    assert service.budget_key(session) is None and len(service.lookups) == 1


@pytest.mark.parametrize("how", ["end", "end_all", "end_others", "end_one"])
def test_an_ended_session_is_anonymous_at_once(service, how):
    alice = user(service, "alice")
    session, kept = service.start(alice), service.start(alice)
    assert service.budget_key(session) == service.budget_key(kept) == f"user:{alice.id}"
    if how == "end":
        service.end(session)
    elif how == "end_all":
        service.end_all(alice.id)
    elif how == "end_others":
        service.end_others(alice.id, kept)
    else:
        service.end_one(alice.id, SessionService.hash_of(session))
    assert service.budget_key(session) is None
    assert service.budget_key(kept) == (None if how == "end_all" else f"user:{alice.id}")
