"""Every use of transformers internals (beyond its documented API), in one module.

transformers' continuous batching (CB) is young and its internals move between releases, so what
the engines use of them is reached through here only, and ``tests/unit/test_private_internals.py``
checks that the installed transformers still has each of them (naming the version when one is gone):

- the per-request logits-processor table of CB and its temperature / top-k / top-p classes, which
  ``cb_processors.py`` replaces with lazy subclasses, a manager's processor list, and its model
  runner's ``_sample`` (replaced per manager, through the manager's ``_create_batch_processor``);
- a CB manager's ``background_thread_status.fatal_error`` (the generation thread died);
- a CB manager's ``output_router`` (its lock, result handlers and fallback queue), to forget a
  cancelled request whose handler CB would otherwise keep forever.

Imported lazily (only when a model is loaded): this module does not import transformers at import time.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

TESTED_VERSIONS = ("5.24",)  # the transformers releases these uses were checked against

# (module, name) of each internal name we import.
INTERNAL_NAMES = (
    ("transformers.generation.continuous_batching.cb_logits_processors", "CLASSIC_TO_CB_PROCESSORS_MAP"),
    ("transformers.generation.continuous_batching.cb_logits_processors", "ContinuousBatchingTemperatureLogitsWarper"),
    ("transformers.generation.continuous_batching.cb_logits_processors", "ContinuousBatchingTopKLogitsWarper"),
    ("transformers.generation.continuous_batching.cb_logits_processors", "ContinuousBatchingTopPLogitsWarper"),
    ("transformers.generation.continuous_batching.cb_logits_processors", "ContinuousBatchingLogitsProcessor"),
    ("transformers.generation.continuous_batching.continuous_api", "OutputRouter"),
    ("transformers.generation.continuous_batching.continuous_api", "BackgroundThreadStatus"),
    ("transformers.generation.continuous_batching.model_runner", "ModelRunner"),
)


def cb_processor_table() -> tuple[dict[type, type], type, type, type] | None:
    """(CB's classic-to-CB processor table, its temperature, top-k and top-p classes), or None when
    this transformers has no such table."""
    try:
        from transformers.generation.continuous_batching import cb_logits_processors as cb
    except ImportError:
        return None
    table = getattr(cb, "CLASSIC_TO_CB_PROCESSORS_MAP", None)
    base_t = getattr(cb, "ContinuousBatchingTemperatureLogitsWarper", None)
    base_k = getattr(cb, "ContinuousBatchingTopKLogitsWarper", None)
    base_p = getattr(cb, "ContinuousBatchingTopPLogitsWarper", None)
    if not isinstance(table, dict) or base_t is None or base_k is None or base_p is None:
        return None
    return table, base_t, base_k, base_p


def cb_logit_processors(manager: Any) -> list:
    """The processors a CB manager applies to each step's logits, in order."""
    processors = getattr(manager, "logit_processor", None)
    return list(getattr(processors, "logits_processor", None) or [])


def cb_samples_without_logprobs(manager: Any) -> bool:
    """Whether a CB manager samples (``do_sample``) and leaves logprobs to us (CB's own
    ``return_logprobs`` off): the case a replaced sampler handles."""
    sampling = bool(getattr(manager.generation_config, "do_sample", True))
    return sampling and not manager.continuous_batching_config.return_logprobs


def replace_sampler(manager: Any, sampler) -> bool:
    """Make a not-yet-started CB manager sample with ``sampler(runner, original, scores, output_ids)``
    instead of its model runner's ``_sample(scores, output_ids)`` (``original``). The runner is
    built on CB's thread when the manager starts, so this wraps the manager's factory of it. False
    when this transformers builds it otherwise."""
    create = getattr(manager, "_create_batch_processor", None)
    if create is None or getattr(manager, "batch_processor", None) is not None:
        return False

    def create_with_sampler():
        processor = create()
        runner = processor.model_runner
        original = runner._sample
        runner._sample = lambda scores, output_ids: sampler(runner, original, scores, output_ids)
        return processor

    manager._create_batch_processor = create_with_sampler
    return True


def cb_logits_processor_base() -> type:
    """The base class of continuous batching's per-request logits processors (structured output
    plugs in there: engines/guided.py)."""
    from transformers.generation.continuous_batching.cb_logits_processors import ContinuousBatchingLogitsProcessor

    return ContinuousBatchingLogitsProcessor


def engine_failed(manager: Any) -> bool:
    """Whether a CB manager's generation thread stopped on an error."""
    return manager.background_thread_status.fatal_error is not None


def forget_request(manager: Any, request_id: str) -> None:
    """Drop a cancelled request's result handler, and the outputs that raced its removal (CB
    delivers nothing more for a cancelled request, so nobody would read them)."""
    router = manager.output_router
    with router._lock:
        router.result_handlers.pop(request_id, None)
    while not router.output_queue.empty():
        try:
            router.output_queue.get_nowait()
        except Exception:  # noqa: BLE001 - emptied by another thread meanwhile
            break


def missing_internals() -> list[str]:
    """What the installed transformers lacks of the internals above (empty when all is there)."""
    import importlib

    missing = []
    for module_name, name in INTERNAL_NAMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{module_name} (module)")
            continue
        if not hasattr(module, name):
            missing.append(f"{module_name}.{name}")
    if missing:
        return missing
    table, base_t, base_k, base_p = cb_processor_table() or ({}, None, None, None)
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    if any(table.get(c) is None for c in (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)):
        missing.append("CLASSIC_TO_CB_PROCESSORS_MAP entries for the temperature, top-k and top-p warpers")
    for cls in (base_t, base_k, base_p):
        params = list(inspect.signature(cls.__call__).parameters) if cls is not None else []
        if params[:3] != ["self", "scores", "tensor_arg"]:
            missing.append(f"{getattr(cls, '__name__', cls)}.__call__(self, scores, tensor_arg) (found {params})")
    from transformers.generation.continuous_batching import continuous_api as api

    router = api.OutputRouter()
    for attr in ("_lock", "result_handlers", "output_queue"):
        if not hasattr(router, attr):
            missing.append(f"OutputRouter.{attr}")
    if not hasattr(api.BackgroundThreadStatus(), "fatal_error"):
        missing.append("BackgroundThreadStatus.fatal_error")
    init = inspect.getsource(api.ContinuousBatchingManager.__init__)
    for attr in ("output_router", "background_thread_status", "logit_processor", "batch_processor",
                 "generation_config", "continuous_batching_config"):
        if not re.search(rf"self\.{attr}\s*[:=]", init):
            missing.append(f"ContinuousBatchingManager.{attr}")
    if not hasattr(api.ContinuousBatchingManager, "_create_batch_processor"):
        missing.append("ContinuousBatchingManager._create_batch_processor")
    if "self.model_runner = " not in inspect.getsource(api.ContinuousBatchProcessor.__init__):
        missing.append("ContinuousBatchProcessor.model_runner")
    from transformers.generation.continuous_batching.model_runner import ModelRunner

    sample = getattr(ModelRunner, "_sample", None)
    params = list(inspect.signature(sample).parameters) if sample is not None else []
    if params != ["self", "scores", "output_ids"]:
        missing.append(f"ModelRunner._sample(self, scores, output_ids) (found {params})")
    elif "self._sample(" not in inspect.getsource(ModelRunner._forward_process_and_sample):
        missing.append("ModelRunner._forward_process_and_sample calling self._sample")
    for attr in ("do_sample", "return_logprobs"):
        if f"self.{attr} =" not in inspect.getsource(ModelRunner.__init__):
            missing.append(f"ModelRunner.{attr}")
    return missing
