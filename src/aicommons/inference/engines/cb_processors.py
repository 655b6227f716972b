"""Per-request sampling on transformers' continuous batching (CB) that costs what greedy costs when
no request in a step samples.

The engine runs one CB manager in sampling mode with per-request temperature, top-k and top-p
processors (a greedy request is sent with ``GREEDY_TEMPERATURE``). Left to transformers, every step
then divides the whole batch's logits by the temperatures, sorts the vocabulary for top-k and again
for top-p, takes a softmax and calls ``torch.multinomial``, even when every row is greedy. On CPU at
SmolLM2-135M's size (8 rows of 49,152 logits, one thread) the multinomial alone takes 10-13 ms
(torch draws one exponential per vocabulary entry), the softmax and the division about 0.9 ms,
where ``transformers serve``, greedy, takes one 0.4 ms argmax: about a tenth of a ~75 ms decode
step (``bench/inference/sampling_ab.py``).

Here, per manager (``attach``):

- the temperature processor notes whether every row of the step is greedy; if so it, top-k and
  top-p return the logits untouched and the sampler takes the argmax, which is what the one-hot
  softmax of logits / 1e-5 gave (any top-k or top-p keeps the most likely token);
- otherwise each processor runs transformers' own computation, except that top-k and top-p are
  skipped when no row restricts them (``top_k`` = vocabulary size, ``top_p`` = 1.0: exactly what
  the full computation returns then), and the sampler draws by inverse CDF (one uniform per row and
  a cumulative sum: 0.7 ms where multinomial takes 13) from the same distribution.

CPU only: the checks read the batch's parameters, which on a GPU would be a device sync each step.
"""

from __future__ import annotations

import threading
from typing import Any

GREEDY_TEMPERATURE = 1e-5  # logits / 1e-5 turns any real gap between the top two tokens into a one-hot

_installed = False
_install_lock = threading.Lock()
_lazy_classes: dict[str, type] = {}  # "temperature", "top_k", "top_p" -> the registered subclass


class StepState:
    """What the processors of one manager found about the step being sampled (CB's thread only)."""

    def __init__(self) -> None:
        self.greedy = False  # every row of this step is greedy: the sampler takes the argmax


def install() -> bool:
    """Register the lazy processors in CB's table (idempotent), so managers created afterwards use
    them. False when this transformers lacks the hook."""
    global _installed
    with _install_lock:
        if _installed:
            return True
        return _register()


def _register() -> bool:
    global _installed
    try:
        import torch
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
    except ImportError:
        return False
    from ._transformers_private import cb_processor_table

    found = cb_processor_table()
    if found is None:
        return False
    table, base_t, base_k, base_p = found

    class LazyTemperature(base_t):  # type: ignore[valid-type,misc]  # CB's class, found at run time
        step: StepState | None = None  # set by attach(), with the sampler that reads it

        def __call__(self, scores, tensor_arg):
            step = self.step
            if step is not None:
                temperatures = tensor_arg[: scores.size(0)].view(dtype=torch.float32)
                step.greedy = bool((temperatures <= GREEDY_TEMPERATURE).all())
                if step.greedy:
                    return scores  # the argmax that follows does not depend on the scale
            return super().__call__(scores, tensor_arg)

    class LazyTopK(base_k):  # type: ignore[valid-type,misc]
        step: StepState | None = None

        def __call__(self, scores, tensor_arg):
            if self.step is not None and self.step.greedy:
                return scores  # the most likely token is in every top-k
            if bool((tensor_arg[: scores.size(0)] >= scores.size(-1)).all()):
                return scores  # every row keeps all tokens
            return super().__call__(scores, tensor_arg)

    class LazyTopP(base_p):  # type: ignore[valid-type,misc]
        step: StepState | None = None

        def __call__(self, scores, tensor_arg):
            if self.step is not None and self.step.greedy:
                return scores  # the most likely token is in every nucleus
            if bool((tensor_arg[: scores.size(0)].view(dtype=torch.float32) >= 1.0).all()):
                return scores  # every row keeps the whole probability mass
            return super().__call__(scores, tensor_arg)

    table[TemperatureLogitsWarper] = LazyTemperature
    table[TopKLogitsWarper] = LazyTopK
    table[TopPLogitsWarper] = LazyTopP
    _lazy_classes.update(temperature=LazyTemperature, top_k=LazyTopK, top_p=LazyTopP)
    _installed = True
    return True


def sample_rows(scores, greedy: bool):
    """Next token of each row of ``scores`` ([rows, vocab], processed logits): the argmax when every
    row is greedy, else one draw per row from softmax(scores) by inverse CDF."""
    import torch

    if greedy:
        return scores.argmax(dim=-1)
    probs = torch.softmax(scores, dim=-1)
    cdf = probs.cumsum(dim=-1)
    # right=True: the first token whose cumulative mass exceeds u, so a token of probability 0
    # (masked by top-k/top-p or a grammar) is never drawn; u < total, bar float rounding.
    u = torch.rand((scores.size(0), 1), dtype=cdf.dtype, device=cdf.device) * cdf[:, -1:]
    drawn = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    return torch.where(drawn < scores.size(-1), drawn, probs.argmax(dim=-1))


def attach(manager) -> bool:
    """Give a not-yet-started manager's lazy processors a shared step state and its sampler the
    fast paths above. False (and nothing changed) when the manager has no lazy temperature
    processor (``install()`` not called before it was created), does not sample (``do_sample``
    off) or returns CB's own logprobs, or this transformers lacks the hook."""
    from ._transformers_private import cb_logit_processors, cb_samples_without_logprobs, replace_sampler

    lazy = [p for p in cb_logit_processors(manager) if type(p) in _lazy_classes.values()]
    if not any(type(p) is _lazy_classes["temperature"] for p in lazy) or not cb_samples_without_logprobs(manager):
        return False
    step = StepState()

    def sampler(runner: Any, original, scores, output_ids) -> None:
        greedy, step.greedy = step.greedy, False  # never carried into the next step
        tokens = sample_rows(scores[0], greedy)
        output_ids[0, : tokens.size(0)].copy_(tokens)

    if not replace_sampler(manager, sampler):
        return False
    for processor in lazy:  # only now: a greedy step skips the division only if the argmax follows
        processor.step = step
    return True
