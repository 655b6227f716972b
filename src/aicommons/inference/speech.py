"""Speech recognition (issue 17): ``POST /v1/audio/transcriptions`` in OpenAI's multipart shape and
the HF task API's ``automatic-speech-recognition``, on Whisper-family models.

The audio is decoded off the event loop (``audio.py``, no ffmpeg), cut into the model's windows
(30 s for Whisper, without overlap: a word on a boundary may be split) and the windows go through
the encoder micro-batcher like any other encoder work, so concurrent requests share forward passes.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from aicommons.errors import HubError

from . import audio
from . import tasks as T
from .errors import InvalidRequest
from .http_util import abandon, openai_error, principal_of, read_body

# What a second of audio costs at admission: Whisper's encoder sees 50 frames a second.
TOKENS_PER_SECOND = 50
_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
_FIELDS = {"file", "model", "response_format", "language", "temperature", "stream"}


@dataclass
class Transcript:
    text: str
    duration: float
    language: str | None
    segments: list[tuple[float, float, str]]  # (start s, end s, text) per window
    headers: dict


async def transcribe(service, principal, model_ref: str, blob: bytes, *, language: str | None,
                     keep_alive=None, param: str = "file") -> Transcript:
    """Resolve, load, decode, admit and run; the lease is closed before this returns or raises."""
    settings = service.settings
    if len(blob) > settings.max_audio_bytes:
        raise InvalidRequest(f"the audio file is larger than {settings.max_audio_bytes} bytes", param=param,
                             status=413)
    lease = await service.lease(model_ref, principal, {T.SPEECH_RECOGNITION}, "speech recognition", keep_alive)
    try:
        info = lease.engine.encoder_info
        language = _language(language, info.get("languages") or [])
        rate = int(info["sampling_rate"])
        samples = await asyncio.to_thread(audio.decode, blob, rate, settings.max_audio_seconds, param)
        step = int(float(info["window_seconds"]) * rate)
        windows = [samples[i:i + step] for i in range(0, len(samples), step)]
        duration = len(samples) / rate
        max_new = int(info["max_new_tokens"])
        cost = math.ceil(duration) * TOKENS_PER_SECOND + max_new * len(windows)
    except BaseException as exc:
        await abandon(lease, exc.status if isinstance(exc, HubError) else 500)
        raise
    texts, headers = await lease.run_encoder(principal, T.SPEECH_RECOGNITION, windows,
                                             {"language": language, "max_new_tokens": max_new}, cost)
    segments = [(i * step / rate, min((i + 1) * step, len(samples)) / rate, text) for i, text in enumerate(texts)]
    return Transcript(" ".join(t for t in texts if t), duration, language, segments, headers)


def _language(value, languages: list[str]) -> str | None:
    """OpenAI sends ISO-639-1 codes ("en"); Whisper's generation config names the same codes."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest("'language' must be a string", param="language")
    code = value.strip().lower()
    if not languages:
        raise InvalidRequest("this model does not take a 'language'", param="language")
    if code not in languages:
        raise InvalidRequest(f"language '{value}' is not one this model knows (ISO-639-1 codes such as "
                             f"{', '.join(languages[:5])})", param="language")
    return code


async def read_form(request: Request, limit: int) -> dict:
    """A multipart/form-data body, read at most up to ``limit`` bytes (413 beyond), as
    {field: str | (filename, bytes)}."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise InvalidRequest("the body must be multipart/form-data (a 'file' and a 'model' field)")
    body = await read_body(request, limit)

    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=16).parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"the multipart body is malformed: {exc.message}") from None
    out: dict = {}
    try:
        for key, value in form.multi_items():
            if key in out:
                raise InvalidRequest(f"field '{key}' is given twice", param=key)
            if isinstance(value, UploadFile):
                out[key] = (value.filename or "", await value.read())
            else:
                out[key] = value
    finally:
        await form.close()
    return out


async def openai_transcriptions(service, request: Request) -> Response:
    """``client.audio.transcriptions.create(model=..., file=..., response_format=..., language=...)``."""
    principal = principal_of(request)
    try:
        # The form's own overhead (boundaries, small fields) on top of the largest audio file.
        form = await read_form(request, service.settings.max_audio_bytes + 64 * 1024)
        unknown = sorted(set(form) - _FIELDS)
        if unknown:
            raise InvalidRequest(f"'{unknown[0]}' is not supported", param=unknown[0])
        upload = form.get("file")
        if not isinstance(upload, tuple):
            raise InvalidRequest("'file' must be an uploaded audio file", param="file")
        model = form.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("'model' is required", param="model")
        fmt = form.get("response_format") or "json"
        if fmt not in _FORMATS:
            raise InvalidRequest(f"'response_format' must be one of {', '.join(_FORMATS)}", param="response_format")
        if form.get("stream") not in (None, "false", "False"):
            raise InvalidRequest("streamed transcriptions are not supported", param="stream")
        temperature = form.get("temperature")
        if temperature is not None and _number(temperature) != 0.0:
            raise InvalidRequest("only 'temperature' 0 (greedy decoding) is supported", param="temperature")
        result = await transcribe(service, principal, model, upload[1], language=form.get("language"))
    except HubError as exc:
        return openai_error(exc)
    headers = result.headers
    if fmt == "text":
        return PlainTextResponse(result.text + "\n", headers=headers)
    if fmt in ("srt", "vtt"):
        return PlainTextResponse(_subtitles(result.segments, fmt), headers=headers)
    usage = {"type": "duration", "seconds": math.ceil(result.duration)}
    if fmt == "json":
        return JSONResponse({"text": result.text, "usage": usage}, headers=headers)
    segments = [{"id": i, "seek": round(start * 100), "start": round(start, 3), "end": round(end, 3), "text": text,
                 "temperature": 0.0} for i, (start, end, text) in enumerate(result.segments)]
    return JSONResponse({"task": "transcribe", "language": result.language, "duration": round(result.duration, 3),
                         "text": result.text, "segments": segments, "usage": usage}, headers=headers)


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest("'temperature' must be a number", param="temperature") from None


def _subtitles(segments: list[tuple[float, float, str]], fmt: str) -> str:
    sep = "," if fmt == "srt" else "."

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"

    blocks = [f"{stamp(s)} --> {stamp(e)}\n{text}\n" for s, e, text in segments if text]
    if fmt == "vtt":
        return "WEBVTT\n\n" + "\n".join(blocks)
    return "\n".join(f"{i}\n{block}" for i, block in enumerate(blocks, 1))
