"""Web UI sessions: server-side, revocable.

Signing in creates a random session id (256 bits), sent to the browser as a cookie; the database
keeps only its sha256, with the user, creation, last-seen and expiry times. Each web request looks
the session up, so ending it (sign-out, a password change, ``aicommons user sign-out``, deleting the
account) takes effect on the very next request, and a stolen database copy holds no usable id.

The web UI's CSRF tokens are signed with their own key (``hub/keys.py``), never the key that
signs transfer URLs.

The request rate limiter also names the user of a session cookie (``budget_key``), to count a
signed-in browser against that user's budget rather than its address's. It asks on every request,
so the answer is remembered for ``BUDGET_KEY_SECONDS``: this is bookkeeping, not authentication
(pages still call ``account_for``), and a stale answer only decides whose budget a request spends.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from aicommons.db.accounts import Account, AccountStore
from aicommons.db.sessions import SessionRow, SessionStore
from aicommons.times import utcnow
from aicommons.ttl_cache import TTLCache

TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often per session
# How long the user of a session (or that a cookie names none) is remembered for the rate limiter.
# A session that expires is anonymous at once (its expiry is remembered with it); one ended here at
# once; one ended by another replica or the CLI (sign-out, suspension) within this many seconds.
BUDGET_KEY_SECONDS = 60


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionService:
    def __init__(self, store: SessionStore, accounts: AccountStore, lifetime_seconds: int):
        self.store = store
        self.accounts = accounts
        self.lifetime = timedelta(seconds=lifetime_seconds)
        # Session-id hash -> ("user:<id>", expiry) of live sessions; and the hashes of cookies that
        # name none (forged, ended, expired), apart, so that a flood of those never evicts the former.
        # Beyond 10,000 browsers active in a minute, the longest remembered are looked up again.
        self._live: TTLCache[str, tuple[str, datetime]] = TTLCache(BUDGET_KEY_SECONDS, max_entries=10_000)
        self._dead: TTLCache[str, bool] = TTLCache(BUDGET_KEY_SECONDS, max_entries=10_000)

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

    def cached_budget_key(self, session_id: str) -> tuple[bool, str | None]:
        """``(known, key)``: what ``budget_key`` would answer, if that is known without I/O."""
        if len(session_id) > 128:
            return True, None
        id_hash = _hash(session_id)
        live = self._live.get(id_hash)
        if live is not None:
            return True, live[0] if utcnow() < live[1] else None
        return self._dead.get(id_hash) is not None, None

    def budget_key(self, session_id: str) -> str | None:
        """``user:<id>`` (``Principal.key`` of a signed-in web page) of a live session's user, for
        the request rate limiter (``api/rate_limits.py``); None for a cookie naming no live session."""
        known, key = self.cached_budget_key(session_id)
        if known:
            return key
        id_hash = _hash(session_id)
        generation = self._live.generation  # a session ended during the lookup is not remembered live
        row = self.store.get(id_hash)
        if row is None or row.expires_at <= utcnow():
            self._dead.put(id_hash, True)
            return None
        key = f"user:{row.user_id}"
        self._live.put(id_hash, (key, row.expires_at), generation)
        return key

    def _forget(self, id_hash: str | None = None) -> None:
        """Sessions were ended: the rate limiter no longer counts them as their user's (all, or one)."""
        if id_hash is None:
            self._live.clear()
        else:
            self._live.drop_where(lambda key: key == id_hash)

    def end(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 128:
            self.store.delete(_hash(session_id))
            self._forget(_hash(session_id))

    def end_all(self, user_id: int) -> int:
        ended = self.store.delete_user(user_id)
        self._forget()
        return ended

    def end_others(self, user_id: int, session_id: str | None) -> int:
        """End every session of the user except ``session_id`` (the browser they are using)."""
        keep = _hash(session_id) if session_id and len(session_id) <= 128 else None
        ended = self.store.delete_user_except(user_id, keep)
        self._forget()
        return ended

    def list(self, user_id: int) -> list[SessionRow]:
        """The user's live sessions, most recently used first. A row's ``id_hash`` names it in the
        sign-out form: it is not the cookie, and ``end_one`` only ends the caller's own."""
        return self.store.list_user(user_id, utcnow())

    def end_one(self, user_id: int, id_hash: str) -> bool:
        ended = self.store.delete_of_user(user_id, id_hash)
        self._forget(id_hash)
        return ended

    @staticmethod
    def hash_of(session_id: str | None) -> str | None:
        return _hash(session_id) if session_id and len(session_id) <= 128 else None

    def count(self, user_id: int) -> int:
        return self.store.count_user(user_id, utcnow())
