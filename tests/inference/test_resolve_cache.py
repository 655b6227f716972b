"""The resolution cache of ``HubModelSource``: it must never weaken access rules or serve a stale
revision beyond its documented bound (``AICOMMONS_INFERENCE_RESOLVE_CACHE_SECONDS``).

Through the live hub (``aicommons serve``), a push or a settings change is seen at once: the repo
service tells the cache. A second ``HubModelSource`` in this process over the same database and git
store plays another replica, which only the time bound protects.
"""

from __future__ import annotations

import time

import httpx
import pytest

from aicommons.errors import RepoNotFound
from aicommons.ttl_cache import TTLCache
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name
from tests.fake_clock import FakeClock

pytestmark = pytest.mark.inference
CARD = "---\npipeline_tag: text-generation\nlicense: mit\n---\n\nversion {n}\n"
REPLICA_TTL = 0.5


# ---- the cache itself ----------------------------------------------------------------------------


def test_ttl_cache_expires_entries():
    clock = FakeClock(100.0)
    cache = TTLCache(2.0, clock=clock)
    cache.put("k", "v")
    clock.now += 1.9
    assert cache.get("k") == "v"
    clock.now += 0.2
    assert cache.get("k") is None and len(cache) == 0


def test_ttl_cache_refuses_values_computed_before_an_invalidation():
    cache = TTLCache(10.0)
    generation = cache.generation  # a resolver starts, reads the ref...
    cache.drop_where(lambda key: key == "repo")  # ...the ref moves meanwhile...
    cache.put("repo", "old commit", generation)  # ...so what it read must not be kept
    assert cache.get("repo") is None
    cache.put("repo", "new commit", cache.generation)
    assert cache.get("repo") == "new commit"


def test_ttl_cache_is_bounded_and_can_be_off():
    cache = TTLCache(10.0, max_entries=2)
    for key in "abc":
        cache.put(key, key)
    assert cache.get("a") is None and cache.get("c") == "c"
    off = TTLCache(0)
    off.put("a", 1)
    assert off.get("a") is None


# ---- against the live hub ------------------------------------------------------------------------

