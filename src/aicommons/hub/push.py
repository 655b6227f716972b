"""The domain side of ``git push``: check a push before it lands, record it once it has.

Git's receive-pack keeps the pushed objects in a quarantine directory and runs our pre-receive
hook (``api/git_hook.py``) with the proposed ref updates; the hook calls ``PushService.check``. If
the check raises, git refuses every ref and deletes the quarantine, so a rejected push leaves no
trace. If it passes, the hook saves a ``PushPlan`` (the updates and the LFS files they add) and the
server calls ``PushService.record`` once git has moved the refs. A server that dies in between
leaves the plan file behind; ``PushService.recover`` records such pushes when the hub starts again.

The rules are those of the commit API, plus the ones only git can break:
- only ``refs/heads/*`` and ``refs/tags/*`` with valid names, and updates of ``refs/pr/N`` while pull
  request N is open (as on the Hub: fetch it, commit, push it back); the hub creates and deletes
  ``refs/pr/*`` and ``refs/convert/*`` (pull requests, conversions);
- ``main`` cannot be deleted. Force pushes are allowed, as on the Hub (squashing history or
  removing a leaked secret needs them), and so are deleting other branches and moving tags;
- a pusher without write access to the repo (a contributor: ``api/git_http.py`` decided) may only
  update ``refs/pr/N`` of open pull requests they opened, by the rule the commit API applies to
  commits to a pull request (``DiscussionService.check_can_commit``); one other ref refuses the
  whole push. Their force pushes to their own pull request are allowed, as a writer's are;
- such a pusher may not bring back what a rewrite removed (``OrphanGuard``): a commit of their push
  that the repository held before it (in its object store, not in the quarantine) but no ref reaches
  refuses the push, and so does a file whose blob is such a leftover, or an LFS pointer to an object
  that a commit of the repo named once and no ref's history names now (``LfsService.orphaned``;
  the commit API applies that one too: hub/commits.py). Otherwise a contributor who
  knew an old commit id (from an earlier clone, a link) could point their pull request at a commit
  the owner force-pushed away, or build on it, and make its files readable until GC purged them.
  "Reached by a ref" means any ref: every ref (branches, tags, every pull request's and
  conversion's ref) is advertised to and fetchable by whoever may read the repo, so a commit one
  reaches is no secret from the pusher. Writers may restore old commits (deliberately, say);
- branches point at commits, tags at commits or at annotated tags of commits;
- every file a new commit adds or changes has a valid path (``check_file_path``), is a regular or
  executable file (no symlinks, no submodules), and is either at most ``max_regular_bytes`` or an
  LFS pointer to an object uploaded to this repo with the same size.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from aicommons.db.repos import RepoRow, RepoStore
from aicommons.errors import BadRequest, Forbidden, HubError
from aicommons.gitrepo import GitStore, blob_at, commit_at
from aicommons.gitrepo.store import extends
from aicommons.hub.access import Principal
from aicommons.hub.discussions import OPEN_STATES
from aicommons.hub.gitattributes import MAX_POINTER_SIZE, parse_pointer
from aicommons.hub.lfs import LfsService
from aicommons.hub.names import check_branch_name, check_file_path, check_tag_name, pr_number
from aicommons.hub.reachability import GONE_FROM_HISTORY, reachable_objects
from aicommons.hub.repos import DEFAULT_BRANCH, RepoService
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.hub import Hub

ZERO_OID = "0" * 40
FILE_MODES = (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE)
LfsFile = tuple[str, str, int]  # (oid, path, size), as RepoStore.mark_lfs_committed takes them
# A plan whose refs did not land is kept this long: its push may still be running on another replica
# sharing the folder (git moves the refs right after the hook, so this is generous).
UNLANDED_PLAN_GRACE_S = 600
log = logging.getLogger("aicommons.push")


@dataclass(frozen=True)
class RefUpdate:
    ref: str
    old: str | None  # None: the ref is created
    new: str | None  # None: the ref is deleted


@dataclass
class PushPlan:
    """What a checked push will do: its ref updates and, per ref, the LFS files it adds."""

    updates: list[RefUpdate]
    lfs_files: dict[str, list[LfsFile]] = field(default_factory=dict)
    repo_id: int | None = None  # so that a plan left behind by a crash can be recorded later

    def to_json(self) -> str:
        return json.dumps({"updates": [[u.ref, u.old, u.new] for u in self.updates],
                           "lfs_files": self.lfs_files, "repo_id": self.repo_id})

    @classmethod
    def from_json(cls, text: str) -> PushPlan:
        data = json.loads(text)
        return cls([RefUpdate(*u) for u in data["updates"]],
                   {ref: [tuple(f) for f in files] for ref, files in data["lfs_files"].items()},
                   data.get("repo_id"))


def parse_updates(text: str) -> list[RefUpdate]:
    """The pre-receive hook's stdin: one ``<old> <new> <ref>`` line per ref."""
    updates = []
    for line in text.splitlines():
        if not line.strip():
            continue
        old, new, ref = line.split(" ", 2)
        updates.append(RefUpdate(ref, None if old == ZERO_OID else old, None if new == ZERO_OID else new))
    return updates


