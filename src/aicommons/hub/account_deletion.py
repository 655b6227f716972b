"""Deleting a user account: by its owner (``/settings/account``, password again), by a site admin
(``/admin``) or on the server (``aicommons user delete``).

1. Every repo of the user is first deleted or transferred to an organisation where the user is an
   admin (their choice, per repo); nothing happens unless every choice is valid.
2. The account row goes in one transaction (``db/account_removal.py``): tokens, web sessions,
   memberships, likes and access requests with it, so every credential is dead on the next request
   in this process (the token cache is emptied; other processes: within ``TOKEN_CACHE_SECONDS``,
   and a deleted token is unknown to the database at once). Discussions and comments stay, under
   the "deleted user" placeholder.
3. The name is retired (``retire_name``): no one else can ever register it, so model ids under it
   that pipelines still pull by name cannot be taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aicommons.db.account_removal import AccountRemovalStore, StillOwnsRepos
from aicommons.db.accounts import Account
from aicommons.db.repos import RepoRow, RepoStore
from aicommons.errors import BadRequest, Conflict
from aicommons.hub.accounts import AccountService
from aicommons.hub.repos import RepoService

DELETE = "delete"


@dataclass(frozen=True)
class DeletionPlan:
    user: Account
    repos: list[RepoRow]
    admin_orgs: list[str]  # organisations the repos may be transferred to


def repo_key(repo: RepoRow) -> str:
    """How a form or the CLI names one repo of the plan: ``type:namespace/name``."""
    return f"{repo.type}:{repo.full_id}"


class AccountDeletion:
    def __init__(self, accounts: AccountService, repos: RepoService, repo_store: RepoStore,
                 removal: AccountRemovalStore, retire_name: Callable[[str, str], object] | None = None):
        self.accounts = accounts
        self.repos = repos
        self.repo_store = repo_store
        self.removal = removal
        self.retire_name = retire_name  # the name module's retire_name(name, reason)

    def plan(self, user_name: str) -> DeletionPlan:
        user = self.accounts.require(user_name, kind="user")
        orgs = [org.name for org, role in self.accounts.store.orgs_of(user.id) if role == "admin"]
        return DeletionPlan(user, self.repo_store.owned_by(user.id), orgs)

    def delete(self, user_name: str, dispositions: dict[str, str], reason: str) -> Account:
        """Delete the user; ``dispositions`` maps each repo's ``repo_key`` to ``"delete"`` or the name
        of an organisation where the user is an admin. Every repo needs one."""
        plan = self.plan(user_name)
        moves = self._checked(plan, dispositions)
        principal = self.accounts.principal_for_account(plan.user)  # the owner's own rights
        for repo, target in moves:
            if target == DELETE:
                self.repos.delete(principal, repo.type, repo.full_id)
            else:
                self.repos.move(principal, repo.type, repo.full_id, f"{target}/{repo.name}")
        if self.retire_name is not None:  # first, so that the name is never free for a moment
            self.retire_name(plan.user.name, reason)
        try:
            self.removal.remove(plan.user.id)
        except StillOwnsRepos:
            raise Conflict(f"{plan.user.name} created a repo meanwhile: try again") from None
        self.accounts.end_sessions(plan.user.id)  # empties the token cache of this process
        return plan.user

    def _checked(self, plan: DeletionPlan, dispositions: dict[str, str]) -> list[tuple[RepoRow, str]]:
        moves, problems = [], []
        for repo in plan.repos:
            target = dispositions.get(repo_key(repo), "")
            if target == DELETE:
                moves.append((repo, target))
            elif target.lower() in (o.lower() for o in plan.admin_orgs):
                org = next(o for o in plan.admin_orgs if o.lower() == target.lower())
                if self.repo_store.get(repo.type, f"{org}/{repo.name}") is not None:
                    problems.append(f"{org}/{repo.name} already exists")
                moves.append((repo, org))
            elif not target:
                problems.append(f"say what happens to {repo.full_id} ({repo.type}): delete it or transfer it")
            else:
                problems.append(f"{repo.full_id} cannot go to {target!r}: only to an organization where "
                                f"{plan.user.name} is an admin")
        if problems:
            raise BadRequest("The account still owns repos: " + "; ".join(problems))
        return moves
