"""Causal-LM generation on transformers' continuous-batching engine (spec §2, §3.2).

One ``ContinuousBatchingManager`` per loaded model runs in its own thread and admits/retires
sequences every step. Sampling parameters are per request through CB's per-request logits
processors; for that the manager is created in sampling mode with temperature/top-p/top-k
processors present, and a greedy request is sent with a vanishing temperature (which makes the
softmax one-hot, i.e. argmax); on CPU, a step where every request is greedy skips the division,
top-k, top-p, softmax and multinomial for one argmax, and a sampled step skips top-k/top-p where no
request restricts them and draws by inverse CDF instead of multinomial (``cb_processors``). One
manager, not a greedy and a sampling one: a second CB thread running torch ops makes GNU OpenMP
throttle its worker spinning, which slowed the busy manager's small matmuls by half. CB's sampler
uses the process-global RNG, so a request with a ``seed`` instead runs through ``model.generate``
on a side thread with its own ``torch.Generator``: slower, but reproducible, which is what a seed
promises.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat_template import render_chat
from ..engine import PROMPT_LOGPROBS, EngineStep, PromptLogprob, SamplingParams
from ..errors import GenerationFailed, InvalidRequest, Overloaded
from ..hugepages import huge_page_weights
from ..runtime import placement
from ..source import ResolvedModel
from ..tasks import estimate_weight_bytes
from ._transformers_private import engine_failed, forget_request
from .burst import BurstGate
from .cb_processors import GREEDY_TEMPERATURE

if TYPE_CHECKING:
    from llguidance import LLTokenizer

    from .guided import GuideRegistry

_PAGE_SIZE = 64
_MIN_CACHE_TOKENS = 16384  # the attention mask's bound never leaves the KV cache fewer (cache_blocks)
_SCORE_CHUNK = 512  # prompt tokens per forward pass when scoring a prompt (``prompt_logprobs``)
_ids = itertools.count()


class _Decoder:
    def __init__(self, rust_tokenizer):
        from tokenizers.decoders import DecodeStream

        self._tok = rust_tokenizer
        self._stream = DecodeStream(skip_special_tokens=True)

    def step(self, token_id: int) -> str:
        return self._stream.step(self._tok, token_id) or ""


class LMText:
    """The text side of a causal LM (tokenizer, chat template, detokenizing): what the hub's event
    loop needs whether the model runs in this process or in a worker (engines/process.py)."""

    task = "text-generation"
    engine_name = "transformers-cb"
    proxies_openai = False
    scores_prompts = False  # whether ``prompt_logprobs`` works (TGI's decoder_input_details)

    def _init_text(self, tokenizer, *, context_length: int, eos_ids: list[int], vocab_size: int) -> None:
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.eos_ids = eos_ids
        self._special = set(tokenizer.all_special_ids)
        self.vocab_size = vocab_size

    @property
    def text_info(self) -> dict:
        return {"context_length": self.context_length, "eos_ids": self.eos_ids, "vocab_size": self.vocab_size}

    # ---- text helpers ------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=True)["input_ids"]

    @property
    def chat_template(self) -> str | None:
        return self.tokenizer.chat_template

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        return render_chat(self.tokenizer.chat_template, messages, tools=tools,
                           bos_token=self.tokenizer.bos_token or "", eos_token=self.tokenizer.eos_token or "")

    def chat_prompt_ids(self, prompt: str) -> list[int]:
        # The template already wrote any BOS it wants; adding one again would double it.
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def new_decoder(self) -> _Decoder:
        return _Decoder(self.tokenizer.backend_tokenizer)

    def token_text(self, token_id: int) -> tuple[str, bool]:
        return self.tokenizer.decode([token_id]), token_id in self._special


class TransformersLM(LMText):
    scores_prompts = True

    def __init__(self, model, tokenizer, manager, footprint: int, device: str, burst_wait_steps: float = 0.0):
        self.model = model
        self.manager = manager
        self._footprint = footprint
        self._device = device
        self._seeded_lock = threading.Lock()  # seeded requests run one at a time, beside CB
        config = model.config.get_text_config()
        self._init_text(tokenizer, context_length=int(getattr(config, "max_position_embeddings", 0) or 2048),
                        eos_ids=_eos_ids(model, tokenizer),
                        vocab_size=int(getattr(config, "vocab_size", 0) or len(tokenizer)))
        self.guides: GuideRegistry | None = None  # when the CB manager carries the guide processor
        self._ll_tokenizer: LLTokenizer | None = None
        self.burst = BurstGate(burst_wait_steps)  # a burst on an idle engine starts in one step (burst.py)
        self._score_lock = threading.Lock()  # one prompt scored at a time: its logits are prompt x vocab

    # ---- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, resolved: ResolvedModel, settings) -> TransformersLM:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device, dtype = placement(settings)
        path = Path(resolved.local_dir)
        gguf = gguf_kwargs(resolved)
        tokenizer = AutoTokenizer.from_pretrained(path, **gguf)
        # sdpa keeps the model usable both by CB and by plain generate() (the seeded path).
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa", **gguf)
        model = model.to(device).eval()
        if device == "cpu" and settings.huge_page_weights:
            huge_page_weights(model)  # not the mmapped file's pages: 2 MiB pages whatever wrote it
        manager, guides = cb_manager(model, tokenizer, settings, device)
        manager.start()
        if resolved.variant is not None:
            from ..gguf import dequantised_bytes

            weights = int(dequantised_bytes(path / resolved.variant) * _cast_factor(path, dtype))
        else:
            weights = int(estimate_weight_bytes(path) * _cast_factor(path, dtype))
        footprint = int((weights + settings.kv_cache_bytes + _attention_mask_bytes(model, settings, device)) * 1.1)
        engine = cls(model, tokenizer, manager, footprint, device, settings.burst_wait_steps)
        engine.guides = guides
        engine._warm_up()
        return engine

    def _warm_up(self) -> None:
        """First steps at a new shape are 10-50x slower on CPU (oneDNN primitive creation): pay
        that at load time, not in the first user's time-to-first-token."""
        shapes = (3, 17)
        for n in shapes:
            self.manager.add_request([0] * n, request_id=f"warmup-{next(_ids)}", max_new_tokens=4,
                                     eos_token_id=-1, temperature=1.0, top_p=1.0, top_k=self._vocab())
        finished = 0
        while finished < len(shapes):
            out = self.manager.get_result(timeout=60)
            if out is None:
                break
            finished += int(out.is_finished())

    @property
    def text_info(self) -> dict:
        return {**super().text_info, "scores_prompts": True}

    # ---- prompt log-probabilities (TGI's decoder_input_details) ----------------------------------
    async def run(self, task: str, inputs: list, params: dict, cost: int) -> list:
        """Work besides generating, as a worker's ``Run`` message asks for it."""
        if task != PROMPT_LOGPROBS:
            raise InvalidRequest(f"task {task} is not served by this model")
        return [await self.prompt_logprobs(ids, int(params.get("top", 0))) for ids in inputs]

    async def prompt_logprobs(self, prompt_ids: list[int], top: int = 0) -> list[PromptLogprob | None]:
        """Each prompt token's log-probability given the tokens before it, with the ``top`` most
        likely tokens there (None for the first token), from one forward pass of the model beside
        the continuous-batching thread, as the seeded path runs ``generate``."""
        return await asyncio.to_thread(self._score_prompt, list(prompt_ids), top)

    def _score_prompt(self, ids: list[int], top: int) -> list[PromptLogprob | None]:
        """The prompt runs through the model ``_SCORE_CHUNK`` tokens at a time with a KV cache, so
        no more than that many rows of vocabulary-wide logits exist at once (a 32k-token prompt
        at a 150k vocabulary would be 19 GB of float32 in one pass)."""
        import torch

        out: list[PromptLogprob | None] = [None]
        with self._score_lock, torch.inference_mode():
            input_ids = torch.tensor([ids], device=self.model.device)
            past, carried = None, None  # carried: the logits row that predicts this chunk's first token
            for start in range(0, len(ids), _SCORE_CHUNK):
                chunk = input_ids[:, start:start + _SCORE_CHUNK]
                step = self.model(input_ids=chunk, cache=past, use_cache=True,
                                  attention_mask=torch.ones((1, start + chunk.shape[1]), dtype=torch.long,
                                                            device=chunk.device))
                past = step.cache
                logits = step.logits[0].float()
                rows = logits[:-1] if carried is None else torch.cat([carried, logits[:-1]])
                carried = logits[-1:]
                targets = input_ids[0, start + 1 - (start > 0):start + chunk.shape[1], None]
                rows = torch.log_softmax(rows, -1)
                chosen = rows.gather(1, targets)[:, 0].cpu().tolist()
                if top:
                    best = rows.topk(min(top, rows.shape[-1]), -1)
                    tops = [list(zip(i, v)) for i, v in zip(best.indices.cpu().tolist(), best.values.cpu().tolist())]
                else:
                    tops = [[] for _ in chosen]
                out.extend(zip(chosen, tops))
        return out

    def _vocab(self) -> int:
        return int(getattr(self.model.config.get_text_config(), "vocab_size", 32000))

    # ---- generation --------------------------------------------------------------------------
    async def new_guide(self, params: SamplingParams, prompt_ids: list[int] | tuple[int, ...] = ()):
        """The per-request grammar/bias/logprob state, or None for a plain request."""
        if not params.guided:
            return None
        from .guided import Guide

        matcher = None
        if params.grammar is not None:
            matcher = await asyncio.to_thread(self._matcher, params.grammar)
        if any(not 0 <= t < self.vocab_size for t, _ in params.logit_bias):
            raise InvalidRequest(f"logit_bias token ids must be in [0, {self.vocab_size})", param="logit_bias")
        return Guide(matcher, params.logit_bias, params.logprobs, self.vocab_size, self.eos_ids,
                     params.presence_penalty, params.frequency_penalty, params.repetition_penalty, prompt_ids)

    def _matcher(self, grammar: str):
        import llguidance
        import llguidance.hf

        if self._ll_tokenizer is None:
            self._ll_tokenizer = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=self.vocab_size,
                                                              eos_token=self.eos_ids or None)
        from .guided import new_matcher

        return new_matcher(self._ll_tokenizer, grammar)

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[EngineStep]:
        guide = await self.new_guide(params, prompt_ids)
        if params.seed is not None and not params.greedy:
            async for step in self._generate_seeded(prompt_ids, params, guide):
                yield step
            return
        guides = self.guides
        if guide is not None and guides is None:
            raise InvalidRequest("this engine cannot constrain its output", param="response_format")
        manager = self.manager
        if engine_failed(manager):
            raise Overloaded("the generation engine of this model failed; it will be reloaded",
                             headers={"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue = asyncio.Queue()
        rid = f"req-{next(_ids)}"
        gate = self.burst
        await gate.enter()  # (cancelled while a burst gathers: nothing registered, nothing added)
        manager.register_result_handler(rid, outputs.put_nowait)
        temperature = GREEDY_TEMPERATURE if params.greedy else float(params.temperature)
        # A grammar ends with EOS, so a constrained request always stops at it.
        eos = -1 if params.ignore_eos and params.grammar is None else (self.eos_ids or -1)
        extra: dict[str, int] = {}
        handle = 0
        if guide is not None and guides is not None:
            handle = guides.add(guide)
            extra["guide"] = handle
        added = None
        try:
            added = manager.add_request(list(prompt_ids), request_id=rid, max_new_tokens=params.max_new_tokens,
                                        streaming=True, eos_token_id=eos, temperature=temperature,
                                        top_p=float(params.top_p), top_k=int(params.top_k or self._vocab()), **extra)
        finally:
            if added is None:  # refused or failed: it does not count as running
                gate.leave()
                if handle and guides is not None:
                    guides.remove(handle)
        if added is None:
            raise Overloaded("the generation engine is not accepting requests", headers={"Retry-After": "1"})
        seen = 0
        finished = False
        last = 0.0
        try:
            while True:
                out = await outputs.get()
                if out.error is not None:
                    finished = True
                    raise GenerationFailed("generation failed inside the engine")
                tokens = out.generated_tokens
                new = list(tokens[seen:])
                if seen:  # the gap since this stream's previous token: one decode step
                    gate.observe_step(time.perf_counter() - last)
                last = time.perf_counter()
                seen = len(tokens)
                logprobs = guide.logprobs_for(new) if guide is not None and guide.top is not None else None
                if out.is_finished():
                    finished = True
                    reason = "length" if seen >= params.max_new_tokens else "eos"
                    yield EngineStep(new, finished=True, finish_reason=reason, logprobs=logprobs)
                    return
                if new:
                    yield EngineStep(new, logprobs=logprobs)
        finally:
            gate.leave()
            if handle and guides is not None:
                guides.remove(handle)
            if not finished:
                # The client went away or a stop sequence matched: free the KV blocks now.
                manager.cancel_request(rid)
                loop.call_later(5.0, self._forget, rid)

    def _forget(self, rid: str) -> None:
        """CB delivers nothing for a cancelled request, so its handler would stay registered."""
        if self.manager is not None:  # (closed meanwhile)
            forget_request(self.manager, rid)

    async def _generate_seeded(self, prompt_ids, params, guide=None, model_inputs=None) -> AsyncIterator[EngineStep]:
        from .seeded import run_seeded

        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def work():
            with self._seeded_lock:
                return run_seeded(self, prompt_ids, params, cancel,
                                  lambda ids: loop.call_soon_threadsafe(outputs.put_nowait, ids), guide,
                                  model_inputs)

        task = loop.run_in_executor(None, work)
        total = 0
        try:
            while True:
                getter = asyncio.ensure_future(outputs.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    ids = getter.result()
                    total += len(ids)
                    yield EngineStep(ids, logprobs=_logprobs(guide, ids))
                    continue
                getter.cancel()
                while not outputs.empty():
                    ids = outputs.get_nowait()
                    total += len(ids)
                    yield EngineStep(ids, logprobs=_logprobs(guide, ids))
                reason = task.result()
                yield EngineStep([], finished=True, finish_reason=reason)
                return
        finally:
            cancel.set()

    def footprint_bytes(self) -> int:
        return self._footprint

    def close(self) -> None:
        try:
            self.manager.stop(block=True, timeout=10)
            self.manager.destroy()
        finally:
            self.model = None
            self.manager = None


def _logprobs(guide, ids):
    return guide.logprobs_for(ids) if guide is not None and guide.top is not None else None


def cb_manager(model, tokenizer, settings, device: str, *, fast_sampling: bool = True):
    """The engine's CB manager for a loaded model, not started, and the registry of its guide
    processor (None when this transformers cannot take it). ``fast_sampling=False`` leaves
    transformers' own per-step sampling in place (``bench/inference/sampling_ab.py`` compares)."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    from .guided import GuideRegistry
    from .guided import install as install_guides

    text_config = model.config.get_text_config()
    num_blocks = _model_cache_blocks(model, settings, device)
    vocab = int(getattr(text_config, "vocab_size", 32000))
    # Non-default temperature/top_p/top_k make CB create the processors; every request then
    # overrides them with its own values.
    gen_config = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9, top_k=vocab,
                                  max_new_tokens=settings.default_max_tokens,
                                  eos_token_id=_eos_ids(model, tokenizer) or -1,
                                  pad_token_id=tokenizer.pad_token_id)
    # Synchronous batching: the guide processor pairs each step's prepared requests with the
    # logits that follow (engines/guided.py). (transformers 5.24 refuses asynchronous batching on a
    # CPU anyway: "Async batching requires a device type in ('cuda', 'xpu')".)
    cb_config = ContinuousBatchingConfig(per_request_processors=True, page_size=_PAGE_SIZE,
                                         num_blocks=num_blocks, max_batch_tokens=step_tokens(settings, device),
                                         allow_block_sharing=True, use_async_batching=False)
    fast = fast_sampling and device == "cpu"
    if fast:
        from .cb_processors import install

        install()  # lazy temperature/top-k/top-p for the managers created from now on
    manager = model.init_continuous_batching(generation_config=gen_config, continuous_batching_config=cb_config)
    if fast:
        from .cb_processors import attach

        attach(manager)  # a greedy step costs one argmax; a sampled one skips multinomial
    guides = GuideRegistry()
    return manager, guides if install_guides(manager, guides) else None


def cache_blocks(settings, device: str, kv_bytes_per_token: int, dtype_bytes: int) -> int:
    """KV-cache pages for one model: as many as ``KV_CACHE_BYTES`` holds, but no more than make the
    attention mask as large as that (and never fewer than ``_MIN_CACHE_TOKENS`` for that reason).
    transformers' batching allocates the mask (on a CPU: SDPA or eager attention) with one row per
    step token and one column per cache token, in the model's dtype: a model with small KV rows (the
    dev Llama: 512 bytes a token) got half a million cache tokens from 256 MiB, and a 4 GiB mask."""
    by_kv = settings.kv_cache_bytes // (kv_bytes_per_token * _PAGE_SIZE)
    by_mask = max(settings.kv_cache_bytes // (step_tokens(settings, device) * dtype_bytes), _MIN_CACHE_TOKENS)
    return max(8, min(by_kv, by_mask // _PAGE_SIZE))


def _model_cache_blocks(model, settings, device: str) -> int:
    kv_bytes_per_token = _kv_bytes_per_token(model.config.get_text_config(), model.dtype)
    return cache_blocks(settings, device, kv_bytes_per_token, model.dtype.itemsize)


def _attention_mask_bytes(model, settings, device: str) -> int:
    """The batch's attention mask that ``cache_blocks`` bounds, counted in the model's footprint."""
    cache_tokens = _model_cache_blocks(model, settings, device) * _PAGE_SIZE
    return step_tokens(settings, device) * cache_tokens * model.dtype.itemsize


def step_tokens(settings, device: str) -> int:
    """Tokens per continuous-batching step (``STEP_TOKENS``; 0 = by device)."""
    if settings.step_tokens > 0:
        return int(settings.step_tokens)
    return 2048


def gguf_kwargs(resolved: ResolvedModel) -> dict[str, str]:
    """transformers' GGUF loader for a GGUF file (gguf.py chose it): dequantised weights, the
    tokenizer and chat template from its metadata."""
    return {"gguf_file": resolved.variant} if resolved.variant is not None else {}


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id if model.generation_config is not None else None
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return []
    return list(ids) if isinstance(ids, (list, tuple)) else [int(ids)]


def _kv_bytes_per_token(config, dtype) -> int:
    import torch

    layers = int(getattr(config, "num_hidden_layers", 1))
    heads = int(getattr(config, "num_attention_heads", 1))
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return 2 * layers * kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def _cast_factor(path: Path, dtype) -> float:
    """Weights stored in bf16 and loaded in fp32 take twice their file size."""
    import json

    import torch

    try:
        stored = json.loads((path / "config.json").read_text()).get("dtype") or \
            json.loads((path / "config.json").read_text()).get("torch_dtype") or "float32"
    except (OSError, ValueError):
        stored = "float32"
    stored_size = 2 if stored in ("bfloat16", "float16") else 4
    return torch.tensor([], dtype=dtype).element_size() / stored_size
