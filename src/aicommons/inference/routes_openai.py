"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models.

Shapes follow the openai 3.x types (spec §1.1-1.4): SSE chunks end with ``data: [DONE]``, usage
comes as one extra ``choices: []`` chunk when ``stream_options.include_usage`` is set, and
``system_fingerprint`` is the exact 40-hex commit the answer came from.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from aicommons.errors import HubError

from . import images, offload
from . import openai_choices as C
from . import tasks as T
from .chat_template import image_urls, normalize_messages
from .errors import InvalidRequest, UnsupportedTask, openai_error_body
from .generation import GenerationStats, stream_deltas
from .http_util import (
    PLACEHOLDER_MODEL,
    SSE_DONE,
    SSE_HEADERS,
    abandon,
    get_number,
    model_headers,
    no_model_advice,
    openai_error,
    principal_of,
    read_json,
    sse,
)
from .params import fit_to_context, openai_sampling
from .runs import merged, record_generation, run_to_end
from .source import FileSource, ListableModelSource
from .tools import parse_tools

_FINISH = {"eos": "stop", "stop_sequence": "stop", "length": "length"}


class OpenAIRoutes:
    def __init__(self, service):
        self.service = service

    # ---- chat / completions ------------------------------------------------------------------
    async def chat_completions(self, request: Request, fixed_model: str | None = None, body: dict | None = None):
        """``body``: already read (``POST /`` reads it to tell a chat completion from a task call)."""
        return await self._generate(request, chat=True, fixed_model=fixed_model, body=body)

    async def completions(self, request: Request):
        return await self._generate(request, chat=False)

    async def _generate(self, request: Request, *, chat: bool, fixed_model: str | None = None,
                        body: dict | None = None):
        service = self.service
        principal = principal_of(request)
        lease = None
        try:
            body = await read_json(request) if body is None else body
            model_ref = fixed_model or body.get("model")
            if fixed_model is None and model_ref == PLACEHOLDER_MODEL:
                # InferenceClient(base_url=<hub>).chat_completion(...) with no model sends its placeholder.
                raise InvalidRequest(no_model_advice(request, f"'model' is {PLACEHOLDER_MODEL!r}, the placeholder "
                                                     "InferenceClient sends when no model was given"), param="model")
            tool_spec = None
            urls: list[str] = []
            if chat:
                messages = normalize_messages(body.get("messages"))
                urls = image_urls(messages)
                tool_spec = parse_tools(body)
            else:
                prompts = _prompts(body.get("prompt"))
            params, n, extra = openai_sampling(body, service.settings,
                                               default_max_tokens=None if chat else 16, chat=chat)
            if tool_spec is not None and tool_spec.constrained and params.grammar is not None:
                raise InvalidRequest("'response_format' cannot be combined with a required or named "
                                     "'tool_choice'", param="response_format")
            lease = await service.lease(model_ref, principal, {T.GENERATION, T.VISION_CHAT} if chat else {T.GENERATION},
                                        "chat completions" if chat else "completions", body.get("keep_alive"))
            engine = lease.engine
            vision = getattr(engine, "accepts_images", False)
            if urls and not vision:
                raise InvalidRequest("this model does not take images (image_url parts need a vision-language "
                                     "model)", param="messages")
            if getattr(engine, "proxies_openai", False) and (params.guided or tool_spec is not None):
                raise InvalidRequest("tools, response_format, logprobs, logit_bias and penalties are not "
                                     "supported by this model's engine", param="model")
            if any(not 0 <= t < engine.vocab_size for t, _ in params.logit_bias):
                raise InvalidRequest(f"logit_bias token ids must be in [0, {engine.vocab_size})", param="logit_bias")
            tools = None
            if chat:
                if not engine.has_chat_template:
                    raise UnsupportedTask("this model has no chat template; use /v1/completions", param="model")
                template_messages, template_tools = messages, None
                if tool_spec is not None:
                    tools = C.ToolsInUse(tool_spec, getattr(engine, "chat_template", None))
                    grammar = await asyncio.to_thread(tools.grammar)
                    if grammar is not None:
                        params = replace(params, grammar=grammar)
                    template_messages, template_tools = tools.messages_for_template(messages), tools.template_tools()
                if vision:
                    pictures = await self._chat_images(request, urls, principal)
                    ids, media = await offload.vision_prompt_ids(engine, template_messages, template_tools, pictures)
                    prompt_ids, engine = [ids], engine.with_media(media)
                else:
                    prompt_ids = [await offload.chat_prompt_ids(engine, template_messages, template_tools)]
                prompt_texts: list[str | None] = [None]
            else:
                prompt_ids = [p if isinstance(p, list) else await offload.tokenize(engine, p) for p in prompts]
                if any(t < 0 or t >= engine.vocab_size for ids in prompt_ids for t in ids):
                    raise InvalidRequest(f"token ids must be in [0, {engine.vocab_size})", param="prompt")
                # (an echoed prompt of token ids is their text, as vLLM echoes it)
                prompt_texts = [p if isinstance(p, str) else engine.tokenizer.decode(p) if body.get("echo") else None
                                for p in prompts]
            fitted = [fit_to_context(params, len(ids), engine.context_length,
                                     default=service.settings.default_max_tokens) for ids in prompt_ids]
            cost = sum(len(ids) + p.max_new_tokens * n for ids, p in zip(prompt_ids, fitted))
            scored = not chat and body.get("echo") is True and params.logprobs is not None
            if scored and not getattr(engine, "scores_prompts", False):
                raise InvalidRequest(f"echo with logprobs (the prompt's logprobs) is not supported by this model's "
                                     f"engine ({engine.engine_name})", param="echo")
            await lease.admit(principal, cost)
            # echo + logprobs: the prompt's tokens are scored too (one more forward pass per prompt).
            prompt_rows = [await engine.prompt_logprobs(ids, params.logprobs or 0) for ids in prompt_ids] \
                if scored else []
        except HubError as exc:
            await abandon(lease, exc.status)
            return openai_error(exc)
        except BaseException:
            await abandon(lease, 500)
            raise
        if getattr(lease.engine, "proxies_openai", False):
            from .proxy import forward_body, proxy_openai

            forwarded = forward_body(chat=chat, messages=messages if chat else None, prompt_ids=prompt_ids,
                                     fitted=fitted, n=n, extra=extra, echo=not chat and body.get("echo") is True)
            return await proxy_openai(lease, "/v1/chat/completions" if chat else "/v1/completions", forwarded)
        # One job per (prompt, sample); choice index = prompt_index * n + sample.
        jobs = [(i * n + j, ids, p if p.seed is None else _reseed(p, j))
                for i, (ids, p) in enumerate(zip(prompt_ids, fitted)) for j in range(n)]
        echo = {i * n + j: (text or "") for i, text in enumerate(prompt_texts) for j in range(n)} \
            if (not chat and body.get("echo")) else {}
        # The route that names its model in the path answers with that name, not the body's
        # placeholder (InferenceClient(model=URL) sends "dummy").
        meta = _Meta(chat, fixed_model or body.get("model") or lease.resolved.repo_id, lease.resolved.commit,
                     sum(len(ids) for ids in prompt_ids), echo)
        meta.tools = tools
        meta.logprobs = params.logprobs is not None
        meta.echo_logprobs = {i * n + j: C.echo_logprobs(engine, ids, rows)
                              for i, (ids, rows) in enumerate(zip(prompt_ids, prompt_rows)) for j in range(n)}
        meta.engine = engine  # a vision model's carries the request's images
        if extra["stream"]:
            stream = self._stream(lease, jobs, meta, extra["include_usage"])
            return StreamingResponse(stream, media_type="text/event-stream", headers={**SSE_HEADERS, **lease.headers})
        try:
            results = await run_to_end(meta.engine, jobs)
        except HubError as exc:
            await lease.close(status=exc.status)
            return openai_error(exc)
        except BaseException:
            await lease.close(status=500)
            raise
        completion_tokens = sum(r.stats.completion_tokens for r in results)
        record_generation(lease, [r.stats for r in results])
        headers = lease.headers
        await lease.close(used_tokens=meta.prompt_tokens + completion_tokens)
        choices = []
        engine = lease.engine
        for r in sorted(results, key=lambda r: r.index):
            reason = _FINISH.get(r.finish_reason, "stop")
            if chat:
                message = {"role": "assistant", "content": r.text}
                if tools is not None:
                    message, reason = tools.message(r.text, reason)
                logprobs = C.chat_logprobs(engine, r.token_ids, r.logprobs) if meta.logprobs else None
                choices.append({"index": r.index, "message": message, "logprobs": logprobs, "finish_reason": reason})
            else:
                prefix = echo.get(r.index, "")
                logprobs = C.joined_logprobs(meta.echo_logprobs.get(r.index), C.completion_logprobs(
                    engine, r.token_ids, r.logprobs, len(prefix))) if meta.logprobs else None
                choices.append({"index": r.index, "text": prefix + r.text, "logprobs": logprobs,
                                "finish_reason": reason})
        return JSONResponse({"id": meta.id, "object": meta.object, "created": meta.created, "model": meta.model,
                             "choices": choices, "usage": meta.usage(completion_tokens),
                             "system_fingerprint": meta.commit}, headers=headers)

    async def _stream(self, lease, jobs, meta: _Meta, include_usage: bool):
        stats_list = [GenerationStats(len(ids)) for _, ids, _ in jobs]
        status = 200
        try:
            if meta.chat:
                for index, _, _ in jobs:
                    yield sse(meta.chunk({"index": index, "delta": {"role": "assistant", "content": ""},
                                          "logprobs": None, "finish_reason": None}, include_usage))
            else:
                for index, _, _ in jobs:
                    if meta.echo.get(index):
                        choice = meta.choice(index, meta.echo[index], None)
                        choice["logprobs"] = meta.echo_logprobs.get(index)
                        yield sse(meta.chunk(choice, include_usage))
            streams = [(index, stream_deltas(meta.engine, ids, p, stats))
                       for (index, ids, p), stats in zip(jobs, stats_list)]
            if meta.tools is None and not meta.logprobs:
                async for index, delta in merged(streams):
                    reason = _FINISH.get(delta.finish_reason) if delta.finish_reason else None
                    if delta.text or reason:
                        yield meta.token_event(index, delta.text, reason, include_usage)
            else:
                async for event in self._rich_events(meta.engine, streams, meta, include_usage):
                    yield event
            if include_usage:
                completion = sum(s.completion_tokens for s in stats_list)
                yield sse({**meta.chunk(None, True), "choices": [], "usage": meta.usage(completion)})
            yield SSE_DONE
        except HubError as exc:
            # Headers are gone: report in-band, as vLLM does; the openai client raises APIError on it.
            status = exc.status
            yield sse(openai_error_body(exc)[1])
            yield SSE_DONE
        finally:
            record_generation(lease, stats_list)
            used = meta.prompt_tokens + sum(s.completion_tokens for s in stats_list)
            await lease.close(used_tokens=used, status=status)

    async def _rich_events(self, engine, streams, meta: _Meta, include_usage: bool):
        """Chunks that carry logprobs or tool calls: built per token, not from the fast envelope."""
        tools = meta.tools
        streamers: dict[int, Any] = {index: tools.streamer() for index, _ in streams} if tools else {}
        calls_sent = dict.fromkeys(streamers, 0)
        offsets = {index: len(meta.echo.get(index, "")) for index, _ in streams}
        async for index, delta in merged(streams):
            reason = _FINISH.get(delta.finish_reason) if delta.finish_reason else None
            text, calls = delta.text, []
            streamer = streamers.get(index)
            if streamer is not None:
                text, calls = streamer.feed(delta.text, final=reason is not None)
            logprobs: dict[str, Any] | None = None
            if meta.logprobs and delta.token_id is not None:
                if meta.chat:
                    logprobs = {"content": [C.chat_logprob_entry(engine, delta.token_id, delta.logprob)],
                                "refusal": None}
                else:
                    logprobs = C.completion_logprobs(engine, [delta.token_id], [delta.logprob], offsets[index])
                    offsets[index] += len(logprobs["tokens"][0])
            for tool_delta in C.tool_call_deltas(calls, calls_sent.get(index, 0)):
                yield sse(meta.chunk({"index": index, "delta": tool_delta, "logprobs": None, "finish_reason": None},
                                     include_usage))
            if calls:
                calls_sent[index] += len(calls)
            if reason == "stop" and calls_sent.get(index):
                reason = "tool_calls"
            if text or reason or logprobs:
                choice = meta.choice(index, text, reason)
                choice["logprobs"] = logprobs
                yield sse(meta.chunk(choice, include_usage))

    async def _chat_images(self, request: Request, urls: list[str], principal) -> list:
        """The decoded images of a chat request: data: URLs, or files of this hub read with the
        caller's own access (never a fetch from another host)."""
        origins = {str(request.base_url).rstrip("/").lower()}
        public = getattr(self.service.hub_settings, "public_url", None)
        if public:
            origins.add(public.rstrip("/").lower())
        source = self.service.source
        read = None
        if isinstance(source, FileSource):
            def read(repo_type, repo_id, revision, path, limit):
                return source.read_file(repo_type, repo_id, revision, path, principal, limit)
        blobs = await asyncio.to_thread(images.chat_image_bytes, urls, origins, read)
        return await asyncio.to_thread(images.decode, blobs)

    # ---- embeddings ----------------------------------------------------------------------------
    async def embeddings(self, request: Request):
        service = self.service
        principal = principal_of(request)
        lease = None
        try:
            body = await read_json(request)
            texts = _embedding_inputs(body.get("input"), service.settings.max_client_batch)
            as_ids = isinstance(texts[0], list)
            fmt = body.get("encoding_format") or "float"
            if fmt not in ("float", "base64"):
                raise InvalidRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
            dimensions = get_number(body, "dimensions", None, kind=int, low=1)
            lease = await service.lease(body.get("model"), principal, {T.EMBEDDING}, "embeddings",
                                        body.get("keep_alive"))
            engine = lease.engine
            if as_ids:
                _check_token_ids(texts, token_id_limit(engine))
            counts = [len(ids) for ids in texts] if as_ids else await offload.count_tokens(engine, texts)
            for i, count in enumerate(counts):
                if count > engine.max_input_tokens:
                    raise InvalidRequest(f"input[{i}] has {count} tokens; this model accepts at most "
                                         f"{engine.max_input_tokens}", param="input")
            tokens = sum(counts)
            vectors, headers = await lease.run_encoder(principal, T.EMBEDDING, texts,
                                                       {"token_ids": True} if as_ids else {}, tokens)
        except HubError as exc:
            await abandon(lease, exc.status)
            return openai_error(exc)
        except BaseException:
            await abandon(lease, 500)
            raise
        if dimensions is not None and dimensions > len(vectors[0]):
            return openai_error(InvalidRequest(f"'dimensions' must be at most {len(vectors[0])}",
                                               param="dimensions"))
        import numpy as np  # the inference extra; imported on first use, not at app start

        data = []
        for i, vec in enumerate(vectors):
            vec = np.asarray(vec, dtype=np.float32)
            if dimensions is not None:  # Matryoshka-style: keep the head, renormalise
                vec = vec[:dimensions]
                vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
            value = base64.b64encode(vec.astype("<f4").tobytes()).decode() if fmt == "base64" else vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": value})
        return JSONResponse({"object": "list", "data": data, "model": body.get("model"),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, headers=headers)

    # ---- rerank (as Jina and Cohere serve it; TEI's /rerank answers the same scores) ------------
    async def rerank(self, request: Request):
        service = self.service
        principal = principal_of(request)
        lease = None
        try:
            body = await read_json(request)
            query = body.get("query")
            if not isinstance(query, str) or not query:
                raise InvalidRequest("'query' must be a non-empty string", param="query")
            docs = _documents(body.get("documents"), service.settings.max_client_batch)
            top_n = get_number(body, "top_n", None, kind=int, low=1)
            return_documents = body.get("return_documents", True)
            if not isinstance(return_documents, bool):
                raise InvalidRequest("'return_documents' must be a boolean", param="return_documents")
            lease = await service.lease(body.get("model"), principal, {T.RERANK}, "rerank", body.get("keep_alive"))
            engine = lease.engine
            counts = await offload.count_tokens(engine, [query, *docs])
            cost = sum(min(counts[0] + c, engine.max_input_tokens) for c in counts[1:])
            scores, headers = await lease.run_encoder(principal, T.RERANK, [(query, d) for d in docs], {}, cost)
        except HubError as exc:
            await abandon(lease, exc.status)
            return openai_error(exc)
        except BaseException:
            await abandon(lease, 500)
            raise
        order = sorted(range(len(docs)), key=lambda i: -scores[i])[:top_n]
        results = [{"index": i, "relevance_score": float(scores[i]),
                    **({"document": {"text": docs[i]}} if return_documents else {})} for i in order]
        return JSONResponse({"model": body.get("model"), "object": "list", "results": results,
                             "usage": {"prompt_tokens": cost, "total_tokens": cost}}, headers=headers)

    # ---- models ------------------------------------------------------------------------------
    async def list_models(self, request: Request):
        principal = principal_of(request)
        loaded = {e.resolved.repo_id: e for e in self.service.list_loaded()}
        rows = []
        source = self.service.source
        if isinstance(source, ListableModelSource):
            try:
                listing = await asyncio.to_thread(lambda: list(source.list_models(principal)))
            except HubError as exc:
                return openai_error(exc)
            for m in listing:
                rows.append({"id": m.repo_id, "object": "model", "created": int(m.created),
                             "owned_by": m.owned_by or m.repo_id.split("/")[0], "task": m.pipeline_tag,
                             "loaded": m.repo_id in loaded})
        else:
            for repo_id, e in loaded.items():
                rows.append({"id": repo_id, "object": "model", "created": int(e.loaded_at),
                             "owned_by": repo_id.split("/")[0], "task": e.task, "loaded": True,
                             "revision": e.resolved.commit})
        return JSONResponse({"object": "list", "data": rows})

    async def task_catalog(self, request: Request):
        """``GET /api/tasks`` (what ``InferenceClient`` reads when it is given no model): the tasks
        this hub serves with the hosted models the caller may use (``tasks.task_catalog``)."""
        source = self.service.source
        listing: list = []
        if isinstance(source, ListableModelSource):  # a HubError goes to the hub's JSON error handler
            listing = await asyncio.to_thread(lambda: list(source.list_models(principal_of(request))))
        return JSONResponse(T.task_catalog(listing))

    async def retrieve_model(self, request: Request):
        """``GET /v1/models/{id}`` (the openai client's ``models.retrieve``): one row of the list,
        for any model reference a request may name (``ns/name``, ``@revision``, ``:QUANT``), with
        the same access answers as the other routes (404 for a private model of someone else)."""
        model_ref = unquote(request.path_params["model"])
        try:
            resolved = await self.service.resolve(model_ref, principal_of(request))
        except HubError as exc:
            return openai_error(exc)
        try:  # the task it is served as: the card's, else what its files say (config.json)
            task = T.detect_task(resolved)
        except HubError:
            task = resolved.pipeline_tag  # a task this hub does not serve: the card's word for it
        loaded = any(e.resolved.key == resolved.key for e in self.service.list_loaded())
        return JSONResponse({"id": model_ref, "object": "model", "created": resolved.created,
                             "owned_by": resolved.repo_id.split("/")[0], "task": task,
                             "loaded": loaded, "revision": resolved.commit},
                            headers=model_headers(resolved))


class _Meta:
    """Per-response constants of a completion (id, model, fingerprint) and chunk builders."""

    def __init__(self, chat: bool, model: str, commit: str, prompt_tokens: int, echo: dict):
        self.chat = chat
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.object = "chat.completion" if chat else "text_completion"
        self.created = int(time.time())
        self.model = model
        self.commit = commit
        self.prompt_tokens = prompt_tokens
        self.echo = echo
        self.tools: C.ToolsInUse | None = None  # on a chat request with tools
        self.engine: Any = None  # what generates: the lease's engine (with a vision prompt's images bound)
        self.logprobs = False
        self.echo_logprobs: dict[int, dict] = {}  # choice index -> the echoed prompt's logprobs
        self._envelope: bytes | None = None

    def usage(self, completion_tokens: int) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens}

    def choice(self, index: int, text: str, reason: str | None) -> dict:
        if self.chat:
            delta = {"content": text} if text else {}
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}
        return {"index": index, "text": text, "logprobs": None, "finish_reason": reason}

    def token_event(self, index: int, text: str, reason: str | None, include_usage: bool) -> bytes:
        """The per-token SSE event, with the constant envelope serialised once per response: this
        runs for every generated token, so it is the hub's main per-token cost."""
        if self._envelope is None:
            head = json.dumps(self.chunk(None, False), separators=(",", ":"), ensure_ascii=False)
            self._envelope = head[: -len('"choices":[]}')].encode()
        choice = json.dumps(self.choice(index, text, reason), separators=(",", ":"), ensure_ascii=False).encode()
        tail = b'],"usage":null}' if include_usage else b"]}"
        return b"data: " + self._envelope + b'"choices":[' + choice + tail + b"\n\n"

    def chunk(self, choice: dict | None, include_usage: bool) -> dict:
        out: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk" if self.chat else "text_completion",
               "created": self.created, "model": self.model, "system_fingerprint": self.commit,
               "choices": [choice] if choice is not None else []}
        if include_usage:
            out["usage"] = None
        return out


