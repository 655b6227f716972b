"""Branches, tags, pull-request refs, history listing and squashing."""

from __future__ import annotations

import time
from typing import Any

import pygit2

from aicommons.db.repos import RepoRow
from aicommons.errors import Conflict, Forbidden, RepoNotFound, RevisionNotFound
from aicommons.gitrepo import GitStore, RefUpdateConflict, commit_address
from aicommons.hub import content
from aicommons.hub.access import Principal
from aicommons.hub.names import check_branch_name, check_revision, check_tag_name
from aicommons.hub.repos import DEFAULT_BRANCH, RepoService


class RefService:
    def __init__(self, repos: RepoService, git: GitStore):
        self.repos = repos
        self.git = git

    def list_refs(self, repo: RepoRow, include_prs: bool) -> dict[str, Any]:
        git_repo = self.git.open(repo.storage_key)
        out: dict[str, list[dict[str, Any]]] = {"branches": [], "converts": [], "tags": []}
        if include_prs:
            out["pullRequests"] = []
        for name in git_repo.references:
            ref = git_repo.references[name]
            target = str(ref.peel(pygit2.Commit).id)
            if name.startswith("refs/heads/"):
                out["branches"].append({"name": name[len("refs/heads/"):], "ref": name, "targetCommit": target})
            elif name.startswith("refs/tags/"):
                out["tags"].append({"name": name[len("refs/tags/"):], "ref": name, "targetCommit": target})
            elif name.startswith("refs/convert/"):
                out["converts"].append({"name": name[len("refs/convert/"):], "ref": name, "targetCommit": target})
            elif include_prs and name.startswith("refs/pr/"):
                out["pullRequests"].append({"name": name[len("refs/pr/"):], "ref": name, "targetCommit": target})
        return out

    def create_branch(self, repo: RepoRow, branch: str, starting_point: str | None) -> None:
        check_branch_name(branch)
        git_repo = self.git.open(repo.storage_key)
        ref = f"refs/heads/{branch}"
        if git_repo.references.get(ref) is not None:
            raise Conflict(f"Reference {ref} already exists")
        start = content.resolve_revision(git_repo, starting_point or DEFAULT_BRANCH)
        try:
            self.git.update_ref(repo.storage_key, ref, str(start.id), None)
        except RefUpdateConflict:
            raise Conflict(f"Reference {ref} already exists") from None
        self.repos.after_ref_update(repo, ref, str(start.id), None)

    def delete_branch(self, repo: RepoRow, branch: str) -> None:
        ref = f"refs/heads/{branch}"
        if branch == DEFAULT_BRANCH:
            raise Forbidden(f"Cannot delete {ref}")
        self._delete_ref(repo, ref, branch)

    def create_tag(self, repo: RepoRow, principal: Principal, revision: str, tag: str, message: str | None) -> None:
        git_repo = self.git.open(repo.storage_key)
        target = content.resolve_revision(git_repo, revision)
        check_tag_name(tag)
        ref = f"refs/tags/{tag}"
        if git_repo.references.get(ref) is not None:
            raise Conflict(f"Tag {tag} already exists")
        oid = str(target.id)
        if message:
            sig = pygit2.Signature(principal.user.name, commit_address(principal.user.name),
                                   int(time.time()), 0)
            # An annotated tag: libgit2 writes the tag object and its ref together.
            git_repo.create_tag(tag, target.id, pygit2.enums.ObjectType.COMMIT, sig, message)
            self.repos.after_ref_update(repo, ref, oid, None)
            return
        try:
            self.git.update_ref(repo.storage_key, ref, oid, None)
        except RefUpdateConflict:
            raise Conflict(f"Tag {tag} already exists") from None
        self.repos.after_ref_update(repo, ref, oid, None)

    def delete_tag(self, repo: RepoRow, tag: str) -> None:
        self._delete_ref(repo, f"refs/tags/{tag}", tag)

    def _delete_ref(self, repo: RepoRow, ref: str, name: str) -> None:
        git_repo = self.git.open(repo.storage_key)
        current = _lookup(git_repo, ref)
        if current is None:
            raise RevisionNotFound(f"Invalid rev id: {name}")
        try:
            self.git.delete_ref(repo.storage_key, ref, str(current.target))
        except RefUpdateConflict as exc:
            raise Conflict(str(exc)) from None
        self.repos.after_ref_update(repo, ref, None, str(current.target))

    def squash(self, repo: RepoRow, principal: Principal, branch: str, message: str | None) -> str:
        """Replace the history of ``branch`` by one commit with the same tree."""
        git_repo = self.git.open(repo.storage_key)
        ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
        current = _lookup(git_repo, ref)
        if current is None:
            raise RevisionNotFound(f"Invalid rev id: {branch}")
        head = current.peel(pygit2.Commit)
        oid = self.git.write_commit(git_repo, str(head.tree.id), [], (message or "Super-squash branch") + "\n",
                                    principal.user.name, commit_address(principal.user.name), when=int(time.time()))
        try:
            self.git.update_ref(repo.storage_key, ref, oid, str(head.id))
        except RefUpdateConflict:
            raise Conflict("The branch was updated during the squash; try again") from None
        self.repos.after_ref_update(repo, ref, oid, str(head.id))
        return oid

    def resolve(self, repo: RepoRow, revision: str) -> tuple[pygit2.Repository, pygit2.Commit]:
        try:
            git_repo = self.git.open(repo.storage_key)
        except pygit2.GitError:
            if self.git.path(repo.storage_key).exists():
                raise
            # Deleted between finding its row and opening it (the row goes first): as any missing repo.
            raise RepoNotFound("Repository not found") from None
        check_revision(revision)
        return git_repo, content.resolve_revision(git_repo, revision)


def _lookup(git_repo: pygit2.Repository, ref: str) -> pygit2.Reference | None:
    """The reference, or None also for a name no reference can have (libgit2 raises on those)."""
    try:
        return git_repo.references.get(ref)
    except (pygit2.InvalidSpecError, ValueError):
        return None
