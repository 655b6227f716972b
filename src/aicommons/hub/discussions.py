"""Discussions and pull requests.

A pull request is a discussion whose changes live on the git ref ``refs/pr/{num}``, started from
the head of its target branch. Anyone who can read a repo (and is signed in) may open one and push
commits to their own PR (through the API or with ``git push``: ``check_can_commit``); only writers
of the repo merge. Merging is a real git three-way merge.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pygit2

from aicommons.db.discussions import DiscussionRow, DiscussionStore, EventRow
from aicommons.db.repos import RepoRow
from aicommons.errors import BadRequest, Conflict, Forbidden, HubError, NotFound, RevisionNotFound
from aicommons.gitrepo import GitStore, RefUpdateConflict, commit_address, commit_at, tree_at
from aicommons.hub.access import Principal
from aicommons.hub.names import pr_number
from aicommons.hub.policy import Action
from aicommons.hub.pr_diffs import PrDiffCache, bounded_patch
from aicommons.hub.repos import DEFAULT_BRANCH, RepoService
from aicommons.times import iso_z, utcnow

__all__ = ["DiscussionRow", "DiscussionService", "EventRow", "pr_ref"]  # the doors take the row types from here

OPEN_STATES = ("open", "draft")


def pr_ref(num: int) -> str:
    return f"refs/pr/{num}"


class DiscussionService:
    def __init__(self, store: DiscussionStore, repos: RepoService, git: GitStore):
        self.store = store
        self.repos = repos
        self.git = git
        self.diffs = PrDiffCache()

    # --- access -----------------------------------------------------------------------------------

    @staticmethod
    def _require_signed_in(principal: Principal) -> None:
        if principal.is_anonymous:
            raise HubError("You must be signed in to take part in discussions", status=401)
        if not principal.can_write_at_all:
            raise Forbidden(principal.read_only_reason("take part in discussions"))

    def _require_author_or_writer(self, repo: RepoRow, discussion_author_id: int | None, principal: Principal,
                                  what: str = "do this") -> None:
        if self.repos.policy.allows(principal, repo, Action.WRITE):
            return
        if principal.account is None or principal.user.id != discussion_author_id:
            raise Forbidden(f"Only the author or a maintainer of the repo can {what}")

    def page(self, repo: RepoRow, *, is_pull_request: bool | None = None, statuses: tuple[str, ...] | None = None,
             author: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[DiscussionRow], int]:
        """A page of ``repo``'s discussions, newest first, and how many match in all. The caller
        found ``repo`` with ``Action.READ_METADATA``."""
        return self.store.list(repo.id, is_pull_request=is_pull_request, statuses=statuses, author=author,
                               offset=offset, limit=limit)

    def events(self, discussion: DiscussionRow) -> list[EventRow]:
        """A discussion's events (comments, status and title changes, commits), oldest first."""
        return self.store.events(discussion.id)

    def _event(self, discussion_id: int, event_id: str) -> EventRow:
        event = self.store.event(discussion_id, event_id)
        if event is None:
            raise NotFound(f"Event {event_id} does not exist")
        return event

    def get(self, repo: RepoRow, num: int) -> DiscussionRow:
        discussion = self.store.get(repo.id, num)
        if discussion is None:
            raise NotFound(f"Discussion {num} does not exist")
        return discussion

    # --- opening --------------------------------------------------------------------------------

    @staticmethod
    def _check_title(title: object) -> str:
        if not isinstance(title, str) or not 3 <= len(title.strip()) <= 200:
            raise BadRequest("The title must be 3 to 200 characters long")
        return title.strip()

    def open(self, repo: RepoRow, principal: Principal, title: str, description: str,
             pull_request: bool, base: str = DEFAULT_BRANCH, status: str | None = None,
             start_sha: str | None = None) -> DiscussionRow:
        """Open a discussion, or a PR whose ref starts at ``start_sha`` (default: the base's head)."""
        self._require_signed_in(principal)
        self.repos.policy.check(principal, repo, Action.CONTRIBUTE if pull_request else Action.PARTICIPATE)
        title = self._check_title(title)
        target = None
        if pull_request:
            git_repo = self.git.open(repo.storage_key)
            base_ref = base if base.startswith("refs/heads/") else f"refs/heads/{base}"
            found = git_repo.references.get(base_ref)
            if found is None:
                from aicommons.errors import RevisionNotFound

                raise RevisionNotFound(f"Invalid rev id: {base}")
            target, start_sha = base_ref, start_sha or str(found.peel(pygit2.Commit).id)
        now = utcnow()
        discussion = self.store.create(repo.id, principal.user.id, title,
                                       status or ("draft" if pull_request else "open"), pull_request, target, now)
        if pull_request and start_sha is not None:  # (always set for a pull request, above)
            self.git.update_ref(repo.storage_key, pr_ref(discussion.num), start_sha, None)
        self.store.add_event(discussion.id, "comment", principal.user.id, _comment_data(description, now), now)
        self.repos.events.discussion("create", repo, discussion)
        return discussion

    # --- events ---------------------------------------------------------------------------------

    def comment(self, repo: RepoRow, principal: Principal, num: int, text: object) -> EventRow:
        self._require_signed_in(principal)
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("The comment must not be empty")
        discussion = self.get(repo, num)
        now = utcnow()
        event_id = self.store.add_event(discussion.id, "comment", principal.user.id, _comment_data(text, now), now)
        event = self._event(discussion.id, event_id)
        self.repos.events.comment("create", repo, discussion, event)
        return event

    def rename(self, repo: RepoRow, principal: Principal, num: int, title: object) -> EventRow:
        self._require_signed_in(principal)
        discussion = self.get(repo, num)
        self._require_author_or_writer(repo, discussion.author_id, principal)
        title = self._check_title(title)
        self.store.update(discussion.id, title=title)
        now = utcnow()
        event_id = self.store.add_event(discussion.id, "title-change", principal.user.id,
                                        {"from": discussion.title, "to": title}, now)
        self.repos.events.discussion("update", repo, self.get(repo, num))
        return self._event(discussion.id, event_id)

    def change_status(self, repo: RepoRow, principal: Principal, num: int, status: object,
                      comment: str | None) -> EventRow:
        self._require_signed_in(principal)
        if status not in ("open", "closed"):
            raise BadRequest("The status must be 'open' or 'closed'")
        discussion = self.get(repo, num)
        self._require_author_or_writer(repo, discussion.author_id, principal)
        if discussion.status == "merged":
            raise BadRequest("A merged pull request cannot change status")
        return self._set_status(discussion, principal, status, comment)

    def _set_status(self, discussion: DiscussionRow, principal: Principal, status: str, comment: str | None) -> EventRow:
        now = utcnow()
        self.store.update(discussion.id, status=status)
        if comment and comment.strip():
            self.store.add_event(discussion.id, "comment", principal.user.id, _comment_data(comment, now), now)
        event_id = self.store.add_event(discussion.id, "status-change", principal.user.id, {"status": status}, now)
        repo = self.repos.store.get_by_id(discussion.repo_id)
        if repo is not None:
            self.repos.events.discussion("update", repo, self.get(repo, discussion.num))
        return self._event(discussion.id, event_id)

    def edit_comment(self, repo: RepoRow, principal: Principal, num: int, event_id: str, text: object) -> EventRow:
        self._require_signed_in(principal)
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("The comment must not be empty")
        discussion = self.get(repo, num)
        event = self.store.event(discussion.id, event_id)
        if event is None or event.type != "comment":
            raise NotFound(f"Comment {event_id} does not exist")
        if principal.user.id != event.author_id:
            raise Forbidden("Only the author of a comment can edit it")
        now = utcnow()
        data = dict(event.data)
        data["history"] = [data["latest"], *data.get("history", [])]
        data["latest"] = _comment_data(text, now)["latest"]
        data["edited"] = True
        self.store.update_event(event.id, data)
        event = self._event(discussion.id, event.id)
        self.repos.events.comment("update", repo, discussion, event)
        return event

    def hide_comment(self, repo: RepoRow, principal: Principal, num: int, event_id: str) -> EventRow:
        self._require_signed_in(principal)
        discussion = self.get(repo, num)
        event = self.store.event(discussion.id, event_id)
        if event is None or event.type != "comment":
            raise NotFound(f"Comment {event_id} does not exist")
        self._require_author_or_writer(repo, event.author_id, principal)
        data = dict(event.data, hidden=True, history=[])
        data["latest"] = dict(data["latest"], raw="", html="")
        self.store.update_event(event.id, data)
        event = self._event(discussion.id, event.id)
        self.repos.events.comment("update", repo, discussion, event, hidden=True)
        return event

    # --- pull requests --------------------------------------------------------------------------

    def check_can_commit(self, repo: RepoRow, principal: Principal, ref: str) -> None:
        """Commits to ``refs/pr/N`` need a contributor (``Action.CONTRIBUTE``) who is the PR's author,
        or a writer, and an open PR. The one rule of both doors: API commits (``api/commits.py``) and
        git pushes by a non-writer (``hub/push.py``)."""
        self.repos.policy.check(principal, repo, Action.CONTRIBUTE)
        num = pr_number(ref)
        if num is None:
            raise RevisionNotFound(f"Invalid rev id: {ref}")
        discussion = self.get(repo, num)
        if not discussion.is_pull_request:
            raise RevisionNotFound(f"Invalid rev id: {ref}")
        self._require_author_or_writer(repo, discussion.author_id, principal, f"commit to pull request {num}")
        if discussion.status not in OPEN_STATES:
            raise BadRequest(f"Pull request {num} is {discussion.status}: commits are refused")

    def record_commit(self, repo: RepoRow, ref: str, oid: str, summary: str, author_id: int) -> None:
        num = pr_number(ref)
        if num is None:
            return
        discussion = self.store.get(repo.id, num)
        if discussion is not None:
            now = utcnow()
            self.store.add_event(discussion.id, "commit", author_id, {"subject": summary, "oid": oid}, now)

    def conflicts(self, repo: RepoRow, discussion: DiscussionRow) -> list[str]:
        merged, _, _ = self._merge_index(repo, discussion)
        return sorted({(c[0] or c[1] or c[2]).path for c in merged.conflicts}) if merged.conflicts else []

    def _merge_index(self, repo: RepoRow,
                     discussion: DiscussionRow) -> tuple[pygit2.Index, pygit2.Commit, pygit2.Commit]:
        git_repo = self.git.open(repo.storage_key)
        base = git_repo.references[_target(discussion)].peel(pygit2.Commit)
        head = git_repo.references[pr_ref(discussion.num)].peel(pygit2.Commit)
        ancestor_id = git_repo.merge_base(base.id, head.id)
        ancestor = commit_at(git_repo, ancestor_id).tree if ancestor_id else tree_at(git_repo, git_repo.TreeBuilder().write())
        return git_repo.merge_trees(ancestor, base.tree, head.tree), base, head

    def diff(self, repo: RepoRow, discussion: DiscussionRow) -> str:
        """The PR's changes since its merge base, bounded and cached (``hub/pr_diffs.py``). A merged
        PR's are those it brought: against the branch as it was when merged (the merge commit's
        first parent), not the branch now, which holds them."""
        git_repo = self.git.open(repo.storage_key)
        merged = git_repo.get(discussion.merge_commit_id) if discussion.merge_commit_id else None
        if isinstance(merged, pygit2.Commit) and merged.parent_ids:
            base = commit_at(git_repo, merged.parent_ids[0])
        else:
            base = git_repo.references[_target(discussion)].peel(pygit2.Commit)
        head = git_repo.references[pr_ref(discussion.num)].peel(pygit2.Commit)
        ancestor_id = git_repo.merge_base(base.id, head.id) or base.id
        key = (repo.storage_key, str(ancestor_id), str(head.id))
        return self.diffs.get(key, lambda: bounded_patch(git_repo, commit_at(git_repo, ancestor_id), head))

    def merge(self, repo: RepoRow, principal: Principal, num: int, comment: str | None) -> str:
        if not self.repos.policy.allows(principal, repo, Action.WRITE):
            raise Forbidden("Only maintainers of the repo can merge pull requests")
        discussion = self.get(repo, num)
        if not discussion.is_pull_request:
            raise BadRequest(f"Discussion {num} is not a pull request")
        if discussion.status not in OPEN_STATES:
            raise BadRequest(f"Pull request {num} is {discussion.status}")
        git_repo = self.git.open(repo.storage_key)
        index, base, head = self._merge_index(repo, discussion)
        if index.conflicts:
            files = sorted({(c[0] or c[1] or c[2]).path for c in index.conflicts})
            raise Conflict(f"The pull request has conflicts with {discussion.target_branch}: {', '.join(files)}")
        tree = index.write_tree(git_repo)
        target = _target(discussion)
        message = f"Merge pull request #{num}: {discussion.title}\n"
        oid = self.git.write_commit(git_repo, str(tree), [str(base.id), str(head.id)], message,
                                    principal.user.name, commit_address(principal.user.name), when=int(time.time()))
        try:
            self.git.update_ref(repo.storage_key, target, oid, str(base.id))
        except RefUpdateConflict:
            raise Conflict("The target branch moved during the merge; try again") from None
        self.repos.after_ref_update(repo, target, oid, str(base.id))
        self.store.update(discussion.id, merge_commit_id=oid)
        self._set_status(discussion, principal, "merged", comment)
        return oid


def _comment_data(text: str, now: datetime) -> dict[str, Any]:
    stamp = iso_z(now)
    return {"edited": False, "hidden": False, "numEdits": 0, "history": [],
            "latest": {"raw": text, "html": _escape(text), "updatedAt": stamp}}


def _escape(text: str) -> str:
    import html

    return "<p>" + html.escape(text) + "</p>"


def _target(discussion: DiscussionRow) -> str:
    """The branch a pull request merges into."""
    if discussion.target_branch is None:
        raise BadRequest(f"Discussion {discussion.num} is not a pull request")
    return discussion.target_branch
