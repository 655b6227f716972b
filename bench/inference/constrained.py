"""What grammar-constrained decoding costs (issue 17), one command:

    .venv/bin/python -m bench.inference.constrained [--runs 3] [--json out.json]

1. Library pick: llguidance against xgrammar (when importable) on our tokenizers (the tiny
   model's 442 tokens and an 8k BPE): tokenizer preparation, grammar compile, and the time to
   compute one next-token mask along random walks through a JSON schema (p50/p99).
2. Served cost: a real hub (``aicommons serve``, model uploaded through ``huggingface_hub``), 8
   concurrent streaming chats on the tiny Llama (``--real-size``: SmolLM2-135M's shape), output
   tokens/s free vs constrained by a JSON schema that cannot close within the budget (an array of at
   least 100 colours), both ``max_tokens`` long; systems interleaved per round, median of ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.inference.cpu_bench import chat_bodies, free_port, hub_settings, interleaved, loadavg, with_server_cpu
from bench.inference.hub_server import start_hub
from bench.inference.loadgen import run_chats

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["red", "green", "blue"]}, "maxItems": 4},
    "ok": {"type": "boolean"}}, "required": ["name", "age", "tags", "ok"], "additionalProperties": False}
ENDLESS = {"type": "array", "items": {"type": "string", "enum": ["red", "green", "blue"]}, "minItems": 100}


def _stats(times: list[float]) -> dict:
    times = sorted(times)
    return {"mask_p50_us": round(times[len(times) // 2] * 1e6, 1),
            "mask_p99_us": round(times[int(len(times) * 0.99)] * 1e6, 1), "tokens": len(times)}


def walk_llguidance(tok, walks: int) -> dict:
    import llguidance
    import llguidance.hf
    import numpy as np

    t0 = time.perf_counter()
    lt = llguidance.hf.from_tokenizer(tok, n_vocab=len(tok))
    prep = time.perf_counter() - t0
    rnd, times, compile_s = random.Random(0), [], []
    for _ in range(walks):
        c0 = time.perf_counter()
        grammar = llguidance.LLMatcher.grammar_from_json_schema(SCHEMA, defaults={"whitespace_flexible": False})
        matcher = llguidance.LLMatcher(lt, grammar)
        compile_s.append(time.perf_counter() - c0)
        while not matcher.is_stopped() and len(times) < 20000:
            s = time.perf_counter()
            bits = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), np.uint8), bitorder="little")[:len(tok)]
            times.append(time.perf_counter() - s)
            matcher.consume_token(int(rnd.choice(np.flatnonzero(bits))))
    return {"tokenizer_ms": round(prep * 1e3, 1), "compile_ms_median": round(sorted(compile_s)[walks // 2] * 1e3, 3),
            **_stats(times)}


def walk_xgrammar(tok, walks: int) -> dict | None:
    try:
        import xgrammar as xgr
    except ImportError:
        return None
    import numpy as np

    t0 = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))
    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    prep = time.perf_counter() - t0
    rnd, times, compile_s = random.Random(0), [], []
    bitmask = xgr.allocate_token_bitmask(1, len(tok))
    for _ in range(walks):
        c0 = time.perf_counter()
        matcher = xgr.GrammarMatcher(compiler.compile_json_schema(json.dumps(SCHEMA), any_whitespace=False))
        compile_s.append(time.perf_counter() - c0)
        while not matcher.is_terminated() and len(times) < 20000:
            s = time.perf_counter()
            matcher.fill_next_token_bitmask(bitmask)
            bits = np.unpackbits(bitmask[0].numpy().view(np.uint8), bitorder="little")[:len(tok)]
            times.append(time.perf_counter() - s)
            if not matcher.accept_token(int(rnd.choice(np.flatnonzero(bits)))):
                break
    return {"tokenizer_ms": round(prep * 1e3, 1), "compile_ms_median": round(sorted(compile_s)[walks // 2] * 1e3, 3),
            **_stats(times)}


def library_pick(walks: int) -> dict:
    from aicommons.inference import devmodels

    out = {}
    for vocab in (512, 8192):
        tok = devmodels.train_bpe_tokenizer(vocab, corpus_size=4000 if vocab <= 4096 else 40000,
                                            alphabet_words=0 if vocab <= 1024 else vocab)
        out[f"vocab_{len(tok)}"] = {"llguidance": walk_llguidance(tok, walks), "xgrammar": walk_xgrammar(tok, walks)}
    return out


def served_cost(llama: Path, args) -> dict:
    model_id = "bench/smollm2-135m" if args.real_size else "bench/tiny-llama"
    hub = start_hub(free_port(), args.threads, {model_id: llama}, hub_settings(args.threads))
    try:
        url = f"{hub.url}/v1/chat/completions"
        free = chat_bodies(model_id, args.requests, args.max_tokens)
        for body in free:
            body["ignore_eos"] = True
        constrained = [{**b, "response_format": {"type": "json_schema", "json_schema": {
            "name": "colours", "schema": ENDLESS, "strict": True}}} for b in free]

        def measure(bodies, count):
            return with_server_cpu(hub.pid, lambda: run_chats(url, bodies[:count], args.concurrency,
                                                              {"Authorization": f"Bearer {hub.token}"}))()

        measure(free, 8)
        measure(constrained, 8)
        systems = {"free": lambda: measure(free, args.requests),
                   "json_schema": lambda: measure(constrained, args.requests)}
        result = interleaved(systems, args.runs, "output_tok_s")
        result["constrained_vs_free"] = result["json_schema"]["output_tok_s"] / result["free"]["output_tok_s"]
        return result
    finally:
        hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--walks", type=int, default=20)
    parser.add_argument("--real-size", action="store_true",
                        help="the served cost on SmolLM2-135M's shape (random weights, float32) instead of the tiny Llama")
    parser.add_argument("--no-library-pick", action="store_true", help="only the served cost")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from aicommons.inference import devmodels

    report = {"threads": args.threads, "loadavg_before": loadavg(), "command": " ".join(sys.argv),
              "model": "smollm2-135m shape, random weights, float32" if args.real_size else "tiny Llama"}
    if not args.no_library_pick:
        report["library_pick"] = library_pick(args.walks)
    tmp = Path(tempfile.mkdtemp(prefix="aicommons-bench-"))
    try:
        llama = devmodels.build_smollm2_135m(tmp / "smollm2-135m") if args.real_size else \
            devmodels.build_llama(tmp / "tiny-llama")
        report["served"] = served_cost(llama, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["loadavg_after"] = loadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
