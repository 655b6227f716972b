"""Xet access tokens: what the Hub hands out at ``xet-{read,write}-token`` and the CAS routes accept.

hf_xet sends the token as ``Authorization: Bearer`` to every CAS request, so it must carry
everything the CAS needs to decide without a session: the repo (database id) uploads land in or
downloads read from, the operation, the account that asked for it, and an expiry, all signed with a
key derived from the hub secret (a separate key, so that no LFS transfer signature can ever pass as
a token). Account 0 stands for an anonymous reader of a public repo.

Format: ``xet1.{repo_id}.{operation}.{account_id}.{expires}.{signature}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from aicommons.errors import Unauthorized

PREFIX = "xet1"
OPERATIONS = ("read", "write")


@dataclass(frozen=True)
class XetGrant:
    repo_id: int
    operation: str
    account_id: int
    expires: int


class XetTokens:
    def __init__(self, secret: bytes, ttl_seconds: int):
        self._key = hmac.new(secret, b"aicommons xet access token v1", hashlib.sha256).digest()
        self.ttl = ttl_seconds

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, repo_id: int, operation: str, account_id: int, now: float | None = None) -> tuple[str, int]:
        """(token, expiry in unix seconds)."""
        if operation not in OPERATIONS:
            raise ValueError(operation)
        expires = int(now if now is not None else time.time()) + self.ttl
        body = f"{PREFIX}.{repo_id}.{operation}.{account_id}.{expires}"
        return f"{body}.{self._sign(body)}", expires

    def check(self, token: str | None, operation: str, now: float | None = None) -> XetGrant:
        """The grant a valid, unexpired token for ``operation`` carries; ``Unauthorized`` otherwise.
        A write token does not read: it is handed to PR contributors without the gating check."""
        parts = (token or "").split(".")
        if len(parts) != 6 or parts[0] != PREFIX:
            raise Unauthorized("Invalid Xet access token: request a new one from the Hub's xet-read-token or "
                               "xet-write-token endpoint")
        body, signature = ".".join(parts[:5]), parts[5]
        if not hmac.compare_digest(self._sign(body), signature):
            raise Unauthorized("Invalid Xet access token: bad signature")
        try:
            repo_id, account_id, expires = int(parts[1]), int(parts[3]), int(parts[4])
        except ValueError:
            raise Unauthorized("Invalid Xet access token") from None
        if expires < (now if now is not None else time.time()):
            raise Unauthorized("Expired Xet access token")
        if parts[2] != operation:
            raise Unauthorized(f"This Xet access token does not allow {operation}")
        return XetGrant(repo_id, parts[2], account_id, expires)
