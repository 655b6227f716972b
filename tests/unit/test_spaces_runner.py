"""Spaces' runner and app tokens in-process. A hub not running as root cannot sandbox Spaces: the
build says so (the stage becomes BUILD_ERROR with this message) before it makes anything (the tests
run as root, so the uid the check reads is replaced: an unprivileged interpreter cannot read this
machine's Python). Minting an app's token deletes that space's earlier ones and expired ones."""

from __future__ import annotations

import pytest

from aicommons.spaces import sandbox
from aicommons.spaces.runner import AppSpec, LocalRunner
from aicommons.spaces.sandbox import Limits, SandboxUnavailable


class Log:
    def __init__(self):
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def test_a_hub_that_is_not_root_gets_a_build_error_saying_why(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    runner = LocalRunner(tmp_path / "spaces", Limits(256, 16, 16))
    spec = AppSpec(key=1, src=tmp_path, sdk="gradio", app_file="app.py", env={})
    with pytest.raises(SandboxUnavailable) as refused:
        runner.build(spec, Log())
    message = str(refused.value)
    assert "runs as uid 1000, not root" in message and "AICOMMONS_SPACES_RUN=false" in message
    assert not (tmp_path / "spaces" / "envs").exists()  # nothing made


def test_root_passes_the_check():
    assert sandbox.tools()[0].endswith("bwrap")


def test_minting_an_apps_token_deletes_its_earlier_ones_and_expired_ones(isolated_hub):
    from datetime import timedelta

    from aicommons.times import utcnow

    hub = isolated_hub()
    carol = hub.accounts.create_user("carol")
    yesterday, tomorrow = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    hub.accounts.create_token("carol", role="read", name="space #7 carol/app", expires_at=tomorrow, origin="space")
    hub.accounts.create_token("carol", role="read", name="space #8 carol/old", expires_at=yesterday, origin="space")
    hub.accounts.create_token("carol", role="read", name="space #9 carol/other", expires_at=tomorrow, origin="space")
    hub.accounts.create_token("carol", role="read", name="space #7 mine", expires_at=yesterday)  # hers: kept
    assert hub.accounts.revoke_app_tokens(carol.id, "space #7 ") == 2
    assert sorted(t.name for t in hub.accounts.tokens_of(carol)) == ["space #7 mine", "space #9 carol/other"]
