"""One owner for keys (hub/keys.py): one derived key per purpose, nobody else holds the secret,
and the signatures made before keys moved there still check."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pytest

from aicommons.hub.keys import LABELS, Keys, derive_key
from aicommons.xet.fetch_urls import XorbRangeSigner
from aicommons.xet.tokens import XetTokens

SECRET = b"s" * 40
SRC = Path(__file__).resolve().parents[2] / "src" / "aicommons"


def test_each_purpose_has_its_own_key_and_none_is_the_secret():
    keys = Keys(SECRET)
    derived = {purpose: keys.for_purpose(purpose) for purpose in LABELS}
    assert len(set(derived.values())) == len(LABELS)
    assert SECRET not in derived.values()
    assert Keys(b"t" * 40).for_purpose("web-csrf") != derived["web-csrf"]  # from the secret
    assert Keys(SECRET).for_purpose("lfs-transfer") == derived["lfs-transfer"]  # stable for one secret


def test_an_unknown_purpose_is_refused():
    with pytest.raises(ValueError, match="no key purpose"):
        Keys(SECRET).for_purpose("password-reset")
    with pytest.raises(ValueError, match="no key purpose"):
        derive_key(SECRET, "")


def test_keys_made_before_the_move_are_the_same_keys():
    """CSRF tokens and Xet tokens/URLs handed out by a hub that derived its keys elsewhere still check."""
    keys = Keys(SECRET)
    assert keys.for_purpose("web-csrf") == hmac.new(SECRET, b"aicommons/web-csrf/v1", hashlib.sha256).digest()
    old_token_key = hmac.new(SECRET, b"aicommons xet access token v2", hashlib.sha256).digest()
    old_binding_key = hmac.new(SECRET, b"aicommons xet token binding v1", hashlib.sha256).digest()
    old = XetTokens(old_token_key, old_binding_key, 60)
    new = XetTokens(keys.for_purpose("xet-token"), keys.for_purpose("xet-token-binding"), 60)
    minter = old.token_minter(7, "h" * 64)
    token, _ = old.issue("0123abcd" * 4, "read", 3, minter, now=1000)
    grant = new.check(token, "read", now=1010)
    assert new.binding_matches(grant, "h" * 64)
    old_range = XorbRangeSigner(hmac.new(SECRET, b"aicommons xet xorb range url v1", hashlib.sha256).digest(), 60)
    params = dict(p.split("=", 1) for p in old_range.query("ab" * 32, 0, 99, now=1000).split("&"))
    assert XorbRangeSigner(keys.for_purpose("xet-range-url"), 60).check("ab" * 32, params, now=1010) == (0, 99)


def test_only_the_key_module_reads_the_secret():
    """No module but config (which parses it) and hub/keys.py touches AICOMMONS_SECRET_KEY or
    derives a key from the secret itself."""
    readers = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in ("config.py", "hub/keys.py", "hub/private_files.py"):  # private_files: the file's mode only
            continue
        text = path.read_text()
        if re.search(r"\bsecret_key\b|\bload_secret\b|\.lfs\.secret\b|\bderive_key\b", text):
            readers.append(rel)
    assert readers == []
