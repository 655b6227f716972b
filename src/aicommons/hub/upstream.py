"""Pull-through mirror: a repo that does not exist here is looked up on the upstream hub(s)
(``AICOMMONS_UPSTREAM_URL``) and, if upstream serves it publicly, pulled through.

Pulling a repo through makes it a local repo with upstream's git history fetched by ``git fetch``:
the same commit ids, so ``revision=<sha>`` pins and caches filled through us are the ones the
user would have had upstream. Every read path (info, tree, paths-info, refs, commits, cards, git
clone) then works from the local copy. The refs are fetched again when they are older than
``AICOMMONS_UPSTREAM_METADATA_TTL_SECONDS``; while upstream is unreachable the last fetched refs
keep being served. Large files are fetched on first download: streamed to the client while they
are stored, checked against the pointer's sha256 and size before they count as cached
(``_Fetch``; concurrent requests share one download), then served like any upload.

What is pulled through, and what is not:
- repos upstream serves as public and not gated, through the service token (or none);
- gated and private upstream repos only for a user whose own linked upstream token upstream
  accepts for the repo (``hub/upstream_links.py``): pulled and fetched with that token, never the
  service token, and afterwards decided per caller by the policy (``access``, asked by
  ``hub/policy.py``); without one a gated repo answers ``GatedRepo``, a private one "not found";
- nothing the administrators' policy refuses (``UpstreamPolicy``: settings plus ``aicommons mirror
  policy`` rules), also for repos pulled before a rule;
- a repo whose namespace exists here as a local user or organisation is never pulled: local
  names win, so no local account receives someone else's repo;
- mirrored namespaces are organisations without members: only site administrators can change
  what is in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fnmatch
import hashlib
import logging
import mmap
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO
from urllib.parse import quote

import httpx
import pygit2

from aicommons.db.accounts import AccountStore, AlreadyExists
from aicommons.db.repos import RepoRow, RepoStore
from aicommons.db.upstream import UpstreamRepo, UpstreamRule, UpstreamStore
from aicommons.errors import BadRequest, GatedRepo, HubError, NotFound, RepoNotFound
from aicommons.gitrepo import GitStore
from aicommons.gitrepo.store import extends
from aicommons.hub import content
from aicommons.hub.access import Principal
from aicommons.hub.lfs import LfsService
from aicommons.hub.names import REPO_TYPE_PLURAL, REPO_TYPE_PREFIX
from aicommons.hub.progress import SILENT, Progress
from aicommons.hub.reachability import pointers_in_tree, ref_targets
from aicommons.hub.upstream_http import RawBody, UpstreamClient, raw_body
from aicommons.hub.upstream_links import UpstreamLinks
from aicommons.storage.keys import blob_key
from aicommons.times import utcnow

log = logging.getLogger(__name__)
CHUNK = 4 * 1024 * 1024  # bytes per receive buffer (read from upstream, then written)
HASH_WINDOW = 16 * 1024 * 1024  # bytes of the file mapped at a time for hashing
# The hashing thread's nice value: below the threads that move bytes to the client, so that on a busy
# machine the hash (~0.14 s of CPU per 256 MiB) waits for them rather than they for it.
HASH_NICE = 10
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # map the pages at once (one fault per window, not per page)
# Bytes per write to the file being fetched. The kernel (ext4 with large folios) puts a write in page
# cache folios about its size, and on a virtual machine whose host backs memory lazily (and takes back
# free memory, "free page reporting") the large free blocks those come from are often memory the host
# must fault in again: writing 256 MiB into a new file took 0.5-0.6 s of system CPU in 256 KiB or
# 4 MiB pieces, 0.06 s in 64 KiB pieces (paired runs; nginx's proxy_cache writes ~32 KiB pieces),
# and a first download through the mirror 0.36 CPU s instead of 0.90 (docs/benchmarks.md, session 9).
WRITE_PIECE = 64 * 1024


# Set by the doors for each request (``watch_staleness``); filled when a refresh failed and the last
# fetched refs were served, so that the answer can say so (``X-Upstream-Stale``). A dict, not a
# value: the lookup runs in a worker thread, which sees the same object through the copied context.
_stale_note: contextvars.ContextVar[dict | None] = contextvars.ContextVar("aicommons_upstream_stale", default=None)


def watch_staleness() -> dict:
    """Start noting, for the current request, whether upstream metadata was served stale."""
    note: dict = {}
    _stale_note.set(note)
    return note


@dataclass(frozen=True)
class UpstreamPolicy:
    """What may be pulled through: the AICOMMONS_UPSTREAM_ALLOW / _BLOCK / _LICENSES settings plus the
    administrators' rules (``aicommons mirror policy``, stored in ``upstream_rules``).

    Globs are over lower-cased repo ids. A block (of the repo, or of a license its card declares)
    wins over everything; when any allow pattern exists, only repos matching one are pulled; when
    any allowed license exists, only repos declaring one of them."""

    allow: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    blocked_licenses: tuple[str, ...] = ()

    @classmethod
    def parse(cls, allow: str, block: str, licenses: str, blocked_licenses: str = "") -> UpstreamPolicy:
        return cls(_split(allow), _split(block), _split(licenses), _split(blocked_licenses))

    def with_rules(self, rules: list[UpstreamRule]) -> UpstreamPolicy:
        def extra(effect: str, kind: str) -> tuple[str, ...]:
            return tuple(r.pattern for r in rules if r.effect == effect and r.kind == kind)

        return UpstreamPolicy(self.allow + extra("allow", "repo"), self.block + extra("block", "repo"),
                              self.licenses + extra("allow", "license"),
                              self.blocked_licenses + extra("block", "license"))

    def refusal(self, full_id: str, info: dict) -> str | None:
        """Why ``full_id`` may not be pulled through (or served, once pulled), or None."""
        name = full_id.lower()
        if any(fnmatch.fnmatchcase(name, p) for p in self.block):
            return "the mirror's policy blocks it"
        if self.allow and not any(fnmatch.fnmatchcase(name, p) for p in self.allow):
            return "the mirror's policy does not allow it"
        if self.licenses or self.blocked_licenses:
            found = declared_licenses(info)
            if blocked := found & set(self.blocked_licenses):
                return f"the mirror's policy blocks its license ({', '.join(sorted(blocked))})"
            if self.licenses and not found & set(self.licenses):
                return (f"its license ({', '.join(sorted(found)) or 'none declared'}) is not one the mirror's "
                        "policy allows")
        return None


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in text.split(",") if p.strip())


def declared_licenses(info: dict) -> set[str]:
    """The licenses a repo's card declares: ``cardData.license`` (one or a list) and ``license:`` tags."""
    card = info.get("cardData") or {}
    declared = card.get("license") if isinstance(card, dict) else None
    found = {str(x).lower() for x in (declared if isinstance(declared, list) else [declared]) if x}
    found |= {t[8:].lower() for t in info.get("tags") or [] if isinstance(t, str) and t.startswith("license:")}
    return found


