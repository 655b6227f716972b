"""Upload scanning end to end: files committed with the real client are scanned in the background
by the live hub's job worker, and the results come back where huggingface_hub reads them
(``securityRepoStatus``, ``RepoFile.security``) and in the web UI's file list."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
from huggingface_hub import CommitOperationAdd
from safetensors.numpy import save as save_safetensors


class RunsAShell:
    def __reduce__(self):
        return os.system, ("echo owned",)


def wait_for_scans(api, repo_id: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        status = api.model_info(repo_id, securityStatus=True).security_repo_status
        if status["scansDone"] or time.time() > deadline:
            return status
        time.sleep(0.3)


def test_committed_files_are_scanned_and_issues_shown(api, repo_id, http):
    api.create_commit(repo_id, [
        CommitOperationAdd("evil.pkl", pickle.dumps(RunsAShell(), protocol=2)),
        CommitOperationAdd("weights/model.bin", pickle.dumps(RunsAShell(), protocol=4) + b"\0" * (11 << 20)),  # LFS
        CommitOperationAdd("plain.pkl", pickle.dumps({"lr": 0.1, "layers": [1, 2]})),
        CommitOperationAdd("model.safetensors", save_safetensors({"w": np.zeros((2, 3), dtype=np.float32)})),
        CommitOperationAdd("notes.txt", b"nothing to see"),
    ], commit_message="weights")

    status = wait_for_scans(api, repo_id)
    assert status["scansDone"], status
    issues = {f["path"]: f["level"] for f in status["filesWithIssues"]}
    assert issues == {"evil.pkl": "unsafe", "weights/model.bin": "unsafe"}

    files = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True, expand=True) if hasattr(f, "security")}
    assert files["evil.pkl"].security["status"] == "unsafe"
    assert files["evil.pkl"].security["safe"] is False
    assert files["evil.pkl"].security["pickle_import_scan"]["highestSafetyLevel"] == "dangerous"
    assert files["plain.pkl"].security["status"] == "safe"
    assert files["model.safetensors"].security["status"] == "safe"
    assert files["notes.txt"].security["status"] == "safe"
    (info,) = api.get_paths_info(repo_id, ["weights/model.bin"], expand=True)
    assert info.security["status"] == "unsafe"

    page = http.get(f"/{repo_id}/tree/main").text  # the web UI's file list warns next to the file
    assert "⚠ unsafe" in page and page.count("⚠ unsafe") == 1  # evil.pkl (model.bin is in a folder)

