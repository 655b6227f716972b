"""GGUF files served by llama.cpp through ``llama-cpp-python`` (issue 17).

When ``llama_cpp`` is importable (``pip install 'aicommons[llama]'``, which compiles llama.cpp),
a GGUF file runs here rather than through transformers' GGUF loader: the quantised weights stay
quantised (memory-mapped, llama.cpp's own kernels), where transformers dequantises them to float32.
``AICOMMONS_INFERENCE_GGUF_ENGINE`` chooses (``auto``: llama.cpp when importable).

The hub side stays what it is for any causal LM (``engines/process.py``): it tokenizes with the
tokenizer built from the file's own metadata (the same vocabulary, so the same ids), renders the
file's chat template (checked by the scanner before anything loads), detokenizes and applies stop
sequences. This worker receives token ids and returns token ids.

One llama.cpp context serves one sequence at a time, as ``llama-cpp-python``'s own server does:
requests wait their turn in arrival order, and a prompt that shares a prefix with the previous one
reuses its KV cache (llama-cpp-python's ``generate`` does that). Grammar, ``logit_bias`` and
logprobs go through the same ``Guide`` as on the transformers engine, as a logits processor.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import queue
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..engine import EngineStep, SamplingParams
from ..errors import GenerationFailed, InvalidRequest
from ..source import ResolvedModel
from .transformers_lm import LMText

ENGINE_NAME = "llama.cpp"


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def use_llama_cpp(resolved: ResolvedModel, settings) -> bool:
    """Whether this model runs on llama.cpp: a GGUF file, and the setting allows it."""
    if resolved.variant is None:
        return False
    choice = settings.gguf_engine
    if choice == "transformers":
        return False
    if choice == "llama.cpp":
        return True
    return llama_cpp_available()


def gguf_facts(path: Path) -> dict[str, int]:
    """From the file's metadata, without loading it: trained context and KV bytes per token (f16)."""
    import gguf

    reader = gguf.GGUFReader(str(path))

    def value(key: str, default: int = 0) -> int:
        field = reader.get_field(key)
        if field is None:
            return default
        return int(field.parts[field.data[0]][0])

    arch_field = reader.get_field("general.architecture")
    arch = bytes(arch_field.parts[arch_field.data[0]]).decode() if arch_field is not None else "llama"
    layers = value(f"{arch}.block_count", 1)
    heads = value(f"{arch}.attention.head_count", 1) or 1
    kv_heads = value(f"{arch}.attention.head_count_kv", heads) or heads
    embed = value(f"{arch}.embedding_length", 64)
    key_len = value(f"{arch}.attention.key_length", embed // heads)
    value_len = value(f"{arch}.attention.value_length", embed // heads)
    return {"context": value(f"{arch}.context_length", 2048),
            "kv_bytes_per_token": layers * kv_heads * (key_len + value_len) * 2}


def context_for(path: Path, settings) -> tuple[int, int]:
    """(n_ctx, KV cache bytes): the trained context, capped so the cache fits ``kv_cache_bytes``."""
    facts = gguf_facts(path)
    per_token = max(1, facts["kv_bytes_per_token"])
    n_ctx = max(256, min(facts["context"], settings.kv_cache_bytes // per_token))
    return n_ctx, n_ctx * per_token


_load_lock = threading.Lock()


def open_llama(path: Path, **kwargs):
    """``llama_cpp.Llama`` on a file, its weights in plain CPU buffers. llama.cpp's extra CPU buffer
    types (AMX and repacked weights, chosen at load) crash in the first decode on Q8_0 files with
    llama-cpp-python 0.3.36 built ``GGML_NATIVE`` on this Sapphire Rapids CPU (a segfault in
    ``llama_decode``, every Q8_0 file tried, F16 unaffected), and the bindings have no argument for
    ``use_extra_bufts``: the default model parameters are swapped for the duration of the load."""
    import llama_cpp  # type: ignore[import-not-found, unused-ignore]  # optional: the `llama` extra
    import llama_cpp.llama_cpp as api  # type: ignore[import-not-found, unused-ignore]

    with _load_lock:
        original = api.llama_model_default_params

        def defaults():
            params = original()
            params.use_extra_bufts = False
            return params

        api.llama_model_default_params = defaults
        try:
            return llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
        finally:
            api.llama_model_default_params = original


class _Job:
    __slots__ = ("prompt_ids", "params", "guide", "emit", "cancel")

    def __init__(self, prompt_ids, params, guide, emit, cancel):
        self.prompt_ids = prompt_ids
        self.params = params
        self.guide = guide
        self.emit = emit
        self.cancel = cancel


class LlamaCppLM:
    """The generating side; the hub side (text) is ``ProcessLM`` with the worker's ``text_info``."""

    task = "text-generation"
    engine_name = ENGINE_NAME
    proxies_openai = False

    def __init__(self, llm, path: Path, footprint: int):
        import llama_cpp  # type: ignore[import-not-found, unused-ignore]  # optional: the `llama` extra

        self.llm = llm
        self.path = path
        self._footprint = footprint
        self.vocab_size = int(llm.n_vocab())
        self.context_length = int(llm.n_ctx())
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._is_eog = lambda t: bool(llama_cpp.llama_vocab_is_eog(vocab, t))
        self.eos_ids = sorted({int(llm.token_eos())} | _eot(llm))
        self._jobs: queue.Queue = queue.Queue()
        self._ll_tokenizer: Any = None
        self._thread = threading.Thread(target=self._serve, name="aicommons-llama-cpp", daemon=True)
        self._thread.start()

    @property
    def text_info(self) -> dict:
        return {"context_length": self.context_length, "eos_ids": self.eos_ids, "vocab_size": self.vocab_size,
                "engine": ENGINE_NAME}

    @classmethod
    def load(cls, resolved: ResolvedModel, settings) -> LlamaCppLM:
        if not llama_cpp_available():
            raise GenerationFailed("GGUF_ENGINE is llama.cpp but llama-cpp-python is not installed")
        path = Path(resolved.local_dir) / str(resolved.variant)
        n_ctx, kv_bytes = context_for(path, settings)
        threads = settings.threads if settings.threads > 0 else (os.cpu_count() or 1)
        llm = open_llama(path, n_ctx=n_ctx, n_batch=min(512, n_ctx), n_threads=threads,
                         n_threads_batch=threads, logits_all=False)
        footprint = int((path.stat().st_size + kv_bytes) * 1.1)
        return cls(llm, path, footprint)

    # ---- generation ----------------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[EngineStep]:
        if len(prompt_ids) + 1 > self.context_length:
            raise InvalidRequest(f"the prompt has {len(prompt_ids)} tokens; this model serves at most "
                                 f"{self.context_length - 1}", param="messages")
        guide = await self._new_guide(params, prompt_ids) if params.guided else None
        loop = asyncio.get_running_loop()
        out: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def emit(item) -> None:
            try:
                loop.call_soon_threadsafe(out.put_nowait, item)
            except RuntimeError:  # the loop closed: nobody listens any more
                cancel.set()

        self._jobs.put(_Job(list(prompt_ids), params, guide, emit, cancel))
        try:
            while True:
                item = await out.get()
                if isinstance(item, Exception):
                    raise item
                yield item
                if item.finished:
                    return
        finally:
            cancel.set()  # finished, the client left, or a stop sequence matched: the turn ends

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancel.is_set():
                continue
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - the request it belongs to fails, the engine goes on
                job.emit(GenerationFailed(f"{type(exc).__name__} in llama.cpp"))

    def _run(self, job: _Job) -> None:
        params, guide = job.params, job.guide
        llm = self.llm
        if params.seed is not None:
            llm.set_seed(int(params.seed) % (2 ** 31))
        processor = None
        if guide is not None:
            processor = [_guide_processor(guide, len(job.prompt_ids))]
        greedy = params.greedy
        count = 0
        tokens = llm.generate(job.prompt_ids, temp=0.0 if greedy else float(params.temperature),
                              top_p=float(params.top_p), top_k=int(params.top_k or 0), min_p=0.0,
                              typical_p=1.0, repeat_penalty=1.0, reset=True, logits_processor=processor)
        try:
            for token in tokens:
                token = int(token)
                count += 1
                logprobs = guide.logprobs_for([token]) if guide is not None and guide.top is not None else None
                eos = self._is_eog(token) and (not params.ignore_eos or params.grammar is not None)
                if eos or count >= params.max_new_tokens:
                    job.emit(EngineStep([token], finished=True, finish_reason="eos" if eos else "length",
                                        logprobs=logprobs))
                    return
                job.emit(EngineStep([token], logprobs=logprobs))
                if job.cancel.is_set():
                    return
                if len(job.prompt_ids) + count >= self.context_length:
                    job.emit(EngineStep([], finished=True, finish_reason="length"))
                    return
        finally:
            tokens.close()

    async def _new_guide(self, params: SamplingParams, prompt_ids: list[int] | tuple[int, ...] = ()):
        from .guided import Guide

        if any(not 0 <= t < self.vocab_size for t, _ in params.logit_bias):
            raise InvalidRequest(f"logit_bias token ids must be in [0, {self.vocab_size})", param="logit_bias")
        matcher = await asyncio.to_thread(self._matcher, params.grammar) if params.grammar is not None else None
        return Guide(matcher, params.logit_bias, params.logprobs, self.vocab_size, self.eos_ids,
                     params.presence_penalty, params.frequency_penalty, params.repetition_penalty, prompt_ids)

    def _matcher(self, grammar: str):
        import llguidance
        import llguidance.hf

        if self._ll_tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer: Any = AutoTokenizer.from_pretrained(self.path.parent, gguf_file=self.path.name)
            # The tokenizer built from the file may count a token more than the model's matrix (an
            # added pad); the mask covers both and the Guide keeps the model's part.
            self._ll_tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=max(self.vocab_size, len(tokenizer)),
                                                              eos_token=self.eos_ids or None)
        from .guided import new_matcher

        return new_matcher(self._ll_tokenizer, grammar)

    def footprint_bytes(self) -> int:
        return self._footprint

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()


def _eot(llm) -> set[int]:
    try:
        token = int(llm._model.token_eot())
    except Exception:  # noqa: BLE001 - older bindings or no such token
        return set()
    return {token} if token >= 0 else set()


def _guide_processor(guide, prompt_len: int):
    """The guide as llama-cpp-python's logits processor: (ids so far, last logits) -> logits."""
    import numpy as np
    import torch

    from .guided import apply_rows

    def process(input_ids: Any, scores: Any) -> Any:
        guide.advance([int(t) for t in input_ids[prompt_len:]])
        row = torch.from_numpy(np.array(scores, dtype=np.float32, copy=True)).unsqueeze(0)
        return apply_rows(row, [(0, guide)])[0].numpy()

    return process


class InProcessLlamaCpp(LMText, LlamaCppLM):
    """``ISOLATION=thread``: llama.cpp inside the hub's process, with the text side beside it."""

    engine_name = ENGINE_NAME

    @classmethod
    def load(cls, resolved: ResolvedModel, settings) -> InProcessLlamaCpp:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(Path(resolved.local_dir), gguf_file=resolved.variant)
        engine = super().load(resolved, settings)
        assert isinstance(engine, InProcessLlamaCpp)
        engine._init_text(tokenizer, context_length=engine.context_length, eos_ids=engine.eos_ids,
                          vocab_size=engine.vocab_size)
        return engine
