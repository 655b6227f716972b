"""Password checks: Argon2id with parameters in the hash, old hashes upgraded, the same work for
names that do not exist (equal timing), and the failed-sign-in limiter's arithmetic."""

from __future__ import annotations

import pytest

from aicommons.db.accounts import AccountStore
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.errors import TooManyRequests, Unauthorized
from aicommons.hub import passwords
from aicommons.hub.accounts import AccountService
from aicommons.hub.sign_in_limits import SignInLimiter
from tests.fake_clock import FakeClock


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_schema(engine)
    yield AccountStore(engine)
    engine.dispose()


@pytest.fixture
def hasher_calls(monkeypatch):
    """Every Argon2 verification, as (stored hash) — the expensive step an attacker would time."""
    calls = []
    real = passwords._hasher

    class Counting:
        def verify(self, stored, password):
            calls.append(stored)
            return real.verify(stored, password)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(passwords, "_hasher", Counting())
    return calls


def test_unknown_names_cost_one_hash_check_like_a_wrong_password(store, hasher_calls):
    service = AccountService(store)
    service.create_user("alice", password="right")
    service.create_user("bob")  # no password: tokens only
    service.create_org("acme")
    for name in ("alice", "nobody", "bob", "acme", ""):
        hasher_calls.clear()
        with pytest.raises(Unauthorized) as refused:
            service.principal_for_password(name, "guess")
        assert len(hasher_calls) == 1, name  # the same Argon2id work whatever the name
        assert hasher_calls[0].startswith("$argon2id$")
        assert refused.value.message == "Invalid credentials in Authorization header"  # same answer too


def test_hashes_are_argon2id_with_their_parameters(store):
    service = AccountService(store)
    service.create_user("alice", password="right")
    stored = store.get("alice").password_hash
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert service.principal_for_password("alice", "right").account.name == "alice"


def test_old_hashes_are_upgraded_after_a_correct_password(store):
    service = AccountService(store)
    account = service.create_user("alice")
    legacy = passwords.legacy_scrypt_hash("right")
    store.set_password_hash(account.id, legacy)
    with pytest.raises(Unauthorized):
        service.principal_for_password("alice", "wrong")
    assert store.get("alice").password_hash == legacy  # a wrong password changes nothing
    service.principal_for_password("alice", "right")
    upgraded = store.get("alice").password_hash
    assert upgraded.startswith("$argon2id$")
    assert service.principal_for_password("alice", "right").account.name == "alice"
    # Weaker Argon2 parameters are upgraded the same way.
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("right")
    store.set_password_hash(account.id, weak)
    service.principal_for_password("alice", "right")
    assert store.get("alice").password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_corrupt_legacy_hash_is_refused_not_an_error(store):
    service = AccountService(store)
    account = service.create_user("alice")
    store.set_password_hash(account.id, "scrypt$zz$not-hex")
    with pytest.raises(Unauthorized):
        service.principal_for_password("alice", "anything")


def test_the_limiter_refuses_after_the_limit_and_refills_over_the_window():
    clock = FakeClock()
    limiter = SignInLimiter(per_account=3, per_ip=5, window_seconds=300, clock=clock)
    for _ in range(3):
        limiter.check("Alice", "1.2.3.4")
        limiter.failed("Alice", "1.2.3.4")
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("alice", "5.6.7.8")  # names are case-insensitive; any IP
    assert refused.value.headers["Retry-After"] == "100"  # one failure back every 300/3 s
    limiter.check("bob", "1.2.3.4")  # the IP has 2 failures left
    clock.now += 100
    limiter.check("alice", "5.6.7.8")
    for name in ("x", "y", "z"):  # the IP had 2 left, plus 5/300 per second for 100 s
        limiter.failed(name, "1.2.3.4")
    with pytest.raises(TooManyRequests):
        limiter.check("bob", "1.2.3.4")  # the IP's failures are spent


def test_the_service_checks_the_limiter_before_the_password(store, hasher_calls):
    service = AccountService(store, sign_in_limiter=SignInLimiter(per_account=2, per_ip=0, clock=FakeClock()))
    service.create_user("alice", password="right")
    failures = []
    service.failed_sign_in_listeners.append(lambda *args: failures.append(args))
    for _ in range(2):
        with pytest.raises(Unauthorized):
            service.principal_for_password("alice", "wrong", ip="9.9.9.9", via="web")
    hasher_calls.clear()
    with pytest.raises(TooManyRequests):
        service.principal_for_password("alice", "right", ip="9.9.9.9")
    assert hasher_calls == []  # refused before any hash is checked
    assert failures == [("alice", "9.9.9.9", "web")] * 2
