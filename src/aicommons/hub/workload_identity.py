"""Workload identity for CI (RFC 8693 token exchange), as huggingface_hub's ``_oidc.py`` does it:
an OIDC ID token from a trusted CI issuer (GitHub Actions, GitLab, any issuer with a JWKS) becomes
a short-lived hub token scoped to one repo.

Trust policies (``AICOMMONS_OIDC_TRUST_POLICIES``, a JSON list) say which tokens an organisation
trusts: ``{"org", "issuer", "audience", "subject", "repos", "permissions"}`` — ``subject`` and
``repos`` are shell-style patterns (``repo:acme/*:ref:refs/heads/main``, ``acme/*``), ``audience``
defaults to the hub's URL. The ID token's signature is checked with its issuer's published keys,
and its issuer, audience, expiry and subject against the policy. The hub token made belongs to the
organisation, is fine-grained (the policy's permissions on that one repo) and lives ``TOKEN_SECONDS``.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from aicommons import outbound
from aicommons.hub.device_login import OAuthError
from aicommons.hub.token_scopes import PERMISSIONS
from aicommons.outbound import TargetRefused
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.db.repos import RepoRow
    from aicommons.hub.accounts import AccountService

EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
TOKEN_SECONDS = 3600
KEYS_TTL = 300
PREFIXES = {"datasets": "dataset", "spaces": "space", "models": "model"}


@dataclass(frozen=True)
class TrustPolicy:
    """Which CI ID tokens an organisation trusts, and what they may do on which of its repos."""

    org: str
    issuer: str
    audience: str | None  # None: the hub's own URL
    subject: str  # a shell-style pattern of the ID token's ``sub``
    repos: tuple[str, ...]  # shell-style patterns of repo ids
    permissions: tuple[str, ...]
    allow_private: bool = True  # the issuer may be a private address (the operator's policies)


def parse_policies(data: Any) -> tuple[TrustPolicy, ...]:
    """Check the setting's JSON (ValueError names what is wrong)."""
    if not isinstance(data, list):
        raise ValueError("a JSON list of policies")
    out = []
    for i, p in enumerate(data):
        if not isinstance(p, dict) or not all(isinstance(p.get(k), str) and p[k] for k in ("org", "issuer", "subject")):
            raise ValueError(f"policy {i}: needs org, issuer and subject (strings)")
        permissions = p.get("permissions", ["repo.content.read"])
        if not isinstance(permissions, list) or any(x not in PERMISSIONS["repo"] for x in permissions):
            raise ValueError(f"policy {i}: permissions are among {', '.join(PERMISSIONS['repo'])}")
        repos = p.get("repos", [f"{p['org']}/*"])
        if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
            raise ValueError(f"policy {i}: repos is a list of patterns")
        out.append(TrustPolicy(org=p["org"], issuer=p["issuer"].rstrip("/"), audience=p.get("audience"),
                               subject=p["subject"], repos=tuple(repos), permissions=tuple(permissions)))
    return tuple(out)


