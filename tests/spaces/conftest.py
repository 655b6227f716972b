"""A hub that runs Spaces, for the tests of this folder: environments see the hub's own packages
(``AICOMMONS_SPACES_SITE_PACKAGES``) and pip's cache outlives the session, so a Gradio build costs
seconds after the first; apps sleep after a short idle time so that waking is exercised."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import _SCRATCH, _free_port, server_env, start_hub, stop_hub

GRADIO = "gradio==6.31.0"  # the space's requirements.txt: installed into its environment, not the hub's
TOKENS = {"alice": "hf_spaces_alice_write_token_0001", "bob": "hf_spaces_bob_write_token_0002"}
PIP_CACHE = Path(os.environ.get("AICOMMONS_TEST_PIP_CACHE", Path.home() / ".cache" / "aicommons-tests" / "spaces-pip"))
SLEEP_SECONDS = 20


def start_spaces_hub(name: str, **more: str):
    """A live hub that runs Spaces (the settings above, plus ``more``), with users alice and bob."""
    if not (Path("/usr/bin/bwrap").exists() or subprocess.run(["which", "bwrap"], capture_output=True).returncode == 0):
        pytest.fail("bubblewrap is needed to run Spaces: apt-get install bubblewrap")
    data_dir = _SCRATCH / name
    data_dir.mkdir()
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    extra = dict(AICOMMONS_SPACES_SITE_PACKAGES="true", AICOMMONS_SPACES_PIP_CACHE_DIR=str(PIP_CACHE),
                 AICOMMONS_SPACES_SLEEP_SECONDS=str(SLEEP_SECONDS), AICOMMONS_SPACES_MEMORY_MB="4096",
                 AICOMMONS_SPACES_DISK_MB="64", AICOMMONS_SPACES_MAX_RUNNING="3", AICOMMONS_JOB_WORKERS="2",
                 AICOMMONS_SPACES_CPUS="0.5", **more)
    env = server_env(data_dir, port, **extra)
    for args in (["user", "create", "alice", "--password", "wonderland"], ["user", "create", "bob"],
                 ["token", "create", "alice", "--value", TOKENS["alice"]],
                 ["token", "create", "bob", "--value", TOKENS["bob"]]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    return start_hub(data_dir, port, **extra)


@pytest.fixture(scope="session")
def spaces_hub():
    hub = start_spaces_hub("spaces-hub")
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="session")
def spaces_api(spaces_hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=spaces_hub.url, token=TOKENS["alice"])


def wait_stage(api, space_id: str, stages: set[str], timeout: float = 240) -> str:
    deadline = time.time() + timeout
    stage = None
    while time.time() < deadline:
        stage = api.get_space_runtime(space_id).stage
        if stage in stages:
            return stage
        time.sleep(0.5)
    raise AssertionError(f"{space_id} stayed {stage}, never reached {stages}")


def run_log(hub, space_id: str, kind: str = "run") -> str:
    """The log as HfApi.fetch_space_logs reads it (SSE, no follow)."""
    import json

    lines = []
    try:
        with httpx.Client(base_url=hub.url, timeout=httpx.Timeout(10, read=1.5)) as http, http.stream(
                "GET", f"/api/spaces/{space_id}/logs/{kind}",
                headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    lines.append(json.loads(line[6:])["data"])
    except httpx.ReadTimeout:
        pass  # the stream follows the log; a pause means everything written so far was read
    return "".join(lines)


def gradio_call(hub, space_id: str, token: str | None, *args, api_name: str = "/greet") -> str:
    """``gradio_client.Client(space_id)`` unmodified, in a process whose HF_ENDPOINT is this hub."""
    script = ("import sys\nfrom gradio_client import Client\n"
              "c = Client(sys.argv[1], token=sys.argv[2] or None, verbose=False)\n"
              "print('RESULT=' + repr(c.predict(*sys.argv[4:], api_name=sys.argv[3])))\n")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    env.pop("HF_TOKEN", None)
    done = subprocess.run([sys.executable, "-c", script, space_id, token or "", api_name, *args], env=env,
                          capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout.split("RESULT=", 1)[1].strip()
