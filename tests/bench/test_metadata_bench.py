"""The metadata benchmark (``make bench-metadata``, issue 10) in its smoke mode: every step of the
harness runs (seeding through the API and by bulk clones, a real server, wrk, the tree walk,
snapshot_download against nginx, the report) on a tiny hub, so the harness cannot rot between the
runs that produce the figures in docs/benchmarks.md."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_metadata_benchmark_smoke(tmp_path, database):
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt-get install -y {tool})")
    if database == "postgres" and not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        pytest.skip("PostgreSQL 15 not installed")
    out = tmp_path / "metadata.json"
    # 8 connections, not the benchmark's 64: a smoke run on a busy CI box must still complete requests
    # within its 2-second window (64 full listings at once took longer than that at load 8).
    subprocess.run([sys.executable, "-m", "bench.metadata", "--repos", "200", "--seconds", "2", "--connections", "8",
                    "--tree-files", "1500", "--small-files", "100", "--service-repos", "8", "--tree-reps", "1", "--list-limit", "20", "--max-seconds", "4",
                    "--snapshot-rounds", "1", "--databases", database, "--no-docs", "--json", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=400)
    results = json.loads(out.read_text())
    r = results["databases"][database]
    assert r["seed"]["repos"] == 200
    assert r["seed"]["service_path"]["repos"] == 8 and r["seed"]["service_path"]["repos_per_s"] > 0
    names = [e["name"] for e in r["endpoints"]]
    assert names[0].startswith("bare") and names[-3].startswith("bare") and len(names) == 11
    assert names[-1] == "resolve HEAD (python client)"
    for e in r["endpoints"]:
        assert e["errors"] == 0, e  # every path answered 2xx: the seeded repos, pages and files exist
        assert e["requests"] > 0 and e["p99_ms"] >= e["p50_ms"] > 0, e
        assert e["ratio_vs_bare"] == pytest.approx(e["req_s"] / r["bare_req_s_by_client"][e["client"]])
    # 1,500 files in two folders under data/, plus .gitattributes: two pages of 1,000
    assert r["tree"]["entries"] == 1500 + 3 + 1 and r["tree"]["pages"] == 2
    snap = r["snapshot"]
    assert snap["files"] == 100 and snap["ratio_snapshot_vs_nginx"] > 0
    goals = results["goals"][database]
    assert any("snapshot_download" in g["goal"] for g in goals) and all("met" in g for g in goals)

    from bench.metadata import report

    text = report.markdown(results)
    assert f"### {database}" in text and "model_info" in text
