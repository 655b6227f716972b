"""Reads for "export my data" (``hub/account_export.py``): what one user wrote, liked and asked for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, select

from aicommons.db.tables import (
    access_requests,
    accounts,
    collection_items,
    collections,
    discussion_events,
    discussions,
    follows,
    identities,
    likes,
    org_join_requests,
    repos,
    tokens,
    webhook_watches,
    webhooks,
)

_REPO = (repos.c.type.label("repo_type"), repos.c.full_id.label("repo_id"))


def _rows(engine: Engine, query: Select[Any]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


class AccountExportStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def discussions(self, user_id: int) -> list[dict[str, Any]]:
        query = (select(*_REPO, discussions.c.num, discussions.c.title, discussions.c.status,
                        discussions.c.is_pull_request, discussions.c.created_at)
                 .join(repos, repos.c.id == discussions.c.repo_id)
                 .where(discussions.c.author_id == user_id).order_by(discussions.c.created_at))
        return _rows(self.engine, query)

    def discussion_events(self, user_id: int) -> list[dict[str, Any]]:
        """Comments, status and title changes and PR commits the user made, with their text."""
        query = (select(*_REPO, discussions.c.num, discussion_events.c.id, discussion_events.c.type,
                        discussion_events.c.created_at, discussion_events.c.data)
                 .join(discussions, discussions.c.id == discussion_events.c.discussion_id)
                 .join(repos, repos.c.id == discussions.c.repo_id)
                 .where(discussion_events.c.author_id == user_id).order_by(discussion_events.c.created_at))
        return _rows(self.engine, query)

    def likes(self, user_id: int) -> list[dict[str, Any]]:
        query = (select(*_REPO, likes.c.created_at).join(repos, repos.c.id == likes.c.repo_id)
                 .where(likes.c.user_id == user_id).order_by(likes.c.created_at))
        return _rows(self.engine, query)

    def access_requests(self, user_id: int) -> list[dict[str, Any]]:
        query = (select(*_REPO, access_requests.c.status, access_requests.c.fields,
                        access_requests.c.rejection_reason, access_requests.c.created_at)
                 .join(repos, repos.c.id == access_requests.c.repo_id)
                 .where(access_requests.c.user_id == user_id).order_by(access_requests.c.created_at))
        return _rows(self.engine, query)

    def tokens(self, user_id: int) -> list[dict[str, Any]]:
        """Names, roles, permissions and dates only: never the hash."""
        query = (select(tokens.c.name, tokens.c.role, tokens.c.fine_grained.label("permissions"), tokens.c.origin,
                        tokens.c.created_at, tokens.c.last_used_at, tokens.c.expires_at)
                 .where(tokens.c.user_id == user_id).order_by(tokens.c.id))
        return _rows(self.engine, query)

    def collections(self, user_id: int) -> list[dict[str, Any]]:
        """The user's own collections, each with its items in order."""
        out = _rows(self.engine, select(collections.c.id, collections.c.title, collections.c.description,
                                        collections.c.private, collections.c.theme, collections.c.created_at,
                                        collections.c.updated_at)
                    .where(collections.c.owner_id == user_id).order_by(collections.c.position))
        if out:
            items = _rows(self.engine, select(collection_items.c.collection_id, collection_items.c.item_type,
                                              repos.c.full_id.label("repo_id"), collection_items.c.paper_id,
                                              collection_items.c.target_id.label("collection"),
                                              collection_items.c.note, collection_items.c.created_at)
                          .outerjoin(repos, repos.c.id == collection_items.c.repo_id)
                          .where(collection_items.c.collection_id.in_([c["id"] for c in out]))
                          .order_by(collection_items.c.position))
            for c in out:
                c["items"] = [{k: v for k, v in i.items() if k != "collection_id"} for i in items
                              if i["collection_id"] == c["id"]]
        return out

    def webhooks(self, user_id: int) -> list[dict[str, Any]]:
        """The user's webhooks: where they post and what they watch; whether a secret is set, never the secret."""
        out = _rows(self.engine, select(webhooks.c.id, webhooks.c.url, webhooks.c.domains, webhooks.c.disabled,
                                        (webhooks.c.secret.is_not(None)).label("hasSecret"), webhooks.c.created_at,
                                        webhooks.c.updated_at)
                    .where(webhooks.c.owner_id == user_id).order_by(webhooks.c.created_at))
        if out:
            watched = _rows(self.engine, select(webhook_watches.c.webhook_id, webhook_watches.c.kind,
                                                webhook_watches.c.name)
                            .where(webhook_watches.c.webhook_id.in_([w["id"] for w in out]))
                            .order_by(webhook_watches.c.position))
            for w in out:
                w["watched"] = [{"type": x["kind"], "name": x["name"]} for x in watched if x["webhook_id"] == w["id"]]
        return out

    def following(self, user_id: int) -> list[dict[str, Any]]:
        query = (select(accounts.c.name, accounts.c.kind, follows.c.created_at)
                 .join(accounts, accounts.c.id == follows.c.followee_id)
                 .where(follows.c.follower_id == user_id).order_by(follows.c.created_at))
        return _rows(self.engine, query)

    def sign_in_identities(self, user_id: int) -> list[dict[str, Any]]:
        """Single sign-on identities linked to the account (issuer and subject)."""
        query = (select(identities.c.issuer, identities.c.subject, identities.c.created_at)
                 .where(identities.c.user_id == user_id))
        return _rows(self.engine, query)

    def join_requests(self, user_id: int) -> list[dict[str, Any]]:
        query = (select(accounts.c.name.label("org"), org_join_requests.c.created_at)
                 .join(accounts, accounts.c.id == org_join_requests.c.org_id)
                 .where(org_join_requests.c.user_id == user_id))
        return _rows(self.engine, query)


def iso(value: object) -> str:
    """JSON for what these rows hold: datetimes as ISO 8601 UTC."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
