"""First run: the one-time ``/setup`` link that creates the first site admin.

While no site admin exists, ``aicommons serve`` makes a random token, keeps it in
``<DATA_DIR>/setup-token`` (0600) and prints ``<public url>/setup?token=<token>``. ``/setup``
answers 404 without the right token (nobody racing the operator to a fresh public server can take
it over) and, like the link, for good once an admin exists. The page's form creates the admin
(username, e-mail, password; verified) and signs it in. ``aicommons user create --admin`` works
headless as before and ends the setup too.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from aicommons.db.accounts import Account
from aicommons.errors import NotFound
from aicommons.hub import passwords
from aicommons.hub.accounts import AccountService
from aicommons.hub.private_files import make_private, write_private_file

TOKEN_FILE = "setup-token"


class FirstRun:
    def __init__(self, data_dir: Path, accounts: AccountService):
        self.path = data_dir / TOKEN_FILE
        self.accounts = accounts

    def needed(self) -> bool:
        return not self.accounts.store.any_admin()

    def token(self) -> str | None:
        """The setup token (made now if there is none yet) while no admin exists; else None, and
        a leftover token file is removed."""
        if not self.needed():
            self.path.unlink(missing_ok=True)
            return None
        if not self.path.exists():
            write_private_file(self.path, secrets.token_urlsafe(32))
        make_private(self.path)
        return self.path.read_text().strip()

    def check(self, token: str | None) -> None:
        """404 unless ``token`` is the live setup token."""
        try:
            expected = self.path.read_text().strip()
        except OSError:
            expected = ""
        if not token or not expected or not hmac.compare_digest(token.encode(), expected.encode()) \
                or not self.needed():
            raise NotFound("Not Found")

    def complete(self, token: str, username: str, email: str, password: str) -> Account:
        """Create the first admin. Everything is checked first; then the token file is removed (only
        one of two racing requests can), and the account made."""
        from aicommons.hub.signup import check_email

        self.check(token)
        self.accounts.require_names().check_available(username, signup=True)
        email = check_email(email)
        passwords.check_new_password(password, username, email)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            raise NotFound("Not Found") from None
        try:
            return self.accounts.create_user(username, email=email, password=password, is_admin=True)
        except BaseException:
            write_private_file(self.path, token)  # nothing was made: the link still works
            raise
