"""HF task API (``POST /models/{ns}/{name}``, ``/pipeline/{task}``) and TGI routes per model
(``/generate``, ``/generate_stream``, ``/info``), in the shapes ``InferenceClient`` 2.4 sends and
parses (spec §1.5-1.6). Errors use TGI's flat ``{"error", "error_type"}``."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from aicommons import __version__
from aicommons.errors import HubError

from . import images, offload, speech
from . import tasks as T
from .errors import InvalidRequest, tgi_error_body
from .generation import GenerationStats, stream_deltas
from .http_util import (
    MAX_BODY_BYTES,
    SSE_HEADERS,
    abandon,
    get_bool,
    get_number,
    model_headers,
    parse_json_object,
    path_repo_id,
    principal_of,
    read_body,
    read_json,
    sse,
    tgi_error,
)
from .params import fit_to_context, tgi_sampling
from .runs import record_generation, run_to_end
from .runtime import reported_placement

_TGI_FINISH = {"eos": "eos_token", "stop_sequence": "stop_sequence", "length": "length"}


class HFRoutes:
    def __init__(self, service):
        self.service = service

    # ---- POST /models/{ns}/{name}[/pipeline/{task}] -------------------------------------------
    async def task(self, request: Request):
        service = self.service
        principal = principal_of(request)
        repo_id = path_repo_id(request)
        forced = request.path_params.get("task")
        try:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            untyped_file = False
            if ctype.startswith(("image/", "audio/")) or ctype == "application/octet-stream":
                # A raw file, as InferenceClient sends it; audio may be larger than a JSON body.
                limit = MAX_BODY_BYTES if ctype.startswith("image/") \
                    else max(MAX_BODY_BYTES, service.settings.max_audio_bytes)
                body = {"inputs": await read_body(request, limit)}
            elif not ctype:
                # InferenceClient sends a file given as bytes (image_classification(b"..."),
                # automatic_speech_recognition(b"...")) with no Content-Type at all: a body that is
                # not a JSON object is the file.
                raw = await read_body(request, max(MAX_BODY_BYTES, service.settings.max_audio_bytes))
                untyped_file = not raw.lstrip().startswith(b"{")
                if not untyped_file and len(raw) > MAX_BODY_BYTES:
                    raise InvalidRequest(f"request body is larger than {MAX_BODY_BYTES} bytes", status=413)
                body = {"inputs": raw} if untyped_file else await asyncio.to_thread(parse_json_object, raw)
            else:
                body = await read_json(request)
            resolved = await service.resolve(repo_id, principal)
            task = forced or T.detect_task(resolved)
            if untyped_file and task not in T.AUDIO_TASKS and len(body["inputs"]) > MAX_BODY_BYTES:
                raise InvalidRequest(f"request body is larger than {MAX_BODY_BYTES} bytes", status=413)
            if task in (T.EMBEDDING, T.SIMILARITY) and not forced:
                # One model serves both; the client tells us which by the shape of "inputs".
                task = T.SIMILARITY if isinstance(body.get("inputs"), dict) else T.EMBEDDING
            if task not in T.SUPPORTED_TASKS:
                raise InvalidRequest(f"unknown task '{task}'", param="task")
            if task == T.RERANK:
                raise InvalidRequest("text-ranking models answer at POST /v1/rerank", param="task")
            if task == T.VISION_CHAT:
                raise InvalidRequest("image-text-to-text models answer chat requests: POST /v1/chat/completions "
                                     f"or /models/{repo_id}/v1/chat/completions", param="task")
            _check_call_fits_task(repo_id, task, body, request.headers.get("accept", ""), model_headers(resolved))
        except HubError as exc:
            return tgi_error(exc)
        if task == T.GENERATION:
            return await self._tgi(request, body, repo_id, stream=get_bool(body, "stream", False), compat=True)
        return await self._encoder_task(request, body, repo_id, task)

    async def _encoder_task(self, request, body, repo_id, task):
        service = self.service
        principal = principal_of(request)
        lease = None
        try:
            parameters = body.get("parameters") or {}
            if not isinstance(parameters, dict):
                raise InvalidRequest("'parameters' must be an object", param="parameters")
            if task in T.AUDIO_TASKS:
                return await self._speech(principal, repo_id, body, parameters)
            if task in T.IMAGE_TASKS:
                blobs = images.image_bytes(body.get("inputs"))
                if len(blobs) > service.settings.max_client_batch:
                    raise InvalidRequest(f"at most {service.settings.max_client_batch} images", param="inputs")
                top_k = get_number(parameters, "top_k", None, kind=int, low=1, param_prefix="parameters.")
                lease = await service.lease(repo_id, principal, {task}, task, body.get("keep_alive"))
                decoded = await asyncio.to_thread(images.decode, blobs)
                results, headers = await lease.run_encoder(
                    principal, task, decoded, {"top_k": top_k, "function_to_apply": _function_to_apply(parameters)},
                    images.TOKENS_PER_IMAGE * len(decoded))
                return JSONResponse(results[0] if len(decoded) == 1 else results, headers=headers)
            texts, single, params = _task_inputs(task, body, parameters, service.settings.max_client_batch,
                                                 service.settings.default_max_tokens)
            if task == T.EMBEDDING and str(body.get("truncation_direction") or "right").lower() != "right":
                raise InvalidRequest("truncation_direction: only 'right' is supported (the end of a long input is "
                                     "cut)", param="truncation_direction")
            lease = await service.lease(repo_id, principal, {task}, task, body.get("keep_alive"))
            engine = lease.engine
            if task == T.FILL_MASK:
                _check_masks(texts, lease.resolved.local_dir)
            if task == T.EMBEDDING and body.get("prompt_name") is not None:
                texts = _with_prompt(texts, body["prompt_name"], engine)
            counts = await offload.count_tokens(engine, texts)
            truncate = task in (T.EMBEDDING, T.SIMILARITY) and get_bool(body, "truncate", False)
            if not truncate:
                for i, count in enumerate(counts):
                    if count > engine.max_input_tokens:
                        raise InvalidRequest(f"input {i} has {count} tokens; this model accepts at most "
                                             f"{engine.max_input_tokens} (pass truncate=true to cut it)",
                                             param="inputs", status=413 if task == T.EMBEDDING else 400)
            cost = sum(min(c, engine.max_input_tokens) for c in counts)
            if task == T.ZERO_SHOT:  # one forward row per (text, label)
                cost *= len(params["candidate_labels"])
            elif task in T.SEQ2SEQ_TASKS:
                cost += params["max_new_tokens"] * len(texts)
            run_task = T.EMBEDDING if task == T.SIMILARITY else task
            results, headers = await lease.run_encoder(principal, run_task, texts, params, cost)
        except HubError as exc:
            await abandon(lease, exc.status)
            return tgi_error(exc)
        except BaseException:
            await abandon(lease, 500)
            raise
        return JSONResponse(_task_output(task, results, single, body), headers=headers)

    async def _speech(self, principal, repo_id: str, body: dict, parameters: dict):
        """HF's automatic-speech-recognition: the audio as the body (or base64 ``inputs``) ->
        ``{"text"}``. ``parameters.language`` is our extension (Whisper's ISO-639-1 code)."""
        unknown = sorted(set(parameters) - {"language", "return_timestamps"})
        if unknown:
            raise InvalidRequest(f"'{unknown[0]}' is not supported", param="parameters." + unknown[0])
        if parameters.get("return_timestamps"):
            raise InvalidRequest("timestamps are not supported (use /v1/audio/transcriptions with "
                                 "response_format=verbose_json for per-window times)",
                                 param="parameters.return_timestamps")
        blobs = images.image_bytes(body.get("inputs"), "an audio file")  # raw bytes or base64
        if len(blobs) != 1:
            raise InvalidRequest("'inputs' must be one audio file", param="inputs")
        result = await speech.transcribe(self.service, principal, repo_id, blobs[0],
                                         language=parameters.get("language"), keep_alive=body.get("keep_alive"),
                                         param="inputs")
        return JSONResponse({"text": result.text}, headers=result.headers)

    # ---- TGI ------------------------------------------------------------------------------------
    async def generate(self, request: Request):
        return await self._tgi_entry(request, stream=False)

    async def generate_stream(self, request: Request):
        return await self._tgi_entry(request, stream=True)

    async def _tgi_entry(self, request, stream):
        try:
            body = await read_json(request)
        except HubError as exc:
            return tgi_error(exc)
        return await self._tgi(request, body, path_repo_id(request), stream=stream, compat=False)

    async def _tgi(self, request, body, repo_id, *, stream: bool, compat: bool):
        service = self.service
        principal = principal_of(request)
        lease = None
        try:
            inputs = body.get("inputs")
            if not isinstance(inputs, str) or not inputs:
                raise InvalidRequest("'inputs' must be a non-empty string", param="inputs")
            params, extras = tgi_sampling(body.get("parameters") or {}, service.settings)
            prefill = extras["details"] and extras["decoder_input_details"]
            if prefill and stream:  # as TGI: a stream's details carry no prefill
                raise InvalidRequest("decoder_input_details is not supported when streaming tokens",
                                     param="parameters.decoder_input_details")
            lease = await service.lease(repo_id, principal, {T.GENERATION}, "text-generation", body.get("keep_alive"))
            engine = lease.engine
            if prefill and not getattr(engine, "scores_prompts", False):
                raise InvalidRequest(f"decoder_input_details is not supported by this model's engine "
                                     f"({engine.engine_name})", param="parameters.decoder_input_details")
            prompt_ids = await offload.tokenize(engine, inputs)
            if extras["truncate"] is not None:
                prompt_ids = prompt_ids[-extras["truncate"]:]
            params = fit_to_context(params, len(prompt_ids), engine.context_length,
                                    default=service.settings.default_max_tokens)
            await lease.admit(principal, len(prompt_ids) + params.max_new_tokens)
        except HubError as exc:
            await abandon(lease, exc.status)
            return tgi_error(exc)
        except BaseException:
            await abandon(lease, 500)
            raise
        prefix = inputs if extras["return_full_text"] else ""
        if stream:
            events = self._tgi_stream(lease, prompt_ids, params, prefix)
            return StreamingResponse(events, media_type="text/event-stream", headers={**SSE_HEADERS, **lease.headers})
        try:
            # One more forward pass, over the prompt alone (TGI keeps its prefill's logits instead).
            prompt_logprobs = await engine.prompt_logprobs(prompt_ids) if prefill else []
            (result,) = await run_to_end(engine, [(0, prompt_ids, params)])
        except HubError as exc:
            await lease.close(status=exc.status)
            return tgi_error(exc)
        except BaseException:
            await lease.close(status=500)
            raise
        record_generation(lease, [result.stats])
        headers = {**lease.headers, "x-prompt-tokens": str(len(prompt_ids)),
                   "x-generated-tokens": str(result.stats.completion_tokens)}
        await lease.close(used_tokens=len(prompt_ids) + result.stats.completion_tokens)
        out: dict[str, Any] = {"generated_text": prefix + result.text}
        if extras["details"]:
            out["details"] = {
                "finish_reason": _TGI_FINISH.get(result.finish_reason, "length"),
                "generated_tokens": result.stats.completion_tokens, "seed": params.seed,
                "prefill": [{"id": i, "text": engine.token_text(i)[0], "logprob": lp[0] if lp else None}
                            for i, lp in zip(prompt_ids, prompt_logprobs)],
                "tokens": [{"id": i, "text": t, "logprob": lp[0] if lp else None, "special": engine.token_text(i)[1]}
                           for i, t, lp in zip(result.token_ids, result.token_texts, _padded(result.logprobs,
                                                                                            result.token_ids))]}
            if (body.get("parameters") or {}).get("top_n_tokens"):
                out["details"]["top_tokens"] = [_tgi_top(engine, lp) for lp in
                                                _padded(result.logprobs, result.token_ids)]
        return JSONResponse([out] if compat else out, headers=headers)

    async def _tgi_stream(self, lease, prompt_ids, params, prefix):
        stats = GenerationStats(len(prompt_ids))
        text, index, status = [prefix], 0, 200
        try:
            async for delta in stream_deltas(lease.engine, prompt_ids, params, stats):
                text.append(delta.text)
                if delta.token_id is None:
                    continue
                index += 1
                final = delta.finish_reason is not None
                lp = delta.logprob
                event = {"index": index, "token": {"id": delta.token_id, "text": delta.token_text,
                                                   "logprob": lp[0] if lp else None,
                                                   "special": lease.engine.token_text(delta.token_id)[1]},
                         "top_tokens": _tgi_top(lease.engine, lp) if lp and params.logprobs else None,
                         "generated_text": "".join(text) if final else None,
                         "details": {"finish_reason": _TGI_FINISH.get(delta.finish_reason, "length"),
                                     "generated_tokens": stats.completion_tokens, "seed": params.seed,
                                     "input_length": len(prompt_ids)} if final else None}
                yield sse(event)
        except HubError as exc:
            status = exc.status
            yield sse(tgi_error_body(exc)[1])
        finally:
            record_generation(lease, [stats])
            await lease.close(used_tokens=len(prompt_ids) + stats.completion_tokens, status=status)

    async def health(self, request: Request):
        """TGI's ``GET /health`` under the model's URL (``InferenceClient(model=URL).health_check()``):
        200 when the caller may use the model, with the routes' usual refusals otherwise. It does not
        load the model (a first request does)."""
        try:
            resolved = await self.service.resolve(path_repo_id(request), principal_of(request))
            T.detect_task(resolved)
        except HubError as exc:
            return tgi_error(exc)
        return Response(status_code=200, headers=model_headers(resolved))

    async def info(self, request: Request):
        service = self.service
        try:
            resolved = await service.resolve(path_repo_id(request), principal_of(request))
            task = T.detect_task(resolved)
        except HubError as exc:
            return tgi_error(exc)
        loaded = next((e for e in service.list_loaded() if e.resolved.key == resolved.key), None)
        context = getattr(loaded.engine, "context_length", None) if loaded else None
        device, dtype = reported_placement(service.settings, getattr(loaded.engine, "model", None) if loaded else None)
        return JSONResponse({
            "model_id": resolved.repo_id, "model_sha": resolved.commit, "model_pipeline_tag": task,
            "model_dtype": dtype, "model_device_type": device,
            "license": resolved.license, "max_concurrent_requests": service.settings.max_running,
            "max_best_of": 1, "max_stop_sequences": service.settings.max_stop_sequences,
            "max_input_tokens": context, "max_total_tokens": context,
            "max_client_batch_size": service.settings.max_client_batch, "validation_workers": 1,
            "router": "aicommons", "version": __version__, "sha": None, "docker_label": None,
            "loaded": loaded is not None,
        }, headers={"X-Model-Id": resolved.repo_id, "X-Model-Revision": resolved.commit})


# The ``parameters`` each task takes: what InferenceClient's method for it sends (some accepted
# without effect, docs/inference.md says which). Text generation's are TGI's (params.tgi_sampling).
_SEQ2SEQ_PARAMETERS = {"generate_parameters", "clean_up_tokenization_spaces", "truncation"}
_TASK_PARAMETERS: dict[str, set[str]] = {
    T.EMBEDDING: set(), T.SIMILARITY: set(),
    T.CLASSIFICATION: {"top_k", "function_to_apply"},
    T.FILL_MASK: {"top_k", "targets"},
    T.TOKEN_CLASSIFICATION: {"aggregation_strategy", "ignore_labels", "stride"},
    T.ZERO_SHOT: {"candidate_labels", "hypothesis_template", "multi_label"},
    T.SUMMARIZATION: _SEQ2SEQ_PARAMETERS,
    T.TRANSLATION: _SEQ2SEQ_PARAMETERS | {"src_lang", "tgt_lang"},
    T.IMAGE_CLASSIFICATION: {"top_k", "function_to_apply"},
}
_JSON_ACCEPTS = ("*/*", "application/*", "application/json", "text/event-stream")


def _check_call_fits_task(repo_id: str, task: str, body: dict, accept: str, headers: dict) -> None:
    """``InferenceClient(model=URL)`` names no task: the model's own answers. A call made for
    another task shows in what it sends (a parameter this task does not take, an ``Accept`` of an
    image) and is refused here, naming the model's task, instead of answered in a shape the client
    would misread as its own."""
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    if kinds and not any(k in _JSON_ACCEPTS for k in kinds):
        raise InvalidRequest(f"{repo_id} is a {task} model: it answers JSON, not {accept}", param="task",
                             status=406, headers=headers)
    inputs = body.get("inputs")
    if task != T.SIMILARITY and isinstance(inputs, dict) and "source_sentence" in inputs:
        raise InvalidRequest(f"{repo_id} is a {task} model: it does not compare sentences "
                             "(sentence-similarity's {'source_sentence', 'sentences'})", param="inputs", headers=headers)
    allowed = _TASK_PARAMETERS.get(task)
    parameters = body.get("parameters")
    if allowed is None or not isinstance(parameters, dict):
        return  # (text generation checks its own; a non-object is refused with the inputs)
    unknown = sorted(k for k, v in parameters.items() if v is not None and k not in allowed)
    if unknown:
        raise InvalidRequest(f"'{unknown[0]}' is not a parameter of {task}, the task of {repo_id} "
                             f"(it takes: {', '.join(sorted(allowed)) or 'none'})",
                             param="parameters." + unknown[0], headers=headers)


def _task_inputs(task: str, body: dict, parameters: dict, limit: int, max_new_tokens: int = 256):
    """-> (texts to run, whether the caller sent one string, parameters that change the batch)."""
    inputs = body.get("inputs")
    if task == T.SIMILARITY:
        if not isinstance(inputs, dict) or not isinstance(inputs.get("source_sentence"), str) \
                or not isinstance(inputs.get("sentences"), list) \
                or not all(isinstance(s, str) for s in inputs["sentences"]) or not inputs["sentences"]:
            raise InvalidRequest("'inputs' must be {'source_sentence': str, 'sentences': [str, ...]}", param="inputs")
        texts = [inputs["source_sentence"], *inputs["sentences"]]
        if len(texts) > limit:
            raise InvalidRequest(f"at most {limit} sentences per request", param="inputs")
        return texts, False, {}
    single = isinstance(inputs, str)
    texts = [inputs] if single else (inputs or [])  # (None: refused just below)
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise InvalidRequest("'inputs' must be a non-empty string or array of strings", param="inputs")
    if len(texts) > limit:
        raise InvalidRequest(f"at most {limit} inputs per request", param="inputs")
    p = "parameters."
    if task == T.CLASSIFICATION:
        return texts, single, {"top_k": get_number(parameters, "top_k", None, kind=int, low=1, param_prefix=p),
                               "function_to_apply": _function_to_apply(parameters)}
    if task == T.FILL_MASK:
        targets = parameters.get("targets")
        if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
            raise InvalidRequest("targets must be an array of strings", param=p + "targets")
        return texts, single, {"top_k": get_number(parameters, "top_k", None, kind=int, low=1, high=100,
                                                   param_prefix=p), "targets": targets}
    if task == T.TOKEN_CLASSIFICATION:
        strategy = parameters.get("aggregation_strategy")
        if strategy not in (None, "none", "simple", "first", "average", "max"):
            raise InvalidRequest("unknown aggregation_strategy", param=p + "aggregation_strategy")
        ignore = parameters.get("ignore_labels")
        if ignore is not None and (not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore)):
            raise InvalidRequest("ignore_labels must be an array of strings", param=p + "ignore_labels")
        return texts, single, {"aggregation_strategy": strategy, "ignore_labels": ignore}
    if task == T.ZERO_SHOT:
        labels = parameters.get("candidate_labels")
        if isinstance(labels, str):
            labels = [x.strip() for x in labels.split(",") if x.strip()]
        if not isinstance(labels, list) or not 0 < len(labels) <= 64 \
                or not all(isinstance(x, str) and x for x in labels):
            raise InvalidRequest("candidate_labels must be 1 to 64 non-empty strings", param=p + "candidate_labels")
        template = parameters.get("hypothesis_template") or "This example is {}."
        if not isinstance(template, str) or "{}" not in template:
            raise InvalidRequest("hypothesis_template must be a string with '{}'", param=p + "hypothesis_template")
        return texts, single, {"candidate_labels": labels, "hypothesis_template": template,
                               "multi_label": get_bool(parameters, "multi_label", False, p)}
    if task in T.SEQ2SEQ_TASKS:
        generate = parameters.get("generate_parameters") or {}
        if not isinstance(generate, dict):
            raise InvalidRequest("generate_parameters must be an object", param=p + "generate_parameters")
        wanted = get_number(generate, "max_new_tokens", None, kind=int, low=1, high=max_new_tokens,
                            param_prefix=p + "generate_parameters.")
        return texts, single, {"max_new_tokens": wanted or min(64, max_new_tokens)}
    return texts, single, {}  # feature-extraction: options sit at the root, applied after the batch


