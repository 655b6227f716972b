"""The few library internals we rely on are isolated in one module per library; these tests fail,
naming the installed version, when an upgrade takes away something those modules use."""

from __future__ import annotations

from pathlib import Path

import huey
import pytest

from aicommons.db import _huey_private


def test_huey_still_has_the_internals_we_use():
    missing = _huey_private.missing_internals()
    assert not missing, (
        f"huey {huey.__version__} (these uses were checked against {_huey_private.TESTED_VERSIONS}) no longer "
        f"has: {', '.join(missing)}. Adapt aicommons/db/_huey_private.py (and db/jobs.py) to it.")


def test_our_job_storage_implements_every_storage_method_huey_calls():
    from aicommons.db.jobs import SqlJobStorage

    for name in _huey_private.STORAGE_METHODS:
        assert getattr(SqlJobStorage, name) is not getattr(_huey_private.BaseStorage, name), (
            f"SqlJobStorage inherits huey's {name}, which stores nothing")


def test_the_check_names_what_is_missing(monkeypatch):
    monkeypatch.setitem(_huey_private.STORAGE_METHODS, "enqueue", ("data", "priority", "new_arg"))
    monkeypatch.setitem(_huey_private.STORAGE_METHODS, "vanished_method", ())
    missing = _huey_private.missing_internals()
    assert "huey.storage.BaseStorage.vanished_method" in missing
    assert any(m.startswith("huey.storage.BaseStorage.enqueue('data', 'priority', 'new_arg')") for m in missing)


def test_transformers_still_has_the_internals_we_use():
    transformers = pytest.importorskip("transformers")
    from aicommons.inference.engines import _transformers_private

    missing = _transformers_private.missing_internals()
    assert not missing, (
        f"transformers {transformers.__version__} (these uses were checked against "
        f"{_transformers_private.TESTED_VERSIONS}) no longer has: {', '.join(missing)}. Adapt "
        f"aicommons/inference/engines/_transformers_private.py to it.")


def test_the_transformers_check_names_what_is_missing(monkeypatch):
    pytest.importorskip("transformers")
    from transformers.generation.continuous_batching import continuous_api

    from aicommons.inference.engines import _transformers_private

    monkeypatch.delattr(continuous_api, "BackgroundThreadStatus")
    assert _transformers_private.missing_internals() == [
        "transformers.generation.continuous_batching.continuous_api.BackgroundThreadStatus"]


def test_no_module_outside_the_isolation_modules_reaches_into_these_internals():
    """The internals are named in the two modules above only (a grep, so that a new use elsewhere
    fails here and goes through them instead)."""
    root = Path(__file__).resolve().parents[2] / "src" / "aicommons"
    allowed = {root / "db" / "_huey_private.py", root / "inference" / "engines" / "_transformers_private.py"}
    needles = ("huey.storage", "huey.constants", "worker_threads", "generation.continuous_batching", "output_router",
               "background_thread_status", "CLASSIC_TO_CB_PROCESSORS_MAP", "tokenizer._tokenizer")
    offenders = [f"{path.relative_to(root)}: {needle}" for path in root.rglob("*.py") if path not in allowed
                 for needle in needles if needle in path.read_text()]
    assert not offenders, offenders
