"""Quota reservations (issue 11, "never half-applied"): bytes of an LFS upload in flight count against
its owner's quota until the upload ends, so parallel uploads cannot together pass the quota; a failed
upload gives its reservation back."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import httpx

from tests.compat import test_storage_accounting
from tests.conftest import ALICE_TOKEN, auth, unique_name

KB = 1000
LFS = {**auth(ALICE_TOKEN), "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}

org = test_storage_accounting.org  # the fixture: a fresh organisation of alice's


def _upload_action(http: httpx.Client, repo: str, data: bytes) -> dict:
    obj = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}
    r = http.post(f"/{repo}.git/info/lfs/objects/batch", headers=LFS,
                  json={"operation": "upload", "transfers": ["basic"], "objects": [obj]})
    assert r.status_code == 200, r.text
    return r.json()["objects"][0]["actions"]["upload"]


def _put(action: dict, body) -> httpx.Response:
    return httpx.put(action["href"], headers=action.get("header", {}), content=body, timeout=60)


def test_parallel_uploads_cannot_together_pass_the_quota(live_hub, api, http, org):
    repo = f"{org}/{unique_name()}"
    api.create_repo(repo)
    used = json.loads(live_hub.cli("storage", "quota", "show", org, "--json").stdout)["used_bytes"]
    live_hub.cli("storage", "quota", "set", org, str(used + 1500 * KB))
    first, second, third = os.urandom(1000 * KB), os.urandom(1000 * KB), os.urandom(400 * KB)
    # Each fits alone, so the batch API hands out both upload links.
    first_action, second_action = _upload_action(http, repo, first), _upload_action(http, repo, second)

    # The first upload is under way (half its body sent, the rest held back) ...
    sent_half, go_on = threading.Event(), threading.Event()

    def slow_body():
        yield first[:500 * KB]
        sent_half.set()
        go_on.wait(30)
        yield first[500 * KB:]

    result: dict = {}
    uploader = threading.Thread(target=lambda: result.update(r=_put(first_action, slow_body())))
    uploader.start()
    try:
        assert sent_half.wait(30)
        # ... so the second, which alone would fit, is refused: both would pass the quota.
        refused = _put(second_action, second)
        assert refused.status_code == 403, refused.text
        assert "Storage limit reached" in refused.headers["x-error-message"]
    finally:
        go_on.set()
        uploader.join(60)
    assert result["r"].status_code == 200, result["r"].text

    # A failed upload gives its reservation back: a wrong body, then the right one of the same size.
    third_action = _upload_action(http, repo, third)
    assert _put(third_action, os.urandom(400 * KB)).status_code == 400
    assert _put(third_action, third).status_code == 200
    live_hub.cli("storage", "quota", "set", org, "default")
