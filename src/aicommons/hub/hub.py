"""The ``Hub``: explicit wiring of the domain services over one database, git store and blob store."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicommons.config import Settings
from aicommons.db.access_requests import AccessRequestStore
from aicommons.db.account_export import AccountExportStore
from aicommons.db.account_removal import AccountRemovalStore
from aicommons.db.accounts import AccountStore
from aicommons.db.audit import AuditStore
from aicommons.db.avatars import AvatarStore
from aicommons.db.collections import CollectionStore
from aicommons.db.device_codes import DeviceCodeStore
from aicommons.db.discussions import DiscussionStore
from aicommons.db.download_copies import DownloadCopyStore
from aicommons.db.email_changes import EmailChangeStore
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.gc import BlobGcStore
from aicommons.db.identities import IdentityStore
from aicommons.db.likes import LikeStore
from aicommons.db.org_trust import OrgTrustStore
from aicommons.db.orgs import OrgStore
from aicommons.db.rate_limits import SharedRateLimitStore
from aicommons.db.repos import RepoRow, RepoStore
from aicommons.db.scans import ScanStore
from aicommons.db.sessions import SessionStore
from aicommons.db.signup import LinkStore, RetiredNameStore, SignupAttemptStore
from aicommons.db.storage_usage import StorageUsageStore
from aicommons.db.webhooks import WebhookStore
from aicommons.db.xet import XetFileStore
from aicommons.gitrepo import GitStore
from aicommons.hub import chunking
from aicommons.hub.account_deletion import AccountDeletion
from aicommons.hub.account_export import AccountExport
from aicommons.hub.account_names import NameService
from aicommons.hub.account_settings import AccountSettings
from aicommons.hub.accounts import AccountService
from aicommons.hub.audit import AuditLog
from aicommons.hub.bucket_copies import BucketCopies
from aicommons.hub.collections import CollectionService
from aicommons.hub.commits import CommitService
from aicommons.hub.device_login import DeviceLogin
from aicommons.hub.discussions import DiscussionService
from aicommons.hub.download_cache import DownloadCache
from aicommons.hub.downloads import DownloadCounter
from aicommons.hub.email_change import EmailChanges
from aicommons.hub.events import Events
from aicommons.hub.first_run import FirstRun
from aicommons.hub.gating import GatingService
from aicommons.hub.gc import LeasingBlobStore
from aicommons.hub.image_sizes import ImageSizes
from aicommons.hub.keys import Keys
from aicommons.hub.lfs import LfsService
from aicommons.hub.lfs_files import LfsFileService
from aicommons.hub.lifecycle import StorageLifecycle
from aicommons.hub.likes import LikeService
from aicommons.hub.listings import ListingCounts
from aicommons.hub.mail import Mailer, public_base_url
from aicommons.hub.model_metadata import ModelMetadataReader
from aicommons.hub.objects import ObjectReader
from aicommons.hub.org_trust import OrgTrustService
from aicommons.hub.orgs import OrgService
from aicommons.hub.policy import Policy
from aicommons.hub.private_files import secure_data_dir
from aicommons.hub.profiles import ProfileService
from aicommons.hub.reachability import LfsHistory
from aicommons.hub.refs import RefService
from aicommons.hub.repos import RepoService
from aicommons.hub.scans import ScanService
from aicommons.hub.sessions import SessionService
from aicommons.hub.sign_in_limits import SignInLimiter
from aicommons.hub.signup import SignupService
from aicommons.hub.sso import SsoService
from aicommons.hub.storage_usage import StorageAccounting
from aicommons.hub.viewer_prune import ViewerPruning
from aicommons.hub.webhooks import WebhookService
from aicommons.hub.workload_identity import WorkloadIdentity
from aicommons.scanning.worker import ScanWorkerPool
from aicommons.storage import open_blob_store
from aicommons.xet.service import XetService
from aicommons.xet.tokens import XetKeys

if TYPE_CHECKING:
    from aicommons.hub.bundles import BundleService
    from aicommons.hub.dashboard import DashboardService
    from aicommons.hub.jobs import Jobs
    from aicommons.hub.parquet_export import ParquetExport
    from aicommons.hub.spaces import SpaceService
    from aicommons.hub.stats import StatsService
    from aicommons.hub.upstream import UpstreamService
    from aicommons.hub.viewer import DatasetViewer
    from aicommons.hub.viewer_query import ViewerQueries

log = logging.getLogger("aicommons.hub")


class Hub:
    def __init__(self, settings: Settings, migrate: bool = True):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings.tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.engine = make_engine(settings.database_url)
        if migrate:
            upgrade_schema(self.engine)
        secure_data_dir(settings)  # after the schema upgrade: the SQLite file exists by then
        self.git = GitStore(Path(settings.git_dir))
        # Every blob write leases its key first, so that GC never deletes under an upload (hub/gc.py).
        self.blobs = LeasingBlobStore(open_blob_store(settings.storage_url, settings.tmp_dir),
                                      BlobGcStore(self.engine))
        account_store = AccountStore(self.engine)
        self.repo_store = RepoStore(self.engine)
        # Who may take which user or organisation name; the app adds its routes' names (app.py).
        self.names = NameService(account_store, RetiredNameStore(self.engine))
        self.mail = Mailer(settings, lambda text: self.jobs.send_mail(text))
        self.sessions = SessionService(SessionStore(self.engine), account_store, settings.session_lifetime_seconds)
        self.accounts = AccountService(
            account_store, settings.token_cache_seconds,
            SignInLimiter(settings.sign_in_failures_per_account, settings.sign_in_failures_per_ip,
                          settings.sign_in_failure_window_seconds),
            end_sessions=self.sessions.end_all, names=self.names)
        self.signup = SignupService(settings, self.accounts, LinkStore(self.engine), SignupAttemptStore(self.engine),
                                    self.mail)
        self.first_run = FirstRun(settings.data_dir, self.accounts)  # the one-time /setup link
        self.accounts.repo_lookup = self.repo_store.get
        self.accounts.repo_by_id = self.repo_store.get_by_id
        self.device_login = DeviceLogin(DeviceCodeStore(self.engine), self.accounts, settings.device_client_id_list,
                                        settings.device_token_days)
        self.orgs = OrgService(OrgStore(self.engine), account_store, forget_principals=self.accounts.forget_principals,
                               mail=self.mail)
        self.org_trust = OrgTrustService(settings, OrgTrustStore(self.engine), self.orgs)
        self.sso = SsoService(settings, self.accounts, self.orgs, IdentityStore(self.engine),
                              group_roles=self.org_trust.group_roles)
        self.accounts.password_sign_in = settings.password_sign_in
        self.accounts.org_self_service = settings.org_self_service
        self.workload_identity = WorkloadIdentity(self.org_trust.trust_policies, self.accounts, self.repo_store.get)
        self.audit = AuditLog(AuditStore(self.engine))
        self.accounts.failed_sign_in_listeners.append(self.audit.record_failed_sign_in)
        access_requests = AccessRequestStore(self.engine)
        # every "may this principal do this" (hub/policy.py)
        self.policy = Policy(access_requests, public_base_url(settings))
        # What changed (repos, refs, settings, discussions), said once by the services (hub/events.py).
        self.events = Events()
        self.repos = RepoService(self.repo_store, account_store, self.git, self.policy, self.events)
        self.listing_counts = ListingCounts(self.repo_store)  # trending scores, facet counts rebuilt (hub/listings.py)
        self.refs = RefService(self.repos, self.git)
        self.downloads = DownloadCounter(self.repo_store, settings.download_flush_seconds)
        self.repos.downloads = self.downloads
        self.keys = Keys.from_settings(settings)  # one key per purpose (hub/keys.py)
        self.lfs_history = LfsHistory(self.git)  # LFS objects a rewritten history dropped are not served
        xet_keys = XetKeys(self.keys.for_purpose("xet-token"), self.keys.for_purpose("xet-token-binding"),
                           self.keys.for_purpose("xet-range-url"))
        self.xet = XetService(XetFileStore(self.engine), self.repo_store, self.blobs, xet_keys,
                              settings.tmp_dir, settings.max_lfs_file_bytes, settings.upload_url_ttl_seconds,
                              settings.xet_rebuild_allowance_bytes, in_history=self._xet_file_in_history)
        # What each repo and owner stores, and their quotas (hub/storage_usage.py).
        self.storage = StorageAccounting(StorageUsageStore(self.engine), account_store, self.git, self.blobs,
                                         self.xet.files, settings.storage_quota_default)
        # Where an LFS object's bytes are: a whole-file blob or the chunk store (hub/objects.py).
        self.objects = ObjectReader(self.blobs, self.xet.reads)
        # Whole copies of chunk-stored files, for plain HTTP downloads (hub/download_cache.py).
        self.download_cache = DownloadCache(settings.data_dir / "download-cache", settings.download_cache_bytes,
                                            self.objects.chunk_stored_bytes)
        # On object storage, the checked copies go to the bucket too, for presigned redirects
        # (hub/bucket_copies.py); the raw store: GC never lists their prefix, so no lease is needed.
        self.bucket_copies = BucketCopies(DownloadCopyStore(self.engine), self.blobs.inner,
                                          settings.download_cache_bucket_bytes, self.download_cache)
        self.download_cache.kept.append(self.bucket_copies.offer)
        # What a model's files say about it (parameters, GGUF, config, base models): hub/model_metadata.py.
        self.model_metadata = ModelMetadataReader(self.objects)
        # The pixel sizes of a card's images, so they carry width and height (hub/image_sizes.py).
        self.image_sizes = ImageSizes(self.objects)
        self.commits = CommitService(self.repos, self.repo_store, self.git, self.objects,
                                     settings.max_regular_file_bytes)
        self.storage.visible = self.repos.visible
        # Uploads never committed, inference snapshots, git maintenance, rate-limit rows (hub/lifecycle.py).
        self.lifecycle = StorageLifecycle(StorageUsageStore(self.engine), SharedRateLimitStore(self.engine), self.git,
                                          settings.data_dir, upload_expiry_hours=settings.upload_expiry_hours,
                                          snapshot_max_bytes=settings.snapshot_max_bytes, snapshot_grace_hours=1)
        # Storage quotas, checked before any upload is stored (hub/storage_usage.py; push.py too).
        self.commits.admit = self.xet.admit = lambda repo, n: self.storage.check_upload(repo.owner_id, n)
        self.repos.admit = self.storage.check_upload  # duplicate_repo: the copy holds the source's LFS files
        self.lifecycle.viewer = ViewerPruning(self.git, self.blobs, settings.data_dir / "viewer-cache",
                                              self.repo_store.get_by_id,
                                              lambda: self.parquet.all_conversions())
        self.xet.reserve = lambda repo, n: self.storage.reserve_upload(repo.owner_id, n)  # xorbs in flight
        self.xet.release = self.storage.release_upload
        avatars = AvatarStore(self.engine)
        self.profiles = ProfileService(account_store, avatars, settings.max_avatar_bytes)
        self.account_settings = AccountSettings(self.accounts, self.sessions)
        self.email_changes = EmailChanges(self.accounts, self.account_settings, EmailChangeStore(self.engine), self.mail)
        self.account_export = AccountExport(account_store, self.repo_store, AccountExportStore(self.engine), avatars,
                                            self.audit.store)
        self.account_deletion = AccountDeletion(self.accounts, self.repos, self.repo_store,
                                                AccountRemovalStore(self.engine), retire_name=self.names.retire_name)
        self.discussions = DiscussionService(DiscussionStore(self.engine), self.repos, self.git)
        self.commits.listeners.append(self.discussions.record_commit)
        self.gating = GatingService(access_requests, account_store, self.policy)
        self.lfs_files = LfsFileService(self.repo_store, self.repos, self.git)
        self.lfs_files.deleted_listeners.append(self.lifecycle.forget_snapshots)  # their hard links keep the bytes
        self.lfs_files.deleted_listeners.append(self.download_cache.clear)  # and no copy outlives them
        self.lfs_files.deleted_listeners.append(self.bucket_copies.forget_deleted)
        self.lifecycle.cached_copies = self.download_cache
        self.lifecycle.bucket_copies = self.bucket_copies
        self.lifecycle.stored = self.objects.exists
        self.likes = LikeService(LikeStore(self.engine), self.repo_store, self.accounts, self.policy)
        self.webhooks = WebhookService(WebhookStore(self.engine), self.accounts, self.repo_store, self.policy, settings,
                                       queue=lambda delivery_id: self.jobs.deliver_webhook(delivery_id))
        self.events.listeners.append(self.webhooks.on_event)
        self.collections = CollectionService(CollectionStore(self.engine), account_store, self.repo_store)
        self.web_key = self.keys.for_purpose("web-csrf")  # the web UI's CSRF tokens (web/session.py)
        self.lfs = LfsService(self.repo_store, self.blobs, self.keys.for_purpose("lfs-transfer"), settings.tmp_dir,
                              settings.max_lfs_file_bytes, settings.upload_url_ttl_seconds, self.lfs_history,
                              self.objects)
        self.commits.orphaned_lfs = self.lfs.orphaned  # what a contributor's commit may not bring back
        self.upstream: UpstreamService | None = None
        if settings.upstream_url:  # the pull-through mirror (hub/upstream.py)
            from aicommons.db.upstream import UpstreamStore
            from aicommons.hub.upstream import UpstreamPolicy, UpstreamService

            self.upstream = self.repos.upstream = UpstreamService(
                settings.upstream_url.split(","), settings.upstream_token, settings.upstream_metadata_ttl_seconds,
                settings.upstream_timeout_seconds, UpstreamStore(self.engine), self.repo_store, account_store,
                self.git, self.lfs, self.repos.after_ref_update,
                UpstreamPolicy.parse(settings.upstream_allow, settings.upstream_block, settings.upstream_licenses,
                                     settings.upstream_blocked_licenses))
            self.accounts.upstream_holder = self.upstream.holder_of  # upstream names need an administrator
            from aicommons.hub.upstream_links import UpstreamLinks

            self.upstream.links = UpstreamLinks(self.upstream.store, self.keys.for_purpose("upstream-links"),
                                                self.upstream.urls, settings.upstream_timeout_seconds,
                                                settings.upstream_grant_ttl_seconds)
            self.policy.upstream = self.upstream.access  # gated/private upstream repos: the user's own grant
            # Files pulled through count against a quota an administrator set on the mirrored namespace
            # (``aicommons storage quota set NAMESPACE``); the default quota, meant for users, does not
            # apply to the site's shared cache (docs/mirror.md).
            storage = self.storage

            def admit_pull(owner_id: int, size: int) -> None:
                if storage.store.quota(owner_id)[0]:
                    storage.check_upload(owner_id, size)

            self.upstream.admit = admit_pull
        # Scans run in limited worker processes (scanning/worker.py), started when first needed.
        self.scan_pool = ScanWorkerPool(settings.scan_worker_limits)
        self.scans = ScanService(ScanStore(self.engine), self.repo_store, self.git, self.objects, self.scan_pool,
                                 settings.tmp_dir)
        if settings.scan_uploads:
            self.repos.ref_listeners.append(self._queue_scan)
            if self.upstream is not None:
                self.upstream.cached_listeners.append(self._scan_pulled_file)
        if settings.parquet_conversion:  # datasets' default branch converted to refs/convert/parquet
            self.repos.ref_listeners.append(self.parquet.on_ref_update)
        # Spaces build on pushes to their default branch and stop when deleted (hub/space_apps.py).
        self.repos.ref_listeners.append(self._space_ref_moved)
        self.events.listeners.append(self._space_event)
        self.events.listeners.append(self._repo_deleted)  # its inference snapshots go at once
        if settings.chunk_lfs_uploads and chunking.available():
            self.lfs.stored_listeners.append(lambda repo_id, oid: self.jobs.chunk_lfs_object(repo_id, oid))

    @functools.cached_property
    def spaces(self) -> SpaceService:
        """Spaces' runtime API, secrets and variables (``hub/spaces.py``)."""
        from aicommons.db.spaces import SpaceStore
        from aicommons.hub.space_apps import SpaceApps
        from aicommons.hub.spaces import SpaceService

        service = SpaceService(SpaceStore(self.engine), self.repos, self.settings,
                               self.keys.for_purpose("space-secrets"), self.keys.for_purpose("space-visits"))
        service.apps = SpaceApps(self, service)  # builds, runs, sleeps and wakes apps (hub/space_apps.py)
        return service

    def _space_ref_moved(self, repo: RepoRow, ref: str, new_sha: str | None) -> None:
        if repo.type == "space":
            self.spaces.forget_decisions()
        if repo.type == "space" and self.spaces.apps is not None:
            self.spaces.apps.on_ref_moved(repo, ref, new_sha)

    def _repo_deleted(self, event: Any) -> None:
        if event.scope == "repo" and event.action == "delete":
            self.lifecycle.forget_snapshots(event.repo)
            self.download_cache.clear()
            self.bucket_copies.forget_deleted()

    def _space_event(self, event: Any) -> None:
        if event.repo.type == "space":
            self.spaces.forget_decisions()  # visibility, deletion, a rename: decide again
        apps = self.spaces.apps
        if apps is not None and event.repo.type == "space" and event.scope == "repo" and event.action == "delete":
            apps.deleted(event.repo)

    @functools.cached_property
    def viewer(self) -> DatasetViewer:
        """The dataset viewer's data (``hub/viewer.py``)."""
        from aicommons.hub.viewer import DatasetViewer

        return DatasetViewer(self.git, self.objects, self.settings.viewer_max_bytes)

    @functools.cached_property
    def viewer_queries(self) -> ViewerQueries:
        """The viewer over the converted Parquet files: rows, DuckDB filters, search (``hub/viewer_query.py``)."""
        from aicommons.hub.viewer_query import ViewerQueries

        return ViewerQueries(self.git, self.objects, self.settings.data_dir / "viewer-cache",
                             self.keys.for_purpose("viewer-assets"))

    @functools.cached_property
    def parquet(self) -> ParquetExport:
        """The Parquet conversion of datasets (``hub/parquet_export.py``)."""
        from aicommons.db.parquet_conversions import ParquetConversionStore
        from aicommons.hub.parquet_export import ParquetExport

        return ParquetExport(ParquetConversionStore(self.engine), self.repo_store, self.git, self.objects, self.blobs,
                             self.settings.tmp_dir, self.settings.parquet_max_bytes, self.repos.after_ref_update,
                             queue=lambda repo_id, sha, branch: self.jobs.convert_parquet(repo_id, sha, branch),
                             enabled=self.settings.parquet_conversion,
                             queue_extras=lambda repo_id, sha, branch: self.jobs.viewer_extras(repo_id, sha, branch),
                             split_files=lambda repo, conversion, config, split: list(
                                 self.viewer_queries.split(repo, conversion, config, split).files),
                             download_cache=self.download_cache,
                             fetch_files=None if self.upstream is None else functools.partial(
                                 self.upstream.fetch_commit_files, max_bytes=self.settings.parquet_max_bytes),
                             retry=lambda repo_id, sha, branch, delay: self.jobs.retry_parquet.schedule(
                                 (repo_id, sha, branch), delay=delay),
                             retry_minutes=self.settings.parquet_retry_minutes)

    @functools.cached_property
    def bundles(self) -> BundleService:
        """Signed bundles for air-gapped sites (``hub/bundles.py``)."""
        from aicommons.hub.bundles import BundleService

        return BundleService(self)

    @functools.cached_property
    def stats(self) -> StatsService:
        """Totals for operators (``/metrics``): ``hub/stats.py``."""
        from aicommons.db.stats import StatsStore
        from aicommons.hub.stats import StatsService

        return StatsService(StatsStore(self.engine), self.settings.data_dir, lambda: self.jobs.huey.pending_count())

    @functools.cached_property
    def dashboard(self) -> DashboardService:
        """The admin dashboard's rollups (``hub/dashboard.py``)."""
        from aicommons.db.rollups import RollupStore
        from aicommons.hub.dashboard import DashboardService

        return DashboardService(RollupStore(self.engine))

    @functools.cached_property
    def jobs(self) -> Jobs:
        """The background-job queue (``hub/jobs.py``), shared by whatever queues or runs jobs here."""
        from aicommons.hub.jobs import Jobs

        return Jobs(self)

    def _xet_file_in_history(self, repo_id: int, oid: str) -> bool:
        repo = self.repo_store.get_by_id(repo_id)
        return repo is not None and self.lfs_history.references(repo.storage_key, oid)

    def _queue_scan(self, repo: RepoRow, ref: str, new_sha: str | None) -> None:
        if new_sha is None:
            return
        try:
            self.jobs.scan_commit(repo.id, new_sha)
        except Exception:  # noqa: BLE001 - the change has landed; a missed scan shows as "queued"
            log.exception("could not queue the scan of %s@%s", repo.full_id, new_sha)

    def _scan_pulled_file(self, repo: RepoRow, oid: str) -> None:
        """A pulled-through file just cached (hub/upstream.py) is scanned like an upload: the scans of
        its repo's branch and tag heads run again (their first run left it out: it was not here)."""
        assert self.upstream is not None
        for sha in self.upstream.heads(repo):
            self._queue_scan(repo, "", sha)

    def close(self) -> None:
        if "spaces" in self.__dict__ and self.spaces.apps is not None:  # stop the apps this process started
            self.spaces.apps.close()
        self.downloads.close()  # counts still in memory reach the database before it closes
        if self.upstream is not None:
            self.upstream.close()  # the mirror's pooled client to its upstream
        self.download_cache.close()
        self.bucket_copies.close()
        self.repos.facet_counts.close()
        self.scan_pool.close()
        self.engine.dispose()
