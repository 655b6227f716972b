"""Listing-page facets at scale: ``RepoStore.facets`` (the count and each facet's top values) over N
synthetic repos with tasks, libraries and licenses, on SQLite, uncached: what one count costs.
Listing pages never wait for it beyond 150 ms (``hub/facets.py`` counts in the background and serves
the last count while it recounts), so this is the cost in the background, not the page's latency.

    .venv/bin/python bench/facets_bench.py --repos 100000
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update

from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.repos import RepoQuery, RepoStore
from aicommons.db.tables import repo_tags, repos
from bench.search_bench import percentile, populate, timed

TASKS = ["text-generation", "text-classification", "fill-mask", "image-classification",
         "automatic-speech-recognition", "feature-extraction", "translation", "summarization"]
LIBRARIES = ["transformers", "diffusers", "sentence-transformers", "gguf", "peft", "timm"]
LICENSES = ["license:mit", "license:apache-2.0", "license:llama3", "license:cc-by-4.0", "license:other"]


def label(engine, n: int) -> None:
    """Give each repo a task, a library and a license (columns and tags, as cards do)."""
    rng = random.Random(1)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(select(repos.c.id))]
        rows, tags = [], []
        for repo_id in ids:
            task, library, license_ = rng.choice(TASKS), rng.choice(LIBRARIES), rng.choice(LICENSES)
            rows.append({"rid": repo_id, "task": task, "library": library})
            tags += [{"repo_id": repo_id, "tag": t} for t in (task, library, license_)]
        conn.execute(update(repos).where(repos.c.id == bindparam("rid"))
                     .values(pipeline_tag=bindparam("task"), library_name=bindparam("library")), rows)
        conn.execute(insert(repo_tags), tags)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facets-bench-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'hub.db'}")
        upgrade_schema(engine)
        populate(engine, args.repos)
        label(engine, args.repos)
        store = RepoStore(engine)
        queries = {"all models": RepoQuery(type="model"),
                   "one license": RepoQuery(type="model", filters=("license:mit",)),
                   "task + library": RepoQuery(type="model", filters=("text-generation", "gguf")),
                   "search 'mistral'": RepoQuery(type="model", search="mistral"),
                   "search 'llama-7b-chat'": RepoQuery(type="model", search="llama-7b-chat")}
        out = {}
        for name, query in queries.items():
            times = [timed(lambda q=query: store.facets(q), runs=1)[0] for _ in range(args.runs)]
            list_ms = timed(lambda q=query: store.list(q), runs=5)[0]
            out[name] = {"facets_p50_ms": round(sorted(times)[len(times) // 2], 1),
                         "facets_p95_ms": round(percentile(times, 95), 1), "list_p50_ms": round(list_ms, 1),
                         "total": store.facets(query).total}
        print(json.dumps({"repos": args.repos, **out}, indent=2))


if __name__ == "__main__":
    main()