class UpstreamService:
    def __init__(self, urls: list[str], token: str, ttl_seconds: float, timeout: float, store: UpstreamStore,
                 repo_store: RepoStore, accounts: AccountStore, git: GitStore, lfs: LfsService, after_ref_update,
                 policy: UpstreamPolicy | None = None):
        self.urls = [u.rstrip("/") for u in urls if u.strip()]
        self.token = token
        self.ttl = timedelta(seconds=ttl_seconds)
        self.timeout = timeout
        self.store = store
        self.repo_store = repo_store
        self.accounts = accounts
        self.git = git
        self.lfs = lfs
        self.after_ref_update = after_ref_update  # RepoService.after_ref_update: cards, search, scans
        self.policy = policy or UpstreamPolicy()
        self.links: UpstreamLinks | None = None  # users' linked upstream tokens (wired by the Hub)
        # Refuses (a HubError) caching ``size`` more bytes for an owner over its quota (wired by the Hub).
        self.admit: Callable[[int, int], None] | None = None
        # Called with (repo, oid) once a pulled-through file is cached here (wired by the Hub: its scan).
        self.cached_listeners: list[Callable[[RepoRow, str], None]] = []
        self._locks: dict[tuple, threading.Lock] = {}
        self._fetches: dict[str, _Fetch] = {}  # oid -> the download in progress
        self._fetches_guard = threading.Lock()
        self._locks_guard = threading.Lock()
        self.client = UpstreamClient(timeout)  # one pooled client for every request upstream

    def close(self) -> None:
        self.client.close()

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    def _lock(self, key: tuple) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # --- pulling a repo through --------------------------------------------------------------------

    # --- policy (settings + ``aicommons mirror policy`` rules) -----------------------------------------

    def current_policy(self) -> UpstreamPolicy:
        """The settings' policy with the administrators' rules as they are now (read on each use: the
        CLI changes them from another process)."""
        return self.policy.with_rules(self.store.rules())

    def check_policy(self, repo: RepoRow, mirror: UpstreamRepo, principal: Principal | None = None) -> None:
        """Refuse (``RepoNotFound`` with the reason) a pulled-through repo the policy no longer admits:
        rules apply to what was pulled before them too."""
        why = self.current_policy().refusal(mirror.upstream_id, {"tags": repo.tags, "cardData": repo.card_data})
        if why is not None:
            raise refused(principal, repo.full_id, why)

    def add_rule(self, effect: str, kind: str, pattern: str) -> bool:
        if effect not in ("allow", "block") or kind not in ("repo", "license"):
            raise BadRequest("A rule allows or blocks a repo pattern or a license")
        pattern = pattern.strip().lower()
        if not pattern or len(pattern) > 200 or "," in pattern:
            raise BadRequest("A pattern is 1 to 200 characters without commas")
        return self.store.add_rule(effect, kind, pattern, utcnow())

    def remove_rule(self, kind: str, pattern: str) -> bool:
        return self.store.remove_rule(kind, pattern.strip().lower()) > 0

    def rules(self) -> list[dict]:
        """Every rule, the settings' first (``source`` "setting": change them in the environment)."""
        p = self.policy
        out = [{"effect": effect, "kind": kind, "pattern": pattern, "source": "setting"}
               for effect, kind, patterns in (("allow", "repo", p.allow), ("block", "repo", p.block),
                                              ("allow", "license", p.licenses),
                                              ("block", "license", p.blocked_licenses))
               for pattern in patterns]
        return out + [{"effect": r.effect, "kind": r.kind, "pattern": r.pattern, "source": "rule"}
                      for r in self.store.rules()]

    # --- pulling a repo through --------------------------------------------------------------------

    def pull(self, repo_type: str, full_id: str, principal: Principal | None = None) -> RepoRow | None:
        """The local copy of upstream's ``full_id``, pulled now if upstream serves it publicly; None
        if no upstream has it (or it is private or gated there, or its namespace is ours);
        ``RepoNotFound`` naming the reason if the mirror's policy refuses it."""
        if not self.enabled or full_id.count("/") != 1:
            return None
        namespace = full_id.split("/")[0]
        account = self.accounts.get(namespace)
        if account is not None and not self.store.is_mirror_namespace(account.id):
            return None  # a local name: never filled from upstream
        with self._lock((repo_type, full_id.lower())):
            existing = self.repo_store.get(repo_type, full_id)
            if existing is not None:
                return existing
            for url in self.urls:
                info = self._info(url, repo_type, full_id)
                restricted = info is None or bool(info.get("private")) or info.get("gated") not in (None, False, "false")
                token = None
                if restricted:
                    # Served only to users upstream granted it, through their own linked token; never
                    # through the service token.
                    token = self.links.token_for(principal, url) if self.links is not None else None
                    mine = self._info(url, repo_type, full_id, token) if token else None
                    if mine is None:
                        if info is not None and principal is not None:
                            raise self._gated(principal, repo_type, info.get("id") or full_id, url)
                        continue
                    info = mine
                    assert self.links is not None
                    if not self.links.may_read(principal, url, repo_type, info.get("id") or full_id):
                        if info.get("private"):
                            continue  # upstream shows it but lets nobody read it: as missing
                        raise self._gated(principal, repo_type, info.get("id") or full_id, url)
                if (why := self.current_policy().refusal(info.get("id") or full_id, info)) is not None:
                    log.info("not pulling %s through: %s", full_id, why)
                    raise refused(principal, full_id, why)
                gated = info.get("gated") if info.get("gated") in ("auto", "manual") else ("manual" if restricted and info.get("gated") else None)
                return self._create(url, repo_type, info.get("id") or full_id, token,
                                    private=bool(info.get("private")), gated=gated)
        return None

    @staticmethod
    def _gated(principal: Principal | None, repo_type: str, full_id: str, url: str) -> GatedRepo:
        anonymous = principal is None or principal.is_anonymous
        how = "sign in, link your upstream account (Settings → Upstream accounts) with" if anonymous \
            else "link your upstream account (Settings → Upstream accounts, /settings/upstream) with"
        return GatedRepo(f"Access to {repo_type} {full_id} is restricted on the upstream hub {url}: {how} a token "
                         "upstream granted access to this repo.", status=401 if anonymous else 403)

    def holder_of(self, name: str) -> str | None:
        """The upstream hub where ``name`` is a user or an organisation, if one answers so; None if
        none does, or none answers (a sign-up is not held up by an unreachable upstream: names
        already pulled through are local organisations, which nobody else can take anyway)."""
        for url in self.urls:
            for kind in ("users", "organizations"):
                try:
                    r = self.client.http.get(f"{url}/api/{kind}/{quote(name, safe='')}/overview",
                                             headers=self._headers())
                except httpx.HTTPError as exc:
                    log.warning("upstream %s unreachable checking the name %s: %s", url, name, exc)
                    break
                if r.status_code == 200:
                    return url
        return None

    def _info(self, url: str, repo_type: str, full_id: str, token: str | None = None) -> dict | None:
        headers = {"Authorization": f"Bearer {token}"} if token else self._headers()
        try:
            r = self.client.http.get(f"{url}/api/{REPO_TYPE_PLURAL[repo_type]}/{full_id}", headers=headers)
        except httpx.HTTPError as exc:
            log.warning("upstream %s unreachable looking up %s: %s", url, full_id, exc)
            return None
        if r.status_code != 200:
            return None
        try:
            info = r.json()
        except ValueError:
            return None
        return info if isinstance(info, dict) else None

    def _create(self, url: str, repo_type: str, full_id: str, token: str | None = None, private: bool = False,
                gated: str | None = None) -> RepoRow | None:
        """The local copy: fetched with ``token`` (a user's linked token, for a restricted repo) or the
        service token. A restricted repo is created private and only then given upstream's visibility
        and gating, so it is never readable without them, even for a moment."""
        namespace, name = full_id.split("/")
        owner = self._namespace(url, namespace)
        storage_key = secrets.token_hex(16)
        self.git.init(storage_key)
        restricted = private or gated is not None
        try:
            self._fetch(url, repo_type, full_id, storage_key, token)
            repo = self.repo_store.create(type=repo_type, namespace=namespace, name=name, owner_id=owner,
                                          storage_key=storage_key, private=restricted, now=utcnow())
            if restricted:
                self.store.add_repo(repo.id, url, full_id, utcnow())
                self.repo_store.update(repo.id, private=private, gated=gated)
        except AlreadyExists:
            self.git.delete(storage_key)
            return self.repo_store.get(repo_type, full_id)
        except BaseException:
            self.git.delete(storage_key)
            raise
        self.store.add_repo(repo.id, url, full_id, utcnow())
        self._announce(repo, {})
        log.info("pulled %s %s through from %s", repo_type, full_id, url)
        return self.repo_store.get_by_id(repo.id)

    def _namespace(self, url: str, namespace: str) -> int:
        account = self.accounts.get(namespace)
        if account is None:
            try:
                account = self.accounts.create(namespace, "org", fullname=namespace)
            except AlreadyExists:
                account = self.accounts.get(namespace)
        self.store.add_namespace(account.id, url)
        return account.id

    def _fetch(self, url: str, repo_type: str, full_id: str, storage_key: str, token: str | None = None) -> None:
        """Upstream's branches and tags, with its commit ids, into the bare repository (with ``token``,
        a user's, for a restricted repo; else the service token)."""
        remote = f"{url}/{REPO_TYPE_PREFIX[repo_type]}{full_id}"
        cmd = ["git"]
        if token or self.token:
            cmd += ["-c", f"http.extraHeader=Authorization: Bearer {token or self.token}"]
        cmd += ["--git-dir", str(self.git.path(storage_key)), "fetch", "--quiet", "--prune", "--no-tags",
                remote, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(self.timeout * 20, 600),
                              env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin",
                                   "GIT_LFS_SKIP_SMUDGE": "1"})
        if proc.returncode != 0:
            raise UpstreamError(f"git fetch of {remote} failed: {proc.stderr.strip()[-500:]}")

    def _refs(self, storage_key: str) -> dict[str, str]:
        return ref_targets(self.git.open(storage_key))

    def _announce(self, repo: RepoRow, before: dict[str, str]) -> None:
        after = self._refs(repo.storage_key)
        git_repo = self.git.open(repo.storage_key)
        if any(old != after.get(ref) and (ref not in after or not extends(git_repo, old, after[ref]))
               for ref, old in before.items()):
            self.git.mark_history_rewritten(repo.storage_key)  # upstream force-pushed or deleted a ref
        # The default branch last, so that the card and search data reflect the final state.
        for ref in sorted(set(before) | set(after), key=lambda r: r == "refs/heads/main"):
            if before.get(ref) != after.get(ref):
                self.after_ref_update(repo, ref, after.get(ref))

    # --- keeping a pulled repo fresh --------------------------------------------------------------

    def mirror_of(self, repo: RepoRow) -> UpstreamRepo | None:
        return self.store.repo(repo.id) if self.enabled else None

    @staticmethod
    def restricted(repo: RepoRow) -> bool:
        """A pulled-through repo that is private or gated upstream (mirrored repos are otherwise
        public and ungated here)."""
        return repo.private or repo.gated is not None

    def access(self, principal: Principal, repo: RepoRow) -> bool | None:
        """The policy's question for a private or gated repo (hub/policy.py ``Policy.upstream``):
        None if ``repo`` is not pulled through (the usual rules decide); else whether upstream lets
        the token ``principal`` linked read it."""
        mirror = self.mirror_of(repo)
        if mirror is None:
            return None
        return self.links is not None and self.links.may_read(principal, mirror.upstream_url, repo.type,
                                                              mirror.upstream_id)

    def _token_for(self, repo: RepoRow, mirror: UpstreamRepo, principal: Principal | None) -> str | None:
        """The token to reach upstream with for ``repo``: the service token for a public one; for a
        restricted one the caller's linked token, and only while upstream grants it (else None)."""
        if not self.restricted(repo):
            return self.token
        if self.links is None or not self.links.may_read(principal, mirror.upstream_url, repo.type,
                                                         mirror.upstream_id):
            return None
        return self.links.token_for(principal, mirror.upstream_url)

    def headers_for(self, repo: RepoRow, principal: Principal | None) -> dict:
        """Headers for fetching ``repo``'s files upstream on behalf of ``principal`` (whom the policy
        let through): a restricted repo's files are fetched with the caller's own linked token."""
        mirror = self.mirror_of(repo)
        token = self._token_for(repo, mirror, principal) if mirror is not None else self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def refresh_if_stale(self, repo: RepoRow, mirror: UpstreamRepo | None = None,
                         principal: Principal | None = None) -> bool:
        """Fetch the refs again when the last fetch is older than the TTL; whether refs were fetched.
        Upstream down: the last fetched refs stay (commit ids never change, so cached content stays
        right). A restricted repo is refreshed only for a caller upstream grants it, with their token."""
        mirror = mirror or self.mirror_of(repo)
        if mirror is None or utcnow() - mirror.fetched_at < self.ttl:
            return False
        token = self._token_for(repo, mirror, principal)
        if self.restricted(repo) and token is None:
            return False
        lock = self._lock(("refresh", repo.id))
        if not lock.acquire(blocking=False):
            return False  # another request is fetching: serve what we have
        try:
            self._refetch(repo, mirror, token)
            return True
        except (UpstreamError, subprocess.TimeoutExpired) as exc:
            if isinstance(exc, UpstreamError) and not self.restricted(repo) \
                    and (now := self._restricted_upstream(mirror, repo.type)) is not None:
                # Upstream made it private or gated (or deleted it): restricted here as well from
                # now on, so only those upstream grants it read it (cached files included).
                log.warning("%s is no longer public upstream: restricted here too (%s)", repo.full_id, now)
                self.repo_store.update(repo.id, private=now["private"], gated=now["gated"])
                return True
            log.warning("serving %s as last fetched: %s", repo.full_id, exc)
            if (note := _stale_note.get()) is not None:
                note["since"] = mirror.fetched_at
            return False
        finally:
            lock.release()

    def _restricted_upstream(self, mirror: UpstreamRepo, repo_type: str) -> dict | None:
        """Why a public pulled-through repo could not be fetched: ``{"private", "gated"}`` when
        upstream answers that it is now private (or gone: ``RepoNotFound``, which a private repo
        answers too) or gated; None when upstream is unreachable or says anything else (the copy is
        then served as last fetched)."""
        try:
            r = self.client.http.get(f"{mirror.upstream_url}/api/{REPO_TYPE_PLURAL[repo_type]}/{mirror.upstream_id}",
                                     headers=self._headers())
        except httpx.HTTPError:
            return None
        code = r.headers.get("x-error-code")
        if r.status_code in (401, 403, 404) and code in ("RepoNotFound", "GatedRepo"):
            return {"private": code == "RepoNotFound", "gated": "manual" if code == "GatedRepo" else None}
        try:
            info = r.json() if r.status_code == 200 else None
        except ValueError:
            return None
        if not isinstance(info, dict) or not (info.get("private") or info.get("gated") not in (None, False, "false")):
            return None
        gated = info.get("gated")
        return {"private": bool(info.get("private")),
                "gated": gated if gated in ("auto", "manual") else ("manual" if gated else None)}

    def _refetch(self, repo: RepoRow, mirror: UpstreamRepo, token: str | None = None) -> None:
        before = self._refs(repo.storage_key)
        self._fetch(mirror.upstream_url, repo.type, mirror.upstream_id, repo.storage_key, token)
        if mirror.pinned:
            self._keep_rewritten(repo, before)
        self.store.fetched(repo.id, utcnow())
        self._announce(repo, before)

    def _keep_rewritten(self, repo: RepoRow, before: dict[str, str]) -> None:
        """A pinned mirror loses nothing to an upstream force-push or deleted branch: each head that
        upstream dropped stays reachable under ``refs/mirror/kept/`` (so its commits and files are
        still served by commit id)."""
        after = self._refs(repo.storage_key)
        git_repo = self.git.open(repo.storage_key)
        for ref, old in before.items():
            if ref.startswith(("refs/heads/", "refs/tags/")) and old != after.get(ref) \
                    and (ref not in after or not extends(git_repo, old, after[ref])):
                self.git.update_ref(repo.storage_key, f"refs/mirror/kept/{ref[5:]}/{old}", old, None)

    # --- pinned mirrors (aicommons mirror ...) ---------------------------------------------------------

    def pin(self, repo_type: str, full_id: str, revisions: list[str] | None = None) -> RepoRow:
        """Make ``full_id`` a pinned mirror of ``revisions`` (default: the default branch), pulling it
        through first if needed. ``sync`` then fetches its files."""
        repo = self.repo_store.get(repo_type, full_id) or self.pull(repo_type, full_id)
        if repo is None or self.mirror_of(repo) is None:
            raise NotFound(f"{full_id} is not a public {repo_type} on the upstream hub(s) {', '.join(self.urls)}, "
                           "or its namespace is a local account")
        self.store.pin(repo.id, list(revisions or ["main"]))
        return repo

    def unpin(self, repo: RepoRow) -> None:
        self.store.pin(repo.id, None)

    def mirrored(self) -> list[tuple[RepoRow, UpstreamRepo]]:
        found = []
        for mirror in self.store.repos():
            repo = self.repo_store.get_by_id(mirror.repo_id)
            if repo is not None:
                found.append((repo, mirror))
        return found

    def sync(self, repo: RepoRow, progress: Progress = SILENT) -> dict:
        """Fetch the refs now and every large file of the pinned revisions not held yet."""
        mirror = self.mirror_of(repo)
        if mirror is None:
            raise NotFound(f"{repo.full_id} is not a mirrored repo")
        self.check_policy(repo, mirror)
        if self.restricted(repo):
            raise UpstreamError(f"{repo.full_id} is gated or private upstream: it is served only to users with a "
                                "linked upstream grant, never synced with the service token")
        self._refetch(repo, mirror)
        git_repo = self.git.open(repo.storage_key)
        wanted: dict[str, tuple[str, str, int]] = {}  # oid -> (commit, path, size)
        for revision in mirror.revisions or ["main"]:
            commit = content.resolve_revision(git_repo, revision)
            for path, p in pointers_in_tree(git_repo, commit.tree):
                wanted.setdefault(p.oid, (str(commit.id), path, p.size))
        fetched = self._fetch_files(repo, mirror, wanted, progress)
        return {"repo": repo.full_id, "revisions": mirror.revisions or ["main"], "files": len(wanted),
                "fetched": fetched}

    def fetch_commit_files(self, repo: RepoRow, commit_id: str, max_bytes: int) -> int:
        """Fetch the large files of ``commit_id`` that pulled-through ``repo`` does not hold yet (as
        their first download would, within the namespace's quota), for a job that reads them all: the
        Parquet conversion of a dataset (hub/parquet_export.py). Nothing for a repo that is not pulled
        through, nor for one private or gated upstream (fetched only with a reader's own grant).
        UpstreamError when they total more than ``max_bytes``: a request for a repo's metadata never
        makes the mirror download more than that on its own (``aicommons mirror add`` does)."""
        mirror = self.mirror_of(repo)
        if mirror is None or self.restricted(repo):
            return 0
        self.check_policy(repo, mirror)
        git_repo = self.git.open(repo.storage_key)
        commit = git_repo[pygit2.Oid(hex=commit_id)].peel(pygit2.Commit)
        wanted = {p.oid: (commit_id, path, p.size) for path, p in pointers_in_tree(git_repo, commit.tree)}
        missing = sum(size for oid, (_, _, size) in wanted.items() if self.missing_file(repo, oid) is not None)
        if missing > max_bytes:
            raise UpstreamError(f"{missing} bytes of {repo.full_id}'s files are not on this mirror yet, more than "
                                f"the {max_bytes} it fetches by itself to convert a dataset: pin it "
                                "(aicommons mirror add) to keep and view it")
        return self._fetch_files(repo, mirror, wanted, SILENT)

    def _fetch_files(self, repo: RepoRow, mirror: UpstreamRepo, wanted: dict[str, tuple[str, str, int]],
                     progress: Progress) -> int:
        """Fetch each of ``wanted`` (oid -> (commit, path, size)) not held yet; how many were fetched."""
        missing = {oid: w for oid, w in wanted.items() if self.missing_file(repo, oid) is not None}
        progress.stage(f"{repo.full_id}: files", items=len(missing), nbytes=sum(w[2] for w in missing.values()))
        fetched = 0
        for oid, (commit_id, path, size) in missing.items():
            if (why := self.quota_refusal(repo, size)) is not None:
                raise UpstreamError(f"{repo.full_id}: {path} is not kept: {why}")
            fetch = self.open_file(repo, self.file_url(mirror, repo.type, commit_id, path), oid, size)
            for chunk in fetch.read():
                progress.advance(0, len(chunk))
            fetch.wait_done()
            progress.advance(1, 0)
            if self.missing_file(repo, oid) is not None:
                raise UpstreamError(f"upstream sent {path} of {repo.full_id} with the wrong content")
            fetched += 1
        return fetched

    # --- large files --------------------------------------------------------------------------------

    def missing_file(self, repo: RepoRow, oid: str) -> UpstreamRepo | None:
        """The upstream to fetch ``oid`` from, if ``repo`` is pulled through and does not hold it yet."""
        mirror = self.mirror_of(repo)
        if mirror is None:
            return None
        if self.lfs.repos.repo_lfs_size(repo.id, oid) is not None and self.lfs.blobs.exists(blob_key(oid)):
            return None
        return mirror

    def where_is(self, repo: RepoRow, oid: str, size: int) -> tuple[str, str] | None:
        """(commit, path) of a pointer to ``oid`` in a ref of a pulled-through repo that does not hold
        the file yet, for the LFS batch API to send git-lfs to its resolve URL; None otherwise."""
        if self.missing_file(repo, oid) is None:
            return None
        git_repo = self.git.open(repo.storage_key)
        refs = sorted(self._refs(repo.storage_key).items(), key=lambda item: item[0] != "refs/heads/main")
        paths: list[tuple[str, str]] = []
        for _ref, target in refs:
            try:
                commit = git_repo[target].peel(pygit2.Commit)
            except (KeyError, ValueError, pygit2.GitError):
                continue
            paths += [(str(commit.id), path) for path, p in pointers_in_tree(git_repo, commit.tree)
                      if p.oid == oid and p.size == size]
            if paths:
                return paths[0]
        return None

    def file_url(self, mirror: UpstreamRepo, repo_type: str, commit_id: str, path: str) -> str:
        return (f"{mirror.upstream_url}/{REPO_TYPE_PREFIX[repo_type]}{mirror.upstream_id}/resolve/{commit_id}/"
                f"{quote(path)}")

    def open_file(self, repo: RepoRow, url: str, oid: str, size: int, headers: dict | None = None) -> _Fetch:
        """The file's bytes as upstream sends them (UpstreamError at once if upstream cannot serve it).
        Every request for the same file while it is being fetched shares one upstream download
        (``_Fetch``), and the download goes on if the client that started it goes away."""
        with self._fetches_guard:
            fetch = self._fetches.get(oid)
            if fetch is None:
                fetch = self._fetches[oid] = _Fetch(self, repo, url, oid, size,
                                                    self._headers() if headers is None else headers,
                                                    keep=self.quota_refusal(repo, size) is None)
                threading.Thread(target=fetch.run, name=f"upstream-fetch-{oid[:12]}", daemon=True).start()
        fetch.wait_started(self.timeout)
        return fetch

    def quota_refusal(self, repo: RepoRow, size: int) -> str | None:
        """Why ``size`` more bytes may not be cached for ``repo``'s namespace (its quota), or None.
        Such a file still reaches the client that asked, straight from upstream, uncached."""
        if self.admit is None:
            return None
        try:
            self.admit(repo.owner_id, size)
        except HubError as exc:
            log.warning("not caching a file of %s: %s", repo.full_id, exc.message)
            return exc.message
        return None

    def cached(self, repo: RepoRow, oid: str) -> None:
        for listener in self.cached_listeners:
            try:
                listener(repo, oid)
            except Exception:  # noqa: BLE001 - the file is cached; a missed scan shows as "queued"
                log.exception("after caching %s of %s", oid, repo.full_id)

    def heads(self, repo: RepoRow) -> set[str]:
        """The commits the branches and tags of ``repo`` point at."""
        return {sha for ref, sha in self._refs(repo.storage_key).items()
                if ref.startswith(("refs/heads/", "refs/tags/"))}

    def _fetch_ended(self, oid: str) -> None:
        with self._fetches_guard:
            self._fetches.pop(oid, None)

    def proxy_range(self, url: str, range_header: str, headers: dict | None = None) -> httpx.Response:
        """A byte range of an uncached file, straight from upstream (not cached)."""
        return self.client.http.get(url, headers={**(self._headers() if headers is None else headers),
                                                  "Range": range_header})


