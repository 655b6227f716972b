"""``GET /v1/models`` on the live hub: the app factory's adapter lists the hub's models
(``hub.snapshots.ModelSnapshots.list_models``) with the caller's own visibility."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name

pytestmark = pytest.mark.inference
CARD = b"---\npipeline_tag: feature-extraction\n---\n\nlisted\n"


def _listed(live_hub, token: str | None) -> set[str]:
    response = httpx.get(f"{live_hub.url}/v1/models", headers=auth(token) if token else {}, timeout=30)
    assert response.status_code == 200
    return {row["id"] for row in response.json()["data"]}


def test_models_are_listed_as_far_as_the_caller_may_see_them(live_hub):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    public, private, untagged = (f"alice/{unique_name(n)}" for n in ("listed", "hidden", "untagged"))
    for repo_id in (public, private, untagged):
        api.create_repo(repo_id, private=repo_id == private)
    for repo_id in (public, private):
        api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=repo_id)
    mine, bobs, anonymous = _listed(live_hub, ALICE_TOKEN), _listed(live_hub, BOB_TOKEN), _listed(live_hub, None)
    assert {public, private} <= mine and untagged not in mine  # only models with a pipeline tag
    assert public in bobs and private not in bobs
    assert public in anonymous and private not in anonymous
