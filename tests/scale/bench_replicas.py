"""Throughput of a scaled-out deployment (PostgreSQL + moto S3 + N replicas behind nginx), driven
by huggingface_hub from this process. The numbers in docs/deploy.md come from:

    .venv/bin/python -m tests.scale.bench_replicas --replicas 1
    .venv/bin/python -m tests.scale.bench_replicas --replicas 3
    .venv/bin/python -m tests.scale.bench_replicas --replicas 3 --direct-uploads
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download  # noqa: E402

from tests.conftest import ALICE_TOKEN, unique_name  # first: sets HF_HUB_DISABLE_XET etc. for the client
from tests.scale.cluster import start_deployment

MB = 1024 * 1024


def timed(fn, jobs: list) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(fn, jobs))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--commits", type=int, default=8, help="commits per thread")
    parser.add_argument("--file-mb", type=int, default=32)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--direct-uploads", action="store_true", help="AICOMMONS_DIRECT_UPLOADS=true")
    args = parser.parse_args()
    extra = {"AICOMMONS_DIRECT_UPLOADS": "true"} if args.direct_uploads else {}
    dep = start_deployment(args.replicas, **extra)
    try:
        api = HfApi(endpoint=dep.url, token=ALICE_TOKEN)
        results = {}
        shared = api.create_repo(f"alice/{unique_name()}").repo_id

        def commit_shared(t):
            for j in range(args.commits):
                api.create_commit(shared, [CommitOperationAdd(f"t{t}-{j}", b"x")], commit_message="c")

        n = args.threads * args.commits
        results["commits/s, one branch"] = n / timed(commit_shared, list(range(args.threads)))
        own = [api.create_repo(f"alice/{unique_name()}").repo_id for _ in range(args.threads)]

        def commit_own(repo):
            for j in range(args.commits):
                api.create_commit(repo, [CommitOperationAdd(f"f{j}", b"x")], commit_message="c")

        results["commits/s, one repo per thread"] = n / timed(commit_own, own)
        repo = api.create_repo(f"alice/{unique_name()}").repo_id
        blobs = [os.urandom(args.file_mb * MB) for _ in range(args.files)]

        def upload(i):
            api.upload_file(path_or_fileobj=blobs[i], path_in_repo=f"w{i}.bin", repo_id=repo)

        total_mb = args.files * args.file_mb
        how = "straight to the bucket" if args.direct_uploads else "through nginx"
        results[f"upload MB/s ({args.files} x {args.file_mb} MB, LFS {how})"] = \
            total_mb / timed(upload, list(range(args.files)))
        cache = tempfile.mkdtemp(prefix="bench-cache-")

        def download(i):
            hf_hub_download(repo, f"w{i}.bin", cache_dir=cache, endpoint=dep.url)

        results[f"download MB/s ({args.files} x {args.file_mb} MB, 302 to the bucket)"] = \
            total_mb / timed(download, list(range(args.files)))
        print(f"| measure | {args.replicas} replica(s) |")
        print("|---|---|")
        for name, value in results.items():
            print(f"| {name} | {value:.1f} |")
    finally:
        dep.stop()


if __name__ == "__main__":
    main()
