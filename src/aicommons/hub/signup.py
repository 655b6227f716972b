"""Self-service sign-up under the operator's policy, e-mail verification, password reset, invites.

Policies (``AICOMMONS_SIGNUP``): ``open`` (anyone), ``approval`` (the account waits, status
"pending", until a site admin approves it; the person is mailed then), ``invite`` (only with a live
invite link, optionally bound to one address) and ``closed``. ``AICOMMONS_SIGNUP_EMAIL_DOMAINS``
restricts the addresses.

What the forms tell: a user name is public, so a taken one is simply refused. An address that
already has an account gets the same answer as any sign-up ("check your mail"), and its owner a
mail saying someone tried; a password-reset request answers the same whether or not the address
has an account. Both forms are throttled per client address (``SIGNUP_ATTEMPTS_PER_HOUR``, shared
by every replica through the database).

Links are single-use tokens of 256 bits; the database keeps only their sha256 (``one_time_links``):
verification 24 h, reset 1 h, invites as long as their creator chose. Using a reset link sets the
password, ends every session of the account and counts as a verified address.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from aicommons.config import Settings
from aicommons.db.accounts import Account
from aicommons.db.signup import LinkRow, LinkStore, SignupAttemptStore
from aicommons.errors import BadRequest, Forbidden, NotFound, TooManyRequests
from aicommons.hub import passwords
from aicommons.hub.access import Principal
from aicommons.hub.accounts import AccountService
from aicommons.hub.mail import Mailer
from aicommons.times import utcnow

VERIFY_TTL = timedelta(hours=24)
RESET_TTL = timedelta(hours=1)
DEFAULT_INVITE_TTL = timedelta(days=7)
THROTTLE_WINDOW = timedelta(hours=1)
_EMAIL = re.compile(r"[^@\s<>,;\"()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*[A-Za-z0-9]")
INVALID_LINK = "This link is invalid, was already used or has expired"


def check_email(email: object) -> str:
    if not isinstance(email, str) or len(email) > 254 or not _EMAIL.fullmatch(email.strip()) \
            or "." not in email.rsplit("@", 1)[-1]:
        raise BadRequest("Enter a valid e-mail address")
    return email.strip()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class JoinResult:
    """What the form answers: the same for a new account and for an address that has one."""

    status: str  # "verify" (check your mail) | "pending" (wait for approval as well)
    account: Account | None = None  # the new account (None: the address had one); never shown


class SignupService:
    def __init__(self, settings: Settings, accounts: AccountService, links: LinkStore,
                 attempts: SignupAttemptStore, mail: Mailer):
        self.settings = settings
        self.accounts = accounts
        self.links = links
        self.attempts = attempts
        self.mail = mail

    @property
    def policy(self) -> str:
        return self.settings.signup

    # --- throttling ---------------------------------------------------------------------------

    def throttle(self, client: str | None) -> None:
        """Count one form submission of ``client``; 429 with Retry-After past the hourly limit."""
        limit = self.settings.signup_attempts_per_hour
        if limit <= 0:
            return
        now = utcnow()
        oldest = self.attempts.take(client or "unknown", limit, now, now - THROTTLE_WINDOW)
        if oldest is not None:
            seconds = max(1, math.ceil((oldest + THROTTLE_WINDOW - now).total_seconds()))
            raise TooManyRequests(f"Too many attempts from your address: retry in {seconds // 60 + 1} minutes",
                                  headers={"Retry-After": str(seconds)})

    # --- links ----------------------------------------------------------------------------------

    def _new_link(self, purpose: str, ttl: timedelta, account_id: int | None = None, email: str | None = None,
                  created_by: str | None = None) -> str:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        self.links.add(LinkRow(_hash(token), purpose, account_id, email, created_by, now, now + ttl))
        return token

    def live_link(self, token: str | None, purpose: str) -> LinkRow | None:
        if not token or len(token) > 128:
            return None
        return self.links.get(_hash(token), purpose, utcnow())

    def _take(self, token: str | None, purpose: str) -> LinkRow:
        row = self.links.take(_hash(token), purpose, utcnow()) if token and len(token) <= 128 else None
        if row is None:
            raise NotFound(INVALID_LINK)
        return row

    # --- sign-up --------------------------------------------------------------------------------

    def invite_for(self, token: str | None) -> LinkRow | None:
        return self.live_link(token, "invite")

    def join(self, username: str, email: str, password: str, invite: str | None = None) -> JoinResult:
        """Create a self-registered account (unverified), or tell an existing address's owner."""
        if self.policy == "closed":
            raise Forbidden("Sign-up is closed on this hub: ask its administrator for an account")
        invitation = self.invite_for(invite) if invite else None
        if self.policy == "invite" and invitation is None:
            raise Forbidden("Sign-up on this hub needs an invite link, and this one is missing, used or expired")
        self.accounts.require_names().check_available(username, signup=True)
        self.accounts.check_not_upstream(username)
        email = check_email(email)
        domain = email.rsplit("@", 1)[1].lower()
        allowed = self.settings.allowed_email_domains
        if allowed and domain not in allowed:
            raise BadRequest("Sign-up is limited to addresses at " + ", ".join(allowed))
        if invitation is not None and invitation.email and invitation.email.lower() != email.lower():
            raise Forbidden("This invite is for another e-mail address")
        passwords.check_new_password(password, username, email)
        status = "pending" if self.policy == "approval" and invitation is None else "active"
        if self.accounts.store.get_by_email(email) is not None:
            passwords.hash_password(password)  # the same work as a new account: timing tells nothing
            self.mail.send_mail(email, "Someone tried to create an account with your address",
                                f"Someone (perhaps you) tried to create an account named {username!r} with this "
                                f"address. You already have an account.\n\nSign in: {self.mail.link('/login')}\n"
                                f"Forgot your password? {self.mail.link('/password/reset')}\n\n"
                                "If it was not you, you can ignore this mail.\n")
            return JoinResult("pending" if status == "pending" else "verify")  # no account: never shown
        if invitation is not None:
            self._take(invite, "invite")  # single use: of two racing sign-ups only one gets it
        account = self.accounts.create_user(username, email=email, password=password, email_verified=False,
                                            status=status, signup=True, self_service=True)
        self.send_verification(account)
        return JoinResult(status if status == "pending" else "verify", account)

    def send_verification(self, account: Account) -> None:
        if not account.email or account.email_verified:
            return
        self.links.delete_for(account.id, "verify")  # only the newest link works
        token = self._new_link("verify", VERIFY_TTL, account.id, account.email)
        waiting = ("\n\nAn administrator will also review your request; we will mail you when it is approved."
                   if account.status == "pending" else "")
        self.mail.send_mail(account.email, "Verify your e-mail address",
                            f"Hello {account.name},\n\nconfirm that this address is yours by opening this link "
                            f"within 24 hours:\n\n{self.mail.link('/email/verify', token=token)}{waiting}\n\n"
                            "If you did not sign up, ignore this mail: nothing happens.\n")

    def verify_email(self, token: str | None) -> Account:
        row = self._take(token, "verify")
        account = self.accounts.store.get_by_id(row.account_id) if row.account_id else None
        if account is None or (account.email or "").lower() != (row.email or "").lower():
            raise NotFound(INVALID_LINK)  # the address changed since the link was sent
        self.accounts.store.update(account.id, email_verified=True)
        self.accounts.forget_cached()
        return self.accounts.reload(account.id)

    def approve(self, username: str) -> Account:
        """A site admin lets a pending sign-up in; the person is told by mail."""
        account = self.accounts.require(username, kind="user")
        if account.status != "pending":
            raise BadRequest(f"{account.name} is not waiting for approval")
        self.accounts.store.update(account.id, status="active")
        if account.email:
            self.mail.send_mail(account.email, "Your account was approved",
                                f"Hello {account.name},\n\nyour account was approved. Sign in: "
                                f"{self.mail.link('/login')}\n")
        return self.accounts.reload(account.id)

    # --- invites --------------------------------------------------------------------------------

    @staticmethod
    def may_invite(principal: Principal) -> bool:
        return principal.can_write_at_all and (principal.is_admin or "admin" in principal.org_roles.values())

    def create_invite(self, creator: Principal | None, email: str | None = None,
                      ttl: timedelta = DEFAULT_INVITE_TTL) -> str:
        """A sign-up link (valid under every policy but ``closed``); ``creator`` None is the admin
        CLI. Site admins and organisation admins may invite. With ``email``, only that address may
        use it, and it is mailed there."""
        if creator is not None and not self.may_invite(creator):
            raise Forbidden("Only site administrators and organisation administrators can invite")
        if email:
            email = check_email(email)
        if ttl <= timedelta(0) or ttl > timedelta(days=365):
            raise BadRequest("An invite lasts between 1 second and 365 days")
        token = self._new_link("invite", ttl, email=email, created_by=creator.name if creator else None)
        link = self.mail.link("/join", invite=token)
        if email:
            self.mail.send_mail(email, "You are invited to AI Commons",
                                f"You are invited to create an account on this AI Commons hub:\n\n{link}\n\n"
                                f"The link works once, until {(utcnow() + ttl).strftime('%Y-%m-%d %H:%M')} UTC.\n")
        return link

    def invites(self) -> list[LinkRow]:
        return self.links.list("invite", utcnow())

    # --- password reset -------------------------------------------------------------------------

    def request_reset(self, email: str) -> None:
        """Mail a reset link if ``email`` has an account; the caller answers the same either way."""
        try:
            email = check_email(email)
        except BadRequest:
            return
        account = self.accounts.store.get_by_email(email)
        if account is None or account.status != "active" or account.email is None:
            return
        self.links.delete_for(account.id, "reset")
        token = self._new_link("reset", RESET_TTL, account.id, account.email)
        self.mail.send_mail(account.email, "Reset your password",
                            f"Hello {account.name},\n\nto choose a new password, open this link within one hour:\n\n"
                            f"{self.mail.link('/password/reset', token=token)}\n\n"
                            "It works once, and signs you out everywhere. If you did not ask, ignore this mail.\n")

    def reset_password(self, token: str | None, password: str) -> Account:
        row = self.live_link(token, "reset")
        account = self.accounts.store.get_by_id(row.account_id) if row and row.account_id else None
        if account is None or row is None:
            raise NotFound(INVALID_LINK)
        passwords.check_new_password(password, account.name, account.email)  # a refusal keeps the link
        self._take(token, "reset")
        self.accounts.set_password(account.name, password)  # ends every session
        self.links.delete_for(account.id, "reset")
        if not account.email_verified and (account.email or "").lower() == (row.email or "").lower():
            self.accounts.store.update(account.id, email_verified=True)  # the mailbox is theirs
        return self.accounts.reload(account.id)