def _check_masks(texts: list[str], local_dir: Path) -> None:
    """fill-mask needs the model's mask token in every input. Checked here, before the batch: the
    pipeline raises for a text without one, which failed the whole batch (other callers' inputs
    too) with a 500."""
    mask = _mask_token(local_dir)
    for i, text in enumerate(texts):
        if mask and mask not in text:
            raise InvalidRequest(f"No mask_token ({mask}) found on the input"
                                 + (f" {i}" if len(texts) > 1 else ""), param="inputs")


@functools.lru_cache(maxsize=64)
def _mask_token(local_dir: Path) -> str | None:
    """The mask token the tokenizer's files name (a snapshot's files never change); None when
    they name none."""
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            token = json.loads((local_dir / name).read_text(encoding="utf-8")).get("mask_token")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str) and token:
            return token
    return None


def _with_prompt(texts: list[str], name, engine) -> list[str]:
    """feature-extraction's ``prompt_name``: the model's sentence-transformers prompt of that name
    (``config_sentence_transformers.json``, e.g. E5's ``"query: "``) goes before each text, as
    sentence-transformers' ``encode(prompt_name=...)`` and TEI do."""
    prompts = (getattr(engine, "encoder_info", None) or {}).get("prompts") or {}
    if not isinstance(name, str) or name not in prompts:
        names = ", ".join(repr(k) for k in prompts) or "none: it has no prompts"
        raise InvalidRequest(f"prompt_name {name!r} is not one of this model's prompts ({names})",
                             param="prompt_name")
    return [prompts[name] + text for text in texts]


