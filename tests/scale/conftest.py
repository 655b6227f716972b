"""Hubs for the scale-out tests, on each backend: a live ``aicommons serve`` plus an in-process
``Hub`` on the same database, git folder and blob store (for GC, backup and fsck calls)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import db_engine, free_port, moto_s3, pg_cluster  # noqa: F401 - shared fixtures
from tests.conftest import ALICE_TOKEN, server_env, start_hub, stop_hub

BACKENDS = ["sqlite-local", "postgres-s3"]


def s3_storage_url(moto, bucket: str) -> str:
    """All S3 configuration in the URL, so that in-process hubs need no AWS_* variables."""
    return (f"s3://{bucket}/blobs?endpoint={moto.endpoint}&region=us-east-1&access_key_id=testing"
            "&secret_access_key=testing&allow_http=true")


@pytest.fixture(params=BACKENDS)
def backend_env(request) -> dict:
    if request.param == "sqlite-local":
        return {}
    pg, s3 = request.getfixturevalue("pg_cluster"), request.getfixturevalue("moto_s3")
    return {"AICOMMONS_DATABASE_URL": pg.create_database(),
            "AICOMMONS_STORAGE_URL": s3_storage_url(s3, s3.create_bucket())}


def seed(env: dict) -> None:
    for args in (["user", "create", "alice"], ["token", "create", "alice", "--value", ALICE_TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)


@pytest.fixture
def served(backend_env, tmp_path):
    """A live hub (as alice) on the chosen backend; ``served.env`` runs CLI commands against it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    seed(server_env(data_dir, port, **backend_env))
    hub = start_hub(data_dir, port, **backend_env)
    yield hub
    stop_hub(hub)


def in_process_hub(env: dict):
    """A ``Hub`` built from a server's environment (same database, git folder and blobs)."""
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    data_dir = Path(env["AICOMMONS_DATA_DIR"])
    overrides = {}
    if env.get("AICOMMONS_DATABASE_URL"):
        overrides["database_url"] = env["AICOMMONS_DATABASE_URL"]
    if env.get("AICOMMONS_STORAGE_URL"):
        overrides["storage_url"] = env["AICOMMONS_STORAGE_URL"]
    return Hub(Settings.from_env(data_dir=str(data_dir), **overrides))
