"""The engine interface: what the API layer needs from whatever runs a model.

Two families, because the two kinds of work batch differently (spec §3.1-3.2):
- ``TextGenerator``: causal LMs, one token at a time, continuous batching inside the engine.
- ``Encoder``: one forward pass per input (embeddings, classification, fill-mask, NER), batched
  by our micro-batcher in front of the engine.
An engine that speaks OpenAI itself (vLLM in its own process) additionally sets
``proxies_openai = True`` and offers ``proxy_openai``; the routes then pass bytes through instead of
re-framing them, which is where most hub-over-engine overhead would come from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# The work a text generator's ``run`` does besides generating (a worker's ``Run`` message): the
# log-probability of each prompt token under the model (TGI's ``decoder_input_details``).
PROMPT_LOGPROBS = "prompt-logprobs"
# One prompt token's (logprob, [(token id, logprob) of the most likely tokens there]).
PromptLogprob = tuple[float, list[tuple[int, float]]]


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    grammar: str | None = None  # an llguidance grammar the output must match (constraints.py)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    logprobs: int | None = None  # None: off; k >= 0: the chosen token's logprob and the top k
    # OpenAI's penalties over the tokens generated so far (as vLLM): each logit minus
    # frequency * count + presence * (count > 0).
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # TGI's (transformers') repetition penalty over the prompt and the tokens generated so far:
    # a positive logit divided by it, a negative one multiplied. 1 = off.
    repetition_penalty: float = 1.0

    @property
    def guided(self) -> bool:
        """Needs per-token work beyond sampling (grammar mask, bias, penalties, logprob capture)."""
        return self.grammar is not None or bool(self.logit_bias) or self.logprobs is not None \
            or bool(self.presence_penalty) or bool(self.frequency_penalty) or self.repetition_penalty != 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0 or self.top_k == 1


@dataclass
class EngineStep:
    """What a generator reports after each scheduling step for one sequence."""

    new_token_ids: list[int]
    finished: bool = False
    finish_reason: str | None = None  # "eos" | "length"
    error: str | None = None
    # One (logprob, [(token id, logprob), ...top]) per new token when the request asked for logprobs.
    logprobs: list[tuple[float, list[tuple[int, float]]]] | None = None


@runtime_checkable
class TextGenerator(Protocol):
    task: str  # "text-generation"
    engine_name: str
    context_length: int
    has_chat_template: bool
    proxies_openai: bool

    def tokenize(self, text: str) -> list[int]: ...
    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str: ...
    def new_decoder(self) -> IncrementalDecoder: ...
    def token_text(self, token_id: int) -> tuple[str, bool]: ...  # (text, is_special)
    def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[EngineStep]: ...
    def footprint_bytes(self) -> int: ...
    def close(self) -> None: ...


class IncrementalDecoder(Protocol):
    def step(self, token_id: int) -> str: ...


@dataclass
class EncodeResult:
    vectors: list  # one numpy row per input
    token_counts: list[int] = field(default_factory=list)


@runtime_checkable
class Encoder(Protocol):
    task: str  # pipeline tag it was loaded for
    engine_name: str
    max_input_tokens: int
    proxies_openai: bool

    def count_tokens(self, texts: list[str]) -> list[int]: ...
    async def run(self, task: str, inputs: list, params: dict) -> list: ...
    def footprint_bytes(self) -> int: ...
    def close(self) -> None: ...
