"""Fine-grained tokens: which permissions a token carries, on what, as the Hub spells them.

A fine-grained token never gives more than its user has: every decision first applies the user's
own rights (hub/policy.py), then asks ``Grants.allows``. Its permissions are granted

- ``global``: on every repo the user can reach (the Hub puts ``discussion.write`` there);
- scoped to an entity: the user (their own repos and account), an organisation (its repos and
  settings) or one repo.

``canReadGatedRepos`` lets it read the content of public gated repos the user was admitted to.
Reading public, ungated content needs no permission: any token can do what anonymous callers can.

Entities are stored by account or repo id, so a rename keeps the grant on the same thing; the
names shown by whoami-v2 are looked up when it answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aicommons.errors import BadRequest

READ = "repo.content.read"
WRITE = "repo.write"
SETTINGS = "repo.settings.write"  # an AI Commons addition: the Hub folds settings into repo.write
DISCUSS = "discussion.write"
INFER = "inference.serverless.write"
WEBHOOKS_READ = "user.webhooks.read"
WEBHOOKS_WRITE = "user.webhooks.write"
COLLECTIONS_READ = "collection.read"
COLLECTIONS_WRITE = "collection.write"
ORG_READ = "org.read"
ORG_WRITE = "org.write"

REPO_PERMISSIONS = (READ, WRITE, SETTINGS, DISCUSS)
# What each kind of entity may be granted, in the order the token page shows them.
PERMISSIONS = {
    "user": (*REPO_PERMISSIONS, INFER, WEBHOOKS_READ, WEBHOOKS_WRITE, COLLECTIONS_READ, COLLECTIONS_WRITE),
    "org": (*REPO_PERMISSIONS, INFER, ORG_READ, ORG_WRITE, COLLECTIONS_READ, COLLECTIONS_WRITE),
    "repo": REPO_PERMISSIONS,
}
GLOBAL_PERMISSIONS = (DISCUSS,)
LABELS = {
    READ: "Read the content of repos",
    WRITE: "Write the content of repos (commits, branches, tags, pull requests)",
    SETTINGS: "Manage repo settings (visibility, gating, move, delete)",
    DISCUSS: "Open discussions, comment, like",
    INFER: "Run inference",
    WEBHOOKS_READ: "Read webhooks",
    WEBHOOKS_WRITE: "Manage webhooks",
    COLLECTIONS_READ: "Read collections",
    COLLECTIONS_WRITE: "Manage collections",
    ORG_READ: "Read the organization's settings and members",
    ORG_WRITE: "Manage the organization (members, roles, invitations)",
}
# A permission also grants the ones it implies.
IMPLIES = {WRITE: (READ,), SETTINGS: (READ,), WEBHOOKS_WRITE: (WEBHOOKS_READ,), COLLECTIONS_WRITE: (COLLECTIONS_READ,),
           ORG_WRITE: (ORG_READ,)}
REPO_TYPES = ("model", "dataset", "space")


def _closure(permissions: Iterable[str]) -> frozenset[str]:
    out = set(permissions)
    for p in list(out):
        out.update(IMPLIES.get(p, ()))
    return frozenset(out)


@dataclass(frozen=True)
class Scope:
    kind: str  # "user" | "org" | "repo"
    id: int  # account id or repo id
    permissions: frozenset[str]


@dataclass(frozen=True)
class Grants:
    """What a fine-grained token may do, beyond what anonymous callers may."""

    global_permissions: frozenset[str] = frozenset()
    scopes: tuple[Scope, ...] = ()
    can_read_gated_repos: bool = False

    def allows(self, permission: str, owner_id: int | None = None, repo_id: int | None = None) -> bool:
        """``permission`` on the repo ``repo_id`` owned by ``owner_id`` (or on the account ``owner_id``)."""
        if permission in _closure(self.global_permissions):
            return True
        for scope in self.scopes:
            matches = scope.id == repo_id if scope.kind == "repo" else scope.id == owner_id
            if matches and permission in _closure(scope.permissions):
                return True
        return False

    def owner_ids_with(self, permission: str) -> set[int]:
        return {s.id for s in self.scopes if s.kind != "repo" and permission in _closure(s.permissions)}

    # --- storage ---------------------------------------------------------------------------------

    def to_stored(self) -> dict[str, Any]:
        return {"canReadGatedRepos": self.can_read_gated_repos, "global": sorted(self.global_permissions),
                "scoped": [{"kind": s.kind, "id": s.id, "permissions": sorted(s.permissions)} for s in self.scopes]}

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Grants:
        return cls(frozenset(data.get("global", ())),
                   tuple(Scope(s["kind"], int(s["id"]), frozenset(s["permissions"])) for s in data.get("scoped", ())),
                   bool(data.get("canReadGatedRepos")))


def check_permissions(kind: str, permissions: Any, where: str) -> frozenset[str]:
    if isinstance(permissions, str) or not isinstance(permissions, list | tuple | set | frozenset):
        raise BadRequest(f"{where}: permissions must be a list")
    allowed = PERMISSIONS[kind]
    unknown = [p for p in permissions if p not in allowed]
    if unknown:
        raise BadRequest(f"{where}: unknown permission(s) {', '.join(map(str, unknown))}; "
                         f"allowed: {', '.join(allowed)}")
    return frozenset(permissions)
