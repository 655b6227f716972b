"""What the pull-through mirror may fetch (AICOMMONS_UPSTREAM_ALLOW / _BLOCK / _LICENSES)."""

from aicommons.hub.upstream import UpstreamPolicy


def test_allow_block_and_licenses():
    anything = UpstreamPolicy.parse("*", "", "")
    assert anything.refusal("meta-llama/Llama-3", {}) is None
    policy = UpstreamPolicy.parse("meta-llama/*, Google/*", "google/secret-*", "apache-2.0,MIT")
    assert policy.refusal("Meta-Llama/x", {"cardData": {"license": "mit"}}) is None  # case-insensitive
    assert "UPSTREAM_ALLOW" in policy.refusal("someone/x", {"cardData": {"license": "mit"}})
    assert "UPSTREAM_BLOCK" in policy.refusal("google/secret-model", {"cardData": {"license": "mit"}})
    assert "none declared" in policy.refusal("google/gemma", {})
    assert "other" in policy.refusal("google/gemma", {"cardData": {"license": "other"}})
    assert policy.refusal("google/gemma", {"tags": ["license:apache-2.0"]}) is None
    assert policy.refusal("google/gemma", {"cardData": {"license": ["cc-by-4.0", "apache-2.0"]}}) is None