class UpstreamError(Exception):
    pass


def refused(principal: Principal | None, full_id: str, why: str) -> RepoNotFound:
    """What a repo the mirror's policy refuses answers: not found (401 to anonymous callers, as for
    any missing repo), with the reason."""
    return RepoNotFound(f"Repository not found: {full_id} is not served by this mirror ({why})",
                        status=401 if principal is None or principal.is_anonymous else 404)


class _Fetch:
    """One download of a file from upstream into a private temporary file, read by any number of
    clients as it grows. It is kept (put in the blob store and recorded for the repo) only if its
    sha256 and size are the pointer's: a flipped byte upstream reaches the clients of this one
    download (their ETag check catches it) but is never cached."""

    def __init__(self, service: UpstreamService, repo: RepoRow, url: str, oid: str, size: int, headers: dict,
                 keep: bool = True):
        self.service, self.repo, self.url, self.oid, self.size = service, repo, url, oid, size
        self.headers = headers
        self.keep = keep  # False: the owner's quota is full, the bytes only pass through
        service.lfs.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.path = service.lfs.tmp_dir / f"upstream-{oid}-{secrets.token_hex(4)}"
        self.path.touch(mode=0o600)
        self.written = 0
        self.started = threading.Event()
        self.done = False
        self.error: str | None = None
        self.changed = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []  # coroutines in next_beyond

    def run(self) -> None:
        _name_thread("upstream-fetch")
        service = self.service
        hasher = _Hasher(self)
        try:
            with service.client.http.stream("GET", self.url, headers=self.headers) as response:
                if response.status_code != 200:
                    raise UpstreamError(f"the upstream hub answered {response.status_code} for {self.url}")
                announced = response.headers.get("content-length", "")
                if announced.isdigit() and int(announced) != self.size:
                    raise UpstreamError(f"upstream announced {announced} bytes for {self.oid}, not {self.size}")
                self.started.set()
                with open(self.path, "wb", buffering=0) as out:
                    hasher.start()
                    raw = raw_body(response, service.timeout)
                    if raw is not None:  # straight from the socket into each buffer: no copy in Python
                        self._receive(raw, out)
                    else:
                        for chunk in response.iter_bytes():
                            if self.written + len(chunk) > self.size:
                                raise UpstreamError(f"upstream sent more than the {self.size} bytes of {self.oid}")
                            self._append(out, memoryview(chunk))
                    os.fsync(out.fileno())
            digest = hasher.hexdigest()
            if self.written != self.size or digest != self.oid:
                log.warning("upstream sent %d bytes hashing to %s for %s (expected %d): not cached",
                            self.written, digest, self.oid, self.size)
                return
            if not self.keep:
                return
            lfs = service.lfs
            link = self.path.with_name(self.path.name + ".done")
            os.link(self.path, link)  # put_file moves its source away; readers keep the original
            lfs.blobs.put_file(blob_key(self.oid), link)
            lfs.repos.add_lfs_object(self.repo.id, self.oid, self.size, utcnow())
            service.cached(self.repo, self.oid)
        except (httpx.HTTPError, UpstreamError, OSError) as exc:
            self.error = str(exc) if isinstance(exc, UpstreamError) else \
                f"the upstream hub {self.url.split('/')[2]} failed: {exc}"
            log.warning("fetching %s from upstream: %s", self.oid, self.error)
        finally:
            hasher.abandon()
            with self.changed:
                self.done = True
                self._wake()
            self.started.set()
            service._fetch_ended(self.oid)
            self.path.unlink(missing_ok=True)  # readers hold it open

    def _receive(self, raw: RawBody, out) -> None:
        """Receive the body into pooled buffers and write each to the file. (A writer thread beside
        this one, so that receiving never waits on writing, made no difference that we could measure
        on the 2-core box: docs/benchmarks.md, session 10.)"""
        while self.written < self.size:
            buffer = _buffers.take()
            try:
                got = raw.read_into(memoryview(buffer)[:min(CHUNK, self.size - self.written)])
                if not got:
                    break
                self._append(out, memoryview(buffer)[:got])
            finally:
                _buffers.give(buffer)

    def _append(self, out, data: memoryview) -> None:
        """Write ``data`` to the file and wake the readers (and the hashing thread)."""
        written = 0
        while written < len(data):
            written += out.write(data[written:written + WRITE_PIECE])
        with self.changed:
            self.written += len(data)
            self._wake()

    def open(self) -> BinaryIO:
        """The file as fetched so far, for ``next_beyond`` and reads or ``sendfile`` as it grows
        (UpstreamError if the download just ended: the file is in the store now, or was refused)."""
        try:
            return open(self.path, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise UpstreamError(self.error or "the upstream download just ended; try again") from None

    async def next_beyond(self, position: int) -> tuple[int, str | None]:
        """(bytes written so far, why the download ended short or None), once more than ``position``
        bytes are written or the download ended. It waits on the caller's event loop, woken by the
        thread that writes the file (``_wake``) as each buffer is written: no polling, no thread held."""
        loop = asyncio.get_running_loop()
        while True:
            with self.changed:
                if self.written > position or self.done:
                    return self._progress()
                waiter = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                await asyncio.wait_for(waiter, 1.0)  # woken at once; the timeout only guards
            except TimeoutError:
                pass

    def _progress(self) -> tuple[int, str | None]:
        if self.done and self.written < self.size:
            return self.written, self.error or f"upstream stopped sending {self.oid}"
        return self.written, None

    def _wake(self) -> None:
        """Wake every waiter, threads and coroutines (call with ``changed`` held)."""
        self.changed.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, waiter)

    def wait_started(self, timeout: float) -> None:
        if not self.started.wait(timeout) or (self.done and self.error and self.written == 0):
            raise UpstreamError(self.error or f"the upstream hub did not answer for {self.url} in {timeout:g} s")

    def wait_done(self) -> None:
        with self.changed:
            while not self.done:
                self.changed.wait(1.0)

    def read(self) -> Iterator[bytes]:
        return self._chunks(self.open())  # opened now: the fetch removes the name when it ends

    def _chunks(self, f) -> Iterator[bytes]:
        position = 0
        with f:
            while position < self.size:
                with self.changed:
                    while self.written <= position and not self.done:
                        self.changed.wait(1.0)
                    available, done, error = self.written, self.done, self.error
                if available > position:
                    f.seek(position)
                    data = f.read(min(available - position, CHUNK))
                    position += len(data)
                    yield data
                elif done:  # cut short: the client sees a broken download
                    raise UpstreamError(error or f"upstream stopped sending {self.oid}")


