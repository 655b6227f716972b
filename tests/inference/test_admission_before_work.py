"""Inference admission before work (issue 9): a caller at its limit is refused before its model is
resolved or loaded, and its loads count against its concurrency; the vLLM adapter forwards only
what was validated. No torch needed: fake source and loader."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from aicommons.inference import build_inference_service
from aicommons.inference.engine import SamplingParams
from aicommons.inference.errors import RateLimited
from aicommons.inference.proxy import forward_body
from aicommons.inference.settings import InferenceSettings
from aicommons.inference.source import ResolvedModel

from .aio import run_async


@dataclass(frozen=True)
class Anonymous:
    key: str = "anon:1.2.3.4"
    is_anonymous: bool = True
    name: str | None = None


class Source:
    def __init__(self):
        self.resolved = []

    def resolve(self, model, principal):
        self.resolved.append(model)
        return ResolvedModel(model, "a" * 40, Path("/nonexistent"), pipeline_tag="feature-extraction")


@run_async
async def test_a_caller_at_its_limit_loads_nothing():
    settings = InferenceSettings.from_env({}, anon_max_concurrent=1, anon_tokens_per_minute=100,
                                          resolve_cache_seconds=0)
    source = Source()
    service = build_inference_service(None, source, settings)
    loads = []

    async def slow_acquire(resolved, task):  # a load that takes a while
        loads.append(resolved.repo_id)
        await asyncio.sleep(0.3)
        raise RuntimeError("stop here")

    service.models.acquire = slow_acquire
    first = asyncio.ensure_future(service.lease("acme/one", Anonymous(), {"feature-extraction"}, "embeddings"))
    await asyncio.sleep(0.05)
    # While the first request's model loads, the same caller's second request (another model) is
    # refused at once: before it is resolved, before a second load starts.
    with pytest.raises(RateLimited):
        await service.lease("acme/two", Anonymous(), {"feature-extraction"}, "embeddings")
    with pytest.raises(RuntimeError):
        await first
    assert loads == ["acme/one"] and source.resolved == ["acme/one"]

    # An empty token budget refuses before any work too.
    bucket_owner = Anonymous(key="anon:5.6.7.8")
    ticket = await service.admission.admit(bucket_owner, 100)
    service.admission.release(ticket, used_tokens=100)
    with pytest.raises(RateLimited) as refused:
        await service.lease("acme/three", bucket_owner, {"feature-extraction"}, "embeddings")
    assert int(refused.value.headers["Retry-After"]) >= 1
    assert "acme/three" not in source.resolved
    await service.close()


def test_vllm_gets_only_validated_parameters():
    hostile = SamplingParams(max_new_tokens=16, temperature=0.5, top_p=0.9, top_k=5, seed=3, stop=("x",))
    body = forward_body(chat=True, messages=[{"role": "user", "content": "hi"}], prompt_ids=[[1, 2]],
                        fitted=[hostile], n=2, extra={"stream": True, "include_usage": True})
    assert body == {"n": 2, "max_tokens": 16, "temperature": 0.5, "top_p": 0.9, "top_k": 5, "seed": 3,
                    "stop": ["x"], "stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": "hi"}]}
    plain = forward_body(chat=False, messages=None, prompt_ids=[[1, 2], [3]],
                         fitted=[SamplingParams(max_new_tokens=9), SamplingParams(max_new_tokens=4)], n=1,
                         extra={"stream": False})
    assert plain == {"n": 1, "max_tokens": 4, "temperature": 1.0, "top_p": 1.0, "stream": False,
                     "prompt": [[1, 2], [3]]}


def test_unloading_a_vllm_model_closes_its_http_client():
    """The engine's HTTP client is closed on the loop that opened it when the model is unloaded
    (from the lifecycle's thread), so its connections are not left to the GC."""
    import subprocess
    import sys

    from aicommons.inference.engines.vllm import VLLMEngine

    class Tokenizer:
        chat_template = None

        def __len__(self):
            return 10

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    engine = VLLMEngine(ResolvedModel("acme/m", "a" * 40, Path("/nonexistent")), process, "http://127.0.0.1:9",
                        Tokenizer(), context_length=64, footprint=0)

    async def scenario():
        client = engine._http()  # opened on this loop, as generate() and the proxy do
        await asyncio.get_running_loop().run_in_executor(None, engine.close)  # as lifecycle unloads
        return client

    client = asyncio.run(scenario())
    assert client.is_closed
    assert process.poll() is not None
