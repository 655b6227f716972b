"""What an organisation's admins set up for signing in, beside what the operator configured:

- **SSO group mappings**: a group of the company's identity provider gives a role in the org at
  every single sign-on (hub/sso.py applies them with ``AICOMMONS_OIDC_GROUP_ROLES``'s);
- **CI trust policies**: which CI ID tokens may become short-lived tokens for the org's repos
  (hub/workload_identity.py, with ``AICOMMONS_OIDC_TRUST_POLICIES``'s).

The operator's entries are shown on the org's page but changed only in the settings. An org admin's
entries act only on that org: a mapping adds people to it (or takes them out), a policy mints tokens
for its repos only. Two rules keep an org admin from opening more than that:

- a trust policy's subject must name something (a pattern made only of wildcards would trust every
  workflow of every user of a shared CI issuer such as GitHub's);
- the hub fetches a policy's issuer keys through ``aicommons.outbound`` (public addresses only, unless
  ``AICOMMONS_WEBHOOKS_ALLOW_PRIVATE_TARGETS``), since an org admin chooses that URL.
"""

from __future__ import annotations

import re

from aicommons.config import Settings, SettingsError
from aicommons.db.accounts import AlreadyExists
from aicommons.db.org_trust import GroupRole, OrgTrustStore, StoredTrustPolicy
from aicommons.errors import BadRequest, Conflict, NotFound
from aicommons.hub.access import ORG_ROLES, Principal
from aicommons.hub.orgs import OrgService
from aicommons.hub.token_scopes import PERMISSIONS
from aicommons.hub.workload_identity import TrustPolicy, parse_policies
from aicommons.outbound import TargetRefused, check_url
from aicommons.times import utcnow

MAX_ENTRIES = 50  # per org and kind: a page an admin can still read
_WILDCARDS = re.compile(r"[*?\[\]!]")


class OrgTrustService:
    def __init__(self, settings: Settings, store: OrgTrustStore, orgs: OrgService):
        self.settings = settings
        self.store = store
        self.orgs = orgs
        try:
            self._operator_policies = parse_policies(settings.trust_policy_list)
        except ValueError as exc:  # config only checks that it is a JSON list
            raise SettingsError(f"AICOMMONS_OIDC_TRUST_POLICIES: {exc}") from None

    # --- what sign-ins apply ---------------------------------------------------------------------

    def group_roles(self) -> tuple[tuple[str, str, str], ...]:
        """(group, org, role): the operator's, then every org's own."""
        stored = tuple((m.group, m.org_name, m.role) for m in self.store.group_roles())
        return self.settings.group_role_list + stored

    def trust_policies(self) -> tuple[TrustPolicy, ...]:
        """The operator's (its issuers may be private addresses), then every org's own."""
        allow_private = self.settings.webhooks_allow_private_targets
        stored = tuple(TrustPolicy(org=p.org_name, issuer=p.issuer, audience=p.audience, subject=p.subject,
                                   repos=p.repos, permissions=p.permissions, allow_private=allow_private)
                       for p in self.store.trust_policies())
        return self._operator_policies + stored

    # --- an org's page ---------------------------------------------------------------------------

    def operator_group_roles(self, org_name: str) -> list[tuple[str, str]]:
        return [(group, role) for group, org, role in self.settings.group_role_list if org.lower() == org_name.lower()]

    def operator_trust_policies(self, org_name: str) -> list[TrustPolicy]:
        return [p for p in self._operator_policies if p.org.lower() == org_name.lower()]

    def org_group_roles(self, principal: Principal, org_name: str) -> list[GroupRole]:
        org = self.orgs.require_manager(principal, org_name, read_only=True)
        return self.store.group_roles(org.id)

    def org_trust_policies(self, principal: Principal, org_name: str) -> list[StoredTrustPolicy]:
        org = self.orgs.require_manager(principal, org_name, read_only=True)
        return self.store.trust_policies(org.id)

    def add_group_role(self, principal: Principal, org_name: str, group: str, role: str) -> None:
        org = self.orgs.require_manager(principal, org_name)
        group = group.strip()
        if not group or len(group) > 256 or any(c in group for c in ",=\n\r"):
            raise BadRequest("A group name has 1 to 256 characters and no comma, '=' or line break")
        if role not in ORG_ROLES:
            raise BadRequest(f"Invalid role {role!r}: one of {', '.join(ORG_ROLES)}")
        if len(self.store.group_roles(org.id)) >= MAX_ENTRIES:
            raise BadRequest(f"An organization has at most {MAX_ENTRIES} group mappings")
        try:
            self.store.add_group_role(org.id, group, role, principal.user.id, utcnow())
        except AlreadyExists:
            raise Conflict(f"The group {group!r} is already mapped: remove it first to change its role") from None

    def delete_group_role(self, principal: Principal, org_name: str, mapping_id: int) -> None:
        org = self.orgs.require_manager(principal, org_name)
        if not self.store.delete_group_role(org.id, mapping_id):
            raise NotFound("No such group mapping")

    def add_trust_policy(self, principal: Principal, org_name: str, issuer: str, subject: str,
                         repos: list[str], permissions: list[str], audience: str | None = None) -> None:
        org = self.orgs.require_manager(principal, org_name)
        issuer, subject, audience = issuer.strip().rstrip("/"), subject.strip(), (audience or "").strip() or None
        try:
            check_url(issuer)
        except TargetRefused as exc:
            raise BadRequest(f"Issuer: {exc}") from None
        if not issuer.startswith("https://") and not self.settings.webhooks_allow_private_targets:
            raise BadRequest("Issuer: an https:// URL (the hub reads its keys from there)")
        if not subject or len(subject) > 512 or not _WILDCARDS.sub("", subject).strip(":/-_."):
            raise BadRequest("Subject: a pattern that names something, such as repo:acme/trainer:ref:refs/heads/main "
                             "(wildcards alone would trust every workflow the issuer signs for)")
        repos = [r.strip() for r in repos if r.strip()] or [f"{org.name}/*"]
        if len(repos) > 20 or any(len(r) > 200 for r in repos):
            raise BadRequest("Repos: at most 20 patterns of up to 200 characters")
        if not permissions or any(p not in PERMISSIONS["repo"] for p in permissions):
            raise BadRequest(f"Permissions: among {', '.join(PERMISSIONS['repo'])}")
        if audience is not None and len(audience) > 512:
            raise BadRequest("Audience: at most 512 characters")
        if len(self.store.trust_policies(org.id)) >= MAX_ENTRIES:
            raise BadRequest(f"An organization has at most {MAX_ENTRIES} trust policies")
        self.store.add_trust_policy(org.id, issuer, audience, subject, repos, sorted(set(permissions)),
                                    principal.user.id, utcnow())

    def delete_trust_policy(self, principal: Principal, org_name: str, policy_id: int) -> None:
        org = self.orgs.require_manager(principal, org_name)
        if not self.store.delete_trust_policy(org.id, policy_id):
            raise NotFound("No such trust policy")
