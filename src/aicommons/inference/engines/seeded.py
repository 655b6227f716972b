"""Reproducible sampling for requests that carry a ``seed``.

transformers' ``generate`` samples from the global RNG, which the continuous-batching thread also
draws from. So we ask ``generate`` for greedy decoding and put a last logits processor in front of
its argmax that samples with the request's own ``torch.Generator`` and masks every other token:
the engine stays transformers', only the random draw is ours.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

from ..engine import SamplingParams


def run_seeded(engine, prompt_ids: list[int], params: SamplingParams, cancel: threading.Event,
               emit: Callable[[list[int]], None], guide=None, model_inputs: dict | None = None) -> str:
    """``model_inputs``: extra tensors for ``generate`` (a vision-language model's pixel values);
    without a seed, one is drawn (vision-language models sample here, not in continuous batching)."""
    import torch
    from transformers import GenerationConfig, LogitsProcessor, StoppingCriteria
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper
    from transformers.generation.streamers import BaseStreamer

    seed = int(params.seed) if params.seed is not None else secrets.randbits(63)
    generator = torch.Generator(device="cpu").manual_seed(seed % (2 ** 63))
    warpers: list[LogitsProcessor] = []
    if params.top_k and params.top_k > 0:
        warpers.append(TopKLogitsWarper(top_k=params.top_k))
    if params.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=params.top_p))

    class SampleWithOwnGenerator(LogitsProcessor):
        def __call__(self, input_ids, scores):
            scores = scores.float() / max(params.temperature, 1e-5)
            for warp in warpers:
                scores = warp(input_ids, scores)
            probs = torch.softmax(scores, dim=-1).cpu()
            choice = torch.multinomial(probs, 1, generator=generator).to(scores.device)
            forced = torch.full_like(scores, float("-inf"))
            return forced.scatter_(1, choice, 0.0)

    class Emit(BaseStreamer):
        first = True

        def put(self, value):
            if self.first:  # generate() first hands the streamer the prompt
                self.first = False
                return
            emit([int(v) for v in value.reshape(-1).tolist()])

        def end(self):
            pass

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    eos = None if params.ignore_eos and params.grammar is None else (engine.eos_ids or None)
    config = GenerationConfig(do_sample=False, max_new_tokens=params.max_new_tokens, eos_token_id=eos,
                              pad_token_id=engine.tokenizer.pad_token_id or (engine.eos_ids or [0])[0])
    processors = [SampleWithOwnGenerator()]
    if guide is not None:
        from .guided import classic_processor

        processors.insert(0, classic_processor(guide, len(prompt_ids)))
    model = engine.model
    input_ids = torch.tensor([prompt_ids], device=model.device)
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             generation_config=config, logits_processor=processors,
                             stopping_criteria=[Cancelled()], streamer=Emit(), **(model_inputs or {}))
    produced = out.shape[1] - len(prompt_ids)
    return "length" if produced >= params.max_new_tokens else "eos"
