"""Issue 9 finding 12: signed transfer URLs must not land in the access log (the log line would be a
replayable capability until the link expires)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlparse

import httpx
from huggingface_hub import HfApi

from aicommons.api.access_log import redact_query
from tests.backends import free_port
from tests.conftest import ALICE_TOKEN, auth, server_env, stop_hub, unique_name, wait_healthy


def test_redact_query_keeps_the_path_and_other_parameters():
    assert redact_query("/lfs-transfer/k/o/3?exp=1&who=anon&sig=abcdef") == \
        "/lfs-transfer/k/o/3?exp=1&who=anon&sig=REDACTED"
    assert redact_query("/x?X-Amz-Signature=s&X-Amz-Credential=c&a=1") == \
        "/x?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&a=1"
    assert redact_query("/api/models?search=x") == "/api/models?search=x"
    assert redact_query("/plain") == "/plain"


def test_transfer_link_signatures_stay_out_of_the_servers_access_log(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    env = server_env(data_dir, port)
    env["AICOMMONS_LOG_LEVEL"] = "info"  # the access log is on at info
    for args in (["user", "create", "alice"], ["token", "create", "alice", "--value", ALICE_TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    log_path = tmp_path / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "aicommons.cli.main", "serve"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        repo = HfApi(endpoint=url, token=ALICE_TOKEN).create_repo(f"alice/{unique_name()}").repo_id
        data = os.urandom(3000)
        oid = hashlib.sha256(data).hexdigest()
        batch = httpx.post(f"{url}/{repo}.git/info/lfs/objects/batch", headers=auth(ALICE_TOKEN), json={
            "operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}).json()
        href = batch["objects"][0]["actions"]["upload"]["href"]
        assert httpx.put(href, content=data).status_code == 200
        signature = parse_qs(urlparse(href).query)["sig"][0]
    finally:
        from types import SimpleNamespace

        stop_hub(SimpleNamespace(process=process))
    text = log_path.read_text()
    assert "PUT /lfs-transfer/" in text  # the request is logged...
    assert "sig=REDACTED" in text and signature not in text  # ...without its signature
