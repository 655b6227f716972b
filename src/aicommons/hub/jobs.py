"""Background jobs: huey over the metadata database (``db/jobs.py``), so they work on SQLite and
PostgreSQL deployments alike, with retries, delays and periodic runs.

Workers run inside each ``aicommons serve`` (``AICOMMONS_JOB_WORKERS`` threads) or as separate
``aicommons worker`` processes; any number may share the database. A queued job is taken by one
worker only; a job that must never overlap itself (GC) also holds a named lock while it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from huey import Huey  # type: ignore[import-untyped]  # huey has no type information
from huey.exceptions import TaskLockedException  # type: ignore[import-untyped]
from huey.signals import SIGNAL_ERROR  # type: ignore[import-untyped]

from aicommons.db._huey_private import start_consumer_threads
from aicommons.db.gc import BlobGcStore
from aicommons.db.jobs import SqlJobStorage
from aicommons.errors import HubError
from aicommons.hub.progress import SILENT, Progress

if TYPE_CHECKING:
    from aicommons.hub.hub import Hub

log = logging.getLogger(__name__)
QUEUE_NAME = "aicommons"
GC_LOCK = "blob-gc"
GC_LOCK_TTL_SECONDS = 12 * 3600  # a killed GC's lock frees itself after this long


def every_hours(hours: float) -> Callable[[datetime], bool]:
    """A huey periodic-task validator: true at the minutes of the day that are multiples of ``hours``."""
    minutes = max(1, round(hours * 60))

    def due(dt: datetime) -> bool:
        return bool((dt.hour * 60 + dt.minute) % minutes == 0)

    return due


class Jobs:
    """The queue and the tasks the hub knows, bound to one ``Hub``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.huey = Huey(QUEUE_NAME, storage_class=SqlJobStorage, engine=hub.engine, results=False, utc=True)
        settings = hub.settings
        self.gc_lock = self.huey.lock_task(GC_LOCK, ttl=GC_LOCK_TTL_SECONDS)

        @self.huey.task(retries=3, retry_delay=300, name="blob_gc")  # type: ignore[untyped-decorator]  # (huey is untyped)
        def blob_gc(apply: bool, grace_hours: float) -> dict[str, Any]:
            return self.run_gc(apply=apply, grace_hours=grace_hours)

        self.blob_gc = blob_gc

        @self.huey.task(retries=2, retry_delay=60, name="scan_commit")  # type: ignore[untyped-decorator]  # (huey is untyped)
        def scan_commit(repo_id: int, commit_id: str) -> int:
            return self.hub.scans.scan_commit(repo_id, commit_id)

        self.scan_commit = scan_commit

        @self.huey.task(retries=2, retry_delay=30, name="deliver_webhook")  # type: ignore[untyped-decorator]  # (huey is untyped)
        def deliver_webhook(delivery_id: int) -> None:
            # One attempt; a failed one comes back later, each time after twice the delay (hub/webhooks.py).
            delay = self.hub.webhooks.attempt(delivery_id)
            if delay is not None:
                deliver_webhook.schedule(args=(delivery_id,), delay=delay)

        self.deliver_webhook = deliver_webhook
        if settings.upstream_url and settings.upstream_sync_interval_hours > 0:
            @self.huey.periodic_task(every_hours(settings.upstream_sync_interval_hours),  # type: ignore[untyped-decorator]
                                     name="periodic_mirror_sync")  # (huey is untyped)
            def periodic_mirror_sync() -> None:
                self.sync_mirrors()

        # Mail (hub/mail.py): about an hour of retries before a message is given up (and logged).
        @self.huey.task(retries=8, retry_delay=10, name="send_mail")  # type: ignore[untyped-decorator]  # (huey is untyped)
        def send_mail(text: str) -> None:
            from aicommons.hub.mail import deliver

            try:
                deliver(self.hub.settings.smtp_url, text)
            except Exception:
                log.warning("mail delivery failed; it will be retried", exc_info=True)
                raise

        self.send_mail = send_mail

        @self.huey.task(retries=2, retry_delay=60, name="chunk_lfs_object")  # type: ignore[untyped-decorator]  # (huey is untyped)
        def chunk_lfs_object(repo_id: int, oid: str) -> bool:
            from aicommons.hub.chunking import chunk_lfs_object as chunk

            return chunk(self.hub, repo_id, oid)

        self.chunk_lfs_object = chunk_lfs_object
        # The admin dashboard (hub/dashboard.py): its rollups on a schedule, and every failed run counted.
        @self.huey.task(retries=1, retry_delay=60, name="dashboard_rollup")  # type: ignore[untyped-decorator]
        def dashboard_rollup() -> dict[str, Any]:
            return self.hub.dashboard.rollup()

        self.dashboard_rollup = dashboard_rollup
        if settings.dashboard_rollup_minutes > 0:
            @self.huey.periodic_task(every_hours(settings.dashboard_rollup_minutes / 60),  # type: ignore[untyped-decorator]
                                     name="periodic_dashboard_rollup")
            def periodic_dashboard_rollup() -> None:
                self.hub.dashboard.rollup()

        @self.huey.signal(SIGNAL_ERROR)  # type: ignore[untyped-decorator]
        def count_failure(signal: str, task: Any, exc: BaseException | None = None) -> None:
            try:
                self.hub.dashboard.job_failed(task.name)
            except Exception:  # noqa: BLE001 - a dashboard figure never breaks the queue
                log.warning("could not count the failure of %s", task.name, exc_info=True)

        # No retries: a failed conversion is recorded and shown; the branch's next commit tries again.
        @self.huey.task(retries=0, name="convert_parquet")  # type: ignore[untyped-decorator]
        def convert_parquet(repo_id: int, sha: str, branch: str | None = None) -> str:
            return self.hub.parquet.convert(repo_id, sha, branch)

        self.convert_parquet = convert_parquet

        # A pulled-through dataset's conversion whose fetch from upstream failed, tried again later
        # (ParquetExport.retry: an upstream back, a quota raised, the dataset pinned).
        @self.huey.task(retries=0, name="retry_parquet")  # type: ignore[untyped-decorator]
        def retry_parquet(repo_id: int, sha: str, branch: str | None = None) -> str:
            return self.hub.parquet.retry(repo_id, sha, branch)

        self.retry_parquet = retry_parquet

        # Its follow-up: the search index and column statistics of the recorded Parquet files. After
        # any other queued job (priority -1): the Parquet of other datasets is served first.
        @self.huey.task(retries=0, priority=-1, name="viewer_extras")  # type: ignore[untyped-decorator]
        def viewer_extras(repo_id: int, sha: str, branch: str | None = None) -> str:
            return self.hub.parquet.build_extras(repo_id, sha, branch)

        self.viewer_extras = viewer_extras

        # A Space's build and start after a push (hub/space_apps.py); its failures show as its stage.
        @self.huey.task(name="space_build")  # type: ignore[untyped-decorator]
        def space_build(repo_id: int, sha: str, rebuild: bool = False) -> None:
            if self.hub.spaces.apps is not None:
                self.hub.spaces.apps.build(repo_id, sha, rebuild)

        self.space_build = space_build

        # Storage figures per repo and owner (hub/storage_usage.py), recomputed on a schedule.
        @self.huey.task(retries=1, retry_delay=300, name="storage_accounting")  # type: ignore[untyped-decorator]
        def storage_accounting() -> dict[str, Any]:
            return asdict(self.hub.storage.refresh())

        self.storage_accounting = storage_accounting
        if settings.storage_accounting_minutes > 0:
            @self.huey.periodic_task(every_hours(settings.storage_accounting_minutes / 60),  # type: ignore[untyped-decorator]
                                     name="periodic_storage_accounting")
            def periodic_storage_accounting() -> None:
                self.hub.storage.refresh()

        # Listings (hub/listings.py): trending scores, and the facet counts rebuilt (their repair path).
        @self.huey.task(retries=1, retry_delay=300, name="listing_counts")  # type: ignore[untyped-decorator]
        def listing_counts() -> dict[str, Any]:
            return asdict(self.hub.listing_counts.recount())

        self.listing_counts = listing_counts
        if settings.listing_counts_minutes > 0:
            @self.huey.periodic_task(every_hours(settings.listing_counts_minutes / 60),  # type: ignore[untyped-decorator]
                                     name="periodic_listing_counts")
            def periodic_listing_counts() -> None:
                self.hub.listing_counts.recount()

        # The rest of the storage lifecycle (hub/lifecycle.py): expiry, snapshots, git maintenance, pruning.
        @self.huey.task(retries=1, retry_delay=300, name="storage_lifecycle")  # type: ignore[untyped-decorator]
        def storage_lifecycle() -> dict[str, Any]:
            return asdict(self.hub.lifecycle.run(apply=True))

        self.storage_lifecycle = storage_lifecycle
        if settings.lifecycle_interval_hours > 0:
            @self.huey.periodic_task(every_hours(settings.lifecycle_interval_hours),  # type: ignore[untyped-decorator]
                                     name="periodic_storage_lifecycle")
            def periodic_storage_lifecycle() -> None:
                self.hub.lifecycle.run(apply=True)

        if settings.gc_interval_hours > 0:
            @self.huey.periodic_task(every_hours(settings.gc_interval_hours),  # type: ignore[untyped-decorator]
                                     name="periodic_blob_gc")  # (huey is untyped)
            def periodic_blob_gc() -> None:
                try:
                    self.run_gc(apply=True, grace_hours=settings.gc_grace_hours)
                except TaskLockedException:
                    log.info("gc: another worker is collecting; skipped")

    def chunk_existing(self) -> int:
        """Queue the chunking of every LFS object not in the chunk store yet (a hub upgraded from
        before it, or one that ran with chunking off); the workers run them one by one, each
        deduplicating against the ones before. Returns how many were queued."""
        from aicommons.hub import chunking

        if not chunking.available():
            raise HubError("hf_xet is not installed (the `chunking` extra): LFS objects cannot be chunked")
        pending = self.hub.storage.store.unchunked_objects()
        for repo_id, oid in pending:
            self.chunk_lfs_object(repo_id, oid)
        return len(pending)

    def sync_mirrors(self) -> None:
        """Sync every pinned mirror (hub/upstream.py); one failing repo does not stop the others."""
        from aicommons.hub.upstream import UpstreamError

        upstream = self.hub.upstream
        if upstream is None:
            return
        for repo, mirror in upstream.mirrored():
            if mirror.pinned:
                try:
                    upstream.sync(repo)
                except (UpstreamError, HubError, OSError) as exc:
                    log.warning("mirror sync of %s failed: %s", repo.full_id, exc)

    def run_gc(self, *, apply: bool, grace_hours: float, progress: Progress = SILENT) -> dict[str, Any]:
        """Collect garbage now, holding the GC lock (raises TaskLockedException if another run holds it)."""
        from aicommons.hub.gc import collect_garbage
        from aicommons.hub.lifecycle import LifecycleReport

        with self.gc_lock:
            report = collect_garbage(BlobGcStore(self.hub.engine), self.hub.git, self.hub.blobs,
                                     grace_hours=grace_hours, apply=apply, progress=progress, xet=self.hub.xet)
        if apply:  # no cached copy of a download, local or in the bucket, outlives its collected chunks
            self.hub.lifecycle.sweep_copies(LifecycleReport(apply=True))
        log.info("gc: %s", report.summary())
        return asdict(report)

    def start_workers(self, workers: int, periodic: bool = True) -> Any:
        """Start ``workers`` worker threads (and the periodic scheduler) in this process; returns the
        consumer, whose ``stop(graceful=True)`` ends them. Signal handlers are left to the caller."""
        # shutdown_timeout: a graceful stop waits that long for a running job, then leaves it (every
        # job is safe to interrupt; a GC lock left behind expires after GC_LOCK_TTL_SECONDS).
        consumer = self.huey.create_consumer(workers=workers, worker_type="thread", periodic=periodic,
                                             max_delay=5.0, check_worker_health=False, shutdown_timeout=10)
        start_consumer_threads(consumer)  # not consumer.start(): the caller owns the process's signals
        self.resume_interrupted()
        return consumer

    def resume_interrupted(self) -> list[tuple[str, int, str | None]]:
        """Queue again the jobs that a process which died took with it (hub/parquet_export.py
        ``resume``: conversions and their follow-ups), unless they are on the queue already."""
        if not self.hub.settings.parquet_conversion:
            return []
        try:
            waiting = {(t.name, tuple(t.args)) for t in self.huey.pending() + self.huey.scheduled()}
            resumed = self.hub.parquet.resume(lambda name, args: (name, args) in waiting)
        except Exception:  # noqa: BLE001 - workers start anyway; the next start tries again
            log.exception("could not resume interrupted conversions")
            return []
        if resumed:
            log.info("resumed %d interrupted conversion jobs", len(resumed))
        return resumed
