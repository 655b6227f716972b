"""Inference settings: every ``AICOMMONS_INFERENCE_*`` variable, documented next to its default.

Kept apart from ``aicommons.config`` so inference can evolve its knobs without touching the core;
``SETTINGS`` has the same shape as the core's, so the configuration reference can include it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from aicommons.config import Setting, SettingsError, parse_value, settings_table

PREFIX = "AICOMMONS_INFERENCE_"

SETTINGS: tuple[Setting, ...] = (
    Setting("ENABLED", "true", "Serve inference routes (`/v1/*`, `/models/{id}`, `/metrics`)."),
    Setting("ENGINE", "auto",
            "Text-generation engine: `transformers` (in-process continuous batching), `vllm` (one "
            "`vllm serve` subprocess per model; needs a GPU and vLLM installed) or `auto` (vLLM when "
            "importable and CUDA is present, else transformers)."),
    Setting("ISOLATION", "process",
            "Where a transformers model runs: `process` (its own worker process: the hub's event "
            "loop only admits, routes and streams; a crashed worker is replaced on the next "
            "request; unloading ends the process) or `thread` (inside the hub's process)."),
    Setting("GGUF_ENGINE", "auto",
            "What serves a GGUF file: `llama.cpp` (llama-cpp-python, quantised weights memory-mapped; "
            "install the `llama` extra, which compiles llama.cpp), `transformers` (transformers' GGUF "
            "loader, weights dequantised to the serving dtype) or `auto` (llama.cpp when "
            "llama-cpp-python is importable, else transformers)."),
    Setting("DEVICE", "auto", "torch device for in-process engines: `cpu`, `cuda`, or `auto`."),
    Setting("DTYPE", "auto",
            "Weights dtype for in-process engines: `float32`, `bfloat16`, `float16`, or `auto` "
            "(float32 on CPU, bfloat16 on GPU)."),
    Setting("THREADS", "0", "torch intra-op threads; 0 = all cores."),
    Setting("MEMORY_BUDGET_BYTES", "0",
            "Estimated bytes all loaded models may take together (weights + KV cache + 10 %). "
            "Least-recently-used idle models are unloaded to make room. 0 = half the machine's RAM."),
    Setting("MAX_LOADED_MODELS", "3", "Most models kept loaded at once (Ollama's CPU default)."),
    Setting("KEEP_ALIVE_SECONDS", "300", "Unload a model after this many idle seconds; negative = never."),
    Setting("LOAD_TIMEOUT_SECONDS", "600",
            "How long a request waits for its model to load (or for room to load it) before a 503."),
    Setting("KV_CACHE_BYTES", str(256 * 1024 * 1024),
            "KV-cache memory reserved per loaded text-generation model (paged, continuous batching). "
            "On a CPU the batch's attention mask takes up to as much again: a model with small KV rows gets "
            "fewer cache tokens than the bytes would hold (at least 16,384), so that the mask stays within it."),
    Setting("STEP_TOKENS", "0",
            "Most tokens one continuous-batching step computes (decodes plus prompt chunks; longer "
            "prompts are prefilled over several steps, as vLLM's `max_num_batched_tokens`). Smaller "
            "keeps a burst of new prompts from holding every stream's next token and staggers their "
            "first tokens; larger prefills more at once. 0 = 2048."),
    Setting("BURST_WAIT_STEPS", "0.1",
            "Text generation: how long a request that finds its model idle waits for the rest of its "
            "burst, in decode steps of that model as last measured (at most 50 ms), so that requests "
            "arriving a few ms apart are prefilled in one step instead of the later ones waiting a "
            "whole step for the first. A request that finds the model busy never waits. 0 = off."),
    Setting("HUGE_PAGE_WEIGHTS", "true",
            "Text generation on a CPU: copy the model's weights into anonymous memory advised for "
            "transparent huge pages (`madvise`) instead of computing on the memory-mapped weights file. "
            "A decode step reads every weight once, and on 4 KiB pages that costs TLB misses: the "
            "hub's own stored files are written in small pieces, so their page cache is never mapped "
            "in 2 MiB pages (measured ~10 % slower steps at Qwen2.5-0.5B's size). Costs a copy at "
            "load (~1-3 s per 2 GB)."),
    Setting("MAX_RUNNING", "64", "Most requests running in engines at once, all users together."),
    Setting("MAX_QUEUE", "256", "Most requests waiting for a running slot; beyond it the answer is 503."),
    Setting("QUEUE_TIMEOUT_SECONDS", "60", "Longest wait for a running slot before a 503."),
    Setting("MAX_CONCURRENT_PER_USER", "8", "Requests one signed-in principal may have in flight."),
    Setting("TOKENS_PER_MINUTE", "200000",
            "Token budget per signed-in principal per minute (prompt + max new tokens reserved at "
            "admission, the unused part refunded)."),
    Setting("ANON_ALLOWED", "true", "Let anonymous callers use public models."),
    Setting("ANON_MAX_CONCURRENT", "2", "Requests one anonymous client (by IP) may have in flight."),
    Setting("ANON_TOKENS_PER_MINUTE", "20000", "Token budget per anonymous client per minute."),
    Setting("DEFAULT_MAX_TOKENS", "256",
            "New tokens generated when a chat/generate request names no limit (capped by the context)."),
    Setting("MAX_N", "8", "Largest `n` (completions per request)."),
    Setting("MAX_STOP_SEQUENCES", "8", "Most stop sequences per request."),
    Setting("MAX_CLIENT_BATCH", "2048", "Most inputs in one embeddings/task request (OpenAI's limit; LangChain "
            "sends up to 1,000). A request with more than `MAX_BATCH_ITEMS` runs as several forward passes."),
    Setting("BATCH_WAIT_MS", "3",
            "Encoder micro-batcher: longest wait for companions before a batch runs (a first request "
            "on an idle model; after a batch, the callers it answered coming back)."),
    Setting("MAX_BATCH_TOKENS", "16384", "Encoder micro-batcher: most tokens in one forward pass."),
    Setting("MAX_BATCH_ITEMS", "128", "Encoder micro-batcher: most texts in one forward pass."),
    Setting("MAX_AUDIO_BYTES", str(25 * 1024 * 1024),
            "Largest audio upload for speech recognition (`/v1/audio/transcriptions`, the HF task "
            "API); larger ones get a 413. OpenAI's limit is 25 MB."),
    Setting("MAX_AUDIO_SECONDS", "600",
            "Longest audio transcribed in one request (read from the file's header before decoding); "
            "longer ones get a 400. Audio is transcribed in 30-second windows."),
    Setting("RESOLVE_CACHE_SECONDS", "1",
            "How long a model reference's resolution (the repo's access flags and the commit a branch "
            "or tag points to) is reused. This replica sees pushes and setting changes at once; other "
            "replicas within this bound. Access is still checked on every request. 0 = resolve every "
            "time."),
    Setting("VLLM_EXTRA_ARGS", "", "Extra arguments appended to `vllm serve` (GPU engine only)."),
)


def _env(name: str, environ: Mapping[str, str]) -> str:
    spec = next(s for s in SETTINGS if s.name == name)
    return environ.get(PREFIX + name, spec.default)


@dataclass(frozen=True)
class InferenceSettings:
    enabled: bool = True
    engine: str = "auto"
    isolation: str = "process"
    gguf_engine: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    threads: int = 0
    memory_budget_bytes: int = 0
    max_loaded_models: int = 3
    keep_alive_seconds: float = 300.0
    load_timeout_seconds: float = 600.0
    kv_cache_bytes: int = 256 * 1024 * 1024
    step_tokens: int = 0
    burst_wait_steps: float = 0.1
    huge_page_weights: bool = True
    max_running: int = 64
    max_queue: int = 256
    queue_timeout_seconds: float = 60.0
    max_concurrent_per_user: int = 8
    tokens_per_minute: int = 200000
    anon_allowed: bool = True
    anon_max_concurrent: int = 2
    anon_tokens_per_minute: int = 20000
    default_max_tokens: int = 256
    max_n: int = 8
    max_stop_sequences: int = 8
    max_client_batch: int = 2048
    batch_wait_ms: float = 3.0
    max_batch_tokens: int = 16384
    max_batch_items: int = 128
    max_audio_bytes: int = 25 * 1024 * 1024
    max_audio_seconds: float = 600.0
    resolve_cache_seconds: float = 1.0
    vllm_extra_args: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> InferenceSettings:
        env: Mapping[str, str] = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = _env(f.name.upper(), env)
            values[f.name] = parse_value(PREFIX + f.name.upper(), raw, type(f.default))
        values.update(overrides)
        return cls(**values)

    def __post_init__(self):
        if self.isolation not in ("process", "thread"):
            raise SettingsError(f"{PREFIX}ISOLATION must be 'process' or 'thread', not {self.isolation!r}")
        if self.gguf_engine not in ("auto", "llama.cpp", "transformers"):
            raise SettingsError(f"{PREFIX}GGUF_ENGINE must be 'auto', 'llama.cpp' or 'transformers', "
                                f"not {self.gguf_engine!r}")

    def effective_memory_budget(self) -> int:
        if self.memory_budget_bytes > 0:
            return self.memory_budget_bytes
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 8 * 1024 ** 3
        return total // 2


assert {f.name for f in fields(InferenceSettings)} == {s.name.lower() for s in SETTINGS}


def settings_reference_markdown() -> str:
    """The inference part of the configuration reference, generated from SETTINGS."""
    return settings_table(SETTINGS, PREFIX)
