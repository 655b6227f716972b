"""What a signed-in user changes about their own account on ``/settings/account``: the password
(the current one required; every other session ends) and their web sessions (listed, ended one by
one). E-mail changes live in ``hub/email_change.py``."""

from __future__ import annotations

from aicommons.db.accounts import Account
from aicommons.db.sessions import SessionRow
from aicommons.errors import BadRequest, Unauthorized
from aicommons.hub import passwords
from aicommons.hub.accounts import AccountService
from aicommons.hub.sessions import SessionService


class AccountSettings:
    def __init__(self, accounts: AccountService, sessions: SessionService):
        self.accounts = accounts
        self.sessions = sessions

    def confirm_password(self, user: Account, password: str, ip: str | None) -> None:
        """The user's own password again, for a change that needs it: BadRequest when wrong (throttled and
        audited like any refused sign-in: ``principal_for_password``)."""
        try:
            self.accounts.principal_for_password(user.name, password or "", ip=ip, via="web")
        except Unauthorized:
            raise BadRequest("The current password is not right") from None

    def change_password(self, user: Account, current: str, new: str, session_id: str | None,
                        ip: str | None) -> int:
        """Set a new password; every other web session ends (this one stays). The number ended."""
        self.confirm_password(user, current, ip)
        passwords.check_new_password(new, user.name, user.email)
        self.accounts.store.set_password_hash(user.id, passwords.hash_password(new))
        return self.sessions.end_others(user.id, session_id)  # tokens are not passwords: they stay

    def sessions_of(self, user: Account, session_id: str | None) -> list[tuple[SessionRow, bool]]:
        """The user's live sessions, each with whether it is the one asking."""
        mine = self.sessions.hash_of(session_id)
        return [(row, row.id_hash == mine) for row in self.sessions.list(user.id)]

    def end_session(self, user: Account, id_hash: str) -> bool:
        return self.sessions.end_one(user.id, id_hash)
