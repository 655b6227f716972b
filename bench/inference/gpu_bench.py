"""GPU check (issue 4): our hub in front of an engine vs the same engine driven directly.

    python -m bench.inference.gpu_bench [--json gpu.json]      # one H100/H200, no network, < 10 min

Builds a ~1B-parameter random-weight Llama in bf16 locally, then runs the same streaming workload
(random prompts of --input-len tokens, --output-len new tokens with ignore_eos, at each
--concurrency) twice:
- with vLLM installed: ``vllm serve`` alone, then our hub proxying to its own ``vllm serve``
  (AICOMMONS_INFERENCE_ENGINE=vllm);
- without vLLM: the hub's transformers engine (continuous batching) driven directly in this
  process, then our hub on the same engine (AICOMMONS_INFERENCE_ENGINE=transformers, DEVICE=cuda).
The figure that matters is hub output tok/s / engine output tok/s (target >= 0.95), plus TTFT/ITL.

``--device cpu --model tiny`` runs the same script end to end on a CPU with the tiny Llama in
float32 (the test suite does, tests/inference/test_bench_scripts.py), so that the one GPU run a
session may get is not spent finding a broken script.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.inference.cpu_bench import free_port, start, stop, threads_env
from bench.inference.loadgen import run_chats


def gpu_facts() -> dict:
    facts = {}
    try:
        facts["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                              "--format=csv,noheader"], capture_output=True, text=True,
                                             timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        facts["nvidia_smi"] = None
    import torch

    facts["torch"] = torch.__version__
    facts["cuda"] = torch.cuda.is_available()
    try:
        import vllm

        facts["vllm"] = vllm.__version__
    except ImportError:
        facts["vllm"] = None
    return facts


def completion_bodies(model: str, n: int, input_len: int, output_len: int, vocab: int) -> list[dict]:
    import random

    rnd = random.Random(0)
    # Token-id prompts: exact input lengths without depending on the tokenizer.
    return [{"model": model, "prompt": [rnd.randrange(3, vocab) for _ in range(input_len)], "stream": True,
             "max_tokens": output_len, "ignore_eos": True, "temperature": 0,
             "stream_options": {"include_usage": True}} for _ in range(n)]


def ours(folders: dict, threads: int, **settings) -> tuple[subprocess.Popen, int]:
    """Our inference routes over local folders (``serve_folders``): here the question is the
    server's overhead in front of one engine, not the hub's storage or access checks."""
    port = free_port()
    env = threads_env(threads)
    env.update({f"AICOMMONS_INFERENCE_{k.upper()}": str(v) for k, v in {
        "threads": threads, "anon_max_concurrent": 256, "anon_tokens_per_minute": 10 ** 9, "max_running": 256,
        "keep_alive_seconds": -1, **settings}.items()})
    cmd = [sys.executable, "-m", "bench.inference.serve_folders", "--port", str(port),
           *(f"{k}={v}" for k, v in folders.items())]
    return start(cmd, port, env, "/metrics"), port


def direct_engine(model_dir: Path, bodies: list[dict], concurrency: int, settings: dict) -> dict:
    """The anchor when vLLM is absent: the hub's own transformers engine (same class, same
    continuous-batching configuration, same settings), driven in this process with ``concurrency``
    requests in flight and no HTTP, routes, access checks or admission in between."""
    import asyncio
    import statistics

    from aicommons.inference.engine import SamplingParams
    from aicommons.inference.engines.transformers_lm import TransformersLM
    from aicommons.inference.settings import InferenceSettings
    from aicommons.inference.source import ResolvedModel

    engine = TransformersLM.load(ResolvedModel(bodies[0]["model"], "0" * 40, model_dir),
                                 InferenceSettings.from_env({}, **settings))
    params = SamplingParams(max_new_tokens=bodies[0]["max_tokens"], temperature=0.0, ignore_eos=True)

    async def workload(prompts: list[list[int]]) -> tuple[int, list[float], float]:
        gate = asyncio.Semaphore(concurrency)
        ttfts: list[float] = []

        async def one(prompt):
            async with gate:
                sent, first, count = time.perf_counter(), None, 0
                async for step in engine.generate(prompt, params):
                    if step.new_token_ids and first is None:
                        first = time.perf_counter() - sent
                    count += len(step.new_token_ids)
                ttfts.append(first or 0.0)
                return count

        start_t = time.perf_counter()
        counts = await asyncio.gather(*(one(p) for p in prompts))
        return sum(counts), ttfts, time.perf_counter() - start_t

    try:
        prompts = [b["prompt"] for b in bodies]
        asyncio.run(workload(prompts[:8]))  # warm-up, as the hub gets
        tokens, ttfts, elapsed = asyncio.run(workload(prompts))
    finally:
        engine.close()
    return {"requests": len(bodies), "output_tokens": tokens, "seconds": elapsed, "output_tok_s": tokens / elapsed,
            "ttft_p50_ms": 1000 * statistics.median(ttfts),
            "note": "the hub's TransformersLM engine driven in-process, no HTTP"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: a smoke run of this script (no vLLM, float32)")
    parser.add_argument("--model", choices=["1b", "tiny"], default="1b")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from aicommons.inference import devmodels

    report = {"facts": gpu_facts(), "args": vars(args) | {"json": str(args.json)}}
    print(json.dumps(report["facts"]), flush=True)
    if args.device == "cuda" and not report["facts"]["cuda"]:
        sys.exit("no CUDA device: this benchmark needs a GPU (or --device cpu for a smoke run)")
    dtype = "bfloat16" if args.device == "cuda" else "float32"
    use_vllm = bool(report["facts"]["vllm"]) and args.device == "cuda"
    threads = 16 if args.device == "cuda" else 2
    tmp = Path(tempfile.mkdtemp(prefix="aicommons-gpu-bench-"))
    try:
        if args.model == "1b":
            model_dir = devmodels.build_llama_1b(tmp / "llama-1b", dtype=dtype)
        else:
            model_dir = devmodels.build_llama(tmp / "tiny-llama", dtype=dtype)
        vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
        repo = "bench/llama-1b"
        results = {}
        for conc in args.concurrency:
            bodies = completion_bodies(repo, args.num_prompts, args.input_len, args.output_len, vocab)
            row = {}
            kv_bytes = 16 * 1024 ** 3 if args.device == "cuda" else 64 * 1024 ** 2
            settings = dict(device=args.device, dtype=dtype, kv_cache_bytes=kv_bytes)
            if use_vllm:
                port = free_port()
                proc = start([sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", str(model_dir), "--port",
                              str(port), "--served-model-name", repo, "--dtype", "bfloat16"], port, threads_env(16),
                             "/health")
                try:
                    row["engine"] = run_chats(f"http://127.0.0.1:{port}/v1/completions", bodies, conc)
                finally:
                    stop(proc)
                hub_engine = "vllm"
            else:
                row["engine"] = direct_engine(model_dir, bodies, conc, dict(settings, threads=threads))
                hub_engine = "transformers"
            proc, port = ours({repo: model_dir}, threads, engine=hub_engine, max_running=1024, **settings)
            try:
                url = f"http://127.0.0.1:{port}/v1/completions"
                run_chats(url, bodies[:8], min(conc, 8))  # warm-up
                row["hub"] = run_chats(url, bodies, conc)
            finally:
                stop(proc)
            row["ratio"] = row["hub"]["output_tok_s"] / row["engine"]["output_tok_s"]
            results[str(conc)] = row
            print(json.dumps({conc: row}), flush=True)
        report["results"] = results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
