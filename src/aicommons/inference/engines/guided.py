"""Grammar-constrained decoding, ``logit_bias``, penalties and logprob capture as a logits processor.

One ``Guide`` per request holds an llguidance matcher (the grammar), the request's logit bias, its
presence/frequency penalties (with the counts of the tokens it generated), its repetition penalty
(with the tokens of its prompt and output) and whether it wants logprobs. ``GuideProcessor`` is a per-request processor of transformers'
continuous batching: CB hands it, before each forward pass, the requests that will get a new
token (``prepare_tensor_args``) and then the batch's logits in that order (``__call__``). In the
first call each guided request's matcher consumes the tokens sampled since the last step and
computes the mask of allowed next tokens (llguidance, on CB's thread, tens of microseconds); in the
second, only the rows of guided requests are touched: logprobs are read from the raw logits, the
bias is added, disallowed tokens get -inf. A batch without a guided request costs one Python
check. The same ``Guide`` drives ``model.generate`` for seeded requests (``ClassicGuide``).

Logprobs are those of the model's own distribution (raw logits, before bias, grammar mask and
temperature), which is what vLLM returns by default.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_handles = itertools.count(1)


class Guide:
    def __init__(self, matcher, bias: tuple[tuple[int, float], ...], logprobs: int | None, vocab: int,
                 eos_ids: list[int], presence: float = 0.0, frequency: float = 0.0, repetition: float = 1.0,
                 prompt_ids: list[int] | tuple[int, ...] = ()):
        import torch

        self.matcher = matcher
        self.vocab = vocab
        self.eos_ids = [e for e in eos_ids if 0 <= e < vocab]
        self.bias_ids = torch.tensor([i for i, _ in bias], dtype=torch.long) if bias else None
        self.bias_values = torch.tensor([v for _, v in bias], dtype=torch.float32) if bias else None
        self.top = logprobs
        self.presence, self.frequency = presence, frequency
        # How often each token was generated, when a penalty needs it (float32 [vocab]).
        self.counts = torch.zeros(vocab, dtype=torch.float32) if presence or frequency else None
        # The tokens of the prompt and of the output so far, when the repetition penalty needs them.
        self.repetition = repetition
        self.present: torch.Tensor | None = None
        if repetition != 1.0:
            self.present = torch.zeros(vocab, dtype=torch.bool)
            ids = [t for t in prompt_ids if 0 <= t < vocab]
            if ids:
                self.present[torch.tensor(ids, dtype=torch.long)] = True
        self.seen = 0  # generated tokens the matcher (and the counts) have consumed
        self.allowed: torch.Tensor | None = None  # bool [vocab] for the next token, None = all
        self.records: deque = deque()  # one log-softmax row per sampled token, read by the engine
        self.failed = False

    # ---- on CB's thread, before the forward pass -------------------------------------------
    def advance(self, generated: list[int]) -> None:
        """Feed the matcher (and the penalties' counts) the tokens sampled since last time and
        compute the next mask."""
        new, self.seen = generated[self.seen:], len(generated)
        for token in new:
            if 0 <= int(token) < self.vocab:
                if self.counts is not None:
                    self.counts[int(token)] += 1
                if self.present is not None:
                    self.present[int(token)] = True
        if self.matcher is None:
            return
        import numpy as np
        import torch

        for token in new:
            if not self.failed and not self.matcher.consume_token(int(token)):
                self.failed = True  # cannot happen with the mask applied; end the sequence cleanly
        if self.failed or self.matcher.is_error():
            bits = np.zeros(self.vocab, dtype=bool)
            bits[self.eos_ids] = True
        else:
            raw = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
            bits = np.unpackbits(raw, bitorder="little")[: self.vocab].astype(bool)
            if len(bits) < self.vocab:
                bits = np.concatenate([bits, np.zeros(self.vocab - len(bits), dtype=bool)])
            if not bits.any():  # grammar finished and knows no EOS: allow ours
                bits[self.eos_ids] = True
        self.allowed = torch.from_numpy(bits)

    # ---- on the engine's side, as tokens arrive ------------------------------------------------
    def logprobs_for(self, tokens: list[int]) -> list[tuple[float, list[tuple[int, float]]]]:
        import torch

        out: list[tuple[float, list[tuple[int, float]]]] = []
        for token in tokens:
            row = self.records.popleft() if self.records else None
            if row is None:
                out.append((0.0, []))
                continue
            top = []
            if self.top:
                values, ids = torch.topk(row, min(self.top, row.numel()))
                top = [(int(i), float(v)) for i, v in zip(ids.tolist(), values.tolist())]
            out.append((float(row[token]), top))
        return out


class GuideRegistry:
    """Handles (small ints, as CB's per-request processor arguments are int32) to live guides."""

    def __init__(self):
        self._guides: dict[int, Guide] = {}
        self._lock = threading.Lock()

    def add(self, guide: Guide) -> int:
        handle = next(_handles) % (2 ** 31 - 1) or next(_handles)
        with self._lock:
            self._guides[handle] = guide
        return handle

    def get(self, handle: int) -> Guide | None:
        return self._guides.get(handle)

    def remove(self, handle: int) -> None:
        with self._lock:
            self._guides.pop(handle, None)


def make_cb_processor(registry: GuideRegistry):
    """The CB processor class is built on first use so importing this module needs no transformers."""
    import torch

    from ._transformers_private import cb_logits_processor_base

    class GuideProcessor(cb_logits_processor_base()):  # type: ignore[misc]
        supported_kwargs: dict[str, type] = {"guide": int}
        ignored_kwargs: tuple[str, ...] = ()

        def __init__(self):
            self._rows: list[tuple[int, Guide]] = []

        def fill_defaults(self, int32_tensor) -> None:
            int32_tensor.fill_(0)

        def prepare_tensor_args(self, requests_with_new_token) -> torch.Tensor:
            rows, handles = [], []
            for i, request in enumerate(requests_with_new_token):
                handle = request.state.logit_processor_kwargs.get("guide", 0)
                handles.append(handle)
                guide = registry.get(handle) if handle else None
                if guide is not None:
                    guide.advance(request.state.generated_tokens)
                    rows.append((i, guide))
            self._rows = rows  # read by the __call__ that follows (synchronous batching)
            return torch.tensor(handles, dtype=torch.int32)

        def __call__(self, scores, tensor_arg):
            rows, self._rows = self._rows, []
            rows = [(i, g) for i, g in rows if i < scores.size(0)]
            if not rows:
                return scores
            return apply_rows(scores, rows)

    return GuideProcessor()


def apply_rows(scores, rows: list[tuple[int, Guide]]):
    """All guided rows of a step at once (a few tensor ops per step, not per row): logprobs from
    the raw logits, then biases and penalties, then one masked fill for every grammar mask. In place: CB's
    logits are a fresh float32 tensor that nothing else reads."""
    import torch

    wanting = [(i, g) for i, g in rows if g.top is not None]
    if wanting:
        logprobs = torch.log_softmax(scores[[i for i, _ in wanting]], dim=-1).cpu()
        for k, (_, guide) in enumerate(wanting):
            guide.records.append(logprobs[k])
    for i, guide in rows:
        if guide.bias_ids is not None and guide.bias_values is not None:
            scores[i].index_add_(0, guide.bias_ids.to(scores.device), guide.bias_values.to(scores.device))
        if guide.counts is not None:
            counts = guide.counts.to(scores.device)
            scores[i] -= guide.frequency * counts + guide.presence * (counts > 0).to(counts.dtype)
        if guide.present is not None:
            present, row = guide.present.to(scores.device), scores[i]
            penalised = torch.where(row < 0, row * guide.repetition, row / guide.repetition)
            scores[i] = torch.where(present, penalised, row)
    masked = [(i, a) for i, g in rows if (a := g.allowed) is not None]
    if masked:
        index = torch.tensor([i for i, _ in masked], device=scores.device)
        allowed = torch.stack([a for _, a in masked]).to(scores.device)
        scores[index] = scores[index].masked_fill(~allowed, float("-inf"))
    return scores


def install(manager, registry: GuideRegistry) -> bool:
    """Put the guide processor first in a not-yet-started CB manager's processor list."""
    processors = getattr(manager, "logit_processor", None)
    if processors is None or not hasattr(processors, "logits_processor"):
        return False
    processors.logits_processor.insert(0, make_cb_processor(registry))
    processors.tensors_required += 1
    processors.supported_keys["guide"] = int
    processors.do_processing = True
    return True


def classic_processor(guide: Guide, prompt_len: int):
    """The same guide as a ``LogitsProcessor`` for ``model.generate`` (the seeded path)."""
    from transformers import LogitsProcessor

    class ClassicGuide(LogitsProcessor):
        def __call__(self, input_ids, scores):
            guide.advance(input_ids[0, prompt_len:].tolist())
            return apply_rows(scores.float().clone(), [(0, guide)])

    return ClassicGuide()


def new_matcher(ll_tokenizer, grammar: str):
    """An llguidance matcher for ``grammar``, or the API's error when the grammar cannot be used
    (the one place both engines, transformers and llama.cpp, build their matchers)."""
    import llguidance

    from ..errors import InvalidRequest

    matcher = llguidance.LLMatcher(ll_tokenizer, grammar, log_level=0)
    if matcher.is_error():
        raise InvalidRequest(f"the output grammar cannot be used: {matcher.get_error()[:300]}",
                             param="response_format")
    return matcher
