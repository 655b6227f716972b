"""Names of users and organisations: who may take which name.

One namespace holds users and organisations, compared case-insensitively (``Alice`` and ``alice``
are one name). A name is available when it

- follows the character rules: for sign-up, the Hub's user-name rules (``check_username``: 2-42
  letters, digits and single hyphens, starting and ending with a letter or digit); accounts an admin
  creates may also use the wider repo-name characters (``_``, ``.``) as before;
- is not a path the app routes at the top level (``/api``, ``/join``, ``/settings``...). That list is
  derived from the route table itself (``aicommons.app.reserved_route_names``, given to
  ``NameService.reserve`` when the app or the CLI starts), so a route added later is reserved too;
- is not held by any account, user or organisation;
- is not retired: the name of a deleted or renamed user or organisation is never given to another
  account (the "namespace reuse" attack: whoever re-registers a deleted name can publish weights
  under model ids that pipelines still pull by name). ``retire_name`` records it; only the account
  that held it may take it back, and a site admin may release it (``aicommons name release``,
  audited). Retire a name *before* deleting or renaming the account row, so there is no moment at
  which it is free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aicommons.db.accounts import AccountStore
from aicommons.db.signup import RetiredName, RetiredNameStore
from aicommons.errors import BadRequest, Conflict
from aicommons.hub.names import RESERVED_NAMESPACES, check_namespace
from aicommons.times import utcnow

USERNAME_MIN, USERNAME_MAX = 2, 42
_USERNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9]))*")


def check_username(name: object) -> str:
    """The Hub's rules for a new user name (sign-up); BadRequest saying what is wrong."""
    if not isinstance(name, str) or not (USERNAME_MIN <= len(name) <= USERNAME_MAX) \
            or not name.isascii() or not _USERNAME_RE.fullmatch(name):
        raise BadRequest(f"Invalid user name {name!r}: use {USERNAME_MIN}-{USERNAME_MAX} letters, digits and "
                         "hyphens, starting and ending with a letter or digit, without '--'")
    return name


def top_level_names(paths: Iterable[str]) -> frozenset[str]:
    """The literal first segments of route paths, lower-cased: ``/api/{types}/...`` gives ``api``,
    ``/{ns}/{name}`` gives nothing."""
    names = set()
    for path in paths:
        first = path.lstrip("/").split("/", 1)[0]
        if first and "{" not in first:
            names.add(first.lower())
    return frozenset(names)


class NameService:
    def __init__(self, accounts: AccountStore, retired: RetiredNameStore):
        self.accounts = accounts
        self.retired = retired
        self._reserved: set[str] = set(RESERVED_NAMESPACES)

    def reserve(self, names: Iterable[str]) -> None:
        """Add names no account may take (the app's top-level routes)."""
        self._reserved.update(n.lower() for n in names)

    @property
    def reserved(self) -> frozenset[str]:
        return frozenset(self._reserved)

    def is_reserved(self, name: str) -> bool:
        return name.lower() in self._reserved

    def check_available(self, name: str, what: str = "user name", account_id: int | None = None,
                        signup: bool = False) -> str:
        """``name`` if a new account (or ``account_id``, renaming itself) may take it; else
        BadRequest (characters, reserved) or Conflict (held, retired)."""
        if signup:
            check_username(name)
        check_namespace(name, what)
        if self.is_reserved(name):
            raise BadRequest(f"Invalid {what} {name!r}: this name is reserved")
        holder = self.accounts.get(name)
        if holder is not None and holder.id != account_id:
            raise Conflict(f"The name {name!r} is already taken")
        retired = self.retired.get(name)
        if retired is not None and (account_id is None or retired.account_id != account_id):
            raise Conflict(f"The name {name!r} is not available: it belonged to an account that was deleted "
                           "or renamed, and is kept so that nobody can take over what it published")
        return name

    def retire_name(self, name: str, reason: str, account_id: int | None = None, kind: str | None = None) -> bool:
        """Make ``name`` unavailable to every other account for good; False if it already was."""
        if kind is None or account_id is None:
            holder = self.accounts.get(name)
            if holder is not None:
                kind = kind or holder.kind
                account_id = account_id if account_id is not None else holder.id
        return self.retired.add(name, kind or "user", account_id, reason, utcnow())

    def release(self, name: str) -> bool:
        """Give a retired name back to the pool (site admins only: the CLI); False if it was not retired."""
        return self.retired.delete(name)

    def retired_names(self) -> list[RetiredName]:
        return self.retired.list()
