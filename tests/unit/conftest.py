"""Fixtures for the unit tests that drive a real ``Hub`` object in-process (no server)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from aicommons.config import Settings
from aicommons.hub.hub import Hub


@pytest.fixture
def isolated_hub(tmp_path, monkeypatch) -> Iterator[Callable[..., Hub]]:
    """Builds a Hub on a fresh data folder, with no AICOMMONS_ setting from the environment but
    the ones given (upload scanning off unless asked); closes it after the test."""
    made: list[Hub] = []

    def make(**settings: str) -> Hub:
        for key in list(os.environ):
            if key.startswith("AICOMMONS_"):
                monkeypatch.delenv(key)
        monkeypatch.setenv("AICOMMONS_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("AICOMMONS_SCAN_UPLOADS", "false")
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
        made.append(Hub(Settings.from_env()))
        return made[-1]

    yield make
    for hub in made:
        hub.close()


@pytest.fixture
def sqlite_repos(tmp_path):
    """A RepoStore on a fresh SQLite database with its schema, and the user "alice" who owns its repos."""
    from aicommons.db.accounts import AccountStore
    from aicommons.db.engine import make_engine, upgrade_schema
    from aicommons.db.repos import RepoStore

    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_schema(engine)
    owner = AccountStore(engine).create("alice", "user")
    yield RepoStore(engine), owner
    engine.dispose()