class WorkloadIdentity:
    def __init__(self, policies: Callable[[], tuple[TrustPolicy, ...]], accounts: AccountService,
                 repo_lookup: Callable[[str, str], RepoRow | None], timeout: float = 10):
        self.policies = policies  # read at every exchange: org admins change theirs on the web
        self.timeout = timeout
        self.accounts = accounts
        self.repo_lookup = repo_lookup
        self._keys: dict[str, tuple[float, KeySet]] = {}

    def _keyset(self, issuer: str, allow_private: bool) -> KeySet:
        cached = self._keys.get(issuer)
        if cached and time.monotonic() - cached[0] < KEYS_TTL:
            return cached[1]
        try:
            doc = self._json(f"{issuer}/.well-known/openid-configuration", allow_private)
            keys = KeySet.import_key_set(self._json(str(doc["jwks_uri"]), allow_private))
        except (httpx.HTTPError, OSError, TargetRefused, ValueError, KeyError, TypeError, JoseError) as exc:
            raise OAuthError("invalid_grant", f"The issuer's keys could not be read ({exc})") from None
        self._keys[issuer] = (time.monotonic(), keys)
        return keys

    def _json(self, url: str, allow_private: bool) -> Any:
        answer = outbound.get(url, allow_private=allow_private, timeout=self.timeout)
        if answer.status != 200:
            raise ValueError(f"{url} answered {answer.status}")
        return json.loads(answer.body)

    def exchange(self, fields: dict[str, str], hub_url: str) -> dict[str, Any]:
        if fields.get("subject_token_type") != ID_TOKEN_TYPE:
            raise OAuthError("invalid_request", f"subject_token_type must be {ID_TOKEN_TYPE}")
        subject_token, resource = fields.get("subject_token", ""), fields.get("resource", "")
        repo_type, repo_id = self._resource(resource)
        try:
            issuer = _unverified_issuer(subject_token)  # only to pick the keys; checked below
        except ValueError:
            raise OAuthError("invalid_grant", "subject_token is not a JWT") from None
        candidates = [p for p in self.policies() if p.issuer == issuer]
        if not candidates:
            raise OAuthError("invalid_grant", "No trust policy accepts tokens from this issuer")
        try:
            # Private addresses only if every policy naming this issuer allows them.
            keys = self._keyset(issuer, all(p.allow_private for p in candidates))
            claims = jwt.decode(subject_token, keys, algorithms=["RS256", "ES256"]).claims
            jwt.JWTClaimsRegistry(exp={"essential": True}, sub={"essential": True}).validate(claims)
        except JoseError as exc:
            raise OAuthError("invalid_grant", f"subject_token is not valid ({exc})") from None
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        for policy in candidates:
            if (policy.audience or hub_url) not in audiences:
                continue
            if not fnmatch.fnmatchcase(str(claims["sub"]), policy.subject):
                continue
            if not any(fnmatch.fnmatchcase(repo_id.lower(), r.lower()) for r in policy.repos):
                continue
            return self._mint(policy, repo_type, repo_id, claims)
        raise OAuthError("invalid_grant", "No trust policy accepts this token for this resource")

    @staticmethod
    def _resource(resource: str) -> tuple[str, str]:
        parts = resource.strip("/").split("/")
        if len(parts) == 3 and parts[0] in PREFIXES:
            return PREFIXES[parts[0]], "/".join(parts[1:])
        if len(parts) == 2:
            return "model", resource.strip("/")
        raise OAuthError("invalid_target", "resource must be a repo: ns/name, datasets/ns/name or spaces/ns/name")

    def _mint(self, policy: TrustPolicy, repo_type: str, repo_id: str, claims: dict[str, Any]) -> dict[str, Any]:
        org = self.accounts.store.get(policy.org)
        repo = self.repo_lookup(repo_type, repo_id)
        if org is None or org.kind != "org" or repo is None or repo.owner_id != org.id:
            raise OAuthError("invalid_target", f"No {repo_type} {repo_id} of the organization {policy.org}")
        self.accounts.store.delete_expired_tokens(org.id, utcnow())
        token = "hf_oidc_" + secrets.token_urlsafe(30)
        spec = {"scoped": [{"entity": {"type": repo.type, "name": repo.full_id}, "permissions": list(policy.permissions)}]}
        grants = self.accounts.resolve_grants(org, spec).to_stored()
        self.accounts.store.add_token(org.id, f"CI {str(claims['sub'])[:100]}", "fineGrained",
                                      _hash(token), fine_grained=grants,
                                      expires_at=utcnow() + timedelta(seconds=TOKEN_SECONDS), origin="oidc")
        return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}


def _hash(token: str) -> str:
    from aicommons.hub.accounts import hash_token

    return hash_token(token)


def _unverified_issuer(token: str) -> str:
    """The ``iss`` claim, read only to pick the keys to check the signature with."""
    import base64

    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise ValueError("not a JWT") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("iss"), str):
        raise ValueError("no issuer")
    issuer: str = claims["iss"]
    return issuer.rstrip("/")
