"""Web pages at 100,000 repos (issue 14): server-side render time of repo pages and listing pages.

Seeds a hub as ``bench/metadata`` does (templates through the real API, then bulk clones with their
rows and tags), starts ``aicommons serve`` (SQLite), and requests each page one at a time from one
client, so each figure is one page's cost: the HTTP round trip on localhost plus the server's work
(routing, queries, git reads, the model-metadata reads of each repo's files, Jinja). A bare
``/api/health`` is measured in the same run, interleaved, as the anchor.

- Repo pages: the card, files and history pages of ``--samples`` different repos, each seen for
  the first time (no per-repo cache warm), then the same again (warm).
- Listing pages: models by each sort (Trending included), a search, a facet filter, an author, a deep
  page (the 41st, reached by keyset cursors), datasets, and the site-wide search; each URL's first
  view and then ``--runs`` repeats. After seeding, ``aicommons listings recount`` builds the facet
  counts of the bulk-inserted rows (timed: ``recount_seconds``).

Goal: <= 50 ms p95 for both kinds of page.

    python bench/web_bench.py --repos 100000 [--json bench/web_results.json]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.metadata import seed, server  # noqa: E402
from bench.search_bench import percentile  # noqa: E402

DEEP = "the 41st page of /models"  # found by following 40 Next links (keyset cursors), then timed
LISTINGS = ["/models", "/models?sort=trendingScore", "/models?sort=downloads", "/models?sort=likes",
            "/models?sort=lastModified", "/models?search=mistral", "/models?filter=license:apache-2.0",
            "/models?filter=llama&sort=downloads", "/models?author=user7", DEEP, "/datasets", "/search?q=llama",
            "/search?q=qwen-7b"]


def deep_page(client: httpx.Client, pages: int = 40) -> str:
    path = "/models"
    for _ in range(pages):
        found = re.search(r'<a href="([^"]+)" rel="next">', client.get(path).text)
        if found is None:
            raise RuntimeError(f"{path}: no Next link")
        path = "/models" + html.unescape(found.group(1))
    return path


def load() -> str:
    return Path("/proc/loadavg").read_text().strip()


def get_ms(client: httpx.Client, path: str) -> float:
    t0 = time.perf_counter()
    r = client.get(path)
    ms = 1000 * (time.perf_counter() - t0)
    if r.status_code != 200:
        raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
    return ms


def summary(times: list[float]) -> dict:
    return {"n": len(times), "p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1)}


def measure(url: str, ids: list[str], runs: int) -> dict:
    out: dict = {"load_before": load()}
    health: list[float] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(20):  # the server's first requests (imports, pools) are not a page's cost
            get_ms(client, "/api/health")

        def page(path: str) -> float:
            health.append(get_ms(client, "/api/health"))  # the anchor, interleaved
            return get_ms(client, path)

        for kind, suffix in (("repo card", ""), ("repo files", "/tree/main"), ("repo history", "/commits/main")):
            cold = [page(f"/{rid}{suffix}") for rid in ids]
            warm = [page(f"/{rid}{suffix}") for rid in ids]
            out[kind] = {"first view": summary(cold), "again": summary(warm)}
        first: list[float] = []
        again: dict[str, list[float]] = {}
        deep = deep_page(client)
        for label in LISTINGS:
            path = deep if label == DEEP else label
            first.append(page(path))
            again[label] = [page(path) for _ in range(runs)]
        out["listings"] = {"first view": summary(first), "again": summary([t for ts in again.values() for t in ts]),
                           "per_url_p95_ms": {p: round(percentile(ts, 95), 1) for p, ts in again.items()}}
    out["bare /api/health"] = summary(health)
    out["load_after"] = load()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=100, help="repos whose pages are timed")
    parser.add_argument("--runs", type=int, default=20, help="repeats of each listing URL")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "web_results.json")
    args = parser.parse_args(argv)
    root = server.scratch_dir("bench-web-")
    database = server.Database("sqlite", root)
    hub = server.make_hub(database, root / "data")
    seeded = seed.Seeded()
    results: dict = {"command": "python bench/web_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                     "started": datetime.now(UTC).isoformat(timespec="seconds"),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    try:
        hub.cli("user", "create", server.USER)
        hub.cli("token", "create", server.USER, "--value", server.TOKEN)
        hub.start()
        t0 = time.perf_counter()
        templates = seed.seed_through_api(hub.url, server.TOKEN, 8, 100, 10, seeded)
        hub.stop()
        seed.clone_repos(database.url, root / "data" / "git", templates, args.repos - seeded.repos, seeded)
        recount = time.perf_counter()
        hub.cli("listings", "recount")  # the rows were bulk-inserted: build the facet counts from them
        results["recount_seconds"] = round(time.perf_counter() - recount, 1)
        results["seed"] = {"repos": seeded.repos, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"seeded {seeded.repos} repos in {results['seed']['seconds']} s", flush=True)
        hub.start()
        ids = random.Random(3).sample(seeded.sample_ids, min(args.samples, len(seeded.sample_ids)))
        results["pages"] = measure(hub.url, ids, args.runs)
    finally:
        hub.stop()
        database.stop()
        server.remove(root)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2), flush=True)
    return results


if __name__ == "__main__":
    main()
