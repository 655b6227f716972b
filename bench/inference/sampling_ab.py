"""Where our engine's decode step loses to ``transformers serve``: its sampling, flipped one setting
at a time (issue 17):

    python -m bench.inference.sampling_ab [--runs 5] [--json out.json]

Our continuous-batching engine driven in this process (no HTTP, no worker), on SmolLM2-135M's shape
(random weights, float32), the same greedy workload as ``cpu_bench --real-size`` (16 chats of 32
tokens, 8 in flight), on one loaded model with one CB manager per variant, the variants run in turn
within each round (paired ratios against ``engine``, the shipped configuration):

- ``engine``: as the hub runs it (``cb_processors`` attached: a step where every request is greedy
  takes one argmax, a sampled one draws by inverse CDF);
- ``transformers_sampling``: the same manager without that (session 8's engine): per-request
  temperature, lazy top-k/top-p, then transformers' softmax and ``torch.multinomial`` every step;
- ``transformers_defaults``: what ``transformers serve`` runs for a greedy request: no per-request
  processors, ``do_sample=False`` (argmax), no grammar processor (the floor of the comparison).

Asynchronous batching, the other suspect, cannot be flipped on a CPU: transformers refuses it (the
reason is written in the report). ``--micro`` also times the sampling stage alone on one step's
logits (8 rows of the vocabulary): transformers' chain, ours, a bare argmax.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.inference.cpu_bench import (
    LLAMA_ID,
    chat_bodies,
    finish_report,
    hub_kv_cache,
    hub_settings,
    inprocess_engine,
    loadavg,
    run_inprocess,
)


def variants(engine, threads: int) -> dict:
    """name -> (manager, guide registry) on the engine's one loaded model."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    from aicommons.inference.engines.transformers_lm import cb_manager
    from aicommons.inference.settings import InferenceSettings

    settings = InferenceSettings.from_env({}, **{**hub_settings(threads), "isolation": "thread"})
    plain, plain_guides = cb_manager(engine.model, engine.tokenizer, settings, "cpu", fast_sampling=False)
    plain.start()
    # transformers serve's own configuration for a greedy request (cli/serving: temperature 0 ->
    # do_sample=False; CB config defaults but for the cache and step budget cpu_bench gives it).
    page, blocks = hub_kv_cache(engine.model.config, threads)
    defaults = engine.model.init_continuous_batching(
        generation_config=GenerationConfig(do_sample=False, max_new_tokens=32, eos_token_id=engine.eos_ids or -1,
                                           pad_token_id=engine.tokenizer.pad_token_id),
        continuous_batching_config=ContinuousBatchingConfig(
            page_size=page, num_blocks=blocks, max_batch_tokens=2048))
    add = defaults.add_request
    # Our engine names its sampling parameters on every request; this manager has no processor
    # that takes them (and argmax needs none).
    defaults.add_request = lambda *a, temperature=None, top_p=None, top_k=None, **kw: add(*a, **kw)
    defaults.start()
    return {"engine": (engine.manager, engine.guides), "transformers_sampling": (plain, plain_guides),
            "transformers_defaults": (defaults, None)}


def async_batching_refusal(engine) -> str:
    """What transformers says when asked for asynchronous batching on this device."""
    from transformers import ContinuousBatchingConfig

    manager = engine.model.init_continuous_batching(
        continuous_batching_config=ContinuousBatchingConfig(page_size=64, num_blocks=16, max_batch_tokens=256,
                                                            use_async_batching=True))
    try:
        manager._create_batch_processor()
    except Exception as exc:  # noqa: BLE001 - the refusal is the result
        return f"{type(exc).__name__}: {exc}"
    return "accepted"


