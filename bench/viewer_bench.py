"""``make bench-datasets`` (second part): the dataset viewer's answers over converted datasets (issue 15)
through HTTP on a live hub: ``/rows`` at random offsets of a 10-million-row split, ``/first-rows`` hot,
``/search`` on a million text rows, ``/filter`` with a selective predicate.

A fresh ``aicommons serve`` (SQLite + local disk) holds two datasets uploaded with the stock
``huggingface_hub`` client, converted by the whole job run in this process (``ParquetExport.convert``,
as a worker runs it: Parquet files, full-text index, statistics): ``rows`` (10,000,000 rows: id,
label, score, flag) and ``text`` (1,000,000 rows of 12 words drawn from a 20,000-word vocabulary with
Zipf-like frequencies, so some words are in a third of the rows and most in a few). Requests go one at
a time with ``httpx``; every request is new to the hub's answer cache (a new offset, word or value)
except ``/first-rows`` hot, which is the same request again. The first request of a split (its
footers read and its files linked into the cache folder) is reported apart as "cold".

Prints the markdown table for docs/benchmarks.md and adds the run to bench/viewer_results.json.
Goals: /rows p95 <= 100 ms, /first-rows hot <= 50 ms, /search p95 <= 200 ms, /filter p95 <= 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from itertools import accumulate
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from datasets_bench import DERIVED, TOKEN, LiveHub, hub_seconds, upload  # noqa: E402


def write_rows(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(15)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": np.arange(rows), "label": rng.integers(0, 10, rows), "score": rng.random(rows),
                             "flag": rng.random(rows) < 0.5}), path)


def vocabulary(size: int) -> list[str]:
    rng = random.Random(15)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(letters, k=rng.randint(4, 9))))
    return sorted(words)


def write_text(path: Path, rows: int, words: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(16)
    cumulative = list(accumulate(1 / (rank + 1) for rank in range(len(words))))  # Zipf: the first words are everywhere
    path.parent.mkdir(parents=True)
    texts = [" ".join(rng.choices(words, cum_weights=cumulative, k=12)) for _ in range(rows)]
    pq.write_table(pa.table({"id": list(range(rows)), "text": texts}), path)


def timed(client: httpx.Client, path: str, params: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    r = client.get(path, params=params)
    elapsed = (time.perf_counter() - start) * 1000
    r.raise_for_status()
    return elapsed, r.json()


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": statistics.median(ordered),
            "p95_ms": ordered[max(0, int(round(0.95 * len(ordered))) - 1)], "max_ms": ordered[-1]}


def paired_search(parquet: Path, index: Path, queries: list[str]) -> dict:
    """The ranking alone, in this process, on an index of the same split built by the job's own code:
    every query ranked by FTS5 over all its matches (``ORDER BY rank, rowid``: the ranking before
    the two-part one) and by ``viewer_search.search`` one after the other, so that both see the same
    load; CPU seconds as well as wall time, and how many first pages are exactly the full ranking's."""
    import sqlite3

    from aicommons.hub import viewer_search

    if not index.exists():
        viewer_search.build_index([parquet], index)
    con = sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    full_wall, full_cpu, new_wall, new_cpu, exact = [], [], [], [], 0
    for query in queries:
        wall, cpu = time.perf_counter(), time.process_time()
        expected = [r[0] for r in con.execute("SELECT rowid FROM search WHERE search MATCH ? ORDER BY rank, rowid "
                                              "LIMIT 100", (viewer_search.match_expression(query),))]
        full_wall.append((time.perf_counter() - wall) * 1000)
        full_cpu.append((time.process_time() - cpu) * 1000)
        wall, cpu = time.perf_counter(), time.process_time()
        found, _ = viewer_search.search(index, query, 0, 100)
        new_wall.append((time.perf_counter() - wall) * 1000)
        new_cpu.append((time.process_time() - cpu) * 1000)
        exact += found == expected
    con.close()
    return {"full_ranking": {**summary(full_wall), "cpu_ms_total": sum(full_cpu)},
            "two_part": {**summary(new_wall), "cpu_ms_total": sum(new_cpu)},
            "cpu_ratio": sum(full_cpu) / max(sum(new_cpu), 1e-9), "exact_first_pages": exact, "queries": len(queries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the /rows and /filter split")
    parser.add_argument("--text-rows", type=int, default=1_000_000, help="rows of the /search split")
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    parser.add_argument("--json", default="bench/viewer_results.json")
    args = parser.parse_args()
    import datasets

    datasets.disable_progress_bars()
    root = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    live = LiveHub(root)
    results: dict = {}
    try:
        words = vocabulary(20_000)
        write_rows(root / "rows" / "data" / "train.parquet", args.rows)
        write_text(root / "text" / "data" / "train.parquet", args.text_rows, words)
        repos = {kind: upload(live, f"viewer-{kind}", root / kind) for kind in ("rows", "text")}
        os.environ.update({k: v for k, v in live.env.items() if k.startswith("AICOMMONS_")})
        from aicommons.config import Settings
        from aicommons.hub.hub import Hub

        hub = Hub(Settings.from_env(), migrate=False)
        for kind, (repo, sha) in repos.items():
            results[f"convert_{kind}_s"] = hub_seconds(hub, repo, sha) + DERIVED[-1]  # both jobs
            print(f"converted {kind} in {results[f'convert_{kind}_s']:.1f} s", flush=True)
        hub.close()
        results["loadavg_start"] = os.getloadavg()
        rng = random.Random(17)
        split = {"config": "default", "split": "train"}
        with httpx.Client(base_url=live.url + "/datasets-server", timeout=120,
                          headers={"authorization": f"Bearer {TOKEN}"}) as client:
            rows_repo, text_repo = repos["rows"][0], repos["text"][0]
            results["rows_cold_ms"], body = timed(client, "/rows", {"dataset": rows_repo, **split, "offset": "0"})
            assert body["num_rows_total"] == args.rows, body["num_rows_total"]
            samples = [timed(client, "/rows", {"dataset": rows_repo, **split, "length": "100",
                                               "offset": str(rng.randrange(args.rows - 100))})[0]
                       for _ in range(args.requests)]
            results["rows"] = summary(samples)
            timed(client, "/first-rows", {"dataset": rows_repo, **split})
            results["first_rows_hot"] = summary([timed(client, "/first-rows", {"dataset": rows_repo, **split})[0]
                                                 for _ in range(args.requests)])
            results["filter_cold_ms"], _ = timed(client, "/filter", {"dataset": rows_repo, **split,
                                                                     "where": '"id" = 5'})
            results["filter"] = summary([timed(client, "/filter", {
                "dataset": rows_repo, **split, "where": f'"id" = {rng.randrange(args.rows)}'})[0]
                for _ in range(args.requests // 2)] + [timed(client, "/filter", {
                    "dataset": rows_repo, **split,
                    "where": f'"label" = {rng.randrange(10)} AND "score" < {rng.random() / 1000:.6f}'})[0]
                    for _ in range(args.requests // 2)])
            results["search_cold_ms"], _ = timed(client, "/search", {"dataset": text_repo, **split, "query": words[0]})
            matches = []

            def search(query: str) -> float:
                elapsed, found = timed(client, "/search", {"dataset": text_repo, **split, "query": query})
                matches.append(found["num_rows_total"])
                return elapsed

            for key, queries in (("search_one_word", [rng.choice(words) for _ in range(args.requests // 2)]),
                                 ("search_common_word", [f"{rng.choice(words[:50])} {rng.choice(words)}"
                                                         for _ in range(args.requests // 2)])):
                matches.clear()
                results[key] = summary([search(q) for q in queries])
                results[key]["median_matches"] = statistics.median(matches)
                results[key]["max_matches"] = max(matches)
                results[key]["paired_in_process"] = paired_search(root / "text" / "data" / "train.parquet",
                                                                  root / "search.sqlite", queries)
    finally:
        live.stop()
        shutil.rmtree(root, ignore_errors=True)
    results["loadavg_end"] = os.getloadavg()
    path = Path(args.json)
    runs = json.loads(path.read_text()).get("runs", []) if path.exists() else []
    runs.append({"rows": args.rows, "text_rows": args.text_rows, "cpus": os.cpu_count(), "results": results})
    path.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    print("\n| request | split | p50 (ms) | p95 (ms) | max (ms) | goal (p95) |")
    print("|---|---|---|---|---|---|")
    for key, label, where, goal in (("rows", "/rows, random offset, 100 rows", f"{args.rows:,} rows", 100),
                                    ("first_rows_hot", "/first-rows, hot", f"{args.rows:,} rows", 50),
                                    ("filter", "/filter, one row by id or ~0.01% by label and score",
                                     f"{args.rows:,} rows", 200),
                                    ("search_one_word", "/search, one word (most in few rows)",
                                     f"{args.text_rows:,} text rows", 200),
                                    ("search_common_word", "/search, two words, one of the 50 commonest",
                                     f"{args.text_rows:,} text rows", 200)):
        r = results[key]
        print(f"| {label} | {where} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | ≤ {goal} |")
    print("\n| /search ranking alone, in-process | full ranking p50 / p95 (ms) | two-part p50 / p95 (ms) | "
          "CPU ratio | first pages exact |")
    print("|---|---|---|---|---|")
    for key in ("search_one_word", "search_common_word"):
        paired = results[key]["paired_in_process"]
        full, two = paired["full_ranking"], paired["two_part"]
        print(f"| {key} | {full['p50_ms']:.1f} / {full['p95_ms']:.1f} | {two['p50_ms']:.1f} / {two['p95_ms']:.1f} | "
              f"{paired['cpu_ratio']:.2f}× | {paired['exact_first_pages']} of {paired['queries']} |")
    print(f"load average: {results['loadavg_start']} at the start, {results['loadavg_end']} at the end")


if __name__ == "__main__":
    main()
