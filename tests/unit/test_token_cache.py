"""Checked tokens are remembered briefly; revocations and membership changes are never missed for
longer than the configured bound, and at once when made through the same service."""

from __future__ import annotations

import time

import pytest

from aicommons.db.accounts import AccountStore
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.errors import Unauthorized
from aicommons.hub.accounts import AccountService


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_schema(engine)
    yield AccountStore(engine)
    engine.dispose()


def counting(store: AccountStore) -> list:
    """Count the token lookups that reach the database."""
    calls = []
    original = store.token_by_hash

    def token_by_hash(token_hash):
        calls.append(token_hash)
        return original(token_hash)

    store.token_by_hash = token_by_hash
    return calls


def test_a_token_checked_once_is_known_without_the_database(store):
    service = AccountService(store, token_cache_seconds=60)
    service.create_user("alice")
    token = service.create_token("alice", role="read")
    lookups = counting(store)
    assert service.cached_principal(token) is None
    first = service.principal_for_token(token)
    assert service.cached_principal(token) is first
    assert service.principal_for_token(token) is first
    assert len(lookups) == 1
    assert first.name == "alice" and first.token_role == "read"


def test_unknown_tokens_are_never_cached(store):
    service = AccountService(store, token_cache_seconds=60)
    lookups = counting(store)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            service.principal_for_token("hf_not_a_token")
    assert len(lookups) == 2 and service.cached_principal("hf_not_a_token") is None


def test_revoking_through_the_service_applies_at_once(store):
    service = AccountService(store, token_cache_seconds=60)
    user = service.create_user("alice")
    by_value = service.create_token("alice")
    by_id = service.create_token("alice", name="web")
    service.principal_for_token(by_value)
    service.principal_for_token(by_id)
    assert service.revoke_token(by_value)
    with pytest.raises(Unauthorized):
        service.principal_for_token(by_value)
    token_id = next(t.id for t in store.list_tokens(user.id) if t.name == "web")
    assert service.revoke_token_id(user.id, token_id)
    with pytest.raises(Unauthorized):
        service.principal_for_token(by_id)


def test_a_new_org_membership_applies_at_once(store):
    service = AccountService(store, token_cache_seconds=60)
    service.create_user("alice")
    service.create_org("acme")
    token = service.create_token("alice")
    before = service.principal_for_token(token)
    acme = store.get("acme")
    assert acme.id not in before.org_roles
    service.add_member("acme", "alice", "write")
    assert service.principal_for_token(token).org_roles[acme.id] == "write"


def test_a_revocation_by_another_process_applies_within_the_bound(store):
    server = AccountService(store, token_cache_seconds=0.5)
    cli = AccountService(store, token_cache_seconds=0.5)  # e.g. `aicommons token revoke`, or a replica
    server.create_user("alice")
    token = server.create_token("alice")
    server.principal_for_token(token)
    assert cli.revoke_token(token)
    time.sleep(0.6)  # past the bound: the server must look again
    with pytest.raises(Unauthorized):
        server.principal_for_token(token)


def test_no_cache_when_turned_off(store):
    service = AccountService(store, token_cache_seconds=0)
    service.create_user("alice")
    token = service.create_token("alice")
    lookups = counting(store)
    service.principal_for_token(token)
    service.principal_for_token(token)
    assert len(lookups) == 2 and service.cached_principal(token) is None
