"""The Parquet conversion job's checkout and commit (issue 15), timed apart: ``ParquetExport._checkout``
(the commit's files in a temporary folder) and the whole job (``convert``), on the CSV dataset of
``bench/datasets_bench.py`` uploaded with the stock client, against a baseline ``parquet_export.py``
(``--baseline``, e.g. a file from ``git show main:src/aicommons/hub/parquet_export.py``) in the same
run, rounds alternating. ``--profile`` prints a cProfile of one checkout.

    PYTHONPATH=src python bench/checkout_bench.py --baseline /tmp/parquet_export_main.py
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.datasets_bench import LiveHub, hub_seconds, make_sources, upload  # noqa: E402


def _baseline(path: str, parquet):
    """The hub's ParquetExport (same stores, same settings) with the methods of the class in ``path``."""
    spec = importlib.util.spec_from_file_location("parquet_export_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    baseline = module.ParquetExport.__new__(module.ParquetExport)
    baseline.__dict__ = parquet.__dict__
    return baseline


def timed_checkout(parquet, row, sha: str, work: Path) -> tuple[float, float]:
    dest = Path(tempfile.mkdtemp(dir=work)) / "source"
    start, cpu = time.perf_counter(), time.process_time()
    parquet._checkout(row, sha, dest)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(dest.parent)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", help="a parquet_export.py whose _checkout is the baseline")
    parser.add_argument("--jobs", action="store_true", help="also time the whole job with each checkout")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-checkout-"))
    live = LiveHub(root)
    try:
        sources = make_sources(root / "sources", args.rows)
        repo, sha = upload(live, "ds-csv", sources["csv"])
        os.environ.update({k: v for k, v in live.env.items() if k.startswith("AICOMMONS_")})
        from aicommons.config import Settings
        from aicommons.hub.hub import Hub

        hub = Hub(Settings.from_env(), migrate=False)
        row = hub.repo_store.get("dataset", repo)
        sides = {"new (no cached copy)": hub.parquet, "new (cached copy)": hub.parquet}
        if args.baseline:
            sides["baseline"] = _baseline(args.baseline, hub.parquet)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            hub.download_cache.clear()
            timed_checkout(hub.parquet, row, sha, root)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        results: dict[str, dict[str, list[float]]] = {side: {"wall": [], "cpu": [], "job": []} for side in sides}
        loads = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            for side, parquet in sides.items():
                if side == "new (no cached copy)":
                    hub.download_cache.clear()
                wall, cpu = timed_checkout(parquet, row, sha, root)
                hub.download_cache.close()  # the copy kept from a checkout is checked in the background
                results[side]["wall"].append(wall)
                results[side]["cpu"].append(cpu)
                if args.jobs:
                    hub.parquet = parquet
                    if side == "new (no cached copy)":
                        hub.download_cache.clear()
                    results[side]["job"].append(hub_seconds(hub, repo, sha))
                    hub.download_cache.close()
        loads.append(os.getloadavg()[0])
        for side, r in results.items():
            line = f"{side}: checkout best {min(r['wall']):.3f} s wall, median {sorted(r['wall'])[len(r['wall']) // 2]:.3f} s, " \
                   f"best CPU {min(r['cpu']):.3f} s"
            if r["job"]:
                line += f"; whole job best {min(r['job']):.2f} s, median {sorted(r['job'])[len(r['job']) // 2]:.2f} s"
            print(line)
        if args.baseline:
            for side in sides:
                if side != "baseline":
                    paired = sorted(b / n for b, n in zip(results["baseline"]["wall"], results[side]["wall"], strict=True))
                    print(f"paired checkout speed-up, {side} (median): {paired[len(paired) // 2]:.1f}x")
        print(f"load: {loads[0]:.1f} -> {loads[1]:.1f}")
        hub.close()
    finally:
        live.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