def _name_thread(name: str) -> None:
    """Give the calling thread a kernel name (``/proc/PID/task/TID/comm``, ``top -H``, ``perf``), so
    that a download's threads can be told apart and their CPU read (bench/cpu_watch.py). Python 3.11's
    threads carry their name only inside Python. Linux only; elsewhere nothing happens."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _resolve(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Buffers:
    """Receive buffers kept for the whole process and reused. A fresh large buffer costs a page fault
    per 4 KiB page on first touch, and on a virtual machine that was the largest cost of a first
    download (about 3 s of system CPU per 256 MiB in 4 MiB buffers allocated afresh, against 0.1 s
    reused; docs/benchmarks.md)."""

    def __init__(self, size: int, keep: int):
        self.size, self.keep = size, keep
        self.free: list[bytearray] = []
        self.guard = threading.Lock()

    def take(self) -> bytearray:
        with self.guard:
            if self.free:
                return self.free.pop()
        return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        with self.guard:
            if len(self.free) < self.keep:
                self.free.append(buffer)


_buffers = _Buffers(CHUNK, keep=4)  # 16 MiB at most kept (one buffer per download in progress)


class _Hasher:
    """The sha256 of a download, computed on a thread of its own from the file as it is written (mapped
    from the page cache: no copy), so that neither receiving nor serving ever waits for it. What is
    hashed is what was written, the bytes that will be kept. The thread runs at a lower priority
    (``HASH_NICE``): on a busy machine the bytes reach the client first and the entry is verified and
    kept a little later."""

    def __init__(self, fetch: _Fetch):
        self.fetch = fetch
        self.digest = hashlib.sha256()
        self.hashed = 0
        self.finishing = self.abandoned = False
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._run, name=f"upstream-hash-{fetch.oid[:12]}", daemon=True)

    def start(self) -> None:
        """Start hashing (the file exists and is being written)."""
        self.thread.start()

    def _run(self) -> None:
        _name_thread("upstream-hash")
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
        fetch = self.fetch
        try:
            fd = os.open(fetch.path, os.O_RDONLY)
        except OSError as exc:
            self.error = exc
            return
        try:
            while True:
                with fetch.changed:
                    while fetch.written <= self.hashed and not (self.finishing or self.abandoned):
                        fetch.changed.wait()
                    end = fetch.written
                if self.abandoned or end <= self.hashed:
                    return
                while self.hashed < end and not self.abandoned:
                    base = self.hashed - self.hashed % mmap.ALLOCATIONGRANULARITY
                    stop = min(end, base + HASH_WINDOW)
                    with mmap.mmap(fd, stop - base, mmap.MAP_SHARED | _POPULATE, mmap.PROT_READ, offset=base) as mapped, \
                            memoryview(mapped) as view, view[self.hashed - base:] as part:
                        self.digest.update(part)
                    self.hashed = stop
        except OSError as exc:
            self.error = exc
        finally:
            os.close(fd)

    def hexdigest(self) -> str:
        """The digest of everything written (waits for the thread to hash the rest)."""
        with self.fetch.changed:
            self.finishing = True
            self.fetch.changed.notify_all()
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.digest.hexdigest()

    def abandon(self) -> None:
        """Stop hashing (the download failed, or is verified already)."""
        with self.fetch.changed:
            self.abandoned = True
            self.fetch.changed.notify_all()
        if self.thread.is_alive():
            self.thread.join()
