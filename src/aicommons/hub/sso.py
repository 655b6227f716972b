"""Single sign-on with OpenID Connect: authorization code flow with PKCE (Authlib), ID token
checked with the provider's published keys (joserfc), accounts made at first sign-in, provider
groups mapped to organisation roles at every sign-in.

The provider is the operator's (``AICOMMONS_OIDC_ISSUER``): its URLs come from its discovery
document. ``start`` returns the URL to send the browser to and the state to keep (the web layer
keeps it in a signed, short-lived cookie); ``finish`` checks the answer against that state.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from aicommons.db.accounts import Account
from aicommons.db.identities import IdentityStore
from aicommons.errors import BadRequest, Forbidden, HubError
from aicommons.hub.access import ORG_ROLES
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.config import Settings
    from aicommons.hub.accounts import AccountService
    from aicommons.hub.orgs import OrgService

DISCOVERY_TTL = 300
STATE_TTL = 600


class SsoError(HubError):
    status = 400
    code = "BadRequest"


class SsoService:
    def __init__(self, settings: Settings, accounts: AccountService, orgs: OrgService, identities: IdentityStore,
                 group_roles: Callable[[], tuple[tuple[str, str, str], ...]] | None = None):
        self.settings = settings
        # (group, org, role): the operator's mapping and the orgs' own (hub/org_trust.py)
        self.group_roles = group_roles or (lambda: settings.group_role_list)
        self.accounts = accounts
        self.orgs = orgs
        self.identities = identities
        self._discovery: tuple[float, dict[str, Any]] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.oidc_issuer and self.settings.oidc_client_id)

    def _http(self) -> httpx.Client:
        return httpx.Client(timeout=10, follow_redirects=False)

    def discovery(self) -> dict[str, Any]:
        if self._discovery and time.monotonic() - self._discovery[0] < DISCOVERY_TTL:
            return self._discovery[1]
        url = f"{self.settings.oidc_issuer}/.well-known/openid-configuration"
        try:
            with self._http() as http:
                doc: dict[str, Any] = http.get(url).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SsoError(f"The identity provider did not answer its discovery document ({exc})") from None
        if doc.get("issuer", "").rstrip("/") != self.settings.oidc_issuer:
            raise SsoError("The identity provider's discovery document names another issuer")
        self._discovery = (time.monotonic(), doc)
        return doc

    def _client(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(self.settings.oidc_client_id, self.settings.oidc_client_secret,
                            scope=self.settings.oidc_scopes, redirect_uri=redirect_uri,
                            code_challenge_method="S256", timeout=10)

    def start(self, redirect_uri: str) -> tuple[str, dict[str, Any]]:
        doc = self.discovery()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # RFC 7636: 43 to 128 characters
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(doc["authorization_endpoint"], state=state, nonce=nonce,
                                                     code_verifier=verifier)
        return url, {"state": state, "nonce": nonce, "verifier": verifier, "at": int(time.time())}

    def finish(self, kept: dict[str, Any], params: dict[str, str], redirect_uri: str) -> Account:
        if params.get("error"):
            raise SsoError(f"The identity provider refused: {params.get('error_description') or params['error']}")
        if not kept or not secrets.compare_digest(str(kept.get("state", "")), params.get("state", "")) \
                or time.time() - kept.get("at", 0) > STATE_TTL:
            raise SsoError("This sign-in expired or did not start here: try again")
        doc = self.discovery()
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(doc["token_endpoint"], code=params.get("code", ""),
                                           code_verifier=kept["verifier"])
                claims = self._id_token_claims(token.get("id_token", ""), kept["nonce"], doc)
                if doc.get("userinfo_endpoint"):
                    info = client.get(doc["userinfo_endpoint"]).raise_for_status().json()
                    if info.get("sub") == claims["sub"]:
                        claims = {**info, **claims}
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise SsoError(f"The sign-in could not be completed with the identity provider ({exc})") from None
        except Exception as exc:  # Authlib's OAuth errors (invalid_grant...)
            if type(exc).__module__.startswith("authlib"):
                raise SsoError(f"The identity provider refused the code ({exc})") from None
            raise
        return self._sign_in(claims)

    def _id_token_claims(self, id_token: str, nonce: str, doc: dict[str, Any]) -> dict[str, Any]:
        try:
            with self._http() as http:
                keys = KeySet.import_key_set(http.get(doc["jwks_uri"]).raise_for_status().json())
            decoded = jwt.decode(id_token, keys, algorithms=doc.get("id_token_signing_alg_values_supported")
                                 or ["RS256"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.settings.oidc_issuer},
                aud={"essential": True, "value": self.settings.oidc_client_id},
                nonce={"essential": True, "value": nonce}, sub={"essential": True}, exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise SsoError(f"The identity provider's ID token is not valid ({exc})") from None
        return dict(decoded.claims)

    # --- accounts and organisations --------------------------------------------------------------

    def _sign_in(self, claims: dict[str, Any]) -> Account:
        issuer, subject = self.settings.oidc_issuer, str(claims["sub"])
        user_id = self.identities.user_id(issuer, subject)
        account = self.accounts.store.get_by_id(user_id) if user_id is not None else None
        if account is None:
            account = self._new_account(claims)
            if not self.identities.link(issuer, subject, account.id, utcnow()):  # a parallel first sign-in won
                winner = self.identities.user_id(issuer, subject)
                account = self.accounts.store.get_by_id(winner) if winner is not None else None
                if account is None:
                    raise SsoError("This sign-in raced another one: try again")
        if account.suspended:
            raise Forbidden("This account is suspended")
        self.apply_groups(account, claims.get(self.settings.oidc_groups_claim) or [])
        return account

    def _new_account(self, claims: dict[str, Any]) -> Account:
        wanted = claims.get("preferred_username") or (claims.get("email") or "").split("@")[0] or "user"
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", str(wanted)).strip("-._")[:40] or "user"
        email = claims.get("email") if claims.get("email_verified") else None
        for attempt in range(5):
            name = base if attempt == 0 else f"{base}-{secrets.token_hex(2)}"
            try:
                return self.accounts.create_user(name, fullname=str(claims.get("name") or "")[:256], email=email,
                                                 self_service=True)
            except HubError:  # taken (or not allowed): another name
                continue
        raise BadRequest("Could not find a free user name for this sign-in")

    def apply_groups(self, account: Account, groups: Any) -> None:
        """Give the user, in each org the mapping names, the highest role their groups give; take
        them out of mapped orgs none of their groups gives (the last admin stays)."""
        mapping = self.group_roles()
        if not mapping:
            return
        member_of = {str(g) for g in groups} if isinstance(groups, list) else set()
        wanted: dict[str, str] = {}
        for group, org_name, role in mapping:
            if group in member_of and ORG_ROLES.index(role) >= ORG_ROLES.index(wanted.get(org_name, "read")):
                wanted[org_name] = role
        for org_name in {name for _, name, _ in mapping}:
            org = self.accounts.store.get(org_name)
            if org is None:
                if org_name not in wanted:
                    continue
                org = self.accounts.create_org(org_name)
            if org.kind != "org":
                continue
            if org_name in wanted:
                self.accounts.store.add_member(org.id, account.id, wanted[org_name])
            else:
                self.orgs.store.remove(org.id, account.id)
        self.accounts.forget_principals()
