"""Storage accounting and quota checks at scale (issue 11): how long the ``storage_accounting`` job
takes for N repos, and what the quota check adds to an upload (the live per-owner sum).

    PYTHONPATH=src python bench/storage_accounting.py            # BENCH_REPOS=2000, BENCH_FILES=5

A throwaway SQLite hub: N repos (real bare git repositories, one commit each) owned by 20 owners,
each holding BENCH_FILES committed LFS objects (rows only: the job reads sizes from the database, the
store listing is empty) and one upload never committed. Prints JSON.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import tempfile
import time

from aicommons.config import Settings
from aicommons.hub.hub import Hub
from aicommons.times import utcnow


def main() -> int:
    repos, files = int(os.environ.get("BENCH_REPOS", "2000")), int(os.environ.get("BENCH_FILES", "5"))
    with tempfile.TemporaryDirectory() as data:
        hub = Hub(Settings.from_env(data_dir=data, chunk_lfs_uploads=False))
        now = utcnow()
        owners = [hub.accounts.store.create(f"owner{i}", "user") for i in range(20)]
        started = time.perf_counter()
        for i in range(repos):
            owner = owners[i % len(owners)]
            key = secrets.token_hex(16)
            hub.git.init(key)
            repo = hub.repo_store.create(type="model", namespace=owner.name, name=f"r{i}", owner_id=owner.id,
                                         storage_key=key, private=False, now=now)
            rows = [(secrets.token_hex(32), f"f{j}.bin", 1_000_000 + j) for j in range(files)]
            for oid, _path, size in rows:
                hub.repo_store.add_lfs_object(repo.id, oid, size, now)
            hub.repo_store.mark_lfs_committed(repo.id, rows, "refs/heads/main", now)
            hub.repo_store.add_lfs_object(repo.id, secrets.token_hex(32), 123, now)  # never committed
        setup = time.perf_counter() - started
        started = time.perf_counter()
        report = hub.storage.refresh()
        refresh = time.perf_counter() - started
        hub.storage.store.set_quota(owners[0].id, 10 ** 15, now)
        checks = []
        for _ in range(200):
            t = time.perf_counter()
            hub.storage.check_upload(owners[0].id, 1_000_000)
            checks.append((time.perf_counter() - t) * 1000)
        out = {"repos": repos, "lfs_rows": repos * (files + 1), "setup_s": round(setup, 1),
               "refresh_s": round(refresh, 2), "refresh_ms_per_repo": round(1000 * refresh / repos, 2),
               "quota_check_ms_p50": round(statistics.median(checks), 2),
               "quota_check_ms_p95": round(sorted(checks)[int(len(checks) * 0.95)], 2),
               "logical_bytes": report.logical_bytes, "pending_bytes": report.pending_bytes}
        hub.close()
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
