"""Users, organisations and access tokens."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from aicommons.db.accounts import Account, AccountStore, AlreadyExists, TokenRow
from aicommons.errors import BadRequest, Conflict, Forbidden, HubError, NotFound, Unauthorized
from aicommons.hub import passwords
from aicommons.hub.access import ORG_ROLES, Principal
from aicommons.hub.account_names import NameService
from aicommons.hub.names import check_namespace
from aicommons.hub.sign_in_limits import SignInLimiter
from aicommons.hub.token_scopes import GLOBAL_PERMISSIONS, REPO_TYPES, Grants, Scope, check_permissions
from aicommons.times import iso_z as _iso
from aicommons.times import utcnow
from aicommons.ttl_cache import TTLCache

TOKEN_ROLES = ("read", "write", "fineGrained")
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
SUSPENDED = "This account is suspended"
LAST_USED_PRECISION = timedelta(seconds=60)  # a token's last use is written at most once a minute


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return passwords.hash_password(password)


def new_token_value() -> str:
    """A new access token: ``hf_`` and 40 letters and digits, as the Hub's look."""
    return "hf_" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")


class AccountService:
    def __init__(self, store: AccountStore, token_cache_seconds: float = 0,
                 sign_in_limiter: SignInLimiter | None = None, end_sessions: Callable[[int], int] | None = None,
                 names: NameService | None = None):
        self.store = store
        self.names = names  # reserved and retired names (hub/account_names.py)
        self.sign_in_limiter = sign_in_limiter
        self._end_sessions = end_sessions  # user id -> sessions ended (hub/sessions.py)
        # Called with (user name, client ip, how: "web" | "basic") for every refused password.
        self.failed_sign_in_listeners: list[Callable[[str, str | None, str], None]] = []
        # Token hash -> Principal. A token is checked on every authenticated request (two joined
        # queries and a worker-thread hop); a signed-in client sending hundreds of requests a second
        # pays that each time without the cache. Any change to tokens or memberships made through
        # this service empties it at once; changes made by another process (the CLI, another
        # replica) are seen within ``token_cache_seconds``.
        self._principals: TTLCache[str, Principal] = TTLCache(token_cache_seconds, max_entries=10_000)
        # (repo type, "ns/name") -> RepoRow | None; wired by the Hub (fine-grained grants name repos).
        self.repo_lookup: Callable[..., Any] | None = None
        self.repo_by_id: Callable[..., Any] | None = None  # repo id -> RepoRow | None
        self.password_sign_in = True  # AICOMMONS_PASSWORD_SIGN_IN
        # With a pull-through mirror: the upstream hub where a name is taken (hub/upstream.py), so
        # that nobody but an administrator creates a local account under an upstream user's name.
        self.upstream_holder: Callable[[str], str | None] | None = None
        self.org_self_service = True  # AICOMMONS_ORG_SELF_SERVICE: signed-in users create organisations

    def create_user(self, name: str, fullname: str = "", email: str | None = None,
                    password: str | None = None, is_admin: bool = False, email_verified: bool = True,
                    status: str = "active", signup: bool = False, self_service: bool = False) -> Account:
        """A new user. Admin-created accounts (CLI, admin page, SSO) count as verified; sign-up passes
        ``email_verified=False`` and ``signup=True`` (the stricter character rules). An account nobody
        administering the hub chose the name of (sign-up, SSO: ``self_service``) may not take a name
        that is a user or organisation on the upstream hub (``check_not_upstream``)."""
        self._check_name(name, "user name", signup=signup)
        if self_service:
            self.check_not_upstream(name)
        try:
            return self.store.create(name, "user", fullname=fullname, email=email,
                                     password_hash=hash_password(password) if password else None,
                                     is_admin=is_admin, email_verified=email_verified, status=status)
        except AlreadyExists:
            raise Conflict(f"The name {name!r} is already taken") from None

    def check_not_upstream(self, name: str) -> None:
        """Conflict if ``name`` is a user or organisation on the upstream hub this hub mirrors: only an
        administrator may create it here (``aicommons user create``), so that nobody passes for an
        upstream author or keeps that author's repos from being pulled through."""
        if self.upstream_holder is None:
            return
        holder = self.upstream_holder(name)
        if holder is not None:
            raise Conflict(f"The name {name!r} is an account on {holder}, which this hub mirrors: only an "
                           "administrator can create it here. Choose another name, or ask an administrator")

    def _check_name(self, name: str, what: str, signup: bool = False) -> None:
        if self.names is None:
            check_namespace(name, what)
        else:
            self.names.check_available(name, what, signup=signup)

    def create_org(self, name: str, fullname: str = "", members: Sequence[str] = ()) -> Account:
        self._check_name(name, "organization name")
        users = [self.require(m, kind="user") for m in members]
        try:
            org = self.store.create(name, "org", fullname=fullname)
        except AlreadyExists:
            raise Conflict(f"The name {name!r} is already taken") from None
        for user in users:
            self.store.add_member(org.id, user.id, "admin")
        self._principals.clear()
        return org

    def create_own_org(self, principal: Principal, name: str, fullname: str = "") -> Account:
        """Self-service (the Hub's ``/organizations/new``): a signed-in user who may create repos
        creates an organisation and becomes its only admin. The name follows the sign-up rules and is
        checked like a new user's (no user or org holds it, not reserved or retired, not an upstream
        account); site admins may always do this, others unless ``org_self_service`` is off."""
        if principal.account is None:
            raise Unauthorized("You must be signed in to do this")
        if not (principal.is_admin or self.org_self_service):
            raise Forbidden("On this hub only a site administrator creates organizations: ask one")
        if not principal.can_write_at_all:
            raise Forbidden(principal.read_only_reason("create organizations"))
        name = (name or "").strip()
        fullname = (fullname or "").strip()
        if len(fullname) > 256 or any(not c.isprintable() for c in fullname):
            raise BadRequest("The full name has at most 256 printable characters")
        self._check_name(name, "organization name", signup=True)
        self.check_not_upstream(name)
        return self.create_org(name, fullname=fullname, members=[principal.user.name])

    def add_member(self, org_name: str, user_name: str, role: str = "write") -> None:
        if role not in ORG_ROLES:
            raise BadRequest(f"Invalid role {role!r}")
        org = self.require(org_name, kind="org")
        user = self.require(user_name, kind="user")
        self.store.add_member(org.id, user.id, role)
        self._principals.clear()

    # --- reading accounts (the doors never reach the store) ----------------------------------------

    def find(self, name: str) -> Account | None:
        """The user or organisation called ``name`` (case as the store matches it), else None."""
        return self.store.get(name)

    def by_id(self, account_id: int) -> Account | None:
        return self.store.get_by_id(account_id)

    def users(self) -> list[Account]:
        return self.store.list(kind="user")

    def tokens_of(self, account: Account) -> list[TokenRow]:
        """The access tokens of ``account`` (names, roles, dates: never a token's value)."""
        return self.store.list_tokens(account.id)

    def token_named_by(self, token: str) -> tuple[TokenRow, Account] | None:
        """The stored token a value names, and its owner; None if none does."""
        return self.store.token_by_hash(hash_token(token))

    def writable_namespaces(self, principal: Principal) -> list[str]:
        """Where ``principal`` may create repos: its own namespace and those of the orgs it may write to."""
        if principal.account is None:
            return []
        orgs = [org.name for org, _ in self.store.orgs_of(principal.account.id) if principal.can_write_owner(org.id)]
        return [principal.account.name, *orgs] if principal.can_write_at_all else []

    def require(self, name: str, kind: str | None = None) -> Account:
        account = self.store.get(name)
        if account is None or (kind and account.kind != kind):
            raise NotFound(f"No {kind or 'account'} named {name!r}")
        return account

    def create_token(self, user_name: str, role: str = "write", name: str | None = None,
                     value: str | None = None, fine_grained: dict[str, Any] | None = None,
                     expires_at: datetime | None = None, origin: str | None = None,
                     refresh_token: str | None = None) -> str:
        """A new token, shown only here (``refresh_token``: a secret that renews it, device login). ``fine_grained`` (role "fineGrained") is in the Hub's
        whoami shape: ``{canReadGatedRepos, global: [perm], scoped: [{entity: {type, name},
        permissions: [perm]}]}``; entities are the user, orgs they belong to, or repos they reach."""
        if role not in TOKEN_ROLES:
            raise BadRequest(f"Invalid token role {role!r}: must be read, write or fineGrained")
        if (role == "fineGrained") != (fine_grained is not None):
            raise BadRequest("Permissions go with the fineGrained role, and only with it")
        user = self.require(user_name, kind="user")
        if role in ("write", "fineGrained") and not (user.email_verified and user.status == "active"):
            raise Forbidden(Principal(key="", account=user, token_role="write").read_only_reason("create write tokens"))
        name = (name or f"token-{secrets.token_hex(3)}").strip()
        if not name or len(name) > 128:
            raise BadRequest("A token name has 1 to 128 characters")
        stored = self.resolve_grants(user, fine_grained).to_stored() if fine_grained is not None else None
        token = value or new_token_value()
        try:
            self.store.add_token(user.id, name, role, hash_token(token), fine_grained=stored,
                                 expires_at=expires_at, origin=origin,
                                 refresh_hash=hash_token(refresh_token) if refresh_token else None)
        except AlreadyExists:
            raise Conflict("This token value is already in use") from None
        return token

    def resolve_grants(self, user: Account, spec: dict[str, Any]) -> Grants:
        """Check a fine-grained token's permissions (400 on anything wrong) and name entities by id."""
        if not isinstance(spec, dict):
            raise BadRequest("fineGrained must be an object")
        global_permissions = spec.get("global") or []
        if isinstance(global_permissions, list) and any(p not in GLOBAL_PERMISSIONS for p in global_permissions):
            raise BadRequest(f"global: only {', '.join(GLOBAL_PERMISSIONS)} may be granted globally")
        global_permissions = check_permissions("user", global_permissions, "global")
        scopes = []
        member_of = {org.id for org, _ in self.store.orgs_of(user.id)}
        for entry in spec.get("scoped") or []:
            entity = entry.get("entity") if isinstance(entry, dict) else None
            if not isinstance(entity, dict) or not isinstance(entity.get("name"), str):
                raise BadRequest("scoped: each entry needs entity {type, name}")
            kind, name = entity.get("type"), entity["name"]
            if kind == "user":
                if name.lower() != user.name.lower():
                    raise BadRequest(f"scoped: a token can only be scoped to its own user, not {name!r}")
                entity_id = user.id
            elif kind == "org":
                org = self.store.get(name)
                if org is None or org.kind != "org" or org.id not in member_of:
                    raise BadRequest(f"scoped: you are not a member of an organization named {name!r}")
                entity_id = org.id
            elif kind in REPO_TYPES:
                repo = self.repo_lookup(kind, name) if self.repo_lookup else None
                if repo is None or (repo.private and repo.owner_id not in (user.id, *member_of) and not user.is_admin):
                    raise BadRequest(f"scoped: no {kind} named {name!r} that you can reach")
                kind, entity_id = "repo", repo.id
            else:
                raise BadRequest(f"scoped: unknown entity type {kind!r}")
            permissions = check_permissions(kind, entry.get("permissions"), f"scoped {name}")
            if permissions:
                scopes.append(Scope(kind, entity_id, permissions))
        return Grants(global_permissions, tuple(scopes), bool(spec.get("canReadGatedRepos")))

    def describe_grants(self, grants: Grants) -> dict[str, Any]:
        """A fine-grained token's permissions in the Hub's whoami-v2 shape (current names)."""
        scoped = []
        for scope in grants.scopes:
            if scope.kind == "repo":
                repo = self.repo_by_id(scope.id) if self.repo_by_id else None
                if repo is None:
                    continue  # deleted since: the grant names nothing
                entity = {"_id": str(repo.id), "type": repo.type, "name": repo.full_id}
            else:
                account = self.store.get_by_id(scope.id)
                if account is None:
                    continue
                entity = {"_id": str(account.id), "type": account.kind, "name": account.name}
            scoped.append({"entity": entity, "permissions": sorted(scope.permissions)})
        return {"canReadGatedRepos": grants.can_read_gated_repos, "global": sorted(grants.global_permissions),
                "scoped": scoped}

    def forget_principals(self) -> None:
        """Memberships changed elsewhere (hub/orgs.py): cached principals carry old org roles."""
        self._principals.clear()

    def revoke_token(self, token: str) -> bool:
        deleted = self.store.delete_token(hash_token(token))
        self._principals.clear()
        return deleted

    def revoke_app_tokens(self, user_id: int, name_prefix: str) -> int:
        """Delete ``user_id``'s tokens minted for Space apps (origin ``space``) whose name starts with
        ``name_prefix`` (one space's), and every expired one of that origin; the number deleted."""
        deleted = sum(self.store.delete_token_by_id(user_id, row.id) for row in self.store.list_tokens(user_id)
                      if row.origin == "space" and (row.name.startswith(name_prefix) or _expired(row.expires_at)))
        if deleted:
            self._principals.clear()
        return deleted

    def revoke_token_id(self, user_id: int, token_id: int) -> bool:
        deleted = self.store.delete_token_by_id(user_id, token_id)
        self._principals.clear()
        return deleted

    def forget_cached(self) -> None:
        """Drop remembered principals (an account's rights changed: verified, approved...)."""
        self._principals.clear()

    def cached_principal(self, token: str) -> Principal | None:
        """The caller a token named moments ago, without touching the database; None if unknown."""
        if not self._principals.enabled:
            return None
        principal = self._principals.get(hash_token(token))
        if principal is not None and _expired(principal.expires_at):
            raise Unauthorized("This token has expired")
        return principal

    def principal_for_token(self, token: str) -> Principal:
        token_hash = hash_token(token)
        cached = self._principals.get(token_hash)
        if cached is not None:
            if _expired(cached.expires_at):
                raise Unauthorized("This token has expired")
            return cached
        generation = self._principals.generation  # a revocation during the lookup wins
        found = self.store.token_by_hash(token_hash)
        if found is None:
            raise Unauthorized(INVALID_CREDENTIALS)  # unknown tokens are never cached
        row, account = found
        if account.suspended:
            raise Unauthorized(SUSPENDED)  # never cached: unsuspending applies at once
        if _expired(row.expires_at):
            raise Unauthorized("This token has expired")
        now = utcnow()
        if row.last_used_at is None or row.last_used_at < now - LAST_USED_PRECISION:
            self.store.touch_token(row.id, now, now - LAST_USED_PRECISION)
        principal = self._token_principal(account, row)
        self._principals.put(token_hash, principal, generation)
        return principal

    def _token_principal(self, account: Account, row: TokenRow) -> Principal:
        principal = self._principal(account, row.role, row.name, key=f"token:{row.id}")
        grants = Grants.from_stored(row.fine_grained) \
            if row.role == "fineGrained" and row.fine_grained is not None else None
        return dataclasses.replace(principal, grants=grants, expires_at=row.expires_at, token_origin=row.origin)

    def principal_for_key(self, key: str) -> Principal | None:
        """The principal a ``Principal.key`` named when a signed link was minted, as it stands now:
        None once its token is revoked or its account deleted. Anonymous keys give an anonymous
        principal (links minted anonymously work for any anonymous caller)."""
        kind, _, ident = key.partition(":")
        if kind == "anon":
            return Principal(key="anon:link")
        if not ident.isdigit():
            return None
        if kind == "token":
            found = self.store.token_by_id(int(ident))
            if found is None:
                return None
            row, account = found
            if account.suspended:
                return None
            return None if _expired(row.expires_at) else self._token_principal(account, row)
        if kind == "user":
            user = self.store.get_by_id(int(ident))
            return None if user is None or user.suspended else self.principal_for_account(user)
        return None

    def principal_for_password(self, user_name: str, password: str, ip: str | None = None,
                               via: str = "basic") -> Principal:
        """The user a name and password sign in, or 401; 429 while the name or IP is throttled.

        Unknown names, organisations and users without a password cost one hash check like any
        other refusal (equal timing); a hash of an old scheme is replaced after a correct password.
        """
        if not self.password_sign_in:
            raise Unauthorized("Password sign-in is turned off on this hub: use single sign-on or a token")
        if self.sign_in_limiter:
            self.sign_in_limiter.check(user_name, ip)
        account = self.store.get(user_name) if user_name else None
        stored = account.password_hash if account is not None and account.kind == "user" else None
        verdict = passwords.verify(password, stored)
        if not verdict.ok or account is None:  # (verify() never accepts a missing hash)
            if self.sign_in_limiter:
                self.sign_in_limiter.failed(user_name, ip)
            for listener in self.failed_sign_in_listeners:
                listener(user_name, ip, via)
            raise Unauthorized(INVALID_CREDENTIALS)
        if account.suspended:
            raise Unauthorized(SUSPENDED)  # said only to whoever knows the password
        if verdict.rehash:
            self.store.set_password_hash(account.id, passwords.hash_password(password), expected=stored,
                                         check_expected=True)
        if account.status == "pending":
            raise Forbidden("Your account is waiting for an administrator's approval; we will mail you then")
        return self._principal(account, "write", None, key=f"user:{account.id}")

    def set_password(self, user_name: str, password: str | None) -> Account:
        """Set (None: remove) a user's password; every web session of theirs ends."""
        user = self.require(user_name, kind="user")
        self.store.set_password_hash(user.id, passwords.hash_password(password) if password else None)
        self.end_sessions(user.id)
        return user

    def lock(self, user_name: str) -> tuple[int, int]:
        """Lock a user out at once (a stolen account, a departing member): remove the password, revoke
        every token and end every web session. Undone by ``set_password`` / new tokens.
        Returns (tokens revoked, sessions ended)."""
        user = self.require(user_name, kind="user")
        self.store.set_password_hash(user.id, None)
        revoked = self.store.delete_tokens_of(user.id)
        return revoked, self.end_sessions(user.id)

    def suspend(self, user_name: str) -> Account:
        """Stop a user at once: no sign-in, no token, no web session, until ``unsuspend``. Their tokens
        are kept (they work again after unsuspension); their web sessions end. In this process the
        token cache is emptied, so it applies on the next request; a server in another process (the
        CLI suspends from outside; other replicas) stops honouring a token it checked moments ago
        within ``token_cache_seconds`` (``AICOMMONS_TOKEN_CACHE_SECONDS``)."""
        user = self.require(user_name, kind="user")
        if not user.suspended:
            self.store.update(user.id, suspended_at=utcnow())
        self.end_sessions(user.id)
        return self.reload(user.id)

    def require_names(self) -> NameService:
        """The reserved and retired names (sign-up and first run need them)."""
        if self.names is None:
            raise RuntimeError("this AccountService was built without a NameService")
        return self.names

    def reload(self, user_id: int) -> Account:
        """The account as stored now (404 if it was removed meanwhile)."""
        account = self.store.get_by_id(user_id)
        if account is None:
            raise NotFound("The account was removed meanwhile")
        return account

    def unsuspend(self, user_name: str) -> Account:
        user = self.require(user_name, kind="user")
        self.store.update(user.id, suspended_at=None)
        self._principals.clear()
        return self.reload(user.id)

    def pending_users(self) -> list[Account]:
        """Sign-ups waiting for an admin's approval (``AICOMMONS_SIGNUP=approval``), oldest first."""
        return sorted((u for u in self.store.list(kind="user") if u.status == "pending"), key=lambda u: u.created_at)

    def search_users(self, text: str = "", offset: int = 0, limit: int = 50) -> tuple[list[Account], int]:
        """Users whose name, full name or e-mail contains ``text`` (the admin page); (page, total)."""
        return self.store.search("user", text.strip()[:200], max(0, offset), min(max(1, limit), 200))

    def find_public(self, text: str, limit: int = 10) -> tuple[list[Account], list[Account]]:
        """(users, organisations) whose name or full name contains ``text``, for anyone to see: active
        accounts only, matched never by e-mail (the site-wide search)."""
        text = text.strip()[:100]
        if not text:
            return [], []
        found = self.store.find_public(text, 4 * limit)
        return [a for a in found if a.kind == "user"][:limit], [a for a in found if a.kind == "org"][:limit]

    def set_admin(self, user_name: str, is_admin: bool) -> Account:
        user = self.require(user_name, kind="user")
        if not is_admin and user.is_admin and self.store.count_admins() <= 1:
            raise Conflict(f"{user.name} is the last site admin: make another user an admin first")
        self.store.update(user.id, is_admin=is_admin)
        self._principals.clear()
        return self.reload(user.id)

    def end_sessions(self, user_id: int) -> int:
        """Sign a user out of the web UI everywhere; the number of sessions ended."""
        self._principals.clear()
        return self._end_sessions(user_id) if self._end_sessions else 0

    def principal_for_account(self, account: Account) -> Principal:
        """A signed-in web session: full rights of the user (the web UI checks CSRF itself)."""
        return self._principal(account, "write", None, key=f"user:{account.id}")

    def _principal(self, account: Account, role: str, token_name: str | None, key: str) -> Principal:
        orgs = {org.id: member_role for org, member_role in self.store.orgs_of(account.id)}
        return Principal(key=key, account=account, token_role=role, token_name=token_name, org_roles=orgs)

    def whoami(self, principal: Principal) -> dict[str, Any]:
        """``GET /api/whoami-v2``: who the credential is (a 401 for an anonymous caller)."""
        account = principal.account
        if account is None:
            raise HubError("You must be authenticated to access this resource", status=401)
        orgs = self.store.orgs_of(account.id)
        return {
            "type": "user",
            "id": str(account.id),
            "name": account.name,
            "fullname": account.fullname,
            "email": account.email,
            "isPro": False,
            "canPay": False,
            "emailVerified": account.email is not None and account.email_verified,
            "orgs": [{"type": "org", "name": org.name, "fullname": org.fullname, "roleInOrg": role}
                     for org, role in orgs],
            "auth": {"type": "access_token", "accessToken": self._describe_access(principal)},
        }

    def _describe_access(self, principal: Principal) -> dict[str, Any]:
        kind, _, ident = principal.key.partition(":")
        found = self.store.token_by_id(int(ident)) if kind == "token" and ident.isdigit() else None
        row = found[0] if found else None
        if row is None:  # a password or a web session: the user's full rights
            return {"displayName": "password", "role": "write"}
        access: dict[str, Any] = {"role": row.role, "createdAt": _iso(row.created_at)}
        if row.origin != "device":  # the CLI names an OAuth token itself ("oauth-<user>")
            access["displayName"] = row.name
        if row.expires_at is not None:
            access["expiresAt"] = _iso(row.expires_at)
        if row.last_used_at is not None:
            access["lastUsedAt"] = _iso(row.last_used_at)
        if principal.grants is not None:
            access["fineGrained"] = self.describe_grants(principal.grants)
        return access


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at <= utcnow()