def check_ref_update(update: RefUpdate) -> None:
    """Which refs a push may touch (pure: no repository needed)."""
    ref = update.ref
    if ref == f"refs/heads/{DEFAULT_BRANCH}" and update.new is None:
        raise Forbidden(f"{ref}: the default branch cannot be deleted")
    if ref.startswith("refs/heads/"):
        if update.new is not None:
            check_branch_name(ref[len("refs/heads/"):])
    elif ref.startswith("refs/tags/"):
        if update.new is not None:
            check_tag_name(ref[len("refs/tags/"):])
    elif pr_number(ref) is None or update.old is None or update.new is None:
        raise Forbidden(f"{ref}: only branches (refs/heads/*) and tags (refs/tags/*) may be pushed, and "
                        "the refs/pr/N of an open pull request; the hub creates and deletes pull request refs "
                        "(open one with the API: create_pr=True) and the other refs")


class PushService:
    def __init__(self, repos: RepoService, store: RepoStore, git: GitStore, lfs: LfsService,
                 max_regular_bytes: int, admit: Callable[[RepoRow, int], None] | None = None,
                 pr_status: Callable[[RepoRow, int], str | None] | None = None,
                 pr_commit: Callable[[RepoRow, str, str, str, int], None] | None = None,
                 may_commit_to_pr: Callable[[RepoRow, Principal, str], None] | None = None):
        self.repos = repos
        self.store = store
        self.git = git
        self.lfs = lfs
        self.max_regular_bytes = max_regular_bytes
        # The storage quota (hub/storage_usage.py): raises if the push's new file bytes would pass it.
        self.admit = admit
        # The status of pull request N of a repo ("open", "draft", "merged", "closed"), None if none.
        self.pr_status = pr_status
        # Adds a "commit" event to a pull request: (repo, ref, commit id, summary, pusher's id).
        self.pr_commit = pr_commit
        # Raises unless this principal may add commits to this refs/pr/N: the commit API's rule
        # (DiscussionService.check_can_commit), so both doors decide alike.
        self.may_commit_to_pr = may_commit_to_pr

    @classmethod
    def of(cls, hub: Hub) -> PushService:
        def pr_status(repo: RepoRow, num: int) -> str | None:
            found = hub.discussions.store.get(repo.id, num)
            return found.status if found is not None and found.is_pull_request else None

        return cls(hub.repos, hub.repo_store, hub.git, hub.lfs, hub.settings.max_regular_file_bytes,
                   admit=lambda repo, n: hub.storage.check_upload(repo.owner_id, n), pr_status=pr_status,
                   pr_commit=hub.discussions.record_commit, may_commit_to_pr=hub.discussions.check_can_commit)

    # --- before the push lands (in the pre-receive hook, objects still in quarantine) ------------

    def check(self, repo: RepoRow, git_repo: pygit2.Repository, updates: list[RefUpdate],
              contributor: Principal | None = None,
              existed: Callable[[pygit2.Oid], bool] | None = None) -> PushPlan:
        """Raise a HubError saying what is wrong, or return the plan of an acceptable push.

        ``git_repo`` must see the quarantined objects (the hook adds them as an alternate).
        ``contributor``: the pusher, when they may not write to the repo (only their own pull
        requests then); None for a writer. ``existed``: whether an object was in the repository
        before this push (outside the quarantine); a contributor's push needs it (without it, every
        object of theirs counts as a leftover)."""
        for update in updates:  # which refs, before any commit is read
            check_ref_update(update)
            self._check_pull_request(repo, update)
            if contributor is not None:
                self._check_contributor(repo, contributor, update)
        known = self._known_tips(git_repo)
        guard = None
        if contributor is not None:
            guard = OrphanGuard(git_repo, existed or (lambda _oid: True),
                                self.git.history_rewritten(repo.storage_key))
        checked: dict[str, list[LfsFile]] = {}  # commit id -> LFS files it adds; each commit once
        regular: dict[str, int] = {}  # blob id -> size of the regular files the new commits add
        plan = PushPlan(updates, repo_id=repo.id)
        for update in updates:
            if update.new is None:
                continue
            tip = self._target_commit(git_repo, update)
            files: dict[tuple[str, str], LfsFile] = {}
            for commit in self._new_commits(git_repo, tip, known):
                key = str(commit.id)
                if key not in checked:
                    if guard is not None:
                        guard.check_commit(update.ref, commit)
                    checked[key] = self._check_commit(repo, git_repo, commit, regular, guard)
                files.update({(f[0], f[1]): f for f in checked[key]})
            if files:
                plan.lfs_files[update.ref] = list(files.values())
        if self.admit is not None:  # LFS objects counted when uploaded; their pointers and other files now
            self.admit(repo, sum(regular.values()))
        if any(u.old is not None and (u.new is None or not extends(git_repo, u.old, u.new)) for u in updates):
            # A force-push or a deletion: marked before git moves the ref (see GitStore).
            self.git.mark_history_rewritten(repo.storage_key)
        return plan

    def _check_pull_request(self, repo: RepoRow, update: RefUpdate) -> None:
        """A push to ``refs/pr/N``, by a writer or by the PR's author, needs PR N to be open."""
        num = pr_number(update.ref)
        if num is None:
            return
        status = self.pr_status(repo, num) if self.pr_status is not None else None
        if status is None:
            raise Forbidden(f"{update.ref}: there is no pull request {num}")
        if status not in OPEN_STATES:
            raise Forbidden(f"{update.ref}: pull request {num} is {status}; pushes to it are refused")

    def _check_contributor(self, repo: RepoRow, pusher: Principal, update: RefUpdate) -> None:
        """A pusher without write access: only ``refs/pr/N`` of their own open pull requests."""
        if pr_number(update.ref) is None:
            raise Forbidden(f"{update.ref}: you may not write to {repo.full_id}; without write access a push may "
                            "only update refs/pr/N of your own open pull requests "
                            "(`git push origin pr/N:refs/pr/N`), and nothing of this push was applied")
        if self.may_commit_to_pr is None:
            raise Forbidden(f"{update.ref}: pushes to pull requests need write access to {repo.full_id}")
        try:
            self.may_commit_to_pr(repo, pusher, update.ref)
        except HubError as exc:
            raise Forbidden(f"{update.ref}: {exc.message}") from None

    @staticmethod
    def _known_tips(git_repo: pygit2.Repository) -> list[pygit2.Oid]:
        """Commits the repo already has (everything reachable from them was checked before)."""
        tips = []
        for name in git_repo.references:
            try:
                tips.append(git_repo.references[name].peel(pygit2.Commit).id)
            except (pygit2.InvalidSpecError, ValueError, KeyError):
                continue  # a ref to a tree or blob: nothing to hide
        return tips

    @staticmethod
    def _target_commit(git_repo: pygit2.Repository, update: RefUpdate) -> pygit2.Commit:
        obj: object = git_repo.get(update.new) if update.new is not None else None
        if isinstance(obj, pygit2.Tag) and update.ref.startswith("refs/tags/"):
            try:
                obj = obj.peel(pygit2.Commit)
            except (ValueError, pygit2.GitError):
                obj = None  # an annotated tag of a tree or a blob
        if not isinstance(obj, pygit2.Commit):
            raise BadRequest(f"{update.ref}: must point at a commit")
        return obj

    @staticmethod
    def _new_commits(git_repo: pygit2.Repository, tip: pygit2.Commit,
                     known: list[pygit2.Oid]) -> Iterator[pygit2.Commit]:
        walker = git_repo.walk(tip.id, pygit2.enums.SortMode.TOPOLOGICAL)
        for oid in known:
            walker.hide(oid)
        yield from walker

    def _check_commit(self, repo: RepoRow, git_repo: pygit2.Repository, commit: pygit2.Commit,
                      regular: dict[str, int] | None = None, guard: OrphanGuard | None = None) -> list[LfsFile]:
        """Check the files this commit adds or changes relative to its first parent.

        Every file of a new commit's tree is either unchanged from its first parent (so checked
        with that parent, or already in the repo) or appears in this diff, merges included."""
        short = str(commit.id)[:10]
        if commit.parent_ids:
            diff = commit.parents[0].tree.diff_to_tree(commit.tree)
        else:
            diff = commit.tree.diff_to_tree(swap=True)  # from the empty tree
        lfs_files = []
        for delta in diff.deltas:
            if delta.status == pygit2.enums.DeltaStatus.DELETED:
                continue
            new = delta.new_file
            try:
                path = check_file_path(new.raw_path.decode("utf-8"))
            except UnicodeDecodeError:
                raise BadRequest(f"commit {short}: file names must be UTF-8: {new.raw_path!r}") from None
            except BadRequest as exc:
                raise BadRequest(f"commit {short}: {exc.message}") from None
            if new.mode not in FILE_MODES:
                raise BadRequest(f"commit {short}: {path} is a symlink or a submodule; "
                                 "only regular files are supported")
            _type, size = git_repo.odb.read_header(new.id)
            pointer = parse_pointer(blob_at(git_repo, new.id).data) if size <= MAX_POINTER_SIZE else None
            if pointer is not None:
                if not self.lfs.is_available(repo, pointer.oid, pointer.size):
                    raise BadRequest(f"commit {short}: {path} points to LFS object {pointer.oid} ({pointer.size} "
                                     "bytes), which was not uploaded to this repository; push it with git-lfs "
                                     "(`git lfs install`, then push again)")
                if guard is not None and self.lfs.orphaned(repo, pointer.oid):
                    raise Forbidden(f"commit {short}: {path} points to LFS object {pointer.oid}, whose file "
                                    f"{GONE_FROM_HISTORY}; nothing of this push was applied")
                lfs_files.append((pointer.oid, path, pointer.size))
            elif size > self.max_regular_bytes:
                raise BadRequest(f"commit {short}: {path} is {size} bytes; files over {self.max_regular_bytes} "
                                 "bytes must be stored with git-lfs (`git lfs track`)")
            if guard is not None:
                guard.check_blob(short, path, new.id)
            if regular is not None:
                regular[str(new.id)] = size
        return lfs_files

    # --- after git moved the refs (in the server) ----------------------------------------------

    def record(self, repo: RepoRow, plan: PushPlan, pusher_id: int | None = None) -> list[str]:
        """Make the API show what landed: cached head and card, LFS file names. Returns the refs.

        An update landed if its ref holds the planned commit or a descendant of it: a later push
        may already have moved the ref on, and its own plan leaves out the commits of this one
        (they were known by then), so their LFS files are named here or never. A ref holding
        anything else was refused by git after the check (a lost race, a lock) or rewritten since."""
        git_repo = self.git.open(repo.storage_key)
        landed = []
        for update in plan.updates:
            try:
                ref = git_repo.references.get(update.ref)
            except (ValueError, pygit2.GitError):
                ref = None
            current = str(ref.target) if ref is not None else None
            if not _holds(git_repo, current, update.new):
                continue
            files = plan.lfs_files.get(update.ref)
            if files:
                self.store.mark_lfs_committed(repo.id, files, update.ref, utcnow())
            self.repos.after_ref_update(repo, update.ref, current, update.old)
            if pusher_id is not None and current is not None and self.pr_commit is not None \
                    and pr_number(update.ref) is not None:  # the pull request's timeline shows it
                summary = commit_at(git_repo, current).message.strip().split("\n", 1)[0]
                self.pr_commit(repo, update.ref, current, summary, pusher_id)
            landed.append(update.ref)
        return landed

    def recover(self, plan_dir: Path) -> int:
        """Record the pushes whose plans were left behind, i.e. git moved the refs but the server
        died before recording them (the API would otherwise show a stale head, card and LFS file
        list until the next push). Returns how many plans were recorded.

        Recording is idempotent and checks each ref against the plan, so a plan whose push another
        replica is finishing right now is harmless; it is only kept until it is clearly abandoned.
        """
        recorded = 0
        for path in sorted(plan_dir.glob("*.json")):
            try:
                plan = PushPlan.from_json(path.read_text())
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue  # its own server recorded it meanwhile
            except (ValueError, KeyError, TypeError):
                log.error("unreadable push plan %s removed", path.name)
                path.unlink(missing_ok=True)
                continue
            repo = self.store.get_by_id(plan.repo_id) if plan.repo_id is not None else None
            landed = self.record(repo, plan) if repo is not None else []
            if landed and repo is not None:
                recorded += 1
                log.warning("recorded a push to %s (%s) left unrecorded by a server that stopped",
                            repo.full_id, ", ".join(landed))
            if landed or repo is None or age > UNLANDED_PLAN_GRACE_S:
                path.unlink(missing_ok=True)
        for error in plan_dir.glob("*.json.error"):  # hook failures the server never logged
            if time.time() - error.stat().st_mtime > UNLANDED_PLAN_GRACE_S:
                error.unlink(missing_ok=True)
        return recorded


