"""``aicommons storage``: what repos and owners store (report, refresh) and their quotas.

Import-light like ``main.py``: each command imports what it needs when it runs.
"""

from __future__ import annotations

import json
import sys

from aicommons.cli.values import hours


def _hub():
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    return Hub(Settings.from_env())


def _size(n: int | None) -> str:
    from aicommons.hub.storage_usage import format_size

    return format_size(n)


def cmd_report(args) -> int:
    hub = _hub()
    if args.refresh:
        hub.storage.refresh()
    report = hub.storage.report(args.owner)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report["repos"] and not report["owners"]:
        print("no figures yet: run `aicommons storage refresh` (or wait for the storage_accounting job)")
        return 0
    print(f"{'owner':24} {'repos':>5} {'logical':>11} {'pending':>11} {'physical':>11} {'used':>11} {'quota':>11}")
    for o in report["owners"]:
        print(f"{o['owner']:24} {o['repos']:>5} {_size(o['logical_bytes']):>11} {_size(o['pending_bytes']):>11} "
              f"{_size(o['physical_bytes']):>11} {_size(o['used_bytes']):>11} {_size(o['quota_bytes']):>11}")
    print()
    print(f"{'repo':48} {'logical':>11} {'pending':>11} {'physical':>11} {'LFS files':>9}")
    for r in report["repos"]:
        print(f"{r['repo']:48} {_size(r['logical_bytes']):>11} {_size(r['pending_bytes']):>11} "
              f"{_size(r['physical_bytes']):>11} {r['lfs_files']:>9}")
    return 0


def cmd_refresh(args) -> int:
    from dataclasses import asdict

    report = _hub().storage.refresh()
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(f"{report.repos} repos: {_size(report.logical_bytes)} logical, {_size(report.pending_bytes)} pending, "
              f"{_size(report.physical_bytes)} physical of {_size(report.stored_bytes)} stored "
              f"({_size(report.unattributed_bytes)} unattributed: uploads never committed, garbage not yet collected)")
        for error in report.errors:
            print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def _print_owner(owner, as_json: bool) -> None:
    from aicommons.hub.storage_usage import owner_dict

    if as_json:
        print(json.dumps(owner_dict(owner), indent=2))
        return
    percent = f" ({owner.percent:g} %)" if owner.percent is not None else ""
    print(f"{owner.owner}: {_size(owner.used_bytes)} used of {_size(owner.quota_bytes)}{percent}; "
          f"{owner.repos} repos measured: {_size(owner.logical_bytes)} logical, {_size(owner.pending_bytes)} "
          f"pending, {_size(owner.physical_bytes)} physical")


def cmd_quota_set(args) -> int:
    from aicommons.config import parse_size
    from aicommons.errors import BadRequest

    hub = _hub()
    word = args.size.strip().lower()
    if word == "default":
        owner = hub.storage.clear_quota(args.owner)
    else:
        try:
            size = None if word in ("unlimited", "none") else parse_size(args.size)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        owner = hub.storage.set_quota(args.owner, size)
    _print_owner(owner, args.json)
    return 0


def cmd_quota_show(args) -> int:
    _print_owner(_hub().storage.show(args.owner), args.json)
    return 0


def _lifecycle(args, steps) -> int:
    from dataclasses import asdict

    from aicommons.hub.lifecycle import LifecycleReport

    hub = _hub()
    report = LifecycleReport(apply=getattr(args, "apply", True))
    for step in steps:
        step(hub.lifecycle, report, args)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
        return 1 if report.errors else 0
    verb = "" if report.apply else "would be "
    if "expire" in args.steps:
        hours = args.hours if getattr(args, "hours", None) is not None else hub.settings.upload_expiry_hours
        print(f"uploads never committed within {hours:g} h: {report.expired_uploads} {verb}expired "
              f"({_size(report.expired_bytes)}); GC deletes their bytes")
    if "snapshots" in args.steps:
        for path in report.snapshots_removed:
            print(f"snapshot {path}")
        print(f"snapshots: {len(report.snapshots_removed)} {verb}removed ({_size(report.snapshot_bytes_freed)}), "
              f"{_size(report.snapshot_bytes_kept)} kept (cap {_size(hub.settings.snapshot_max_bytes)})")
    if "viewer" in args.steps:
        for name in report.viewer_cache_files:
            print(f"viewer-cache/{name}")
        for key in report.viewer_indexes:
            print(f"search index {key}")
        print(f"dataset viewer: {len(report.viewer_cache_files)} cache files ({_size(report.viewer_cache_bytes)}) and "
              f"{len(report.viewer_indexes)} search indexes ({_size(report.viewer_index_bytes)}) {verb}removed")
    if "git" in args.steps and report.apply:
        print(f"git: {report.git_repos_maintained} repositories maintained, {_size(report.git_bytes_before)} -> "
              f"{_size(report.git_bytes_after)}")
    if "copies" in args.steps and report.apply:
        print(f"download copies: {report.cached_copies_removed} local and {report.bucket_copies_removed} in the "
              "bucket removed")
    if "limits" in args.steps and report.apply:
        print(f"rate limits: {report.rate_buckets_pruned} idle buckets and {report.leases_pruned} expired leases pruned")
    if not report.apply:
        print("(dry run; --apply changes it)")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors else 0


