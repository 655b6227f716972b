"""The ``hf`` CLI as a user runs it (its own HF_HOME, HF_ENDPOINT at the live hub): what each command
prints, compared with what huggingface.co gives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ALICE_TOKEN


@pytest.fixture
def hf(live_hub, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "hf")
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_TOKEN": ALICE_TOKEN, "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)

    return run


@pytest.mark.parametrize(("args", "product"), [
    (("jobs", "ps"), "Jobs"),
    (("jobs", "inspect", "0123abcd"), "Jobs"),
    (("jobs", "run", "python:3.12", "echo", "hi"), "Jobs"),
    (("buckets", "ls"), "Storage buckets"),
    (("buckets", "create", "alice/bucket"), "Storage buckets"),
    (("papers", "ls"), "Papers"),
])
def test_unserved_products_say_so(hf, args, product):
    """`hf jobs ps` and `hf buckets ls` said "Repository not found ... create it with: hf repos create",
    `hf jobs run` a bare 405 and `hf papers ls` a 404 of an HTML page: they now say the hub has no such
    product."""
    result = hf(*args)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{product} are not available on this hub" in out
    assert "Repository not found" not in out and "Bucket not found" not in out and "create it with" not in out
    assert "405" not in out and "<html" not in out
