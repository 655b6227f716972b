"""Storage accounting and quotas: what each repo and each owner costs, and how much they may store.

Figures (computed by the ``storage_accounting`` job, stored in ``storage_usage``, never per request):

- **logical bytes** of a repo: its git folder on disk plus every LFS object its history references
  (``repo_lfs_objects`` rows a commit or push named; GC drops the ones a rewritten history no
  longer reaches), each counted whole, once per repo: what its users uploaded.
- **pending bytes**: LFS objects uploaded to the repo but never committed. Not part of logical or
  physical bytes; they expire (``hub/lifecycle.py``) and count against the quota until then.
- **physical bytes**: its git folder plus its share of what the blob store holds for it. The rule:
  every stored object (a whole-file LFS blob, a xorb, a shard) is split equally between the repos
  whose committed files use it. A chunk shared by two repos costs each half its xorb; a repo
  alone in using a xorb pays all of it, even for the chunks of that xorb it does not use (a
  xorb is stored, and deleted, whole). Summed over all repos this is exactly what the store holds
  for committed files; the rest (uploads never committed, garbage GC has not swept yet) is
  reported as unattributed.

Quotas apply to an owner's **logical plus pending** bytes, live (``StorageUsageStore.live_usage``:
an aggregate over the owner's rows, no walk of git or the store): predictable for the owner (a
figure that other people's deletions cannot change, unlike a share of deduplicated chunks) and
checkable at upload time from the sizes a client declares. An upload that would pass the quota is
refused whole, before anything is stored.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aicommons.db.storage_usage import RepoUsage, StorageUsageStore
from aicommons.errors import Forbidden, NotFound, Unauthorized
from aicommons.hub.progress import SILENT, Progress
from aicommons.storage.base import BlobStore, StorageError
from aicommons.times import utcnow
from aicommons.xet.hashing import to_hex
from aicommons.xet.keys import SHARD_PREFIX, XORB_PREFIX, shard_key
from aicommons.xet.shard import ShardFormatError, parse_shard

if TYPE_CHECKING:
    from collections.abc import Callable

    from aicommons.db.accounts import Account, AccountStore
    from aicommons.db.xet import XetFileStore
    from aicommons.gitrepo import GitStore
    from aicommons.hub.access import Principal

log = logging.getLogger(__name__)
LFS_KEY_RE = re.compile(r"^lfs/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})$")
HASH_KEY_RE = re.compile(r"/([0-9a-f]{64})$")


class StorageLimitReached(Forbidden):
    """An upload that would take an owner past its storage quota: 403, as the Hub answers
    ("Private repository storage limit reached, ..."), with what is used and what the upload needs."""


def format_size(n: int | None) -> str:
    if n is None:
        return "unlimited"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@dataclass
class AccountingReport:
    repos: int = 0
    logical_bytes: int = 0
    pending_bytes: int = 0
    physical_bytes: int = 0
    stored_bytes: int = 0  # everything under lfs/ and xet/ plus every git folder
    unattributed_bytes: int = 0  # stored but charged to no repo: uploads never committed, garbage
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OwnerStorage:
    owner: str
    repos: int
    logical_bytes: int
    pending_bytes: int
    physical_bytes: int
    used_bytes: int  # live: what the quota is checked against
    quota_bytes: int | None
    computed_at: str | None

    @property
    def percent(self) -> float | None:
        return None if not self.quota_bytes else round(100.0 * self.used_bytes / self.quota_bytes, 1)


class StorageAccounting:
    def __init__(self, store: StorageUsageStore, accounts: AccountStore, git: GitStore, blobs: BlobStore,
                 xet_files: XetFileStore, default_quota: int | None):
        self.store = store
        self.accounts = accounts
        self.git = git
        self.blobs = blobs
        self.xet_files = xet_files
        self.default_quota = default_quota
        # (principal, repo type, full id) -> whether it may see the repo (RepoService.visible, wired by the hub).
        self.visible: Callable[[Principal, str, str], object] | None = None

    # --- the job ----------------------------------------------------------------------------------

    def refresh(self, progress: Progress = SILENT) -> AccountingReport:
        """Recompute every repo's figures and store them (the ``storage_accounting`` job)."""
        report = AccountingReport()
        now = utcnow()
        repos = self.store.repos()
        holdings = self.store.holdings()
        lfs_blobs = {m.group(1): i.size for i in self.blobs.list_blobs("lfs/") if (m := LFS_KEY_RE.match(i.key))}
        xorbs = {m.group(1): i.size for i in self.blobs.list_blobs(XORB_PREFIX) if (m := HASH_KEY_RE.search(i.key))}
        shards = {m.group(1): i.size for i in self.blobs.list_blobs(SHARD_PREFIX) if (m := HASH_KEY_RE.search(i.key))}
        files: dict[str, tuple[str, str]] = {}  # oid -> (file hash, shard): the first recorded, as reads.py
        for row in self.xet_files.all_rows():
            if row.oid not in files or row.file_hash < files[row.oid][0]:
                files[row.oid] = (row.file_hash, row.shard)
        users: dict[str, set[int]] = defaultdict(set)  # stored key -> repos whose committed files use it
        segments = _ShardReader(self.blobs, report.errors)
        progress.stage("accounting repositories", items=len(repos))
        for repo in repos:
            progress.advance()
            for h in holdings.get(repo.id, []):
                if not h.committed:
                    continue
                if h.oid in lfs_blobs:
                    users[f"lfs:{h.oid}"].add(repo.id)
                if h.oid in files:
                    file_hash, shard = files[h.oid]
                    users[f"shard:{shard}"].add(repo.id)
                    for xorb in segments.xorbs(shard, file_hash):
                        users[f"xorb:{xorb}"].add(repo.id)
        sizes = ({f"lfs:{k}": v for k, v in lfs_blobs.items()} | {f"xorb:{k}": v for k, v in xorbs.items()}
                 | {f"shard:{k}": v for k, v in shards.items()})
        share: dict[int, float] = defaultdict(float)
        for key, repo_ids in users.items():
            size = sizes.get(key, 0)
            for repo_id in repo_ids:
                share[repo_id] += size / len(repo_ids)
        rows = []
        for repo in repos:
            held = holdings.get(repo.id, [])
            git_bytes = self.git.disk_usage(repo.storage_key)
            lfs = sum(h.size for h in held if h.committed)
            pending = sum(h.size for h in held if not h.committed)
            rows.append(RepoUsage(repo.id, repo.owner_id, git_bytes, lfs, pending, git_bytes + round(share[repo.id]),
                                  sum(1 for h in held if h.committed), now))
            report.logical_bytes += git_bytes + lfs
            report.pending_bytes += pending
            report.physical_bytes += rows[-1].physical_bytes
            report.stored_bytes += git_bytes
        self.store.replace_all(rows)
        report.repos = len(rows)
        report.stored_bytes += sum(sizes.values())
        report.unattributed_bytes = max(0, report.stored_bytes - report.physical_bytes)
        log.info("storage accounting: %d repos, %d logical, %d physical, %d unattributed bytes",
                 report.repos, report.logical_bytes, report.physical_bytes, report.unattributed_bytes)
        return report

    # --- figures --------------------------------------------------------------------------------

    def used_storage(self, repo_ids: list[int]) -> dict[int, int]:
        """``usedStorage`` of repos the job has measured: their logical bytes."""
        return {rid: u.logical_bytes for rid, u in self.store.for_repos(repo_ids).items()}

    def owner(self, account: Account) -> OwnerStorage:
        rows = [u for u, _ in self.store.for_owner(account.id)]
        computed = max((u.computed_at for u in rows), default=None)
        return OwnerStorage(account.name, len(rows), sum(u.logical_bytes for u in rows),
                            sum(u.pending_bytes for u in rows), sum(u.physical_bytes for u in rows),
                            self.store.live_usage(account.id), self.quota_of(account.id),
                            computed.isoformat() + "Z" if computed else None)

    def report(self, owner_name: str | None = None) -> dict[str, Any]:
        """``aicommons storage report``: per owner, then per repo, biggest first."""
        owner_id = None
        if owner_name is not None:
            account = self.accounts.get(owner_name)
            if account is None:
                raise NotFound(f"No user or organization {owner_name!r}")
            owner_id = account.id
        rows = self.store.for_owner(owner_id)
        names = self.store.owner_names({u.owner_id for u, _ in rows} | ({owner_id} if owner_id else set()))
        owners: dict[int, dict[str, Any]] = {}
        if owner_id is not None:
            owners[owner_id] = _owner_entry(names.get(owner_id, "?"))
        out_repos = []
        for u, label in rows:
            entry = owners.setdefault(u.owner_id, _owner_entry(names.get(u.owner_id, "?")))
            entry["repos"] += 1
            for k in ("logical_bytes", "pending_bytes", "physical_bytes"):
                entry[k] += getattr(u, k)
            out_repos.append({"repo": label, "owner": names.get(u.owner_id, "?"), "logical_bytes": u.logical_bytes,
                              "git_bytes": u.git_bytes, "lfs_bytes": u.lfs_bytes, "lfs_files": u.lfs_files,
                              "pending_bytes": u.pending_bytes, "physical_bytes": u.physical_bytes,
                              "computed_at": u.computed_at.isoformat() + "Z"})
        for oid, entry in owners.items():
            entry["used_bytes"] = self.store.live_usage(oid)
            entry["quota_bytes"] = self.quota_of(oid)
        return {"owners": sorted(owners.values(), key=lambda e: (-e["physical_bytes"], e["owner"])),
                "repos": out_repos}

    def overview(self, principal: Principal) -> list[tuple[OwnerStorage, list[tuple[RepoUsage, str]]]]:
        """The storage settings page: the signed-in user and each organisation it belongs to, with
        the repos of each that ``principal`` may see (``visible`` is the hub's access decision)."""
        if principal.account is None:
            raise Unauthorized("Sign in to see your storage")
        owners = [principal.account] + [org for org, _role in self.accounts.orgs_of(principal.account.id)]
        out = []
        for owner in owners:
            rows = [(u, label) for u, label in self.store.for_owner(owner.id)
                    if self.visible is None or self.visible(principal, *label.split(":", 1))]
            out.append((self.owner(owner), rows))
        return out

    # --- quotas ---------------------------------------------------------------------------------

    def quota_of(self, account_id: int) -> int | None:
        found, quota = self.store.quota(account_id)
        return quota if found else self.default_quota

    def set_quota(self, owner_name: str, quota_bytes: int | None) -> OwnerStorage:
        """Set (None: unlimited) an owner's quota; ``clear_quota`` goes back to the default."""
        account = self._account(owner_name)
        self.store.set_quota(account.id, quota_bytes, utcnow())
        return self.owner(account)

    def clear_quota(self, owner_name: str) -> OwnerStorage:
        account = self._account(owner_name)
        self.store.clear_quota(account.id)
        return self.owner(account)

    def show(self, owner_name: str) -> OwnerStorage:
        return self.owner(self._account(owner_name))

    def _account(self, name: str) -> Account:
        account = self.accounts.get(name)
        if account is None:
            raise NotFound(f"No user or organization {name!r}")
        return account

    def check_upload(self, owner_id: int, incoming: int) -> None:
        """Refuse (``StorageLimitReached``) an upload of ``incoming`` new bytes that would take the
        owner past its quota. Nothing new (a commit that only deletes, or names LFS objects counted
        when they were uploaded) is never refused: an owner over its quota can always clean up."""
        quota = self.quota_of(owner_id) if incoming > 0 else None
        if quota is None:
            return
        used = self.store.live_usage(owner_id)
        if used + incoming > quota:
            raise self._limit_reached(owner_id, used, quota, incoming)

    def reserve_upload(self, owner_id: int, incoming: int) -> int | None:
        """``check_upload`` for bytes about to arrive, which then count against the quota until
        ``release_upload`` (the upload is recorded, or failed): parallel uploads of one owner cannot
        together pass its quota, on any replica. Returns the reservation (None: no quota applies).
        A reservation whose upload never ended (a replica died) expires after an hour plus the time
        the bytes take at 1 MiB/s, and the lifecycle job deletes it."""
        quota = self.quota_of(owner_id) if incoming > 0 else None
        if quota is None:
            return None
        now = utcnow()
        expires = now + timedelta(hours=1, seconds=incoming / (1024 * 1024))
        reservation, used = self.store.reserve(owner_id, incoming, quota, now, expires)
        if reservation is None:
            raise self._limit_reached(owner_id, used, quota, incoming)
        return reservation

    def release_upload(self, reservation: int | None) -> None:
        if reservation is not None:
            self.store.release(reservation)

    def _limit_reached(self, owner_id: int, used: int, quota: int, incoming: int) -> StorageLimitReached:
        name = self.store.owner_names([owner_id]).get(owner_id, "this account")
        return StorageLimitReached(
            f"Storage limit reached for {name}: {format_size(used)} used of {format_size(quota)}, and this "
            f"upload needs {format_size(incoming)} more. Delete files or repositories, or ask an "
            "administrator to raise the limit (aicommons storage quota set).")


def _owner_entry(name: str) -> dict[str, Any]:
    return {"owner": name, "repos": 0, "logical_bytes": 0, "pending_bytes": 0, "physical_bytes": 0}


class _ShardReader:
    """The xorbs each file of a shard uses, each shard read once per run."""

    def __init__(self, blobs: BlobStore, errors: list[str]):
        self.blobs = blobs
        self.errors = errors
        self._files: dict[str, dict[str, set[str]]] = {}

    def xorbs(self, shard_sha: str, file_hash: str) -> set[str]:
        files = self._files.get(shard_sha)
        if files is None:
            files = {}
            try:
                with self.blobs.open(shard_key(shard_sha)) as f:
                    shard = parse_shard(f.read())
                for entry in shard.files:
                    if entry.hex not in files:  # the first entry is the file (xet/reads.py)
                        files[entry.hex] = {to_hex(s.xorb_hash) for s in entry.segments}
            except (StorageError, ShardFormatError) as exc:
                self.errors.append(f"shard {shard_sha} cannot be read ({exc}): its xorbs are not attributed")
            self._files[shard_sha] = files
        return files.get(file_hash, set())


def owner_dict(o: OwnerStorage) -> dict[str, Any]:
    return asdict(o) | {"percent": o.percent}