STEPS = {
    "expire": lambda lc, report, args: lc.expire_uploads(report, getattr(args, "hours", None)),
    "snapshots": lambda lc, report, args: lc.sweep_snapshots(report),
    # Not destructive, so no dry run of their own; `lifecycle` without --apply skips them.
    "git": lambda lc, report, args: lc.maintain_git(report) if report.apply else None,
    "limits": lambda lc, report, args: lc.prune_limits(report) if report.apply else None,
    # Only copies of objects no longer stored, and evicted ones: also no dry run of its own.
    "copies": lambda lc, report, args: lc.sweep_copies(report) if report.apply else None,
    "viewer": lambda lc, report, args: lc.prune_viewer(report, getattr(args, "grace_hours", None)),
}


def _step_command(storage, name: str, steps: tuple[str, ...], help: str, dry_run: bool) -> None:
    cmd = storage.add_parser(name, help=help)
    if dry_run:
        cmd.add_argument("--apply", action="store_true", help="change it (default: dry run, report only)")
    if "viewer" in steps:
        cmd.add_argument("--grace-hours", type=hours, help="keep viewer files younger than this (default 1)")
    if "expire" in steps:
        cmd.add_argument("--hours", type=hours, help="uploads older than this (default AICOMMONS_UPLOAD_EXPIRY_HOURS)")
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(func=lambda args: _lifecycle(args, [STEPS[s] for s in steps]), steps=steps)


def cmd_chunk_existing(args) -> int:
    queued = _hub().jobs.chunk_existing()
    print(f"queued the chunking of {queued} LFS objects; the job workers chunk them, and the next "
          "`aicommons gc --apply` drops each whole-file copy once its chunks re-hash to it")
    return 0


def add_storage_commands(sub) -> None:
    storage = sub.add_parser("storage", help="storage figures per repo and owner, and quotas") \
        .add_subparsers(dest="action", required=True)
    report = storage.add_parser("report", help="logical, pending and physical bytes per owner and repo "
                                               "(as the storage_accounting job last computed them)")
    report.add_argument("--owner", help="only this user or organization")
    report.add_argument("--refresh", action="store_true", help="recompute the figures first")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_report)
    refresh = storage.add_parser("refresh", help="recompute every repo's storage figures now")
    refresh.add_argument("--json", action="store_true")
    refresh.set_defaults(func=cmd_refresh)
    quota = storage.add_parser("quota", help="per-owner storage quotas").add_subparsers(dest="quota_action",
                                                                                          required=True)
    qset = quota.add_parser("set", help="set an owner's quota: a size (500MB, 100GiB), 'unlimited', or "
                                        "'default' (AICOMMONS_STORAGE_QUOTA_DEFAULT)")
    qset.add_argument("owner")
    qset.add_argument("size")
    qset.add_argument("--json", action="store_true")
    qset.set_defaults(func=cmd_quota_set)
    show = quota.add_parser("show", help="an owner's quota and what it uses")
    show.add_argument("owner")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_quota_show)
    storage.add_parser("chunk-existing", help="queue the chunking of every LFS object still stored whole (after "
                       "upgrading a hub from before the chunk store, or turning AICOMMONS_CHUNK_LFS_UPLOADS on)") \
        .set_defaults(func=cmd_chunk_existing)
    _step_command(storage, "expire-uploads", ("expire",), "forget LFS/Xet uploads no commit named within "
                  "AICOMMONS_UPLOAD_EXPIRY_HOURS (dry run unless --apply); GC then deletes their bytes", True)
    _step_command(storage, "snapshots", ("snapshots",), "remove inference snapshots of deleted repos and the least "
                  "recently used beyond AICOMMONS_SNAPSHOT_MAX_BYTES (dry run unless --apply)", True)
    _step_command(storage, "viewer-cache", ("viewer",), "remove the dataset viewer's cached files and search "
                  "indexes that no finished conversion reads any more (superseded commits, deleted datasets; "
                  "dry run unless --apply)", True)
    _step_command(storage, "git-maintenance", ("git",), "git gc --no-prune in every repository whose refs moved "
                  "since its last maintenance (drops nothing)", False)
    _step_command(storage, "prune-limits", ("limits",), "delete idle rate-limit buckets and expired in-flight "
                  "leases from the database", False)
    _step_command(storage, "download-copies", ("copies",), "drop whole download copies (local, and in the bucket "
                  "on object storage) of objects no longer stored, evicted bucket copies whose links have "
                  "expired, and half-made copies a crash left", False)
    _step_command(storage, "lifecycle", tuple(STEPS), "all of the above, as the storage_lifecycle job does "
                  "(dry run unless --apply: then git maintenance and pruning run too)", True)
