"""Pass an engine's own OpenAI answer through (vLLM): bytes in, bytes out.

Re-framing SSE is the main cost a hub adds in front of a GPU engine (spec §4.4), so we do not parse
events; we only stamp the pinned commit into ``system_fingerprint`` with a byte replace per event.
"""

from __future__ import annotations

from starlette.responses import StreamingResponse

_PASS_HEADERS = {"content-type"}


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
