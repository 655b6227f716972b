"""Repo search at scale: the Hub's ``search=`` (substring of the repo id) over N synthetic repos.

Compares our query path (SQLite FTS5 trigram index, through RepoStore.list) with an unindexed
``LIKE '%term%'`` scan on the same database, side by side in one run.

    .venv/bin/python bench/search_bench.py --repos 1000000
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from aicommons.db.accounts import AccountStore
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.repos import RepoQuery, RepoStore
from aicommons.db.tables import repos

FAMILIES = ["llama", "mistral", "qwen", "gemma", "phi", "bert", "roberta", "t5", "whisper", "clip", "vit",
            "falcon", "bloom", "gpt2", "opt", "pythia", "olmo", "deepseek", "yi", "mamba"]
MODIFIERS = ["instruct", "chat", "base", "awq", "gguf", "lora", "finetuned", "distilled", "coder", "math"]
SIZES = ["125m", "350m", "1b", "3b", "7b", "8b", "13b", "34b", "70b"]


def populate(engine, n: int) -> None:
    owner = AccountStore(engine).create("bench", "user")
    rng = random.Random(0)
    start = datetime(2024, 1, 1)
    batch = []
    with engine.begin() as conn:
        for i in range(n):
            name = f"{rng.choice(FAMILIES)}-{rng.choice(SIZES)}-{rng.choice(MODIFIERS)}-{i}"
            ns = f"user{rng.randrange(n // 20 + 1)}"
            full = f"{ns}/{name}"
            batch.append(dict(type="model", namespace=ns, name=name, full_id=full, full_id_lower=full.lower(),
                              owner_id=owner.id, storage_key=f"k{i}", private=False, disabled=False,
                              downloads=int(rng.paretovariate(1.2)), likes=0, tags=[],
                              created_at=start + timedelta(seconds=i), last_modified=start + timedelta(seconds=i)))
            if len(batch) == 10_000:
                conn.execute(insert(repos), batch)
                batch = []
        if batch:
            conn.execute(insert(repos), batch)


def timed(fn, runs: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, result


TERMS = ["llama-7b-chat", "mistral", "qwen-70b", "-999999", "user17/", "zz-no-match"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(url: str, n: int, runs: int = 20, terms: list[str] = TERMS) -> dict:
    """Populate the database at ``url`` (SQLite or PostgreSQL) to ``n`` repos, then time each term
    through ``RepoStore.list`` (first page of 20): p50 and p95 over ``runs`` runs (bench/metadata)."""
    engine = make_engine(url)
    upgrade_schema(engine)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM repos")).scalar()
    t0 = time.perf_counter()
    if have < n:
        populate(engine, n - have)
    populate_s = time.perf_counter() - t0
    store = RepoStore(engine)
    rows = []
    for term in terms:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            store.list(RepoQuery(type="model", search=term, limit=20))
            times.append((time.perf_counter() - t) * 1000)
        rows.append({"term": term, "p50_ms": statistics.median(times), "p95_ms": percentile(times, 95)})
    engine.dispose()
    return {"repos": n, "runs": runs, "populate_s": populate_s, "database": engine.dialect.name, "terms": rows}


def both_databases(n: int, runs: int = 20) -> dict:
    """p50/p95 per term at ``n`` repos on SQLite and on a throwaway PostgreSQL cluster, one after
    the other in one run (issue 10's goal: p95 <= 50 ms on both)."""
    import os

    from tests.backends import PostgresCluster

    out: dict = {"load_before": os.getloadavg()}
    out["sqlite"] = measure(f"sqlite:///{Path(tempfile.mkdtemp()) / 'search.db'}", n, runs)
    cluster = PostgresCluster().start()
    try:
        out["postgresql"] = measure(cluster.create_database("search"), n, runs)
    finally:
        cluster.stop()
    out["load_after"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=1_000_000)
    parser.add_argument("--db", help="reuse this SQLite file (populated if empty)")
    parser.add_argument("--both", action="store_true",
                        help="p50/p95 on SQLite and on a throwaway PostgreSQL cluster (prints JSON)")
    args = parser.parse_args()
    if args.both:
        import json

        print(json.dumps(both_databases(args.repos), indent=1))
        return
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "search.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    store = RepoStore(engine)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM repos")).scalar()
    if have < args.repos:
        t0 = time.perf_counter()
        populate(engine, args.repos - have)
        print(f"populated {args.repos} repos in {time.perf_counter() - t0:.0f} s (trigram index maintained by triggers)")
    print("| term | matches | indexed (ms, first page of 20) | LIKE scan (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for term in TERMS:
        indexed_ms, rows = timed(lambda term=term: store.list(RepoQuery(type="model", search=term, limit=20))[0])
        with engine.connect() as conn:
            like_sql = text("SELECT id FROM repos WHERE type='model' AND full_id_lower LIKE :p "
                            "ORDER BY created_at DESC LIMIT 21")
            scan_ms, _ = timed(lambda like_sql=like_sql, term=term: conn.execute(like_sql, {"p": f"%{term}%"}).fetchall(), runs=3)
            matches = conn.execute(text("SELECT count(*) FROM repo_search WHERE repo_search MATCH :q"),
                                   {"q": f'"{term}"'}).scalar()
        print(f"| `{term}` | {matches} | {indexed_ms:.1f} | {scan_ms:.1f} | {scan_ms / indexed_ms:.1f}x |")


if __name__ == "__main__":
    main()
