"""Forward passes a staggered burst costs, with and without the burst gate (issue 17, session 10):

    python -m bench.inference.burst_steps [--model-dir DIR] [--rounds 3] [--stagger-ms 1.5] [--json out.json]

Our engine driven in this process (no HTTP) on Qwen2.5-0.5B's shape, the burst of
``cpu_bench --real-size`` (16 chats × 32 tokens, 8 streams, greedy), three ways per round: every
request added at once (as ``cpu_bench``'s in-process row does), the 8 streams' requests arriving
``--stagger-ms`` apart (as the hub hands them to its worker) with ``BURST_WAIT_STEPS=0``, and the
same with the gate on. Counts the model's forward passes (a deterministic measure, where tokens/s
on a shared 2-core box moves by several per cent between rounds) next to tokens/s and CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from bench.inference.cpu_bench import LLAMA_ID, chat_bodies, finish_report, inprocess_engine, loadavg


def run_burst(engine, prompts, stagger_s: float, passes: list[int], concurrency: int, max_tokens: int) -> dict:
    from aicommons.inference.engine import SamplingParams

    async def go():
        queue = iter(prompts)
        ttfts: list[float] = []
        tokens = 0

        async def stream(k):
            nonlocal tokens
            await asyncio.sleep(k * stagger_s)
            for ids in queue:
                start, first = time.perf_counter(), None
                async for step in engine.generate(ids, SamplingParams(max_new_tokens=max_tokens, temperature=0.0)):
                    if step.new_token_ids and first is None:
                        first = time.perf_counter() - start
                    tokens += len(step.new_token_ids)
                if first is not None:
                    ttfts.append(first)
                await asyncio.sleep(k * stagger_s)  # its client's next request, as late as its first

        before, cpu, wall = passes[0], time.process_time(), time.perf_counter()
        await asyncio.gather(*(stream(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - wall
        return {"forward_passes": passes[0] - before, "output_tok_s": round(tokens / elapsed, 2),
                "cpu_ms_per_request": round(1000 * (time.process_time() - cpu) / len(prompts)),
                "ttft_p50_ms": round(1000 * statistics.median(ttfts))}

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="a Qwen2.5-0.5B-shape model built before (else built here)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stagger-ms", type=float, default=1.5)
    parser.add_argument("--burst-wait-steps", type=float, default=0.1)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from aicommons.inference import devmodels

    model_dir = args.model_dir or Path("/tmp/aicommons-profile-qwen2.5-0.5b")
    if not (model_dir / "config.json").exists():
        devmodels.build_qwen25_05b(model_dir)
    engine = inprocess_engine(model_dir, args.threads)
    passes = [0]

    def count(module, inputs):
        passes[0] += 1

    engine.model.register_forward_pre_hook(count)
    prompts = [engine.chat_prompt_ids(engine.render_chat(b["messages"]))
               for b in chat_bodies(LLAMA_ID, args.requests, args.max_tokens)]
    systems = {"all_at_once": (0.0, 0.0), "staggered_no_gate": (args.stagger_ms / 1000, 0.0),
               "staggered_gate": (args.stagger_ms / 1000, args.burst_wait_steps)}
    report: dict = {"command": "python -m bench.inference.burst_steps " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "json"),
        "loadavg_before": loadavg(), "rounds": []}
    try:
        run_burst(engine, prompts, 0.0, passes, args.concurrency, args.max_tokens)  # warm-up; measures a step
        for _ in range(args.rounds):
            row: dict = {"loadavg": " ".join(loadavg())}
            for name, (stagger, fraction) in systems.items():
                engine.burst.step_fraction = fraction
                row[name] = run_burst(engine, prompts, stagger, passes, args.concurrency, args.max_tokens)
                row[name]["step_ms"] = round(1000 * engine.burst.step_s)
                print(name, json.dumps(row[name]), flush=True)
            report["rounds"].append(row)
    finally:
        engine.close()
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
