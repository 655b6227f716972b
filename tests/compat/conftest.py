"""Fixtures shared by the compatibility tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def xet(monkeypatch, live_hub):
    """The live hub, with huggingface_hub allowed to use hf_xet (the suite disables it by default so
    that the other tests exercise plain LFS)."""
    from huggingface_hub import constants
    from huggingface_hub.utils._runtime import is_xet_available

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    assert is_xet_available(), "hf_xet is not installed"
    return live_hub
