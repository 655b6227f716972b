"""The GPU benchmark gets one short run when a session is lent a GPU: its plumbing (model build,
the engine driven directly, our server on the same engine, the load generator, the report) is
run here on the CPU with the tiny model, so that run is not spent finding a broken script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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


def test_server_cpu_counts_its_worker_processes():
    """The hub runs each model in a worker process: the CPU the benchmark charges to a server is its
    own plus its descendants' (it once charged the hub's process alone, 0.4 ms per embedding,
    while the model ran in the worker)."""
    sys.path.insert(0, str(ROOT))
    from bench.inference.cpu_bench import process_cpu_s

    # A parent that only waits, and a grandchild that burns about 0.6 s of CPU, then sleeps.
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.6: pass'); time.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"])
    try:
        deadline = time.time() + 20
        while process_cpu_s(parent.pid) < 0.6 and time.time() < deadline:
            time.sleep(0.1)
        children = [int(c) for t in Path(f"/proc/{parent.pid}/task").glob("*/children") for c in t.read_text().split()]
        assert children, "the parent started its child"
        own = sum(int(f) for f in Path(f"/proc/{parent.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
        assert own / os.sysconf("SC_CLK_TCK") < 0.3  # the parent itself barely ran...
        assert process_cpu_s(parent.pid) >= 0.6  # ...but its tree did
    finally:
        for child in Path(f"/proc/{parent.pid}/task").glob("*/children"):
            for pid in child.read_text().split():
                os.kill(int(pid), 9)
        parent.kill()
        parent.wait()
