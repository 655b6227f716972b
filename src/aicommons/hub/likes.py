"""Likes: who likes a repo, which repos a user likes (as far as the caller may see them)."""

from __future__ import annotations

from aicommons.db.likes import LikeStore
from aicommons.db.repos import RepoRow, RepoStore
from aicommons.errors import NotFound
from aicommons.hub.access import Principal
from aicommons.hub.accounts import AccountService
from aicommons.hub.policy import Action, Policy
from aicommons.times import utcnow


class LikeService:
    def __init__(self, store: LikeStore, repos: RepoStore, accounts: AccountService, policy: Policy):
        self.store = store
        self.repos = repos
        self.accounts = accounts
        self.policy = policy

    def set(self, principal: Principal, repo: RepoRow, liked: bool) -> None:
        """Like or unlike ``repo``: the caller found it with ``Action.PARTICIPATE``."""
        self.policy.check(principal, repo, Action.PARTICIPATE)  # so a signed-in account
        assert principal.account is not None
        self.store.set(principal.account.id, repo.id, liked, utcnow())

    def likers(self, repo: RepoRow) -> list[tuple[str, str]]:
        """(name, full name) of the users who like ``repo``, oldest like first."""
        return self.store.likers(repo.id)

    def likes(self, principal: Principal, repo: RepoRow) -> bool:
        """Whether the caller likes ``repo``."""
        return principal.account is not None and repo.id in self.store.liked_repo_ids(principal.account.id)

    def liked_by(self, principal: Principal, user_name: str) -> list[RepoRow]:
        """The repos user ``user_name`` likes that the caller may see, newest like first."""
        account = self.accounts.find(user_name)
        if account is None:
            raise NotFound(f"No user named {user_name!r}")
        # One query for all the liked repos (not one per like), then the policy on each.
        return [r for r in self.repos.liked_by(account.id) if self.policy.allows(principal, r, Action.READ_METADATA)]
