"""Operator commands for scaled-out and long-lived hubs: worker, gc, backup, restore, fsck, refresh-metadata,
stats rollup.

The long ones show progress bars on a terminal and only their summary otherwise (``--json``: the
result as JSON); Ctrl-C ends them with exit code 130 and nothing half-done (see each command).

Import-light like ``main.py``: each command imports what it needs when it runs.
"""

from __future__ import annotations

import json
import sys

from aicommons.cli.values import hours, positive_int


def _settings():
    from aicommons.config import Settings

    return Settings.from_env()


def _hub():
    from aicommons.hub.hub import Hub

    return Hub(_settings())


def cmd_worker(args) -> int:
    import signal
    import threading

    hub = _hub()
    hub.settings.check_can_serve()
    consumer = hub.jobs.start_workers(args.workers or max(hub.settings.job_workers, 1),
                                       periodic=not args.no_periodic)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"worker running ({consumer.workers} threads); Ctrl-C stops it", file=sys.stderr)
    stop.wait()
    consumer.stop(graceful=True)
    return 0


INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


def _progress():
    from aicommons.cli.progress import progress_for_terminal

    return progress_for_terminal()


def cmd_gc(args) -> int:
    from huey.exceptions import TaskLockedException  # type: ignore[import-untyped]  # huey has no types

    from aicommons.hub.gc import format_keys
    hub = _hub()
    grace = hub.settings.gc_grace_hours if args.grace_hours is None else args.grace_hours
    try:
        report = hub.jobs.run_gc(apply=args.apply, grace_hours=grace, progress=_progress())
    except TaskLockedException:
        print("error: another garbage collection is running", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: every blob deleted so far was deleted whole; run gc again to finish", file=sys.stderr)
        return INTERRUPTED
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if report["deleted"]:
            print(format_keys(report["deleted"]))
        if report["redundant"]:
            print("whole-file copies the chunk store also holds:")
            print(format_keys(report["redundant"]))
        verb = "deleted" if args.apply else "would delete (dry run; --apply deletes)"
        print(f"{report['scanned']} blobs scanned, {report['marked']} referenced, {report['kept_young']} kept "
              f"(younger than {grace:g} h or in use), {verb}: {len(report['deleted'])} blobs, "
              f"{len(report['redundant'])} redundant copies, {report['freed_bytes']} bytes")
    return 1 if report["errors"] else 0


def cmd_backup(args) -> int:
    from huey.exceptions import TaskLockedException

    from aicommons.hub.backup import BackupError, backup
    hub = _hub()
    try:
        # Holding the GC lock: no blob the dump references can be collected before it is copied.
        with hub.jobs.gc_lock:
            manifest = backup(hub.settings, args.dest, skip_blobs=args.skip_blobs, progress=_progress())
    except TaskLockedException:
        print("error: a garbage collection is running; back up when it is done", file=sys.stderr)
        return 1
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: the partial backup was removed from {args.dest}", file=sys.stderr)
        return INTERRUPTED
    finally:
        hub.close()
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        blobs = (f", {manifest['blobs']} blobs ({manifest['blob_bytes']} bytes)" if "blobs" in manifest
                 else ", blobs skipped")
        print(f"backed up the {manifest['database']} database, {manifest['git_repositories']} git repositories"
              f"{blobs} into {args.dest}")
    return 0


def cmd_restore(args) -> int:
    from aicommons.hub.backup import BackupError, restore

    try:
        result = restore(_settings(), args.src, progress=_progress())
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the database is still empty and the copied repositories were removed; "
              "run the same restore again", file=sys.stderr)
        return INTERRUPTED
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"restored the {result['database']} database, {result.get('git_repositories', 0)} git repositories "
              f"and {result['restored_blobs']} blobs from {args.src}; run `aicommons fsck` to verify")
    return 0


def cmd_fsck(args) -> int:
    from dataclasses import asdict

    from aicommons.hub.fsck import fsck

    try:
        report = fsck(_hub(), blobs=not args.skip_blobs, progress=_progress())
    except KeyboardInterrupt:
        print("interrupted (fsck only reads: nothing to clean up)", file=sys.stderr)
        return INTERRUPTED
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        for error in report.errors:
            print(error)
        print(report.summary())
    return 1 if report.errors else 0


def cmd_refresh_metadata(args) -> int:
    refreshed = _hub().repos.refresh_stored_cards(args.type)
    print(json.dumps({"refreshed": refreshed}) if args.json else f"{refreshed} {args.type} repos refreshed")
    return 0


def cmd_stats_rollup(args) -> int:
    summary = _hub().dashboard.rollup()
    print(json.dumps(summary) if args.json else
          f"dashboard rolled up at {summary['at']}: {summary['repos']} repos, "
          f"{summary['logical_bytes']} bytes, {summary['jobs_waiting']} jobs waiting")
    return 0


def add_ops_commands(sub) -> None:
    worker = sub.add_parser("worker", help="run background-job workers (GC, scans...) against the database")
    worker.add_argument("--workers", type=positive_int, help="worker threads (default: AICOMMONS_JOB_WORKERS, at least 1)")
    worker.add_argument("--no-periodic", action="store_true", help="do not run periodic jobs from this process")
    worker.set_defaults(func=cmd_worker)

    gc = sub.add_parser("gc", help="delete LFS blobs, xorbs and shards nothing references (dry run unless --apply)")
    gc.add_argument("--apply", action="store_true", help="really delete (default: only list)")
    gc.add_argument("--grace-hours", type=hours, help="keep blobs younger than this (default: AICOMMONS_GC_GRACE_HOURS)")
    gc.add_argument("--json", action="store_true", help="print the report as JSON")
    gc.set_defaults(func=cmd_gc)

    backup = sub.add_parser("backup", help="back up the database, git repositories and blobs into a folder")
    backup.add_argument("dest", help="a new or empty folder")
    backup.add_argument("--skip-blobs", action="store_true",
                        help="leave blobs out (when the bucket is replicated or versioned separately)")
    backup.add_argument("--json", action="store_true", help="print the manifest as JSON")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="restore a backup into an empty database, git folder and store")
    restore.add_argument("src", help="a folder written by `aicommons backup`")
    restore.add_argument("--json", action="store_true", help="print what was restored as JSON")
    restore.set_defaults(func=cmd_restore)

    fsck = sub.add_parser("fsck", help="re-hash every blob and read every repo; exit 1 on any problem")
    fsck.add_argument("--skip-blobs", action="store_true", help="check repos only, do not re-hash blobs")
    fsck.add_argument("--json", action="store_true", help="print the report as JSON")
    fsck.set_defaults(func=cmd_fsck)

    refresh = sub.add_parser("refresh-metadata", help="store again what each repo's card and files say (library, "
                             "task, tags), as a commit to main would: once after an upgrade that derives more")
    refresh.add_argument("--type", default="model", choices=("model", "dataset", "space"))
    refresh.add_argument("--json", action="store_true", help="print the count as JSON")
    refresh.set_defaults(func=cmd_refresh_metadata)

    stats = sub.add_parser("stats", help="the admin dashboard's figures").add_subparsers(dest="action", required=True)
    rollup = stats.add_parser("rollup", help="roll up the dashboard's figures now (else every "
                              "AICOMMONS_DASHBOARD_ROLLUP_MINUTES)")
    rollup.add_argument("--json", action="store_true", help="print the summary as JSON")
    rollup.set_defaults(func=cmd_stats_rollup)
