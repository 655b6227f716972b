"""Inference refuses a model the scanner did not vouch for, before loading anything (issue 9,
"inference admission before work"): a file judged unsafe, or a pickle not scanned yet. Against a
real ``aicommons serve`` with no background workers, so the scan runs exactly when the test says."""

from __future__ import annotations

import httpx
from huggingface_hub import HfApi

from tests.backends import free_port
from tests.conftest import start_hub, stop_hub

# A protocol-0 pickle that calls os.system when loaded: what torch.load on an old checkpoint runs.
EVIL_PICKLE = b"cos\nsystem\n(S'echo pwned'\ntR."
CONFIG = b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}'
CARD = b"---\npipeline_tag: text-generation\n---\n"


def test_unscanned_and_unsafe_pickles_are_refused(tmp_path):
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    data = tmp_path / "data"
    data.mkdir()
    served = start_hub(data, free_port(), AICOMMONS_JOB_WORKERS="0")
    try:
        served.cli("user", "create", "alice")
        token = served.cli("token", "create", "alice").stdout.split()[-1]
        api = HfApi(endpoint=served.url, token=token)
        repo = api.create_repo("alice/evil-llama").repo_id
        sha = api.upload_folder(repo_id=repo, folder_path=_folder(tmp_path)).oid
        body = {"model": repo, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        headers = {"Authorization": f"Bearer {token}"}

        queued = httpx.post(served.url + "/v1/chat/completions", json=body, headers=headers, timeout=60)
        assert queued.status_code == 503 and queued.headers["retry-after"]
        assert "not scanned yet" in queued.json()["error"]["message"]

        hub = Hub(Settings.from_env(data_dir=str(data)))  # the scan the background job would run
        try:
            hub.scans.scan_commit(hub.repo_store.get("model", repo).id, sha)
        finally:
            hub.close()
        refused = httpx.post(served.url + "/v1/chat/completions", json=body, headers=headers, timeout=60)
        assert refused.status_code == 403
        assert "pytorch_model.bin" in refused.json()["error"]["message"]
        tgi = httpx.post(f"{served.url}/models/{repo}/generate", json={"inputs": "x"}, headers=headers, timeout=60)
        assert tgi.status_code == 403 and tgi.headers["x-error-code"] == "UnsafeModel"
        assert not (data / "snapshots").exists() or not any((data / "snapshots").rglob("pytorch_model.bin"))
    finally:
        stop_hub(served)


def _folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes(CONFIG)
    (folder / "README.md").write_bytes(CARD)
    (folder / "pytorch_model.bin").write_bytes(EVIL_PICKLE)
    return str(folder)
