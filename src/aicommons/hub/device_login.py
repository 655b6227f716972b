"""OAuth device login (RFC 8628), as ``hf auth login`` and ``login()`` use it by default.

The CLI asks ``POST /oauth/device`` for a code, shows the user a URL with the user code, and polls
``POST /oauth/token``. A signed-in user approves (or denies) the code on ``/device``; the next poll
gets a new token named for the device (what its ``User-Agent`` said, and when), listed and
revocable in the token settings like any other. Codes live ``EXPIRES_IN`` seconds, only their
hash is stored, and a code gives at most one token.

The token comes with a refresh token (``grant_type=refresh_token``, which huggingface_hub sends
when its token has less than a day left): a refresh gives the same token (same name, role and
entry in the settings) a new secret and a new lifetime, and a new refresh token. Each refresh token
works once; presenting a used one again revokes the token, since only a copy can do that. Revoking
the token in the settings ends its refreshes too, and an expired token is not refreshed.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from aicommons.db.accounts import Account
from aicommons.db.device_codes import DeviceCode, DeviceCodeStore
from aicommons.errors import BadRequest, NotFound
from aicommons.hub.accounts import AccountService, hash_token, new_token_value
from aicommons.times import utcnow

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXPIRES_IN = 900
INTERVAL = 5
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no look-alike digits
HF_CLIENT_ID = "26be6b09-91c5-47da-9861-d2d2bb7a7e36"  # huggingface_hub's (hf auth login, login())


class OAuthError(Exception):
    """An OAuth error answer: ``{"error": code, "error_description": description}``, status 400."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(description)
        self.code, self.description, self.status = code, description, status


def _refresh_token() -> str:
    return "hf_rt_" + secrets.token_urlsafe(32)


def normalize_user_code(text: str) -> str:
    letters = "".join(c for c in text.upper() if c.isalnum())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else letters


class DeviceLogin:
    def __init__(self, store: DeviceCodeStore, accounts: AccountService, client_ids: tuple[str, ...],
                 token_days: int):
        self.store = store
        self.accounts = accounts
        self.client_ids = client_ids
        self.token_days = token_days

    def start(self, client_id: str, user_agent: str, ip: str | None, base_url: str) -> dict[str, Any]:
        if client_id not in self.client_ids:
            raise OAuthError("invalid_client", "Unknown client_id (AICOMMONS_DEVICE_CLIENT_IDS lists the allowed ones)")
        device_code = secrets.token_urlsafe(32)
        user_code = normalize_user_code("".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8)))
        now = utcnow()
        client = "hf CLI" if client_id == HF_CLIENT_ID else (user_agent[:80] or "a device")
        client_name = f"{client} login from {ip or 'an unknown address'}"
        self.store.add(hash_token(device_code), user_code, client_id, client_name[:200], now,
                       now + timedelta(seconds=EXPIRES_IN))
        return {"device_code": device_code, "user_code": user_code, "verification_uri": f"{base_url}/device",
                "verification_uri_complete": f"{base_url}/device?user_code={user_code}",
                "expires_in": EXPIRES_IN, "interval": INTERVAL}

    def poll(self, device_code: str, client_id: str) -> dict[str, Any]:
        code = self.store.by_hash(hash_token(device_code or ""))
        if code is None or code.client_id != client_id:
            raise OAuthError("invalid_grant", "Unknown device_code")
        now = utcnow()
        if code.status == "denied":
            raise OAuthError("access_denied", "The sign-in was denied")
        if code.status == "used":
            raise OAuthError("invalid_grant", "This device_code was already used")
        if code.status == "pending":
            if code.expires_at <= now:
                raise OAuthError("expired_token", "The code expired: start the login again")
            too_fast = code.last_poll_at is not None and now - code.last_poll_at < timedelta(seconds=INTERVAL / 2)
            self.store.polled(code.code_hash, now)
            if too_fast:
                raise OAuthError("slow_down", f"Poll at most every {INTERVAL} seconds")
            raise OAuthError("authorization_pending", "Waiting for the user to approve the code")
        if not self.store.claim(code.code_hash):
            raise OAuthError("invalid_grant", "This device_code was already used")
        account = self.accounts.store.get_by_id(code.user_id) if code.user_id is not None else None
        if account is None:
            raise OAuthError("invalid_grant", "The approving account no longer exists")
        expires_in = self.token_days * 24 * 3600
        refresh_token = _refresh_token()
        token = self.accounts.create_token(
            account.name, role=code.role or "read", name=f"{code.client_name} ({now:%Y-%m-%d %H:%M} UTC)",
            expires_at=now + timedelta(seconds=expires_in), origin="device", refresh_token=refresh_token)
        return {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": code.role,
                "refresh_token": refresh_token}

    def refresh(self, refresh_token: str, client_id: str) -> dict[str, Any]:
        if client_id not in self.client_ids:
            raise OAuthError("invalid_client", "Unknown client_id (AICOMMONS_DEVICE_CLIENT_IDS lists the allowed ones)")
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is missing")
        now = utcnow()
        expires_in = self.token_days * 24 * 3600
        token, new_refresh = new_token_value(), _refresh_token()
        row = self.accounts.store.rotate_refresh(hash_token(refresh_token), hash_token(token),
                                                 hash_token(new_refresh), now + timedelta(seconds=expires_in), now)
        if row is None:
            if self.accounts.store.revoke_replaced_refresh(hash_token(refresh_token)):
                self.accounts.forget_principals()
                raise OAuthError("invalid_grant", "This refresh token was already used: the token is revoked, "
                                                  "log in again")
            raise OAuthError("invalid_grant", "Unknown, revoked or expired refresh token: log in again")
        account = self.accounts.store.get_by_id(row.user_id)
        if account is None or account.suspended:
            self.accounts.store.delete_token_by_id(row.user_id, row.id)
            raise OAuthError("invalid_grant", "This account can no longer sign in")
        self.accounts.forget_principals()  # the old secret stops working at once
        return {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": row.role,
                "refresh_token": new_refresh}

    # --- the approval page ---------------------------------------------------------------------

    def pending(self, user_code: str) -> DeviceCode:
        code = self.store.by_user_code(normalize_user_code(user_code))
        if code is None or code.status != "pending" or code.expires_at <= utcnow():
            raise NotFound("No login is waiting for this code (it may have expired: start again)")
        return code

    def decide(self, user_code: str, account: Account, approve: bool, role: str = "write") -> DeviceCode:
        if role not in ("read", "write"):
            raise BadRequest("Choose read or write access")
        code = self.pending(user_code)
        if not self.store.decide(code.user_code, "approved" if approve else "denied", account.id,
                                 role if approve else None, utcnow()):
            raise NotFound("No login is waiting for this code (it may have expired: start again)")
        return code
