"""Organisations as their members run them: roles, invitations (by link or for one e-mail
address), join requests, removals; follows; the user and organisation overviews in the Hub's JSON.

Who may do what: an org's admins (and site admins) manage its members, with a write credential (a
fine-grained token also needs ``org.write`` on the org; listing invitations and join requests,
``org.read``). Anyone signed in with a write credential may follow, ask to join, accept an
invitation meant for them, or leave an org (the last admin cannot leave or be demoted).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aicommons.db.accounts import Account, AccountStore
from aicommons.db.orgs import Invitation, OrgStore
from aicommons.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from aicommons.hub.access import ORG_ROLES, Principal
from aicommons.hub.token_scopes import DISCUSS, ORG_READ, ORG_WRITE
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.mail import Mailer

INVITATION_DAYS = 7


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OrgService:
    def __init__(self, store: OrgStore, accounts: AccountStore,
                 forget_principals: Callable[[], None] | None = None, mail: Mailer | None = None):
        self.store = store
        self.accounts = accounts
        self.mail = mail  # invitations to an address are mailed there
        self._forget = forget_principals or (lambda: None)  # memberships changed: cached principals are stale

    # --- lookups ---------------------------------------------------------------------------------

    def followers(self, account: Account) -> list[Account]:
        return self.store.followers(account.id)

    def following(self, account: Account) -> list[Account]:
        return self.store.following(account.id)

    def is_following(self, principal: Principal, account: Account) -> bool:
        return principal.account is not None and self.store.is_following(principal.account.id, account.id)

    def require(self, name: str, kind: str | None = None) -> Account:
        account = self.accounts.get(name)
        if account is None or (kind and account.kind != kind):
            raise NotFound(f"No {'organization' if kind == 'org' else 'user' if kind == 'user' else 'account'} "
                           f"named {name!r}")
        return account

    def role_of(self, org: Account, principal: Principal) -> str | None:
        return principal.org_roles.get(org.id) if principal.account else None

    def may_manage(self, principal: Principal, org: Account, read_only: bool = False) -> bool:
        if principal.is_anonymous or not principal.token_allows(ORG_READ if read_only else ORG_WRITE, org.id):
            return False
        if not read_only and not principal.can_write_at_all:
            return False
        return principal.is_admin or principal.org_roles.get(org.id) == "admin"

    def _check_manage(self, principal: Principal, org: Account, read_only: bool = False) -> None:
        if principal.is_anonymous:
            raise Unauthorized("You must be signed in to do this")
        if not self.may_manage(principal, org, read_only):
            raise Forbidden(f"Only an admin of {org.name} can do this"
                            + (f" (and a fine-grained token needs {ORG_READ if read_only else ORG_WRITE})"
                               if principal.grants is not None else ""))

    def authorize_manage(self, principal: Principal, org_name: str) -> None:
        """The decision, before a request body is read (it may be refused unread)."""
        self.require_manager(principal, org_name)

    def require_manager(self, principal: Principal, org_name: str, read_only: bool = False) -> Account:
        """The organisation, if ``principal`` may manage it (or, ``read_only``, see how it is managed)."""
        org = self.require(org_name, "org")
        self._check_manage(principal, org, read_only)
        return org

    @staticmethod
    def _check_signed_in_writer(principal: Principal) -> None:
        if principal.is_anonymous:
            raise Unauthorized("You must be signed in to do this")
        if not principal.can_write_at_all:
            raise Forbidden("A write token is needed to do this")

    @staticmethod
    def _check_role(role: str) -> str:
        if role not in ORG_ROLES:
            raise BadRequest(f"Invalid role {role!r}: one of {', '.join(ORG_ROLES)}")
        return role

    # --- members ---------------------------------------------------------------------------------

    def orgs_of(self, user: Account) -> list[tuple[Account, str]]:
        return self.accounts.orgs_of(user.id)

    def members(self, org_name: str) -> list[tuple[Account, str]]:
        return self.store.members(self.require(org_name, "org").id)

    def set_role(self, principal: Principal, org_name: str, user_name: str, role: str) -> None:
        org = self.require(org_name, "org")
        self._check_manage(principal, org)
        user = self.require(user_name, "user")
        if not self.store.set_role(org.id, user.id, self._check_role(role)):
            if self.store_role(org, user) is None:
                raise NotFound(f"{user.name} is not a member of {org.name}")
            raise Conflict(f"{org.name} needs at least one admin: make someone else admin first")
        self._forget()

    def store_role(self, org: Account, user: Account) -> str | None:
        return self.accounts.member_role(org.id, user.id)

    def remove(self, principal: Principal, org_name: str, user_name: str) -> None:
        """Remove a member (an admin), or leave (the member themselves)."""
        org = self.require(org_name, "org")
        user = self.require(user_name, "user")
        self._check_signed_in_writer(principal)
        if principal.user.id != user.id:
            self._check_manage(principal, org)
        if not self.store.remove(org.id, user.id):
            if self.store_role(org, user) is None:
                raise NotFound(f"{user.name} is not a member of {org.name}")
            raise Conflict(f"{org.name} needs at least one admin: make someone else admin first")
        self._forget()

    # --- invitations -----------------------------------------------------------------------------

    def invite(self, principal: Principal, org_name: str, role: str, email: str | None = None) -> tuple[str, Invitation]:
        """A new invitation; returns (secret token for the link, invitation). With ``email`` only the
        account with that address may accept it."""
        org = self.require(org_name, "org")
        self._check_manage(principal, org)
        email = (email or "").strip() or None
        if email is not None and ("@" not in email or len(email) > 256 or any(c.isspace() for c in email)):
            raise BadRequest("Invalid e-mail address")
        token = secrets.token_urlsafe(24)
        now = utcnow()
        invitation = self.store.add_invitation(org.id, _hash(token), email.lower() if email else None,
                                               self._check_role(role), principal.user.id, now,
                                               now + timedelta(days=INVITATION_DAYS))
        if email is not None and self.mail is not None:
            inviter = principal.user
            self.mail.send_mail(email, f"{inviter.fullname or inviter.name} invites you to {org.fullname or org.name}",
                                f"{inviter.name} invites you to join the organization {org.name} as {role}.\n\n"
                                f"Accept within {INVITATION_DAYS} days (sign in, or create an account with this "
                                f"address, first):\n\n{self.mail.link(f'/invitations/{token}')}\n\n"
                                "If you do not know them, ignore this message.\n")
        return token, invitation

    def invitations(self, principal: Principal, org_name: str) -> list[Invitation]:
        org = self.require(org_name, "org")
        self._check_manage(principal, org, read_only=True)
        return self.store.invitations(org.id, utcnow())

    def revoke_invitation(self, principal: Principal, org_name: str, invitation_id: int) -> None:
        org = self.require(org_name, "org")
        self._check_manage(principal, org)
        if not self.store.delete_invitation(org.id, invitation_id):
            raise NotFound("No such invitation")

    def find_invitation(self, token: str) -> tuple[Invitation, Account]:
        invitation = self.store.invitation_by_hash(_hash(token), utcnow())
        org = self.accounts.get_by_id(invitation.org_id) if invitation else None
        if invitation is None or org is None:
            raise NotFound("This invitation does not exist or has expired")
        return invitation, org

    def accept(self, principal: Principal, token: str) -> Account:
        self._check_signed_in_writer(principal)
        invitation, org = self.find_invitation(token)
        account = principal.user
        if invitation.email and (account.email or "").lower() != invitation.email:
            raise Forbidden("This invitation is for another e-mail address")
        if self.store.join(org.id, account.id, invitation.role) and invitation.email:
            self.store.delete_invitation(org.id, invitation.id)  # a personal invitation is used once
        self._forget()
        return org

    # --- join requests ---------------------------------------------------------------------------

    def request_to_join(self, principal: Principal, org_name: str) -> None:
        org = self.require(org_name, "org")
        self._check_signed_in_writer(principal)
        if principal.user.id in {u.id for u, _ in self.store.members(org.id)}:
            raise Conflict(f"You are already a member of {org.name}")
        self.store.request_to_join(org.id, principal.user.id, utcnow())

    def join_requests(self, principal: Principal, org_name: str) -> list[tuple[Account, datetime]]:
        org = self.require(org_name, "org")
        self._check_manage(principal, org, read_only=True)
        return self.store.join_requests(org.id)

    def decide_join_request(self, principal: Principal, org_name: str, user_name: str, accept: bool,
                            role: str = "read") -> None:
        org = self.require(org_name, "org")
        self._check_manage(principal, org)
        user = self.require(user_name, "user")
        if user.id not in {u.id for u, _ in self.store.join_requests(org.id)}:
            raise NotFound(f"{user.name} has not asked to join {org.name}")
        if accept:
            self.store.join(org.id, user.id, self._check_role(role))
            self._forget()
        else:
            self.store.drop_join_request(org.id, user.id)

    # --- follows ---------------------------------------------------------------------------------

    def follow(self, principal: Principal, name: str, following: bool) -> None:
        """Follow (or stop following) a user or an organisation: a social action of the caller's own
        account, like a like. A fine-grained token needs ``discussion.write`` everywhere (the Hub's
        default ``global`` grant) or on the caller's own account."""
        self._check_signed_in_writer(principal)
        if not principal.token_allows(DISCUSS, principal.user.id):
            raise Forbidden(f"This fine-grained token lacks the {DISCUSS} permission on your account "
                            "(everywhere, or scoped to your account): following needs it")
        target = self.require(name)
        if target.id == principal.user.id:
            raise BadRequest("You cannot follow yourself")
        self.store.follow(principal.user.id, target.id, following, utcnow())

    # --- the Hub's JSON --------------------------------------------------------------------------

    def user_json(self, account: Account, base_url: str, viewer: Principal | None = None) -> dict[str, Any]:
        """A ``User`` entry (followers, members): ``user`` is the username key."""
        out: dict[str, Any] = {"user": account.name, "fullname": account.fullname or account.name,
               "avatarUrl": avatar_url(account, base_url), "type": account.kind, "isPro": False}
        if viewer is not None and viewer.account is not None:
            out["isFollowing"] = self.store.is_following(viewer.account.id, account.id)
        return out

    def user_overview(self, name: str, viewer: Principal, base_url: str) -> dict[str, Any]:
        user = self.require(name, "user")
        counts = self.store.counts(user.id, viewer.visible_owner_ids())
        orgs = [self.org_json(org, base_url) for org, _ in self.accounts.orgs_of(user.id)]
        return {**self.user_json(user, base_url, viewer), "_id": str(user.id), "details": "",
                "createdAt": _iso(user.created_at), "numModels": counts["model"], "numDatasets": counts["dataset"],
                "numSpaces": counts["space"], "numDiscussions": counts["discussions"], "numPapers": 0,
                "numUpvotes": 0, "numLikes": counts["likes"], "numFollowers": counts["followers"],
                "numFollowing": counts["following"], "orgs": orgs}

    def org_json(self, org: Account, base_url: str) -> dict[str, Any]:
        return {"name": org.name, "fullname": org.fullname or org.name, "avatarUrl": avatar_url(org, base_url),
                "type": "org"}

    def org_overview(self, name: str, viewer: Principal, base_url: str) -> dict[str, Any]:
        org = self.require(name, "org")
        counts = self.store.counts(org.id, viewer.visible_owner_ids())
        out: dict[str, Any] = {**self.org_json(org, base_url), "_id": str(org.id), "details": "", "isVerified": False,
               "isEnterprise": False, "plan": "team", "numUsers": counts["members"], "numModels": counts["model"],
               "numDatasets": counts["dataset"], "numSpaces": counts["space"], "numFollowers": counts["followers"],
               "numPapers": 0}
        if viewer.account is not None:
            out["isFollowing"] = self.store.is_following(viewer.account.id, org.id)
        return out


def avatar_url(account: Account, base_url: str) -> str:
    """Absolute, as the Hub's (clients show it as is)."""
    return f"{base_url}/avatars/{account.name}"


def _iso(moment: datetime) -> str:
    from aicommons.times import iso_z

    return iso_z(moment)