def _reseed(params, j: int):
    from dataclasses import replace

    return replace(params, seed=params.seed + j) if j else params


def _prompts(prompt) -> list:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return list(prompt)
        if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            return [list(prompt)]
        if all(isinstance(p, list) and p and all(isinstance(t, int) for t in p) for p in prompt):
            return [list(p) for p in prompt]
    raise InvalidRequest("'prompt' must be a string, an array of strings, or token id arrays", param="prompt")


def _embedding_inputs(value, limit: int) -> list:
    """OpenAI's ``input``: a string, strings, token ids ([int]) or token id arrays ([[int]]) ->
    a list of strings or a list of id lists (never both)."""
    if isinstance(value, str) or (isinstance(value, list) and value and all(_is_id(t) for t in value)):
        value = [value]
    if not isinstance(value, list) or not value or not (all(isinstance(v, str) for v in value)
                                                        or all(isinstance(v, list) for v in value)):
        raise InvalidRequest("'input' must be a non-empty string, array of strings, array of token ids, or "
                             "array of token id arrays", param="input")
    if len(value) > limit:
        raise InvalidRequest(f"at most {limit} inputs per request", param="input")
    for i, v in enumerate(value):
        if not v:
            raise InvalidRequest(f"input[{i}] must not be empty", param="input")
        if isinstance(v, list) and not all(_is_id(t) for t in v):
            raise InvalidRequest(f"input[{i}] must be an array of integer token ids", param="input")
    return value


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_token_ids(inputs: list[list[int]], limit: int) -> None:
    """Token ids are the model's own tokenizer's (as TEI and vLLM read them): each in [0, limit)."""
    for i, ids in enumerate(inputs):
        for j, t in enumerate(ids):
            if not 0 <= t < limit:
                raise InvalidRequest(f"input[{i}][{j}] = {t} is not a token id of this model's tokenizer "
                                     f"(0 to {limit - 1})", param="input")


def token_id_limit(engine) -> int:
    """One past the largest token id an encoder takes: its tokenizer's size, bounded by the model's
    embedding table (``vocab_size`` in the worker's info)."""
    limit = len(engine.tokenizer)
    return min(limit, int((getattr(engine, "encoder_info", None) or {}).get("vocab_size") or limit))


def _documents(value, limit: int) -> list[str]:
    if isinstance(value, list) and value and len(value) <= limit:
        docs = [d.get("text") if isinstance(d, dict) else d for d in value]
        texts = [d for d in docs if isinstance(d, str) and d]
        if len(texts) == len(docs):
            return texts
    raise InvalidRequest(f"'documents' must be 1 to {limit} non-empty strings (or {{'text': ...}} objects)",
                         param="documents")