@pytest.fixture
def model_repo(live_hub):
    """A public text-generation repo of alice's with one commit on main."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    repo_id = f"alice/{unique_name('cached')}"
    api.create_repo(repo_id)
    first = push_card(api, repo_id, 1)
    return api, repo_id, first


def push_card(api, repo_id: str, n: int, revision: str | None = None) -> str:
    return api.upload_file(path_or_fileobj=CARD.format(n=n).encode(), path_in_repo="README.md",
                           repo_id=repo_id, revision=revision).oid


def served_revision(live_hub, model: str, token: str | None = ALICE_TOKEN) -> httpx.Response:
    # /info resolves the model (access checks, ref, card) without loading it
    return httpx.get(f"{live_hub.url}/models/{model}/info", headers=auth(token) if token else {}, timeout=30)


def test_a_push_is_served_at_once_by_the_replica_that_took_it(live_hub, model_repo):
    api, repo_id, first = model_repo
    assert served_revision(live_hub, repo_id).json()["model_sha"] == first
    second = push_card(api, repo_id, 2)
    assert served_revision(live_hub, repo_id).json()["model_sha"] == second
    api.create_branch(repo_id, branch="dev", revision=first)
    assert served_revision(live_hub, f"{repo_id}@dev").json()["model_sha"] == first
    third = push_card(api, repo_id, 3, revision="dev")
    assert served_revision(live_hub, f"{repo_id}@dev").json()["model_sha"] == third


def test_settings_changes_are_enforced_at_once(live_hub, model_repo):
    api, repo_id, first = model_repo
    assert served_revision(live_hub, repo_id, BOB_TOKEN).status_code == 200  # cached for bob's request
    api.update_repo_settings(repo_id, private=True)
    assert served_revision(live_hub, repo_id, BOB_TOKEN).status_code == 404
    assert served_revision(live_hub, repo_id, None).status_code == 401
    assert served_revision(live_hub, repo_id).status_code == 200  # the owner still can
    api.update_repo_settings(repo_id, private=False, gated="manual")
    assert served_revision(live_hub, repo_id, BOB_TOKEN).status_code == 403


@pytest.fixture
def replica(live_hub, monkeypatch):
    """Another replica's model source: same DB and git store, its own cache, never told of pushes
    made through the live hub."""
    from aicommons.app import HubModelSource
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    for key, value in live_hub.env.items():
        if key.startswith("AICOMMONS_"):
            monkeypatch.setenv(key, value)
    hub = Hub(Settings.from_env(), migrate=False)
    yield hub, HubModelSource(hub, cache_seconds=REPLICA_TTL)
    hub.close()


def test_another_replica_serves_a_push_within_the_bound(live_hub, model_repo, replica):
    api, repo_id, first = model_repo
    hub, source = replica
    alice = hub.accounts.principal_for_token(ALICE_TOKEN)
    assert source.resolve(repo_id, alice).commit == first
    assert source.resolve_cached(repo_id, alice).commit == first  # now answered without I/O
    pushed_at = time.monotonic()
    second = push_card(api, repo_id, 2)
    deadline = pushed_at + REPLICA_TTL + 0.05
    while time.monotonic() < deadline:
        time.sleep(0.05)
    assert (source.resolve_cached(repo_id, alice) or source.resolve(repo_id, alice)).commit == second


def test_a_private_repo_stays_refused_for_others(live_hub, replica):
    from huggingface_hub import HfApi

    hub, source = replica
    repo_id = f"alice/{unique_name('private')}"
    HfApi(endpoint=live_hub.url, token=ALICE_TOKEN).create_repo(repo_id, private=True)
    alice = hub.accounts.principal_for_token(ALICE_TOKEN)
    bob = hub.accounts.principal_for_token(BOB_TOKEN)
    from aicommons.hub.access import anonymous

    nobody = anonymous("127.0.0.1")
    source.resolve(repo_id, alice)  # alice's resolution is now cached...
    assert source.resolve_cached(repo_id, alice) is not None
    for other, status in ((bob, 404), (nobody, 401)):  # ...and shared with nobody else
        assert source.resolve_cached(repo_id, other) is None
        with pytest.raises(RepoNotFound) as refused:
            source.resolve(repo_id, other)
        assert refused.value.status == status
    assert served_revision(live_hub, repo_id, BOB_TOKEN).status_code == 404


def test_a_gated_repo_checks_access_requests_on_every_request(live_hub, model_repo, replica):
    from aicommons.errors import GatedRepo

    api, repo_id, first = model_repo
    hub, source = replica
    api.update_repo_settings(repo_id, gated="manual")
    alice = hub.accounts.principal_for_token(ALICE_TOKEN)
    bob = hub.accounts.principal_for_token(BOB_TOKEN)
    assert source.resolve(repo_id, alice).commit == first  # the owner side needs no request
    assert source.resolve_cached(repo_id, bob) is None  # bob's access needs the DB: never from the cache
    with pytest.raises(GatedRepo):
        source.resolve(repo_id, bob)


def test_a_pinned_commit_is_stable(live_hub, model_repo, replica):
    api, repo_id, first = model_repo
    hub, source = replica
    alice = hub.accounts.principal_for_token(ALICE_TOKEN)
    pinned = f"{repo_id}@{first}"
    assert source.resolve(pinned, alice).commit == first
    second = push_card(api, repo_id, 2)
    time.sleep(REPLICA_TTL + 0.05)
    assert source.resolve(pinned, alice).commit == first
    assert source.resolve(repo_id, alice).commit == second
    info = served_revision(live_hub, pinned).json()
    assert info["model_sha"] == first and served_revision(live_hub, repo_id).json()["model_sha"] == second