class OrphanGuard:
    """What a non-writer's push may not bring back: objects the repository held before the push
    that no ref reaches (left over by a force-push, a squash or a deleted branch until GC).

    A commit is asked of the new commits only: those the walk from a pushed tip meets before any
    ref's history (``PushService._new_commits``), so a commit a ref reaches never gets here. A blob
    is asked of each file a new commit adds or changes; a repo whose history was never rewritten
    has no such leftovers, and otherwise only a blob the repo already had costs a look at the set
    of objects the refs reach (``reachable_objects``, one ``git rev-list`` per push at most)."""

    def __init__(self, git_repo: pygit2.Repository, existed: Callable[[pygit2.Oid], bool], rewritten: bool):
        self.git_repo = git_repo
        self.existed = existed
        self.rewritten = rewritten
        self._reachable: frozenset[str] | None = None

    def check_commit(self, ref: str, commit: pygit2.Commit) -> None:
        if self.existed(commit.id):
            raise Forbidden(f"{ref}: commit {str(commit.id)[:10]} {GONE_FROM_HISTORY}. Commit your changes on top "
                            "of the pull request's current head or a current branch (`git fetch origin`, then "
                            "rebase onto it); nothing of this push was applied")

    def check_blob(self, short: str, path: str, blob_id: pygit2.Oid) -> None:
        if not self.rewritten or not self.existed(blob_id):
            return
        if self._reachable is None:
            self._reachable = reachable_objects(self.git_repo)
        if str(blob_id) not in self._reachable:
            raise Forbidden(f"commit {short}: {path} has the content of a file that {GONE_FROM_HISTORY}; "
                            "nothing of this push was applied")


def _holds(git_repo: pygit2.Repository, current: str | None, planned: str | None) -> bool:
    """Whether a ref now at ``current`` still contains the push that set it to ``planned``."""
    if planned is None or current is None:
        return current == planned  # a deletion landed if the ref is (still) gone
    if current == planned:
        return True
    try:
        return git_repo.descendant_of(pygit2.Oid(hex=current), pygit2.Oid(hex=planned))
    except (pygit2.GitError, ValueError, KeyError):
        return False  # tags to tag objects, missing objects: only an exact match counts
