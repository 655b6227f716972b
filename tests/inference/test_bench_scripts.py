"""The GPU benchmark gets one short run when a session is lent a GPU: its plumbing (model build,
the engine driven directly, our server on the same engine, the load generator, the report) is
run here on the CPU with the tiny model, so that run is not spent finding a broken script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.inference
ROOT = Path(__file__).resolve().parents[2]


def test_gpu_benchmark_runs_end_to_end_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    subprocess.run([sys.executable, "-m", "bench.inference.gpu_bench", "--device", "cpu", "--model", "tiny",
                    "--num-prompts", "12", "--concurrency", "4", "--input-len", "16", "--output-len", "8",
                    "--json", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    report = json.loads(out.read_text())
    row = report["results"]["4"]
    for side in ("engine", "hub"):
        assert row[side]["output_tokens"] == 12 * 8  # ignore_eos: every request ran to its length
    assert row["hub"]["failed"] == 0
    assert row["ratio"] == pytest.approx(row["hub"]["output_tok_s"] / row["engine"]["output_tok_s"])
