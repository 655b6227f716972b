"""Gated repos: metadata is public, files need an accepted access request."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

from tests.conftest import BOB_TOKEN, auth


@pytest.mark.parametrize("mode", ["manual", "auto"])
def test_gated_repo_flow(api, bob_api, repo_id, http, tmp_path, mode):
    api.upload_file(path_or_fileobj=b"gated content", path_in_repo="w.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated=mode)
    assert bob_api.model_info(repo_id).gated == mode
    assert bob_api.repo_exists(repo_id)  # gated repos exist for everyone
    with pytest.raises(GatedRepoError) as err:
        hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)
    assert err.value.response.status_code == 403
    with pytest.raises(GatedRepoError) as err:
        hf_hub_download(repo_id, "w.txt", token=False, cache_dir=tmp_path)
    assert err.value.response.status_code == 401
    asked = http.post(f"/api/models/{repo_id}/ask-access", json={"reason": "research"}, headers=auth(BOB_TOKEN))
    assert asked.json()["status"] == ("accepted" if mode == "auto" else "pending")
    if mode == "manual":
        pending = api.list_pending_access_requests(repo_id)
        assert [(r.username, r.fields) for r in pending] == [("bob", {"reason": "research"})]
        with pytest.raises(GatedRepoError):
            hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)
        api.accept_access_request(repo_id, "bob")
    assert [r.username for r in api.list_accepted_access_requests(repo_id)] == ["bob"]
    assert Path(hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)).read_bytes() == b"gated content"
    api.reject_access_request(repo_id, "bob", rejection_reason="changed my mind")
    with pytest.raises(GatedRepoError):
        hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path / "again")
    api.update_repo_settings(repo_id, gated=False)
    assert hf_hub_download(repo_id, "w.txt", token=False, cache_dir=tmp_path / "open")


def test_grant_access_and_maintainers_only(api, bob_api, repo_id, tmp_path):
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    with pytest.raises(HfHubHTTPError) as err:
        list(bob_api.list_pending_access_requests(repo_id))
    assert err.value.response.status_code == 403
    api.grant_access(repo_id, "bob")
    assert hf_hub_download(repo_id, "x.txt", token=BOB_TOKEN, cache_dir=tmp_path)


GATED_CARD = """---
extra_gated_heading: Ask for the weights
extra_gated_prompt: "You agree to the **licence**."
extra_gated_button_content: Send my request
extra_gated_fields:
  Company: text
  Use:
    type: select
    options:
      - Research
      - label: Something else
        value: other
  I agree to the licence: checkbox
---
# A gated model
"""


def test_the_cards_access_form_is_asked_and_its_answers_kept(api, live_hub, repo_id, tmp_path):
    """A card's extra_gated_* metadata (the Hub's access form) was ignored: the page offered one
    free-text "reason" box and owners never saw the answers their card asked for. Now the form shows
    the card's fields, every one is required, and list_pending_access_requests returns the answers."""
    import re
    import uuid

    import httpx

    api.upload_file(path_or_fileobj=GATED_CARD.encode(), path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"w", path_in_repo="w.bin", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    name = f"asker{uuid.uuid4().hex[:8]}"
    live_hub.cli("user", "create", name, "--password", "a long password to ask")
    with httpx.Client(base_url=live_hub.url, timeout=30) as web:
        csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text).group(1)
        web.post("/login", data={"csrf": csrf, "username": name, "password": "a long password to ask", "next": "/"})
        page = web.get(f"/{repo_id}").text
        assert "Ask for the weights" in page and "<strong>licence</strong>" in page and "Send my request" in page
        assert all(f'name="field-{i}"' in page for i in range(3)) and 'name="reason"' not in page
        assert "No model card yet" not in page  # there is one: it is shared with the files
        assert '<option value="other">Something else</option>' in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        answers = {"csrf": csrf, "field-0": "Acme", "field-1": "other"}
        refused = web.post(f"/{repo_id}/ask-access", data=answers)  # the licence not accepted
        assert refused.status_code == 400 and "I agree to the licence" in refused.text
        assert web.post(f"/{repo_id}/ask-access", data={**answers, "field-1": "Chess"}).status_code == 400
        assert not list(api.list_pending_access_requests(repo_id))
        web.post(f"/{repo_id}/ask-access", data={**answers, "field-2": "on"})
        assert "waiting for the authors" in web.get(f"/{repo_id}").text
    [request] = api.list_pending_access_requests(repo_id)
    assert request.username == name
    assert request.fields == {"Company": "Acme", "Use": "other", "I agree to the licence": True}


def test_a_rejected_request_stays_rejected_until_the_authors_change_it(api, live_hub, repo_id, http, tmp_path):
    """As on the Hub: a user whose request was rejected cannot ask again (it used to go back to
    pending); the authors can still accept it, or put it back to pending."""
    api.upload_file(path_or_fileobj=b"w", path_in_repo="w.txt", repo_id=repo_id)
    api.update_repo_settings(repo_id, gated="manual")
    ask = lambda: http.post(f"/api/models/{repo_id}/ask-access", json={"reason": "r"}, headers=auth(BOB_TOKEN))  # noqa: E731
    assert ask().json()["status"] == "pending"
    api.reject_access_request(repo_id, "bob", rejection_reason="no")
    again = ask()
    assert again.status_code == 403 and "rejected" in again.json()["error"]
    assert [r.username for r in api.list_rejected_access_requests(repo_id)] == ["bob"]
    assert list(api.list_pending_access_requests(repo_id)) == []
    with pytest.raises(GatedRepoError):
        hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)
    api.cancel_access_request(repo_id, "bob")  # the authors put it back to pending
    assert [r.username for r in api.list_pending_access_requests(repo_id)] == ["bob"]
    api.reject_access_request(repo_id, "bob", rejection_reason=None)
    api.accept_access_request(repo_id, "bob")  # and can still accept it
    assert [r.username for r in api.list_accepted_access_requests(repo_id)] == ["bob"]
    assert Path(hf_hub_download(repo_id, "w.txt", token=BOB_TOKEN, cache_dir=tmp_path)).read_bytes() == b"w"
    assert ask().json()["status"] == "accepted"

    # In the browser: the rejected user is told so, offered no form, and a form sent anyway is refused.
    import re
    import uuid

    import httpx

    name = f"rejected{uuid.uuid4().hex[:8]}"
    live_hub.cli("user", "create", name, "--password", "a long password to ask")
    with httpx.Client(base_url=live_hub.url, timeout=30) as web:
        csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text).group(1)
        web.post("/login", data={"csrf": csrf, "username": name, "password": "a long password to ask", "next": "/"})
        csrf = re.search(r'name="csrf" value="([^"]+)"', web.get(f"/{repo_id}").text).group(1)
        web.post(f"/{repo_id}/ask-access", data={"csrf": csrf, "reason": "please"})
        api.reject_access_request(repo_id, name, rejection_reason="no")
        page = web.get(f"/{repo_id}").text
        assert "declined your request" in page and "cannot be sent again" in page and "/ask-access" not in page
        assert web.post(f"/{repo_id}/ask-access", data={"csrf": csrf, "reason": "again"}).status_code == 403
    assert name in [r.username for r in api.list_rejected_access_requests(repo_id)]
