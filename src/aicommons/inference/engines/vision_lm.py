"""Vision-language chat (issue 17): image-text-to-text models (LLaVA, Idefics3/SmolVLM, ... any model
``AutoModelForImageTextToText`` builds, with its ``AutoProcessor``) behind the chat routes.

The hub's side holds the processor: it renders the chat template (sandboxed, as for every model),
then the processor expands each image placeholder into the model's image tokens and turns the
images into pixel tensors, so the prompt's length is known, counted and admitted like any other.
The model runs ``generate`` with those tensors on a side thread (in the worker process by
default), one request at a time per model: transformers' continuous batching takes token ids only.
Sampling, seeds, grammars (tools, ``response_format``), ``logit_bias`` and logprobs go through the
same per-request processors as the seeded text path (``seeded.py``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..engine import EngineStep, SamplingParams
from ..errors import InvalidRequest
from ..runtime import placement
from ..source import ResolvedModel
from ..tasks import estimate_weight_bytes
from .transformers_lm import TransformersLM


class VisionPrompts:
    """The processor's half: prompt text + decoded images -> (token ids, model inputs)."""

    accepts_images = True
    processor: Any

    def _init_processor(self, processor) -> None:
        self.processor = processor
        self._prep_lock = threading.Lock()

    def prepare(self, prompt: str, images: list) -> tuple[list[int], dict]:
        """On a worker thread. -> the prompt's token ids with the image tokens expanded, and the
        extra model inputs (pixel values, masks, sizes) as numpy arrays, which cross to a worker
        process as plain data."""
        with self._prep_lock:
            try:
                kwargs = {"images": images} if images else {}
                out = self.processor(text=[prompt], return_tensors="pt", add_special_tokens=False, **kwargs)
            except (ValueError, TypeError) as exc:  # e.g. a template that drops images it was given
                raise InvalidRequest(f"the model's processor refused the input: {str(exc)[:200]}",
                                     param="messages") from None
        ids = out.pop("input_ids")[0].tolist()
        out.pop("attention_mask", None)
        return ids, {k: v.numpy() for k, v in out.items() if hasattr(v, "numpy")}

    def with_media(self, media: dict) -> _WithMedia:
        return _WithMedia(self, media)


class _WithMedia:
    """One request's view of a vision engine: generate() carries that request's image inputs."""

    def __init__(self, engine, media: dict):
        self._engine = engine
        self._media = media

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[EngineStep]:
        return self._engine.generate(prompt_ids, params, media=self._media)


class VisionLM(VisionPrompts, TransformersLM):
    """In-process engine: generate() with pixel inputs on a side thread, one request at a time."""

    engine_name = "transformers-vlm"

    @classmethod
    def load(cls, resolved: ResolvedModel, settings) -> VisionLM:
        from transformers import AutoModelForImageTextToText

        device, dtype = placement(settings)
        path = Path(resolved.local_dir)
        processor = load_processor(path)
        model: Any = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
        model = model.to(device).eval()
        footprint = int(estimate_weight_bytes(path) * 1.1) or 1
        engine = cls(model, processor.tokenizer, None, footprint, device)
        engine._init_processor(processor)
        return engine

    async def generate(self, prompt_ids: list[int], params: SamplingParams,
                       media: dict | None = None) -> AsyncIterator[EngineStep]:
        guide = await self.new_guide(params, prompt_ids)
        inputs = _tensors(media or {}, self.model)
        async for step in self._generate_seeded(prompt_ids, params, guide, inputs):
            yield step

    def close(self) -> None:
        self.model = None


def load_processor(path: Path):
    """The model's processor, with the chat template the repo ships (the processor's, else the
    tokenizer's) on its tokenizer, where ``LMText`` reads it."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    template = getattr(processor, "chat_template", None)
    if template and not getattr(processor.tokenizer, "chat_template", None):
        processor.tokenizer.chat_template = template
    return processor


def _tensors(media: dict, model) -> dict:
    import torch

    dtype = next(model.parameters()).dtype
    out = {}
    for key, value in media.items():
        tensor = torch.from_numpy(value).to(model.device)
        out[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return out
