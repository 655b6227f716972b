"""GPU check (issue 4): our hub in front of an engine vs the same engine driven directly.

    python -m bench.inference.gpu_bench [--json gpu.json]      # one H100/H200, no network, < 10 min

Builds a ~1B-parameter random-weight Llama in bf16 locally, then runs the same streaming workload
(random prompts of --input-len tokens, --output-len new tokens with ignore_eos, at each
--concurrency) twice:
- with vLLM installed: ``vllm serve`` alone, then our hub proxying to its own ``vllm serve``
  (AICOMMONS_INFERENCE_ENGINE=vllm);
- without vLLM: transformers' continuous-batching manager driven directly in this process, then our
  hub on the same engine (AICOMMONS_INFERENCE_ENGINE=transformers, DEVICE=cuda).
The figure that matters is hub output tok/s / engine output tok/s (target >= 0.95), plus TTFT/ITL.
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


def direct_cb(model_dir: Path, bodies: list[dict]) -> dict:
    """transformers' CB engine with no server at all: the anchor when vLLM is absent."""
    import torch
    from transformers import AutoModelForCausalLM, ContinuousBatchingConfig, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
    gen = GenerationConfig(do_sample=False, max_new_tokens=bodies[0]["max_tokens"], eos_token_id=-1)
    inputs = [b["prompt"] for b in bodies]
    model.generate_batch(inputs[:8], generation_config=gen, continuous_batching_config=ContinuousBatchingConfig())
    start_t = time.perf_counter()
    out = model.generate_batch(inputs, generation_config=gen, continuous_batching_config=ContinuousBatchingConfig())
    elapsed = time.perf_counter() - start_t
    tokens = sum(len(o.generated_tokens) for o in out.values())
    del model
    torch.cuda.empty_cache()
    return {"requests": len(bodies), "output_tokens": tokens, "seconds": elapsed, "output_tok_s": tokens / elapsed,
            "note": "offline generate_batch (all requests at once), no HTTP"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--num-prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from aicommons.inference import devmodels

    report = {"facts": gpu_facts(), "args": vars(args) | {"json": str(args.json)}}
    print(json.dumps(report["facts"]), flush=True)
    if not report["facts"]["cuda"]:
        sys.exit("no CUDA device: this benchmark needs a GPU")
    tmp = Path(tempfile.mkdtemp(prefix="aicommons-gpu-bench-"))
    try:
        model_dir = devmodels.build_llama_1b(tmp / "llama-1b")
        vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
        repo = "bench/llama-1b"
        results = {}
        for conc in args.concurrency:
            bodies = completion_bodies(repo, args.num_prompts, args.input_len, args.output_len, vocab)
            row = {}
            if report["facts"]["vllm"]:
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
                row["engine"] = direct_cb(model_dir, bodies)
                hub_engine = "transformers"
            proc, port = ours({repo: model_dir}, 16, device="cuda", dtype="bfloat16", engine=hub_engine,
                              kv_cache_bytes=16 * 1024 ** 3, max_running=1024)
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
