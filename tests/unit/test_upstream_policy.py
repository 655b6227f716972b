"""What the pull-through mirror may fetch (AICOMMONS_UPSTREAM_ALLOW / _BLOCK / _LICENSES /
_BLOCKED_LICENSES, plus ``aicommons mirror policy`` rules)."""

from datetime import datetime

from aicommons.db.upstream import UpstreamRule
from aicommons.hub.upstream import UpstreamPolicy


def test_allow_block_and_licenses():
    assert UpstreamPolicy.parse("", "", "").refusal("meta-llama/Llama-3", {}) is None  # nothing set: anything
    assert UpstreamPolicy.parse("*", "", "").refusal("meta-llama/Llama-3", {}) is None
    policy = UpstreamPolicy.parse("meta-llama/*, Google/*", "google/secret-*", "apache-2.0,MIT")
    assert policy.refusal("Meta-Llama/x", {"cardData": {"license": "mit"}}) is None  # case-insensitive
    assert "does not allow" in policy.refusal("someone/x", {"cardData": {"license": "mit"}})
    assert "blocks it" in policy.refusal("google/secret-model", {"cardData": {"license": "mit"}})
    assert "none declared" in policy.refusal("google/gemma", {})
    assert "other" in policy.refusal("google/gemma", {"cardData": {"license": "other"}})
    assert policy.refusal("google/gemma", {"tags": ["license:apache-2.0"]}) is None
    assert policy.refusal("google/gemma", {"cardData": {"license": ["cc-by-4.0", "apache-2.0"]}}) is None


def test_rules_add_to_the_settings_and_blocks_win():
    now = datetime(2026, 1, 1)
    rules = [UpstreamRule(1, "allow", "repo", "org/*", now), UpstreamRule(2, "block", "license", "gpl-3.0", now),
             UpstreamRule(3, "block", "repo", "org/bad", now)]
    policy = UpstreamPolicy.parse("", "", "").with_rules(rules)
    assert policy.refusal("org/good", {"cardData": {"license": "mit"}}) is None
    assert "does not allow" in policy.refusal("other/x", {})  # an allow rule restricts to what it names
    assert "blocks it" in policy.refusal("org/bad", {})
    assert "license (gpl-3.0)" in policy.refusal("org/good", {"tags": ["license:GPL-3.0"]})
    # The settings and the rules add up: either allow list admits.
    both = UpstreamPolicy.parse("meta/*", "", "").with_rules(rules)
    assert both.refusal("meta/x", {}) is None and both.refusal("org/x", {}) is None
    assert UpstreamPolicy.parse("", "", "", "cc-by-nc-4.0").refusal("a/b", {"cardData": {"license": "cc-by-nc-4.0"}})
