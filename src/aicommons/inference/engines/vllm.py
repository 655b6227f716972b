"""GPU engine: one ``vllm serve`` process per model, on loopback (spec §3.1).

Why a process: VRAM is only reliably freed when a process exits, vLLM runs its own event loop and
engine core, and a crash stays contained. The adapter offers the same ``TextGenerator`` surface as
``TransformersLM`` (so TGI and HF-task routes work unchanged) by streaming ``/v1/completions`` with
token ids, and sets ``proxies_openai`` so the OpenAI routes can pass vLLM's bytes through untouched.

Status: written against vLLM 0.33's CLI and OpenAI server, but not yet exercised, because no GPU
was available while it was written (``bench/inference/gpu_bench.py`` is the check to run first).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from ..engine import EngineStep, SamplingParams
from ..errors import GenerationFailed
from ..source import ResolvedModel
from ..tasks import estimate_weight_bytes

log = logging.getLogger(__name__)


def vllm_available() -> bool:
    """vLLM importable and an NVIDIA driver present; checked without importing torch or vllm."""
    return importlib.util.find_spec("vllm") is not None and shutil.which("nvidia-smi") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMEngine:
    task = "text-generation"
    engine_name = "vllm"
    proxies_openai = True

    def __init__(self, resolved: ResolvedModel, process: subprocess.Popen, base_url: str, tokenizer,
                 context_length: int, footprint: int):
        self.resolved = resolved
        self.process = process
        self.base_url = base_url
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.vocab_size = len(tokenizer)
        self._footprint = footprint
        self._client = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def load(cls, resolved: ResolvedModel, settings, startup_timeout: float = 600.0) -> VLLMEngine:
        import httpx
        from transformers import AutoTokenizer

        port = _free_port()
        cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", str(resolved.local_dir),
               "--host", "127.0.0.1", "--port", str(port), "--served-model-name", resolved.repo_id,
               "--dtype", "auto" if settings.dtype == "auto" else settings.dtype,
               *shlex.split(settings.vllm_extra_args)]
        # Own process group, output discarded: vLLM must never log prompts into our logs either.
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, "VLLM_NO_USAGE_STATS": "1"})
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise GenerationFailed(f"vllm serve exited with status {process.returncode} while loading")
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            process.kill()
            raise GenerationFailed("vllm serve did not become healthy in time")
        tokenizer = AutoTokenizer.from_pretrained(Path(resolved.local_dir))
        config = json.loads((Path(resolved.local_dir) / "config.json").read_text())
        context = int(config.get("max_position_embeddings") or 4096)
        return cls(resolved, process, base, tokenizer, context, estimate_weight_bytes(Path(resolved.local_dir)))

    def healthy(self) -> bool:
        return self.process.poll() is None

    # ---- TextGenerator surface (TGI / HF routes) -------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text)["input_ids"]

    def render_chat(self, messages: list[dict]) -> str:
        from ..chat_template import render_chat

        return render_chat(self.tokenizer.chat_template, messages, bos_token=self.tokenizer.bos_token or "",
                           eos_token=self.tokenizer.eos_token or "")

    def chat_prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def new_decoder(self):
        from .transformers_lm import _Decoder

        return _Decoder(self.tokenizer.backend_tokenizer)

    def token_text(self, token_id: int) -> tuple[str, bool]:
        return self.tokenizer.decode([token_id]), token_id in set(self.tokenizer.all_special_ids)

    def _http(self):
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=None)
            self._client_loop = asyncio.get_running_loop()
        return self._client

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[EngineStep]:
        body = {"model": self.resolved.repo_id, "prompt": prompt_ids, "max_tokens": params.max_new_tokens,
                "temperature": 0.0 if params.greedy else params.temperature, "top_p": params.top_p,
                "top_k": params.top_k or -1, "seed": params.seed, "ignore_eos": params.ignore_eos,
                "stream": True, "return_token_ids": True, "detokenize": False}
        async with self._http().stream("POST", "/v1/completions", json=body) as response:
            if response.status_code != 200:
                raise GenerationFailed(f"vLLM answered {response.status_code}")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choice = json.loads(line[6:])["choices"][0]
                reason = choice.get("finish_reason")
                ids = list(choice.get("token_ids") or [])
                if reason:
                    yield EngineStep(ids, finished=True, finish_reason="length" if reason == "length" else "eos")
                    return
                yield EngineStep(ids)

    # ---- byte pass-through for the OpenAI routes -------------------------------------------
    async def proxy_openai(self, path: str, body: dict):
        """-> (status, headers, async byte iterator): vLLM's answer, unparsed."""
        client = self._http()
        request = client.build_request("POST", path, json={**body, "model": self.resolved.repo_id})
        response = await client.send(request, stream=True)
        return response.status_code, dict(response.headers), response.aiter_raw(), response.aclose

    def footprint_bytes(self) -> int:
        return self._footprint

    def close(self) -> None:
        """Runs off the event loop (``lifecycle``): the HTTP client is closed on the loop it was
        opened on, so its connections are closed rather than left to the GC."""
        client, loop, self._client = self._client, self._client_loop, None
        if client is not None and loop is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
            except Exception:  # noqa: BLE001 - the process is stopped below either way
                log.warning("could not close the HTTP client of vLLM at %s", self.base_url)
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
