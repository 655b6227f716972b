"""Suspension and deletion in the account service: what stops at once, what within the token-cache
bound, and what deletion keeps (comments, under the placeholder) and removes (everything else)."""

from __future__ import annotations

import time

import pytest

from aicommons.db.account_removal import GHOST_NAME
from aicommons.errors import BadRequest, Conflict, Unauthorized
from aicommons.hub.account_deletion import DELETE, repo_key


@pytest.fixture
def hub(isolated_hub):
    return isolated_hub(AICOMMONS_TOKEN_CACHE_SECONDS="60")


def test_suspending_through_the_service_stops_tokens_passwords_and_sessions_at_once(hub):
    hub.accounts.create_user("carol", password="a long passphrase", email="c@example.org")
    token = hub.accounts.create_token("carol")
    assert hub.accounts.principal_for_token(token).name == "carol"  # now cached for 60 s
    session = hub.sessions.start(hub.accounts.require("carol"))
    hub.accounts.suspend("carol")
    with pytest.raises(Unauthorized, match="suspended"):
        hub.accounts.principal_for_token(token)
    assert hub.accounts.cached_principal(token) is None
    with pytest.raises(Unauthorized, match="suspended"):
        hub.accounts.principal_for_password("carol", "a long passphrase")
    with pytest.raises(Unauthorized, match="Invalid credentials"):  # a wrong password says nothing more
        hub.accounts.principal_for_password("carol", "wrong password")
    assert hub.sessions.account_for(session) is None
    carol = hub.accounts.require("carol")
    assert hub.accounts.principal_for_key(f"user:{carol.id}") is None
    hub.accounts.unsuspend("carol")
    assert hub.accounts.principal_for_token(token).name == "carol"  # tokens were kept
    assert hub.accounts.principal_for_password("carol", "a long passphrase").name == "carol"


def test_another_process_suspending_is_seen_within_the_token_cache_bound(hub):
    from aicommons.db.accounts import AccountStore
    from aicommons.hub.accounts import AccountService

    server = AccountService(AccountStore(hub.engine), token_cache_seconds=0.5)  # a server's own cache
    hub.accounts.create_user("dave")
    token = hub.accounts.create_token("dave")
    assert server.principal_for_token(token).name == "dave"
    hub.accounts.suspend("dave")  # "the CLI": another service over the same database
    suspended_at = time.monotonic()
    while True:
        try:
            server.principal_for_token(token)
        except Unauthorized:
            break
        assert time.monotonic() - suspended_at < 0.5 + 0.2, "a suspended token outlived the cache bound"
        time.sleep(0.02)


def test_the_last_admin_cannot_be_demoted(hub):
    hub.accounts.create_user("root", is_admin=True)
    with pytest.raises(Conflict):
        hub.accounts.set_admin("root", False)
    hub.accounts.create_user("eve")
    hub.accounts.set_admin("eve", True)
    assert not hub.accounts.set_admin("root", False).is_admin


def test_deletion_needs_a_choice_per_repo_then_keeps_comments_under_the_placeholder(hub):
    alice = hub.accounts.create_user("alice")
    carol = hub.accounts.create_user("carol")
    hub.accounts.create_org("lab", members=["carol"])
    hub.accounts.create_org("other")
    hub.accounts.add_member("other", "carol", "write")
    owner = hub.accounts.principal_for_account(carol)
    kept, _ = hub.repos.create(owner, "model", "kept", None, private=True)
    gone, _ = hub.repos.create(owner, "dataset", "gone", None, private=False)
    theirs, _ = hub.repos.create(hub.accounts.principal_for_account(alice), "model", "theirs", None, private=False)
    discussion = hub.discussions.open(theirs, owner, "a question", "hello from carol", False)
    hub.likes.set(owner, theirs, True)
    token = hub.accounts.create_token("carol")

    with pytest.raises(BadRequest, match="say what happens"):
        hub.account_deletion.delete("carol", {repo_key(kept): "lab"}, reason="test")
    with pytest.raises(BadRequest, match="only to an organization where carol is an admin"):
        hub.account_deletion.delete("carol", {repo_key(kept): "other", repo_key(gone): DELETE}, reason="test")
    assert hub.accounts.principal_for_token(token).name == "carol"  # nothing happened

    hub.account_deletion.delete("carol", {repo_key(kept): "lab", repo_key(gone): DELETE}, reason="test")
    assert hub.accounts.store.get("carol") is None
    with pytest.raises(Unauthorized):
        hub.accounts.principal_for_token(token)
    moved = hub.repo_store.get("model", "lab/kept")
    assert moved is not None and moved.private and moved.id == kept.id
    assert hub.repo_store.redirect_target("model", "carol/kept").id == kept.id
    assert hub.repo_store.get("dataset", "carol/gone") is None
    assert hub.repo_store.get_by_id(theirs.id).likes == 0
    row = hub.discussions.store.get(theirs.id, discussion.num)
    assert row.author_name == GHOST_NAME
    assert {e.author_name for e in hub.discussions.store.events(row.id)} == {GHOST_NAME}
    hub.accounts.create_user("frank")  # a second deletion reuses the one placeholder
    hub.account_deletion.delete("frank", {}, reason="test")
    assert [a.name for a in hub.accounts.store.list(kind="ghost")] == [GHOST_NAME]