def _function_to_apply(parameters: dict) -> str | None:
    fn = parameters.get("function_to_apply")
    if fn not in (None, "sigmoid", "softmax", "none"):
        raise InvalidRequest("function_to_apply must be sigmoid, softmax or none", param="parameters.function_to_apply")
    return fn


def _task_output(task: str, results: list, single: bool, body: dict):
    import numpy as np  # the inference extra; imported on first use, not at app start

    if task == T.SIMILARITY:
        vecs = np.asarray(results, dtype=np.float32)
        vecs = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        return [float(x) for x in vecs[1:] @ vecs[0]]
    if task == T.EMBEDDING:
        vecs = np.asarray(results, dtype=np.float32)
        dims = body.get("dimensions")
        if isinstance(dims, int) and not isinstance(dims, bool) and 0 < dims < vecs.shape[1]:
            vecs = vecs[:, :dims]
        if body.get("normalize", True) is not False:
            vecs = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
        return vecs.tolist()  # always 2-D, as TEI answers
    if task == T.CLASSIFICATION:
        return results  # one list of {label, score} per input: [[...]] even for one string
    if task in T.SEQ2SEQ_TASKS:
        key = "summary_text" if task == T.SUMMARIZATION else "translation_text"
        return [{key: text} for text in results]
    return results[0] if single else results


def _padded(logprobs, ids) -> list:
    logprobs = list(logprobs or [])
    return logprobs + [None] * (len(ids) - len(logprobs))


def _tgi_top(engine, lp) -> list[dict]:
    if not lp:
        return []
    return [{"id": i, "text": engine.token_text(i)[0], "logprob": v, "special": engine.token_text(i)[1]}
            for i, v in lp[1]]
