"""What an organisation's admins set up for sign-in: SSO group mappings and CI trust policies."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, insert, select
from sqlalchemy.exc import IntegrityError

from aicommons.db.accounts import AlreadyExists
from aicommons.db.tables import accounts, org_group_roles, org_trust_policies
from aicommons.db.upsert import new_id


@dataclass(frozen=True)
class GroupRole:
    id: int
    org_id: int
    org_name: str
    group: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class StoredTrustPolicy:
    id: int
    org_id: int
    org_name: str
    issuer: str
    audience: str | None
    subject: str
    repos: tuple[str, ...]
    permissions: tuple[str, ...]
    created_at: datetime


def _group_role(row: Row[Any]) -> GroupRole:
    return GroupRole(row.id, row.org_id, row.org_name, row.group_name, row.role, row.created_at)


def _policy(row: Row[Any]) -> StoredTrustPolicy:
    return StoredTrustPolicy(row.id, row.org_id, row.org_name, row.issuer, row.audience, row.subject,
                             tuple(row.repos), tuple(row.permissions), row.created_at)


class OrgTrustStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- SSO group mappings ----------------------------------------------------------------------

    def group_roles(self, org_id: int | None = None) -> builtins.list[GroupRole]:
        """One org's mappings, or every org's (``org_id`` None: what a sign-in applies)."""
        query = (select(org_group_roles, accounts.c.name.label("org_name"))
                 .join(accounts, accounts.c.id == org_group_roles.c.org_id).order_by(org_group_roles.c.id))
        if org_id is not None:
            query = query.where(org_group_roles.c.org_id == org_id)
        with self.engine.connect() as conn:
            return [_group_role(r) for r in conn.execute(query)]

    def add_group_role(self, org_id: int, group: str, role: str, created_by: int, now: datetime) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(org_group_roles).values(org_id=org_id, group_name=group, role=role,
                                                            created_by=created_by, created_at=now))
        except IntegrityError as exc:
            raise AlreadyExists("group mapping") from exc

    def delete_group_role(self, org_id: int, mapping_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(org_group_roles).where(
                org_group_roles.c.org_id == org_id, org_group_roles.c.id == mapping_id)).rowcount > 0

    # --- CI trust policies -----------------------------------------------------------------------

    def trust_policies(self, org_id: int | None = None) -> builtins.list[StoredTrustPolicy]:
        query = (select(org_trust_policies, accounts.c.name.label("org_name"))
                 .join(accounts, accounts.c.id == org_trust_policies.c.org_id).order_by(org_trust_policies.c.id))
        if org_id is not None:
            query = query.where(org_trust_policies.c.org_id == org_id)
        with self.engine.connect() as conn:
            return [_policy(r) for r in conn.execute(query)]

    def add_trust_policy(self, org_id: int, issuer: str, audience: str | None, subject: str,
                         repos: builtins.list[str], permissions: builtins.list[str], created_by: int,
                         now: datetime) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(insert(org_trust_policies).values(
                org_id=org_id, issuer=issuer, audience=audience, subject=subject, repos=repos,
                permissions=permissions, created_by=created_by, created_at=now))
            return new_id(res)

    def delete_trust_policy(self, org_id: int, policy_id: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(org_trust_policies).where(
                org_trust_policies.c.org_id == org_id, org_trust_policies.c.id == policy_id)).rowcount > 0
