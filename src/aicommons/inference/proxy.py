"""Pass an engine's own OpenAI answer through (vLLM): bytes in, bytes out.

Re-framing SSE is the main cost a hub adds in front of a GPU engine (spec §4.4), so we do not parse
events; we only stamp the pinned commit into ``system_fingerprint`` with a byte replace per event.
"""

from __future__ import annotations

from starlette.responses import StreamingResponse

_PASS_HEADERS = {"content-type"}


def forward_body(*, chat: bool, messages: list[dict] | None, prompt_ids: list[list[int]], fitted: list,
                 n: int, extra: dict, echo: bool = False) -> dict:
    """The request vLLM gets: built from what we validated, never the client's body. vLLM accepts
    many fields of its own (guided decoding with a client's regex or grammar, logits processors,
    ``prompt_logprobs``, ``best_of``, LoRA names...) that cost GPU time or reach code paths no
    admission counted; none of them passes. ``max_tokens`` is the one admitted (the smallest when
    several prompts were fitted), and prompts go as the token ids we counted."""
    params = fitted[0]
    out = {"n": n, "max_tokens": min(p.max_new_tokens for p in fitted), "temperature": params.temperature,
           "top_p": params.top_p, "stream": bool(extra.get("stream"))}
    if params.top_k > 0:
        out["top_k"] = params.top_k
    if params.seed is not None:
        out["seed"] = params.seed
    if params.stop:
        out["stop"] = list(params.stop)
    if params.ignore_eos:
        out["ignore_eos"] = True
    if out["stream"] and extra.get("include_usage"):
        out["stream_options"] = {"include_usage": True}
    if chat:
        out["messages"] = messages
    else:
        out["prompt"] = prompt_ids
        if echo:
            out["echo"] = True
    return out


async def proxy_openai(lease, path: str, body: dict):
    engine = lease.engine
    status, headers, chunks, close = await engine.proxy_openai(path, body)
    fingerprint = b'"system_fingerprint":"' + lease.resolved.commit.encode() + b'"'

    async def stream():
        buffer = b""
        try:
            async for chunk in chunks:
                buffer += chunk
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    yield _stamp(event, fingerprint) + b"\n\n"
            if buffer:
                yield _stamp(buffer, fingerprint)
        finally:
            await close()
            await lease.close(status=status)

    out_headers = {k: v for k, v in headers.items() if k.lower() in _PASS_HEADERS}
    return StreamingResponse(stream(), status_code=status, headers={**out_headers, **lease.headers})


def _stamp(event: bytes, fingerprint: bytes) -> bytes:
    for null in (b'"system_fingerprint":null', b'"system_fingerprint": null'):
        event = event.replace(null, fingerprint)
    return event