def micro(vocab: int, rows: int = 8, repeat: int = 200) -> dict:
    """Milliseconds per step of the sampling stage alone, on ``rows`` greedy rows of logits."""
    import torch
    from transformers.generation.continuous_batching import cb_logits_processors as cb
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from aicommons.inference.engines.cb_processors import GREEDY_TEMPERATURE, StepState, install, sample_rows

    install()
    table = cb.CLASSIC_TO_CB_PROCESSORS_MAP
    chain = [table[TemperatureLogitsWarper](TemperatureLogitsWarper(0.7)),
             table[TopKLogitsWarper](TopKLogitsWarper(vocab)), table[TopPLogitsWarper](TopPLogitsWarper(0.9))]
    args = [torch.full((rows,), GREEDY_TEMPERATURE).view(torch.int32), torch.full((rows,), vocab, dtype=torch.int32),
            torch.full((rows,), 1.0).view(torch.int32)]
    logits = torch.randn(rows, vocab)

    def transformers_chain():  # session 8: division, lazy top-k/top-p, softmax, multinomial
        scores = logits
        for processor, arg in zip(chain, args):
            scores = processor(scores, arg)
        return torch.multinomial(torch.softmax(scores, -1), 1)

    step = StepState()

    def ours_greedy():
        for processor in chain:
            processor.step = step
        scores = logits
        for processor, arg in zip(chain, args):
            scores = processor(scores, arg)
        out = sample_rows(scores, step.greedy)
        for processor in chain:
            processor.step = None
        return out

    def ours_sampled():  # a step with a sampled row: division, then the inverse-CDF draw
        return sample_rows(chain[0](logits, torch.full((rows,), 0.7).view(torch.int32)), False)

    def multinomial_sampled():
        return torch.multinomial(torch.softmax(chain[0](logits, torch.full((rows,), 0.7).view(torch.int32)), -1), 1)

    def argmax():
        return logits.argmax(-1)

    out = {}
    for fn in (transformers_chain, ours_greedy, argmax, multinomial_sampled, ours_sampled):
        for _ in range(10):
            fn()
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        out[fn.__name__ + "_ms"] = round(1000 * (time.perf_counter() - start) / repeat, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--micro", action="store_true", help="also time the sampling stage alone")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from aicommons.inference import devmodels

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="aicommons-bench-"))
    engine = None
    managers: dict = {}
    report: dict = {"command": "python -m bench.inference.sampling_ab " + " ".join(sys.argv[1:]),
                    "threads": args.threads, "loadavg_before": loadavg()}
    try:
        engine = inprocess_engine(devmodels.build_smollm2_135m(tmp / "smollm2-135m"), args.threads)
        report["async_batching"] = async_batching_refusal(engine)
        managers = variants(engine, args.threads)
        bodies = chat_bodies(LLAMA_ID, args.requests, args.max_tokens)

        def run(name):
            engine.manager, engine.guides = managers[name]
            cpu = time.process_time()
            out = run_inprocess(engine, bodies, args.concurrency)
            out["cpu_s"] = time.process_time() - cpu
            return out

        for name in managers:  # warm-up: first shapes of each manager
            engine.manager, engine.guides = managers[name]
            run_inprocess(engine, bodies[:8], args.concurrency)
        rounds: dict[str, list] = {name: [] for name in managers}
        loads = []
        for _ in range(args.runs):
            loads.append(" ".join(loadavg()))
            for name in managers:
                rounds[name].append(run(name))
        report["loadavg_per_round"] = loads
        for name, results in rounds.items():
            toks = [r["output_tok_s"] for r in results]
            base = [r["output_tok_s"] for r in rounds["engine"]]
            ratios = sorted(t / b for t, b in zip(toks, base))
            cpu = [r["cpu_s"] / r["output_tokens"] * 1000 for r in results]
            report[name] = {"output_tok_s_median": sorted(toks)[len(toks) // 2],
                            "output_tok_s_runs": [round(t, 1) for t in toks],
                            "paired_ratio_vs_engine_median": round(ratios[len(ratios) // 2], 3),
                            "cpu_ms_per_token_median": round(sorted(cpu)[len(cpu) // 2], 2),
                            "ttft_p50_ms_runs": [round(r["ttft_p50_ms"], 1) for r in results]}
        if args.micro:
            report["sampling_stage_ms"] = micro(engine.vocab_size)
    finally:
        for name, (manager, _) in managers.items():
            if name != "engine":
                manager.stop(block=True, timeout=10)
        if engine is not None:
            engine.manager, engine.guides = managers.get("engine", (engine.manager, engine.guides))
            engine.close()
        shutil.rmtree(tmp, ignore_errors=True)
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
