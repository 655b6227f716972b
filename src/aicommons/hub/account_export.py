""""Export my data": one zip with what the hub holds about a user, readable without the hub.

``profile.json`` (name, full name, e-mail, bio, homepage, dates, organizations), ``avatar.png``,
``repos.json`` (each repo the user owns with its settings and card metadata), ``discussions.json``
and ``comments.json`` (what they opened and wrote, with the text), ``likes.json``,
``access_requests.json``, ``tokens.json`` (names, roles, permissions and dates: never a token or its
hash), ``collections.json``, ``webhooks.json`` (never the secret), ``following.json``,
``org_join_requests.json``, ``sign_in_identities.json`` (single sign-on links) and ``audit.json``
(the audit events where the account is the actor, since the account was created).
No password hash, token hash, session or secret is ever written to it.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from aicommons.db.account_export import AccountExportStore, iso
from aicommons.db.accounts import Account, AccountStore
from aicommons.db.audit import AuditStore
from aicommons.db.avatars import AvatarStore
from aicommons.db.repos import RepoStore
from aicommons.errors import NotFound
from aicommons.times import utcnow

MAX_AUDIT_EVENTS = 100_000

README = """Your data on AI Commons, exported {when} UTC.

profile.json          your account: name, full name, e-mail, bio, homepage, organizations
avatar.png            your avatar, if you uploaded one
repos.json            the repos you own and their settings (their files: clone them with git)
discussions.json      discussions and pull requests you opened
comments.json         everything you wrote in discussions (comments, title and status changes)
likes.json            the repos you like
access_requests.json  your requests for access to gated repos
tokens.json           your access tokens: names, roles, permissions and dates only (never the tokens)
collections.json      your collections and their items
webhooks.json         your webhooks: address, what they watch (never their secret)
following.json        the users and organizations you follow
org_join_requests.json  your requests to join organizations
sign_in_identities.json single sign-on accounts linked to yours (issuer and subject)
audit.json            what the audit log recorded you doing
"""


class AccountExport:
    def __init__(self, accounts: AccountStore, repos: RepoStore, store: AccountExportStore, avatars: AvatarStore,
                 audit: AuditStore):
        self.accounts = accounts
        self.repos = repos
        self.store = store
        self.avatars = avatars
        self.audit = audit

    def profile(self, user: Account) -> dict[str, Any]:
        return {
            "name": user.name, "fullname": user.fullname, "email": user.email,
            "emailVerified": getattr(user, "email_verified", user.email is not None),
            "bio": user.bio, "homepage": user.homepage, "isAdmin": user.is_admin, "createdAt": user.created_at,
            "orgs": [{"name": org.name, "role": role} for org, role in self.accounts.orgs_of(user.id)],
        }

    def repos_of(self, user: Account) -> list[dict[str, Any]]:
        return [{"type": r.type, "id": r.full_id, "private": r.private, "gated": r.gated or False,
                 "disabled": r.disabled, "sha": r.sha, "createdAt": r.created_at, "lastModified": r.last_modified,
                 "likes": r.likes, "downloads": r.downloads, "tags": r.tags, "libraryName": r.library_name,
                 "pipelineTag": r.pipeline_tag, "cardData": r.card_data}
                for r in self.repos.owned_by(user.id)]

    def audit_of(self, user: Account) -> list[dict[str, Any]]:
        # Since the account was created: a retired name released and registered again by someone
        # else never sees the previous holder's events.
        events = self.audit.events(actor=user.name, since=user.created_at, limit=MAX_AUDIT_EVENTS)
        return [{"at": e.at, "ip": e.ip, "action": e.action, "target": e.target, "status": e.status,
                 "requestId": e.request_id, "clientRequestId": e.client_request_id} for e in events]

    def zip(self, user_id: int) -> bytes:
        user = self.accounts.get_by_id(user_id)
        if user is None:
            raise NotFound("This account no longer exists")
        files: dict[str, Any] = {
            "profile.json": self.profile(user),
            "repos.json": self.repos_of(user),
            "discussions.json": self.store.discussions(user.id),
            "comments.json": self.store.discussion_events(user.id),
            "likes.json": self.store.likes(user.id),
            "access_requests.json": self.store.access_requests(user.id),
            "tokens.json": self.store.tokens(user.id),
            "collections.json": self.store.collections(user.id),
            "webhooks.json": self.store.webhooks(user.id),
            "following.json": self.store.following(user.id),
            "org_join_requests.json": self.store.join_requests(user.id),
            "sign_in_identities.json": self.store.sign_in_identities(user.id),
            "audit.json": self.audit_of(user),
        }
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("README.txt", README.format(when=utcnow().isoformat(timespec="seconds")))
            for name, content in files.items():
                archive.writestr(name, json.dumps(content, default=iso, indent=2, ensure_ascii=False))
            avatar = self.avatars.get(user.id)
            if avatar is not None:
                archive.writestr("avatar.png", avatar[1])
        return out.getvalue()
