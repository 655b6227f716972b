"""The pure parts of git over HTTP: push rules, the hook's input, the CGI response head."""

from __future__ import annotations

import pytest

from aicommons.api.git_cgi import _split_head, parse_cgi_head
from aicommons.api.git_http import settings_env
from aicommons.config import Settings
from aicommons.errors import BadRequest, Forbidden
from aicommons.hub.push import ZERO_OID, PushPlan, RefUpdate, check_ref_update, parse_updates

A, B = "a" * 40, "b" * 40


def test_parse_updates_maps_zero_ids_to_create_and_delete():
    text = f"{ZERO_OID} {A} refs/heads/new\n{A} {B} refs/heads/main\n{B} {ZERO_OID} refs/tags/v1\n"
    assert parse_updates(text) == [RefUpdate("refs/heads/new", None, A), RefUpdate("refs/heads/main", A, B),
                                   RefUpdate("refs/tags/v1", B, None)]


@pytest.mark.parametrize("update", [
    RefUpdate("refs/heads/main", A, B), RefUpdate("refs/heads/dev", None, A), RefUpdate("refs/heads/dev", A, None),
    RefUpdate("refs/tags/v1.0", None, A), RefUpdate("refs/tags/v1.0", A, None),
    RefUpdate("refs/pr/1", A, B),  # updating an existing PR ref (PushService.check: the PR must be open)
])
def test_branches_and_tags_may_be_pushed(update):
    check_ref_update(update)


@pytest.mark.parametrize("update, error", [
    (RefUpdate("refs/heads/main", A, None), Forbidden),
    (RefUpdate("refs/pr/1", None, A), Forbidden),  # the hub creates and deletes PR refs
    (RefUpdate("refs/pr/1", A, None), Forbidden),
    (RefUpdate("refs/pr/x", A, B), Forbidden),
    (RefUpdate("refs/convert/parquet", None, A), Forbidden),
    (RefUpdate("refs/notes/commits", None, A), Forbidden),
    (RefUpdate(f"refs/heads/{A}", None, A), BadRequest),  # a branch named like a commit id
    (RefUpdate("refs/tags/with space", None, A), BadRequest),
])
def test_refs_the_hub_manages_and_bad_names_are_refused(update, error):
    with pytest.raises(error):
        check_ref_update(update)


def test_push_plan_round_trips_through_json():
    plan = PushPlan([RefUpdate("refs/heads/main", A, B)], {"refs/heads/main": [("c" * 64, "w.bin", 3)]})
    assert PushPlan.from_json(plan.to_json()) == plan


def test_cgi_head_is_split_and_parsed():
    raw = b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\nExpires: Fri, 01 Jan 1980\r\n\r\nbody"
    head, rest = _split_head(raw)
    assert rest == b"body"
    assert parse_cgi_head(head) == (403, [(b"content-type", b"text/plain"), (b"expires", b"Fri, 01 Jan 1980")])
    assert _split_head(b"Content-Type: x\r\n") is None
    assert parse_cgi_head(b"Content-Type: application/x-git-upload-pack-result")[0] == 200


def test_settings_travel_to_the_hook_through_the_environment(tmp_path, monkeypatch):
    settings = Settings.from_env(data_dir=str(tmp_path), port=1234)
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    assert Settings.from_env() == settings


def _contributor_service(calls: list):
    from aicommons.hub.push import PushService

    def may_commit_to_pr(repo, principal, ref):  # stands for DiscussionService.check_can_commit
        calls.append(ref)
        if ref != "refs/pr/1":
            raise Forbidden("Only the author or a maintainer of the repo can commit to pull request 2")

    return PushService(None, None, None, None, 10, pr_status=lambda repo, num: "open",  # type: ignore[arg-type]
                       may_commit_to_pr=may_commit_to_pr)


@pytest.mark.parametrize("updates, says", [
    ([RefUpdate("refs/heads/main", A, B)], "refs/heads/main: you may not write to alice/m"),
    ([RefUpdate("refs/pr/1", A, B), RefUpdate("refs/tags/v1", None, B)], "refs/tags/v1: you may not write"),
    ([RefUpdate("refs/pr/1", A, B), RefUpdate("refs/pr/2", A, B)],
     "refs/pr/2: Only the author or a maintainer of the repo can commit to pull request 2"),
])
def test_a_contributor_push_touching_anything_but_their_own_prs_is_refused_before_any_commit_is_read(updates, says):
    from types import SimpleNamespace

    calls: list = []
    repo, pusher = SimpleNamespace(id=1, full_id="alice/m"), SimpleNamespace()
    with pytest.raises(Forbidden) as refused:  # git_repo None: no commit may be read before the refusal
        _contributor_service(calls).check(repo, None, updates, contributor=pusher)  # type: ignore[arg-type]
    assert says in refused.value.message
    assert calls == [u.ref for u in updates if u.ref.startswith("refs/pr/")][:len(calls)]
