"""``make bench-metadata``: seed, serve, load, report, once per database.

    python -m bench.metadata [--repos 100000] [--seconds 10] [--databases sqlite,postgres]
                             [--search-repos 1000000] [--json PATH] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.metadata import load, pyload, report, seed, server, snapshot

HEALTH = "/api/health"
CLEANUP: list[Path] = []
SEARCH_TERMS = ["mistral", "llama-7b", "qwen-70b-chat", "gemma-2b", "user17/", "-999"]


def uptime() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def drain(url: str, path: str) -> None:
    """One more request of the same kind: the server's thread pool serves it after the backlog that a
    stopped wrk leaves behind (requests it sent but no longer waits for)."""
    httpx.get(url + path, timeout=600)


def alone(url: str, paths: list[str], method: str, n: int = 5) -> float:
    """Median latency of ``n`` requests sent one at a time (no concurrency): the cost of one call."""
    times = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for path in paths[:n] * (n // len(paths[:n]) + 1):
            t0 = time.perf_counter()
            client.request(method, path).raise_for_status()
            times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times[:n])


def tree_pages(url: str, repo_id: str) -> list[str]:
    """The URL path of every page of the recursive tree listing, following the Link headers."""
    pages = [f"/api/models/{repo_id}/tree/main?recursive=true"]
    with httpx.Client(base_url=url, timeout=60) as client:
        while True:
            r = client.get(pages[-1])
            r.raise_for_status()
            link = r.links.get("next", {}).get("url")
            if not link:
                return pages
            parts = urlsplit(link)
            pages.append(parts.path + (f"?{parts.query}" if parts.query else ""))


def tree_linearity(url: str, repo_id: str, pages: list[str], reps: int) -> dict:
    """Each page timed alone (median of ``reps``, one client): a walk is linear in the number of pages
    when a late page costs what an early one does. Then the whole walk by ``list_repo_tree``."""
    from huggingface_hub import HfApi

    per_page = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for path in pages:
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                client.get(path).raise_for_status()
                times.append(time.perf_counter() - t0)
            per_page.append(1000 * statistics.median(times))
    api = HfApi(endpoint=url)
    walks, entries = [], 0
    for _ in range(reps):
        t0 = time.perf_counter()
        entries = sum(1 for _ in api.list_repo_tree(repo_id, recursive=True))
        walks.append(time.perf_counter() - t0)
    first, last = per_page[0], per_page[-1]
    return {"pages": len(pages), "entries": entries, "page_ms": per_page, "last_over_first": last / first,
            "walk_s": statistics.median(walks), "walk_over_pages_x_first": statistics.median(walks) * 1000 / (first * len(pages)),
            "linear": last / first <= 2.0}


def endpoints(seeded: seed.Seeded, pages: list[str], limit: int) -> list[dict]:
    small = [f"/{seed.SMALL_REPO}/resolve/main/{p}" for p in seeded.small_files]
    return [
        {"name": "model_info", "paths": [f"/api/models/{rid}" for rid in seeded.sample_ids], "single_repo": True},
        {"name": "list_repo_tree (all pages)", "paths": pages, "single_repo": True},
        {"name": "list_models search", "paths": [f"/api/models?search={t}&limit={limit}" for t in SEARCH_TERMS]},
        {"name": "list_models author", "paths": [f"/api/models?author={a}" for a in seeded.authors]},
        {"name": "list_models sort=downloads", "paths": [f"/api/models?sort=downloads&limit={limit}"]},
        {"name": "list_models full=true", "paths": [f"/api/models?full=true&limit={limit}"]},
        {"name": "resolve GET", "paths": small, "single_repo": True},
    ]


def head_runs(seeded: seed.Seeded) -> list[dict]:
    """HEAD cannot go through wrk (load.py): measured with the Python client, beside the bare
    endpoint measured by that same client."""
    small = [f"/{seed.SMALL_REPO}/resolve/main/{p}" for p in seeded.small_files]
    return [{"name": "bare /api/health (python client)", "paths": [HEALTH], "baseline": True, "client": "python"},
            {"name": "resolve HEAD (python client)", "paths": small, "method": "HEAD", "single_repo": True,
             "client": "python"}]


def run_line(hub: server.Hub, spec: dict, args) -> dict:
    """One line: its cost alone (which also warms it up), then ``connections`` clients at once.

    A call that costs C seconds of server CPU, 64 at a time on a thread pool that shares the GIL,
    completes its first requests only after about 64 x C seconds: such heavy lines run long enough
    for that (up to --max-seconds), and afterwards the server is restarted rather than left to
    drain minutes of requests that wrk no longer waits for."""
    method = spec.get("method", "GET")
    client = spec.get("client", "wrk")
    measure = pyload.run_python if client == "python" else load.run_wrk
    alone_ms = alone(hub.url, spec["paths"], method)
    backlog_s = args.connections * alone_ms / 1000
    heavy = backlog_s > 2
    seconds = min(args.max_seconds, max(args.seconds, 3 * backlog_s)) if heavy else args.seconds
    if not heavy:
        measure(hub.url, spec["paths"], 1, args.connections, method=method)
        drain(hub.url, spec["paths"][0])
    res = measure(hub.url, spec["paths"], seconds, args.connections, method=method,
                  **({"timeout_s": int(seconds) + 5} if client == "wrk" else {}))
    if heavy:
        hub.kill()
        hub.start()
    else:
        drain(hub.url, spec["paths"][0])
    res.update(name=spec["name"], single_repo=spec.get("single_repo", False), client=client, alone_ms=alone_ms,
               heavy=heavy, baseline=spec.get("baseline", False), load=uptime())
    return res


def bench_database(kind: str, args) -> dict:
    root = server.scratch_dir(f"bench-metadata-{kind}-")
    out: dict = {"database": kind, "load_before": uptime()}
    database = server.Database(kind, root)
    hub = server.make_hub(database, root / "data")
    seeded = seed.Seeded()
    try:
        hub.cli("user", "create", server.USER)
        hub.cli("token", "create", server.USER, "--value", server.TOKEN)
        hub.start()
        n_service = min(args.service_repos, max(8, args.repos // 10))
        t0 = time.perf_counter()
        templates = seed.seed_through_api(hub.url, server.TOKEN, n_service, args.tree_files, args.small_files, seeded)
        hub.stop()
        seed.clone_repos(database.url, root / "data" / "git", templates, args.repos - seeded.repos, seeded)
        seeded.timings["total_s"] = time.perf_counter() - t0
        out["seed"] = {"repos": seeded.repos, "timings_s": seeded.timings, "service_path": seeded.service_seed}
        print(f"[{kind}] seeded {seeded.repos} repos in {seeded.timings['total_s']:.0f} s {seeded.timings}", flush=True)

        hub.start()
        pages = tree_pages(hub.url, seed.TREE_REPO)
        out["tree"] = tree_linearity(hub.url, seed.TREE_REPO, pages, reps=args.tree_reps)
        print(f"[{kind}] tree: {out['tree']['pages']} pages, page ms {[round(x, 1) for x in out['tree']['page_ms']]}", flush=True)

        runs = [{"name": "bare /api/health (before)", "paths": [HEALTH], "baseline": True}]
        runs += endpoints(seeded, pages, args.list_limit)
        runs.append({"name": "bare /api/health (after)", "paths": [HEALTH], "baseline": True})
        runs += head_runs(seeded)
        results = []
        for spec in runs:
            results.append(run_line(hub, spec, args))
            res = results[-1]
            print(f"[{kind}] {spec['name']}: {res['req_s']:.1f} req/s in {res['seconds']:.0f} s, p50 {res['p50_ms']} ms "
                  f"p99 {res['p99_ms']} ms, alone {res['alone_ms']:.1f} ms, errors {res['errors']}", flush=True)
        bare = {c: statistics.mean(r["req_s"] for r in results if r["baseline"] and r["client"] == c)
                for c in {r["client"] for r in results}}
        for r in results:
            r["ratio_vs_bare"] = r["req_s"] / bare[r["client"]]
        out["bare_req_s"] = bare["wrk"]
        out["bare_req_s_by_client"] = bare
        out["endpoints"] = results

        out["snapshot"] = snapshot.compare(hub.url, seed.SMALL_REPO, seeded.small_files, server.free_port(),
                                           rounds=args.snapshot_rounds)
        print(f"[{kind}] snapshot: {out['snapshot']['median_s']} ratio {out['snapshot']['ratio_snapshot_vs_nginx']:.2f}", flush=True)
        hub.stop()
        if args.search_repos:
            from bench import search_bench

            url = database.cluster.create_database("search") if database.cluster else f"sqlite:///{root / 'search.db'}"
            out["search"] = search_bench.measure(url, args.search_repos, runs=args.search_runs)
            print(f"[{kind}] search at {args.search_repos}: {out['search']}", flush=True)
    finally:
        hub.stop()
        database.stop()
        CLEANUP.append(root)  # removed after the report is written: 100,000 repos take minutes to delete
    out["load_after"] = uptime()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.metadata", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=100_000, help="repos per database (default 100,000)")
    parser.add_argument("--seconds", type=float, default=10, help="length of each measured wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--tree-files", type=int, default=10_000)
    parser.add_argument("--small-files", type=int, default=1_000)
    parser.add_argument("--service-repos", type=int, default=100,
                        help="repos created through the API to time that path (at most a tenth of --repos)")
    parser.add_argument("--tree-reps", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=30,
                        help="longest run of a line whose requests are slow (see run_line)")
    parser.add_argument("--list-limit", type=int, default=100, help="limit= of the list_models lines")
    parser.add_argument("--snapshot-rounds", type=int, default=2)
    parser.add_argument("--search-repos", type=int, default=0,
                        help="also time search= at this many repos through RepoStore (bench/search_bench.py); 0: skip")
    parser.add_argument("--search-runs", type=int, default=20)
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/metadata/results/)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.repos < seed.MIN_REPOS:
        parser.error(f"--repos must be at least {seed.MIN_REPOS}")

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    results = {
        "command": "python -m bench.metadata " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": started.isoformat(timespec="seconds"), "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"repos": args.repos, "seconds": args.seconds, "connections": args.connections, "max_seconds": args.max_seconds,
                     "tree_files": args.tree_files, "small_files": args.small_files,
                     "search_repos": args.search_repos, "search_terms": SEARCH_TERMS, "list_limit": args.list_limit, "hub_settings": server.BENCH_SETTINGS},
        "databases": {},
    }
    try:
        for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
            results["databases"][kind] = bench_database(kind, args)
        results["wall_s"] = time.perf_counter() - t0
        results["goals"] = report.goals(results)
        path = args.json or report.RESULTS / f"metadata-{started:%Y%m%d-%H%M}.json"
        report.write_json(results, path)
        print(f"results: {path}")
        if not args.no_docs:
            report.update_docs(results, path)
            print(f"docs: {report.DOCS}")
        print(report.markdown(results), flush=True)
    finally:
        for root in CLEANUP:
            server.remove(root)
    return results


if __name__ == "__main__":
    main()
