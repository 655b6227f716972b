"""A real hub for the benchmarks: ``aicommons serve`` on a throwaway data dir, one user with a token,
and local model folders uploaded to it with ``huggingface_hub`` (as issue 4 asks: "uploaded to our
hub"). Requests then take the whole production path: auth middleware, ``HubModelSource`` access
checks, ref resolution, the snapshot, the engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Uploads go through git LFS, the hub's default path (as the test suite does).
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

ROOT = Path(__file__).resolve().parents[2]
USER = "bench"
TOKEN = "hf_bench_write_token_0000000000000001"


@dataclass
class BenchHub:
    url: str
    process: subprocess.Popen
    data_dir: Path
    token: str = TOKEN
    commits: dict = field(default_factory=dict)  # repo id -> commit uploaded

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def hub_env(data_dir: Path, port: int, threads: int, inference: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("AICOMMONS_") or k.startswith("HF_"))}
    env.update(AICOMMONS_DATA_DIR=str(data_dir), AICOMMONS_PORT=str(port), AICOMMONS_HOST="127.0.0.1",
               AICOMMONS_LOG_LEVEL="warning", OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT / "src"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.update({f"AICOMMONS_INFERENCE_{k.upper()}": str(v) for k, v in inference.items()})
    return env


def start_hub(port: int, threads: int, models: dict[str, Path], inference: dict) -> BenchHub:
    """Start a hub, create the bench user and token, upload ``models`` (repo id -> folder)."""
    data_dir = Path(tempfile.mkdtemp(prefix="aicommons-bench-hub-"))
    env = hub_env(data_dir, port, threads, inference)
    cli = [sys.executable, "-m", "aicommons.cli.main"]
    for args in (["user", "create", USER], ["token", "create", USER, "--value", TOKEN]):
        subprocess.run(cli + args, env=env, cwd=ROOT, check=True, capture_output=True)
    log = open(data_dir / "server.log", "ab")
    proc = subprocess.Popen(cli + ["serve"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    hub = BenchHub(f"http://127.0.0.1:{port}", proc, data_dir)
    deadline = time.time() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited with {proc.returncode}; see {data_dir / 'server.log'}")
        try:
            if httpx.get(hub.url + "/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            hub.stop()
            raise RuntimeError("hub did not start")
        time.sleep(0.2)
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=TOKEN)
    for repo_id, folder in models.items():
        api.create_repo(repo_id, exist_ok=True)
        hub.commits[repo_id] = api.upload_folder(repo_id=repo_id, folder_path=str(folder)).oid
    return hub
