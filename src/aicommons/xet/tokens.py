"""Xet access tokens: what the Hub hands out at ``xet-{read,write}-token`` and the CAS routes accept.

hf_xet sends the token as ``Authorization: Bearer`` to every CAS request, so it must carry
everything the CAS needs to decide without a session: the repo uploads land in or downloads read
from, the operation, the account that asked for it, what that account signed in with, and an
expiry, all signed with a key of its own (derived from the hub secret by ``hub/keys.py``, so that
no LFS transfer signature can ever pass as a token). Account 0 stands for an anonymous reader of a public repo.

The repo is named by its ``storage_key``: random, never reused, kept across renames; a database id
would name the next repo created after a deletion (SQLite reuses ids). The minting credential is
named too, so that revoking it cancels every Xet token it minted (the CAS checks it on each request,
``XetService.grant``): ``t{id}~{binding}`` for an access token (its id, and a digest of its hash,
since ids are reused as well), ``a`` for a password or web session (bound to the account), ``-``
for an anonymous reader.

Format: ``xet2.{operation}.{storage_key}.{account_id}.{minter}.{expires}.{signature}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from aicommons.errors import Unauthorized

PREFIX = "xet2"
OPERATIONS = ("read", "write")
ANONYMOUS = "-"
ACCOUNT = "a"
_STORAGE_KEY_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_MINTER_RE = re.compile(r"^(-|a|t[0-9]{1,18}~[0-9A-Za-z_-]{16})$")


@dataclass(frozen=True)
class XetGrant:
    storage_key: str
    operation: str
    account_id: int
    minter: str
    expires: int
    repo_id: int = 0  # filled in by XetService.grant once the repo is looked up

    @property
    def token_id(self) -> int | None:
        return int(self.minter[1:].split("~")[0]) if self.minter.startswith("t") else None


@dataclass(frozen=True)
class XetKeys:
    """The keys the Xet CAS signs with, each for one purpose (derived by ``hub/keys.py``)."""

    token: bytes  # Xet access tokens
    token_binding: bytes  # the digest binding a token to the access token that minted it
    range_url: bytes  # signed xorb range URLs (xet/fetch_urls.py)


class XetTokens:
    def __init__(self, key: bytes, binding_key: bytes, ttl_seconds: int):
        self._key = key
        self._bind_key = binding_key
        self.ttl = ttl_seconds

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def token_minter(self, token_id: int, token_hash: str) -> str:
        """The minter field for an access token (its id and a keyed digest of its stored hash)."""
        digest = hmac.new(self._bind_key, token_hash.encode(), hashlib.sha256).digest()
        return f"t{token_id}~{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()[:16]}"

    def issue(self, storage_key: str, operation: str, account_id: int, minter: str,
              now: float | None = None) -> tuple[str, int]:
        """(token, expiry in unix seconds)."""
        if operation not in OPERATIONS or not _STORAGE_KEY_RE.match(storage_key) or not _MINTER_RE.match(minter):
            raise ValueError("bad Xet token fields")
        expires = int(now if now is not None else time.time()) + self.ttl
        body = f"{PREFIX}.{operation}.{storage_key}.{account_id}.{minter}.{expires}"
        return f"{body}.{self._sign(body)}", expires

    def check(self, token: str | None, operation: str, now: float | None = None) -> XetGrant:
        """The grant a well-signed, unexpired token for ``operation`` carries; ``Unauthorized``
        otherwise. Whether its repo and minting credential still exist is the caller's question.
        A write token does not read: it is handed to PR contributors without the gating check."""
        parts = (token or "").split(".")
        if len(parts) != 7 or parts[0] != PREFIX:
            raise Unauthorized("Invalid Xet access token: request a new one from the Hub's xet-read-token or "
                               "xet-write-token endpoint")
        body, signature = ".".join(parts[:6]), parts[6]
        if not hmac.compare_digest(self._sign(body), signature):
            raise Unauthorized("Invalid Xet access token: bad signature")
        try:
            account_id, expires = int(parts[3]), int(parts[5])
        except ValueError:
            raise Unauthorized("Invalid Xet access token") from None
        if expires < (now if now is not None else time.time()):
            raise Unauthorized("Expired Xet access token")
        if parts[1] != operation:
            raise Unauthorized(f"This Xet access token does not allow {operation}")
        return XetGrant(parts[2], parts[1], account_id, parts[4], expires)

    def binding_matches(self, grant: XetGrant, token_hash: str) -> bool:
        return grant.token_id is not None and hmac.compare_digest(
            self.token_minter(grant.token_id, token_hash), grant.minter)
