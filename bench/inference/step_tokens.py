"""Where time-to-first-token goes at 8 concurrent streams, and what ``STEP_TOKENS`` does to it:

    python -m bench.inference.step_tokens [--values 2048,128,64] [--runs 5] [--json out.json]

Our continuous-batching engine driven in this process (no HTTP, no worker: only the engine) on
SmolLM2-135M's shape, the same 8-stream workload as ``cpu_bench --real-size``, once per token
budget per round, budgets interleaved within each round. With a budget of 2048, the 8 prompts of a
burst are prefilled in one step and every stream waits for all of them; a small budget prefills
them a few per step (decodes first), so the first streams start while the others still prefill.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.inference.cpu_bench import LLAMA_ID, chat_bodies, hub_settings, loadavg, run_inprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=lambda v: [int(x) for x in v.split(",")], default=[2048, 128, 64])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from aicommons.inference import devmodels
    from aicommons.inference.engines.transformers_lm import TransformersLM
    from aicommons.inference.settings import InferenceSettings
    from aicommons.inference.source import ResolvedModel

    tmp = Path(tempfile.mkdtemp(prefix="aicommons-bench-"))
    engines = {}
    try:
        model = devmodels.build_smollm2_135m(tmp / "smollm2-135m")
        for value in args.values:
            settings = InferenceSettings.from_env({}, **{**hub_settings(args.threads), "isolation": "thread",
                                                        "step_tokens": value})
            engines[value] = TransformersLM.load(ResolvedModel(LLAMA_ID, "0" * 40, model), settings)
        bodies = chat_bodies(LLAMA_ID, args.requests, args.max_tokens)
        for engine in engines.values():  # warm-up
            run_inprocess(engine, bodies[:8], args.concurrency)
        rounds: dict[int, list] = {v: [] for v in args.values}
        loads = []
        for _ in range(args.runs):
            loads.append(" ".join(loadavg()))
            for value, engine in engines.items():
                cpu = time.process_time()
                out = run_inprocess(engine, bodies, args.concurrency)
                out["cpu_s"] = time.process_time() - cpu
                rounds[value].append(out)
        report = {"command": "python -m bench.inference.step_tokens " + " ".join(sys.argv[1:]),
                  "loadavg_per_round": loads, "threads": args.threads}
        for value, results in rounds.items():
            ttfts = sorted(r["ttft_p50_ms"] for r in results)
            toks = sorted(r["output_tok_s"] for r in results)
            report[f"step_tokens_{value}"] = {"ttft_p50_ms_median": ttfts[len(ttfts) // 2],
                                              "output_tok_s_median": toks[len(toks) // 2],
                                              "ttft_p50_ms_runs": [round(r["ttft_p50_ms"], 1) for r in results],
                                              "output_tok_s_runs": [round(r["output_tok_s"], 1) for r in results],
                                              "cpu_s_runs": [round(r["cpu_s"], 2) for r in results]}
    finally:
        for engine in engines.values():
            engine.close()
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
