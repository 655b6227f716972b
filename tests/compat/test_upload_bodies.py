"""Upload bodies from the real clients are read from the socket by the receiving thread
(api/socket_body.py, issue 21), as /metrics shows an operator: an LFS PUT from huggingface_hub and the
xorbs hf_xet POSTs. (tests/unit/test_socket_body.py covers the reading itself.)"""

from __future__ import annotations

import os

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import auth, unique_name

MiB = 1024 * 1024


def _bodies(live_hub, token: str) -> dict[str, float]:
    text = httpx.get(live_hub.url + "/metrics", headers=auth(token), timeout=30).text
    return {s.labels["read"]: s.value for f in text_string_to_metric_families(text) if f.name == "hub_upload_bodies"
            for s in f.samples if s.name.endswith("_total")}


def _upload_and_check(api, repo_id: str, tmp_path, name: str) -> None:
    data = os.urandom(6 * MiB + 5)
    (tmp_path / name).write_bytes(data)
    api.upload_file(path_or_fileobj=str(tmp_path / name), path_in_repo=name, repo_id=repo_id)
    assert api.get_paths_info(repo_id, [name])[0].size == len(data)
    with open(api.hf_hub_download(repo_id, name, cache_dir=tmp_path / "cache"), "rb") as f:
        assert f.read() == data


def test_lfs_and_xet_upload_bodies_are_read_from_the_socket(live_hub, api, repo_id, tmp_path, monkeypatch):
    from huggingface_hub import constants

    admin = unique_name("ops")
    live_hub.cli("user", "create", admin, "--admin")
    token = live_hub.cli("token", "create", admin).stdout.splitlines()[-1]

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    before = _bodies(live_hub, token)
    _upload_and_check(api, repo_id, tmp_path, "lfs.bin")
    after_lfs = _bodies(live_hub, token)
    assert after_lfs["socket"] == before["socket"] + 1, (before, after_lfs)

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    _upload_and_check(api, repo_id, tmp_path, "xet.bin")
    after_xet = _bodies(live_hub, token)
    assert after_xet["socket"] >= after_lfs["socket"] + 1, (after_lfs, after_xet)  # one xorb at least
    assert after_xet["messages"] == before["messages"], (before, after_xet)
