"""Changing one's e-mail address (``/settings/account``).

The new address must be proven: the user gives their password and the new address; a single-use
link (24 h, only its sha256 stored) goes to the new address, and only following it changes the
account's address. Then the old address is told, so that someone who took over a session cannot
quietly move the account's mail (and with it password resets) elsewhere. If the new address
already belongs to another account, the form answers exactly as usual and that address's owner gets
a mail saying so instead of a link: the form never tells who has an account.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from aicommons.db.accounts import Account
from aicommons.db.email_changes import EmailChangeStore
from aicommons.errors import BadRequest, NotFound
from aicommons.hub.account_settings import AccountSettings
from aicommons.hub.accounts import AccountService
from aicommons.hub.mail import Mailer
from aicommons.hub.signup import check_email
from aicommons.times import utcnow

LINK_TTL = timedelta(hours=24)
INVALID_LINK = "This link is not valid: it was used already, replaced by a newer one, or it expired"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EmailChanges:
    def __init__(self, accounts: AccountService, settings: AccountSettings, store: EmailChangeStore, mail: Mailer):
        self.accounts = accounts
        self.settings = settings
        self.store = store
        self.mail = mail

    def request(self, user: Account, new_email: str, password: str, ip: str | None) -> str:
        """Mail a confirmation link to ``new_email``; returns the address (as it will be stored)."""
        self.settings.confirm_password(user, password, ip)
        new_email = check_email(new_email)
        if user.email and new_email.lower() == user.email.lower():
            raise BadRequest("This is already your e-mail address")
        holder = self.accounts.store.get_by_email(new_email)
        if holder is not None:  # same answer to the form; its owner learns of the attempt
            self.mail.send_mail(new_email, "Someone tried to use your address on AI Commons",
                                f"Someone signed in as {user.name} asked to use this address for their account.\n"
                                "It already belongs to an account, so nothing was changed.\n")
            return new_email
        token = secrets.token_urlsafe(32)
        self.store.replace(user.id, _hash(token), new_email, utcnow() + LINK_TTL)
        self.mail.send_mail(new_email, "Confirm your new e-mail address",
                            f"Hello {user.name},\n\nto use this address for your AI Commons account, open:\n\n"
                            f"{self.mail.link('/settings/email/confirm', token=token)}\n\n"
                            "The link works once, for 24 hours. If you did not ask for this, ignore this mail.\n")
        return new_email

    def pending(self, token: str | None) -> str:
        """The new address a live link would set (shown before confirming), else NotFound."""
        change = self.store.peek(_hash(token)) if token and len(token) <= 128 else None
        if change is None or change.expires_at <= utcnow():
            raise NotFound(INVALID_LINK)
        return change.new_email

    def confirm(self, token: str | None) -> Account:
        change = self.store.take(_hash(token)) if token and len(token) <= 128 else None
        if change is None or change.expires_at <= utcnow():
            raise NotFound(INVALID_LINK)
        user = self.accounts.store.get_by_id(change.user_id)
        if user is None:
            raise NotFound(INVALID_LINK)
        holder = self.accounts.store.get_by_email(change.new_email)
        if holder is not None and holder.id != user.id:
            raise BadRequest("This address now belongs to another account")
        self.accounts.store.update(user.id, email=change.new_email, email_verified=True)
        self.accounts.forget_cached()
        if user.email:
            self.mail.send_mail(user.email, "Your e-mail address was changed",
                                f"Hello {user.name},\n\nthe e-mail address of your AI Commons account was changed "
                                f"from this one to {change.new_email}.\nIf you did not do this, reset your password "
                                f"now ({self.mail.link('/password/reset')}) and tell the site's administrators.\n")
        changed = self.accounts.store.get_by_id(user.id)
        if changed is None:
            raise NotFound("This account no longer exists")
        return changed
