"""Password hashes: Argon2id (argon2-cffi), parameters stored in each hash.

New hashes use argon2-cffi's defaults (RFC 9106's low-memory profile: t=3, m=64 MiB, p=4). A hash
made with weaker parameters, or by the scrypt scheme earlier versions used (``scrypt$salt$digest``),
still verifies, and ``Verdict.rehash`` tells the caller to store a fresh hash now that it knows the
password (``AccountService.principal_for_password`` does, at the next sign-in).

``verify`` takes as long for an account that does not exist, or has no password, as for a wrong
password: it checks the guess against a dummy hash, so timing does not tell which names exist.
(A user whose hash still has the old scheme answers faster until their next sign-in upgrades it.)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # Argon2id
# Each check takes 64 MiB and tens of milliseconds of CPU: at most this many at once, so a burst of
# sign-ins (HTTP Basic on many requests, from many addresses) queues instead of exhausting memory.
_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
_LEGACY_SCRYPT = "scrypt$"
_dummy_hash: str | None = None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rehash: bool = False  # ok, but stored with an old scheme or weaker parameters: hash again


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def legacy_scrypt_hash(password: str, salt: bytes | None = None) -> str:
    """The scheme of earlier versions; only verified (and upgraded), never written. Kept for tests."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1)
    return f"{_LEGACY_SCRYPT}{salt.hex()}${digest.hex()}"


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(24))
    return _dummy_hash


def verify(password: str, stored: str | None) -> Verdict:
    """Check ``password`` against ``stored`` (None: no such account, or no password set)."""
    if not stored:
        _verify_argon2(password, _dummy())  # same work as a real check, then refuse
        return Verdict(False)
    if stored.startswith(_LEGACY_SCRYPT):
        return _verify_scrypt(password, stored)
    if not _verify_argon2(password, stored):
        return Verdict(False)
    try:
        return Verdict(True, _hasher.check_needs_rehash(stored))
    except InvalidHashError:
        return Verdict(True, True)


def _verify_argon2(password: str, stored: str) -> bool:
    try:
        with _slots:
            return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _verify_scrypt(password: str, stored: str) -> Verdict:
    try:
        _, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        _verify_argon2(password, _dummy())
        return Verdict(False)
    with _slots:
        digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1)
    ok = hmac.compare_digest(digest.hex(), digest_hex)
    return Verdict(ok, rehash=ok)
