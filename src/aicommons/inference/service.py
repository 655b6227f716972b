"""InferenceService: resolves a model for a principal, loads it, admits the request, and hands the
route a ``Lease`` that holds all of that until the answer (or stream) is finished."""

from __future__ import annotations

import asyncio
import re
import time

from aicommons.errors import HubError, RepoNotFound

from . import gguf
from . import tasks as T
from .errors import InvalidRequest
from .fairness import Admission, Ticket
from .http_util import model_headers
from .lifecycle import Loaded, ModelManager
from .metrics import InferenceMetrics
from .params import parse_keep_alive
from .settings import InferenceSettings
from .source import ModelSource, ResolvedModel

_MODEL_REF = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[^\s:]+)?(:[\w.-]+)?$")


class Lease:
    """One request's hold on a loaded model and, once admitted, on a running slot."""

    def __init__(self, service: InferenceService, entry: Loaded, task: str, keep_alive: float | None = None):
        self.service = service
        self.entry = entry
        self.task = task
        self.keep_alive = keep_alive  # the request's own, if it named one (params.parse_keep_alive)
        self.ticket: Ticket | None = None
        self.started = time.perf_counter()
        self.status = 200
        self._closed = False

    @property
    def resolved(self) -> ResolvedModel:
        return self.entry.resolved

    @property
    def engine(self):
        return self.entry.engine

    @property
    def headers(self) -> dict:
        headers = model_headers(self.resolved)
        if self.ticket is not None:
            headers.update(self.ticket.headers)
        return headers

    async def admit(self, principal, cost: int) -> None:
        service = self.service
        self.ticket = await service.admission.admit(principal, cost)
        metrics = service.metrics
        metrics.child(metrics.queue_time, self.resolved.repo_id, self.task).observe(self.ticket.queued_s)

    async def run_encoder(self, principal, task: str, inputs: list, params: dict, cost: int):
        """Admit ``cost`` tokens, run encoder work, count them, and close the lease (on failure too).
        -> (the engine's results, the response headers)."""
        try:
            await self.admit(principal, cost)
            results = await self.engine.run(task, inputs, params, cost)
        except HubError as exc:
            await self.close(status=exc.status)
            raise
        except BaseException:
            await self.close(status=500)
            raise
        headers = self.headers
        metrics = self.service.metrics
        metrics.child(metrics.prompt_tokens, self.resolved.repo_id, self.engine.engine_name, self.task).inc(cost)
        await self.close(used_tokens=cost)
        return results, headers

    async def close(self, used_tokens: int | None = None, status: int | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        service = self.service
        if self.ticket is not None:
            service.admission.release(self.ticket, used_tokens)
        metrics = service.metrics
        labels = (self.resolved.repo_id, getattr(self.engine, "engine_name", "?"), self.task)
        metrics.child(metrics.e2e, *labels).observe(time.perf_counter() - self.started)
        metrics.child(metrics.requests, self.resolved.repo_id, self.task, str(status or self.status)).inc()
        await service.models.release(self.entry, self.keep_alive)


class InferenceService:
    def __init__(self, settings: InferenceSettings, source: ModelSource, hub_settings=None):
        self.settings = settings
        self.source = source
        self.hub_settings = hub_settings
        self.metrics = InferenceMetrics()
        self.admission = Admission(settings, self.metrics)
        # Read when /metrics is scraped rather than set twice per request.
        self.metrics.running.set_function(lambda: self.admission.running)
        self.metrics.waiting.set_function(lambda: self.admission.waiting)
        self.models = ModelManager(settings, self._load_engine, self._estimate, self.metrics)

    # ---- resolution and loading -------------------------------------------------------------
    async def resolve(self, model_ref, principal) -> ResolvedModel:
        if not isinstance(model_ref, str) or not _MODEL_REF.match(model_ref):
            raise InvalidRequest("'model' must be a repo id like 'namespace/name', 'namespace/name@revision' or, for "
                                 "GGUF files, 'namespace/name:Q4_K_M'",
                                 param="model")
        self.admission.check_allowed(principal)
        model_ref, tag = gguf.split_tag(model_ref)
        try:
            resolved = await self._resolve(model_ref, principal)
        except RepoNotFound as exc:  # as OpenAI words it; byte for byte the same for private and missing
            exc.message = "The model does not exist or you do not have access to it"
            raise
        return gguf.choose(resolved, tag)

    async def _resolve(self, model_ref: str, principal) -> ResolvedModel:
        # A source that remembers recent resolutions answers most requests without I/O: skip the
        # thread hop then (it costs more than the lookup).
        cached = getattr(self.source, "resolve_cached", None)
        if cached is not None:
            resolved = cached(model_ref, principal)
            if resolved is not None:
                return resolved
        return await asyncio.to_thread(self.source.resolve, model_ref, principal)

    async def lease(self, model_ref: str, principal, wanted: set[str], api: str, keep_alive=None) -> Lease:
        keep = parse_keep_alive(keep_alive)  # refused before anything loads
        # A caller at a limit is refused before its model is resolved (files copied) or loaded, and
        # its loads count against its concurrency: no one makes the hub load models it won't run.
        self.admission.precheck(principal)
        with self.admission.pending(principal):
            resolved = await self.resolve(model_ref, principal)
            try:
                task = T.require_task(resolved, wanted, api)
                entry = await self.models.acquire(resolved, task)
            except HubError as exc:  # a refusal about a model names it, as its answers do
                exc.headers = {**model_headers(resolved), **exc.headers}
                raise
        return Lease(self, entry, task, keep)

    def _engine_kind(self) -> str:
        kind = self.settings.engine
        if kind == "auto":
            from .engines.vllm import vllm_available

            kind = "vllm" if vllm_available() else "transformers"
        return kind

    def _load_engine(self, resolved: ResolvedModel, task: str):
        """Runs on the loader thread: the only place that imports torch/transformers."""
        if task == T.VISION_CHAT:
            if self.settings.isolation == "process":
                from .engines.process import ProcessVisionLM

                return ProcessVisionLM.load(resolved, self.settings)
            from .engines.vision_lm import VisionLM

            return VisionLM.load(resolved, self.settings)
        if task == T.GENERATION:
            from .engines.llama_cpp import use_llama_cpp

            if use_llama_cpp(resolved, self.settings) and self.settings.isolation == "thread":
                from .engines.llama_cpp import InProcessLlamaCpp

                return InProcessLlamaCpp.load(resolved, self.settings)
            if self._engine_kind() == "vllm" and resolved.variant is None:
                from .engines.vllm import VLLMEngine

                return VLLMEngine.load(resolved, self.settings)
            if self.settings.isolation == "process":
                from .engines.process import ProcessLM

                return ProcessLM.load(resolved, self.settings)
            from .engines.transformers_lm import TransformersLM

            return TransformersLM.load(resolved, self.settings)
        def on_batch(key, size, repo=resolved.repo_id):
            self.metrics.child(self.metrics.batch_size, repo, key[0]).observe(size)

        if self.settings.isolation == "process":
            from .engines.process import ProcessEncoder

            return ProcessEncoder.load(resolved, task, self.settings, on_batch=on_batch)
        from .engines.transformers_encoder import TransformersEncoder

        return TransformersEncoder.load(resolved, task, self.settings, on_batch=on_batch)

    def _estimate(self, resolved: ResolvedModel, task: str) -> int:
        from .engines.llama_cpp import use_llama_cpp

        if task == T.GENERATION and use_llama_cpp(resolved, self.settings):
            from .engines.llama_cpp import context_for

            path = resolved.local_dir / str(resolved.variant)  # quantised, memory-mapped as it is
            return int((path.stat().st_size + context_for(path, self.settings)[1]) * 1.1)
        weights = T.estimate_weight_bytes(resolved.local_dir) if resolved.variant is None \
            else gguf.dequantised_bytes(resolved.local_dir / resolved.variant)
        if task == T.GENERATION:
            return int((weights + self.settings.kv_cache_bytes) * 1.1)
        return int(weights * 1.1)

    # ---- bookkeeping ------------------------------------------------------------------------
    def list_loaded(self) -> list[Loaded]:
        return self.models.loaded()

    async def close(self) -> None:
        await self.models.close()


def build_inference_service(settings, model_source: ModelSource,
                            inference_settings: InferenceSettings | None = None) -> InferenceService:
    """``settings`` is the core's ``aicommons.config.Settings`` (kept for future use: public URL,
    data dir); inference's own knobs come from ``AICOMMONS_INFERENCE_*`` unless passed in."""
    return InferenceService(inference_settings or InferenceSettings.from_env(), model_source, settings)


__all__ = ["InferenceService", "Lease", "build_inference_service", "HubError"]
