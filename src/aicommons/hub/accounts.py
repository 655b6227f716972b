"""Users, organisations and access tokens."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from aicommons.db.accounts import Account, AccountStore, AlreadyExists
from aicommons.errors import BadRequest, Conflict, NotFound, Unauthorized
from aicommons.hub.access import Principal
from aicommons.hub.names import check_namespace
from aicommons.ttl_cache import TTLCache

TOKEN_ROLES = ("read", "write")
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_hex, digest_hex = stored.split("$")
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2 ** 14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)


class AccountService:
    def __init__(self, store: AccountStore, token_cache_seconds: float = 0):
        self.store = store
        # Token hash -> Principal. A token is checked on every authenticated request (two joined
        # queries and a worker-thread hop); a signed-in client sending hundreds of requests a second
        # pays that each time without the cache. Any change to tokens or memberships made through
        # this service empties it at once; changes made by another process (the CLI, another
        # replica) are seen within ``token_cache_seconds``.
        self._principals = TTLCache(token_cache_seconds, max_entries=10_000)

    def create_user(self, name: str, fullname: str = "", email: str | None = None,
                    password: str | None = None, is_admin: bool = False) -> Account:
        check_namespace(name, "user name")
        try:
            return self.store.create(name, "user", fullname=fullname, email=email,
                                     password_hash=hash_password(password) if password else None,
                                     is_admin=is_admin)
        except AlreadyExists:
            raise Conflict(f"The name {name!r} is already taken") from None

    def create_org(self, name: str, fullname: str = "", members: list[str] = ()) -> Account:
        check_namespace(name, "organization name")
        users = [self.require(m, kind="user") for m in members]
        try:
            org = self.store.create(name, "org", fullname=fullname)
        except AlreadyExists:
            raise Conflict(f"The name {name!r} is already taken") from None
        for user in users:
            self.store.add_member(org.id, user.id, "admin")
        self._principals.clear()
        return org

    def add_member(self, org_name: str, user_name: str, role: str = "write") -> None:
        if role not in ("read", "write", "admin"):
            raise BadRequest(f"Invalid role {role!r}")
        org = self.require(org_name, kind="org")
        user = self.require(user_name, kind="user")
        self.store.add_member(org.id, user.id, role)
        self._principals.clear()

    def require(self, name: str, kind: str | None = None) -> Account:
        account = self.store.get(name)
        if account is None or (kind and account.kind != kind):
            raise NotFound(f"No {kind or 'account'} named {name!r}")
        return account

    def create_token(self, user_name: str, role: str = "write", name: str | None = None,
                     value: str | None = None) -> str:
        if role not in TOKEN_ROLES:
            raise BadRequest(f"Invalid token role {role!r}: must be read or write")
        user = self.require(user_name, kind="user")
        token = value or "hf_" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
        try:
            self.store.add_token(user.id, name or f"token-{secrets.token_hex(3)}", role, hash_token(token))
        except AlreadyExists:
            raise Conflict("This token value is already in use") from None
        return token

    def revoke_token(self, token: str) -> bool:
        deleted = self.store.delete_token(hash_token(token))
        self._principals.clear()
        return deleted

    def revoke_token_id(self, user_id: int, token_id: int) -> bool:
        deleted = self.store.delete_token_by_id(user_id, token_id)
        self._principals.clear()
        return deleted

    def cached_principal(self, token: str) -> Principal | None:
        """The caller a token named moments ago, without touching the database; None if unknown."""
        return self._principals.get(hash_token(token)) if self._principals.enabled else None

    def principal_for_token(self, token: str) -> Principal:
        token_hash = hash_token(token)
        cached = self._principals.get(token_hash)
        if cached is not None:
            return cached
        generation = self._principals.generation  # a revocation during the lookup wins
        found = self.store.token_by_hash(token_hash)
        if found is None:
            raise Unauthorized(INVALID_CREDENTIALS)  # unknown tokens are never cached
        row, account = found
        principal = self._principal(account, row.role, row.name, key=f"token:{row.id}")
        self._principals.put(token_hash, principal, generation)
        return principal

    def principal_for_password(self, user_name: str, password: str) -> Principal:
        account = self.store.get(user_name)
        if account is None or account.kind != "user" or not verify_password(password, account.password_hash):
            raise Unauthorized(INVALID_CREDENTIALS)
        return self._principal(account, "write", None, key=f"user:{account.id}")

    def principal_for_account(self, account: Account) -> Principal:
        """A signed-in web session: full rights of the user (the web UI checks CSRF itself)."""
        return self._principal(account, "write", None, key=f"user:{account.id}")

    def _principal(self, account: Account, role: str, token_name: str | None, key: str) -> Principal:
        orgs = {org.id: member_role for org, member_role in self.store.orgs_of(account.id)}
        return Principal(key=key, account=account, token_role=role, token_name=token_name, org_roles=orgs)

    def whoami(self, principal: Principal) -> dict:
        account = principal.account
        orgs = self.store.orgs_of(account.id)
        return {
            "type": "user",
            "id": str(account.id),
            "name": account.name,
            "fullname": account.fullname,
            "email": account.email,
            "isPro": False,
            "canPay": False,
            "emailVerified": account.email is not None,
            "orgs": [{"type": "org", "name": org.name, "fullname": org.fullname, "roleInOrg": role}
                     for org, role in orgs],
            "auth": {"type": "access_token",
                     "accessToken": {"displayName": principal.token_name or "password", "role": principal.token_role}},
        }
