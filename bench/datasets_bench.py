"""``make bench-datasets``: the Parquet conversion's throughput (issue 15) against the ``datasets``
library's own ``load_dataset(...).to_parquet`` on the same files.

A fresh ``aicommons serve`` (SQLite + local disk, no job workers) holds the datasets, uploaded with
the stock ``huggingface_hub`` client (the data files go through LFS). The hub's side is the whole
job as a worker runs it (``ParquetExport.convert`` in this process, on the same data folder as
``aicommons worker`` would): reading the commit's files, converting them with ``datasets``' builders,
hashing and storing the Parquet files as LFS objects and writing the ``refs/convert/parquet``
commit, until the conversion is recorded and served; then its follow-up job (the search index
and column statistics), reported apart as "until search is ready". The anchor loads the same files from a local folder with ``datasets.load_dataset`` (a fresh
cache each round) and writes each split with ``Dataset.to_parquet``. Rounds alternate between the
two; best of ``--rounds``. The goal is a ratio (anchor time / hub time) of at least 0.8.

Prints the markdown table for docs/benchmarks.md and adds the run to bench/datasets_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PY = sys.executable
USER, TOKEN = "bench", "hf_bench_datasets_write_token_00001"
WORDS = ("alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "paper", "light", "music", "north", "seven")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_csv(path: Path, rows: int, rng: random.Random) -> None:
    with open(path, "w") as f:
        f.write("id,text,label,score\n")
        for i in range(rows):
            f.write(f"{i},{' '.join(rng.choices(WORDS, k=8))},{i % 5},{rng.random():.6f}\n")


def write_jsonl(path: Path, rows: int, rng: random.Random) -> None:
    with open(path, "w") as f:
        for i in range(rows):
            f.write(json.dumps({"id": i, "question": " ".join(rng.choices(WORDS, k=10)),
                                "tags": rng.sample(WORDS, 3), "score": rng.random()}) + "\n")


def make_sources(root: Path, rows: int) -> dict[str, Path]:
    rng = random.Random(15)
    csv = root / "csv"
    (csv / "data").mkdir(parents=True)
    write_csv(csv / "data" / "train.csv", rows, rng)
    write_csv(csv / "data" / "test.csv", rows // 10, rng)
    jsonl = root / "jsonl"
    jsonl.mkdir()
    write_jsonl(jsonl / "train.jsonl", rows, rng)
    return {"csv": csv, "jsonl": jsonl}


class LiveHub:
    def __init__(self, root: Path):
        self.data = root / "data"
        self.data.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AICOMMONS_")}
        self.env.update(AICOMMONS_DATA_DIR=str(self.data), AICOMMONS_PORT=str(self.port), AICOMMONS_HOST="127.0.0.1",
                        AICOMMONS_LOG_LEVEL="warning", AICOMMONS_SCAN_UPLOADS="false", AICOMMONS_JOB_WORKERS="0",
                        AICOMMONS_CHUNK_LFS_UPLOADS="false", AICOMMONS_PARQUET_CONVERSION="true",
                        AICOMMONS_API_REQUESTS_PER_MINUTE="0", AICOMMONS_RESOLVER_REQUESTS_PER_MINUTE="0")
        for args in (["user", "create", USER], ["token", "create", USER, "--value", TOKEN]):
            subprocess.run([PY, "-m", "aicommons.cli.main", *args], env=self.env, check=True, capture_output=True)
        self.process = subprocess.Popen([PY, "-m", "aicommons.cli.main", "serve"], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=open(root / "server.log", "wb"))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the hub did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def upload(hub: LiveHub, name: str, folder: Path) -> tuple[str, str]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=TOKEN)
    repo = f"{USER}/{name}"
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="dataset")
    return repo, api.dataset_info(repo).sha


DERIVED: list[float] = []  # seconds of each follow-up job (search index, statistics) after the Parquet
CPU: list[float] = []  # CPU seconds of the last measurement (the hub: both jobs)
PARQUET_CPU: list[float] = []  # CPU seconds of the hub's first job alone


def hub_seconds(hub, repo: str, sha: str) -> float:
    """The conversion job as a worker runs it, until the Parquet is recorded and served
    (``ParquetExport.convert``); then its follow-up job (``build_extras``: the search index and
    column statistics, which the anchor does not make), timed apart in DERIVED."""
    from aicommons.times import utcnow

    row = hub.repo_store.get("dataset", repo)
    hub.parquet.store.queued(row.id, sha, utcnow())
    start, cpu = time.perf_counter(), time.process_time()
    state = hub.parquet.convert(row.id, sha)
    elapsed = time.perf_counter() - start
    PARQUET_CPU.append(time.process_time() - cpu)
    if state != "done":
        raise RuntimeError(f"conversion of {repo}: {state}: {hub.parquet.store.get(row.id).error}")
    extras = time.perf_counter()
    if hub.parquet.build_extras(row.id, sha) != "done":
        raise RuntimeError(f"the search index and statistics of {repo} were not built")
    DERIVED.append(time.perf_counter() - extras)
    CPU.append(time.process_time() - cpu)
    return elapsed


def anchor_seconds(folder: Path, work: Path) -> float:
    """``load_dataset`` on the folder (fresh cache) then ``to_parquet`` of every split."""
    import datasets

    cache, out = Path(tempfile.mkdtemp(dir=work)), Path(tempfile.mkdtemp(dir=work))
    start, cpu = time.perf_counter(), time.process_time()
    for config in datasets.get_dataset_config_names(str(folder)):
        loaded = datasets.load_dataset(str(folder), config, cache_dir=str(cache))
        for split, dataset in loaded.items():
            dataset.to_parquet(str(out / f"{config}-{split}.parquet"))
    elapsed = time.perf_counter() - start
    CPU.append(time.process_time() - cpu)
    shutil.rmtree(cache)
    shutil.rmtree(out)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows of each train split")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default="bench/datasets_results.json")
    args = parser.parse_args()
    import datasets

    datasets.disable_progress_bars()
    root = Path(tempfile.mkdtemp(prefix="bench-datasets-"))
    live = LiveHub(root)
    try:
        sources = make_sources(root / "sources", args.rows)
        repos = {kind: upload(live, f"ds-{kind}", folder) for kind, folder in sources.items()}
        os.environ.update({k: v for k, v in live.env.items() if k.startswith("AICOMMONS_")})
        from aicommons.config import Settings
        from aicommons.hub.hub import Hub

        hub = Hub(Settings.from_env(), migrate=False)
        results = {}
        for kind, folder in sources.items():
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            ours, theirs, derived, our_cpu, parquet_cpu, their_cpu, loads = [], [], [], [], [], [], []
            for _ in range(args.rounds):  # interleaved: both sides see the same load on the machine
                loads.append(os.getloadavg()[0])
                ours.append(hub_seconds(hub, *repos[kind]))
                our_cpu.append(CPU[-1])
                parquet_cpu.append(PARQUET_CPU[-1])
                derived.append(DERIVED[-1])
                theirs.append(anchor_seconds(folder, root))
                their_cpu.append(CPU[-1])
            until_search = [a + b for a, b in zip(ours, derived, strict=True)]
            # paired: each round's anchor against the same round's hub, the median of the rounds
            paired = sorted(t / o for t, o in zip(theirs, ours, strict=True))
            results[kind] = {"bytes": size, "hub_s": min(ours), "anchor_s": min(theirs),
                             "ratio": min(theirs) / min(ours), "rounds": args.rounds,
                             "paired_ratio_median": paired[len(paired) // 2],
                             "hub_until_search_s": min(until_search),
                             "ratio_until_search": min(theirs) / min(until_search),
                             "hub_viewer_extras_s": min(derived),
                             "hub_parquet_cpu_s": min(parquet_cpu), "hub_cpu_s": min(our_cpu),
                             "anchor_cpu_s": min(their_cpu), "cpu_ratio": min(their_cpu) / min(parquet_cpu),
                             "loadavg_1min": loads, "hub_rounds_s": ours, "hub_extras_rounds_s": derived,
                             "anchor_rounds_s": theirs}
            print(kind, results[kind], flush=True)
        hub.close()
    finally:
        live.stop()
        shutil.rmtree(root, ignore_errors=True)
    path = Path(args.json)
    runs = json.loads(path.read_text()).get("runs", []) if path.exists() else []
    runs.append({"rows": args.rows, "cpus": os.cpu_count(), "results": results})
    path.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    print("\n| dataset | source MB | hub: until the Parquet is served (s) | load_dataset + to_parquet (s) | ratio "
          "| paired ratio (median) | CPU ratio | hub: until search is ready (s) | ratio | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, r in results.items():
        mb = r["bytes"] / 1e6
        print(f"| {kind} ({args.rows:,} train rows) | {mb:.1f} | {r['hub_s']:.2f} | {r['anchor_s']:.2f} | "
              f"{r['ratio']:.2f}× | {r['paired_ratio_median']:.2f}× | {r['cpu_ratio']:.2f}× | "
              f"{r['hub_until_search_s']:.2f} | {r['ratio_until_search']:.2f}× | "
              f"{min(r['loadavg_1min']):.1f}–{max(r['loadavg_1min']):.1f} |")

if __name__ == "__main__":
    main()
