"""The hub's keys: one secret (``AICOMMONS_SECRET_KEY``, else a random one kept in the data dir),
one derived key per purpose, and this module the only one that derives them.

A key is HMAC-SHA256(secret, label of its purpose), so a signature made for one purpose (a CSRF
token, an LFS transfer link, a Xet token) can never pass for another, and no code outside this
module holds the secret itself. Callers ask for a purpose by name; a purpose not in ``LABELS`` is
an error, so adding one (setup links, password resets, ...) means adding its label here.

Labels are part of what was signed: changing one invalidates every link or token made with it.
The Xet labels are the ones the Xet signers used when they derived their own keys, so Xet tokens
and range URLs handed out before keys moved here stay valid.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aicommons.config import Settings
from aicommons.hub.private_files import make_private, write_private_file

LABELS: dict[str, bytes] = {
    "web-csrf": b"aicommons/web-csrf/v1",  # the web UI's CSRF tokens (web/session.py)
    "lfs-transfer": b"aicommons/lfs-transfer/v1",  # LFS transfer links (hub/lfs.py)
    "xet-token": b"aicommons xet access token v2",  # Xet access tokens (xet/tokens.py)
    "xet-token-binding": b"aicommons xet token binding v1",  # a Xet token's minting credential
    "xet-range-url": b"aicommons xet xorb range url v1",  # signed xorb range URLs (xet/fetch_urls.py)
    "space-secrets": b"aicommons/space-secrets/v1",  # Spaces' secrets, encrypted at rest (hub/spaces.py)
    "viewer-assets": b"aicommons/viewer-assets/v1",  # image and audio URLs of the dataset viewer (hub/viewer_query.py)
    "space-visits": b"aicommons/space-visits/v1",  # a browser's visit of a private Space app (hub/spaces.py)
    "upstream-links": b"aicommons/upstream-links/v1",  # users' linked upstream tokens, encrypted (hub/upstream_links.py)
    "new-token": b"aicommons/new-token/v1",  # a new access token sealed for the one page that shows it (web/tokens.py)
    "key-id": b"aicommons/key-id/v1",  # names the secret in a backup's manifest without revealing it (hub/backup.py)
}


def load_secret(settings: Settings) -> bytes:
    """The signing secret: from the settings, else a random one kept in the data dir."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_file(path, secrets.token_hex(32))  # 0600: whoever reads it forges sessions
    make_private(path)
    return path.read_text().strip().encode()


KEY_FILE = "secret_key"  # in the data dir when AICOMMONS_SECRET_KEY is empty; a backup carries it as is


def key_id(secret: bytes) -> str:
    """A short public name of a secret: whether a backup and a hub share one, never the secret."""
    return derive_key(secret, "key-id").hex()[:16]


def current_key_id(settings: Settings) -> str | None:
    """The name of this hub's secret (the setting, else the key file), or None before it has one."""
    if settings.secret_key:
        return key_id(settings.secret_key.encode())
    path = settings.data_dir / KEY_FILE
    return key_id(path.read_text().strip().encode()) if path.exists() else None


def setting_key_id(settings: Settings) -> str | None:
    """The name of ``AICOMMONS_SECRET_KEY``, or None when the hub keeps its key in a file."""
    return key_id(settings.secret_key.encode()) if settings.secret_key else None


def key_file_text(settings: Settings) -> str | None:
    """The key file a backup carries: the data dir's, when the key is not a setting."""
    path = settings.data_dir / KEY_FILE
    return path.read_text().strip() if not settings.secret_key and path.exists() else None


def install_key_file(settings: Settings, text: str) -> None:
    """Put a backup's key file into the data dir (a restore, into an empty database)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    write_private_file(settings.data_dir / KEY_FILE, text)


def derive_key(secret: bytes, purpose: str) -> bytes:
    """The key for one purpose: HMAC-SHA256(secret, its label)."""
    try:
        label = LABELS[purpose]
    except KeyError:
        raise ValueError(f"no key purpose {purpose!r}: add its label to aicommons.hub.keys.LABELS") from None
    return hmac.new(secret, label, hashlib.sha256).digest()


class Keys:
    """The derived keys of one hub, computed once (a running process signs and checks with the
    same key for its whole life)."""

    def __init__(self, secret: bytes):
        self._keys = {purpose: derive_key(secret, purpose) for purpose in LABELS}

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        return cls(load_secret(settings))

    def for_purpose(self, purpose: str) -> bytes:
        try:
            return self._keys[purpose]
        except KeyError:
            raise ValueError(f"no key purpose {purpose!r}: add its label to aicommons.hub.keys.LABELS") from None
