"""Web UI sessions: server-side, revocable.

Signing in creates a random session id (256 bits), sent to the browser as a cookie; the database
keeps only its sha256, with the user, creation, last-seen and expiry times. Each web request looks
the session up, so ending it (sign-out, a password change, ``aicommons user sign-out``, deleting the
account) takes effect on the very next request, and a stolen database copy holds no usable id.

The web UI's CSRF tokens are signed with their own key (``hub/keys.py``), never the key that
signs transfer URLs.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from aicommons.db.accounts import Account, AccountStore
from aicommons.db.sessions import SessionRow, SessionStore
from aicommons.times import utcnow

TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often per session


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionService:
    def __init__(self, store: SessionStore, accounts: AccountStore, lifetime_seconds: int):
        self.store = store
        self.accounts = accounts
        self.lifetime = timedelta(seconds=lifetime_seconds)

    def start(self, account: Account) -> str:
        """A new session for ``account``; returns the id to put in the cookie (shown only here)."""
        session_id = secrets.token_urlsafe(32)
        now = utcnow()
        self.store.add(SessionRow(_hash(session_id), account.id, now, now, now + self.lifetime))
        return session_id

    def account_for(self, session_id: str | None) -> Account | None:
        """The signed-in user of a live session, else None (unknown, ended or expired)."""
        if not session_id or len(session_id) > 128:
            return None
        id_hash = _hash(session_id)
        row = self.store.get(id_hash)
        if row is None:
            return None
        now = utcnow()
        if row.expires_at <= now:
            self.store.delete(id_hash)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            self.store.touch(id_hash, now)
        account = self.accounts.get_by_id(row.user_id)
        return account if account is not None and account.kind == "user" and not account.suspended else None

    def end(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 128:
            self.store.delete(_hash(session_id))

    def end_all(self, user_id: int) -> int:
        return self.store.delete_user(user_id)

    def end_others(self, user_id: int, session_id: str | None) -> int:
        """End every session of the user except ``session_id`` (the browser they are using)."""
        keep = _hash(session_id) if session_id and len(session_id) <= 128 else None
        return self.store.delete_user_except(user_id, keep)

    def list(self, user_id: int) -> list[SessionRow]:
        """The user's live sessions, most recently used first. A row's ``id_hash`` names it in the
        sign-out form: it is not the cookie, and ``end_one`` only ends the caller's own."""
        return self.store.list_user(user_id, utcnow())

    def end_one(self, user_id: int, id_hash: str) -> bool:
        return self.store.delete_of_user(user_id, id_hash)

    @staticmethod
    def hash_of(session_id: str | None) -> str | None:
        return _hash(session_id) if session_id and len(session_id) <= 128 else None

    def count(self, user_id: int) -> int:
        return self.store.count_user(user_id, utcnow())
