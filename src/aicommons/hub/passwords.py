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


# --- choosing a password (NIST SP 800-63B, section 3.1.1.2) ---------------------------------------

MIN_LENGTH = 8
MAX_LENGTH = 1024  # long passphrases welcome; only a bound on the work a request can ask for
_common: frozenset[str] | None = None


def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of breach corpora, as the zxcvbn package ships them."""
    global _common
    if _common is None:
        from zxcvbn.frequency_lists import FREQUENCY_LISTS

        _common = frozenset(FREQUENCY_LISTS["passwords"])
    return _common


def check_new_password(password: str, username: str | None = None, email: str | None = None) -> str:
    """A password someone chooses (sign-up, setup, reset): at least 8 characters, any characters,
    no composition rules; refused when common or breached, or equal to the user name or e-mail.
    Raises BadRequest saying which rule it breaks."""
    from aicommons.errors import BadRequest

    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise BadRequest(f"Choose a password of at least {MIN_LENGTH} characters (a passphrase is best)")
    if len(password) > MAX_LENGTH:
        raise BadRequest(f"Choose a password of at most {MAX_LENGTH} characters")
    folded = password.casefold()
    if folded in {(username or "").casefold(), (email or "").casefold()}:
        raise BadRequest("Choose a password that is not your user name or e-mail address")
    if folded in common_passwords() or password.lower() in common_passwords():
        raise BadRequest("This password is on a list of common or breached passwords: choose another one")
    return password
