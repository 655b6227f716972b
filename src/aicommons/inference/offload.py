"""CPU work a request needs before it is admitted, run off the event loop.

Rendering a chat template (a repo's own Jinja, which can loop) and tokenizing a long input can take
from milliseconds to seconds; on the event loop that time is taken from every other request of the
process. So a template is always rendered on a worker thread, and tokenizing or counting tokens
moves there once the input is long enough for the thread hop (tens of microseconds) not to matter.
Calls on one engine are serialised by the engine's own lock, as they were on the loop: Hugging
Face tokenizers refuse concurrent use of one tokenizer whose settings change ("Already borrowed").
"""

from __future__ import annotations

import asyncio
import threading

INLINE_CHARS = 2048  # shorter inputs are tokenized on the loop: the thread hop would cost more


def _lock_of(engine) -> threading.Lock:
    lock = getattr(engine, "_aicommons_cpu_lock", None)
    if lock is None:
        lock = engine.__dict__.setdefault("_aicommons_cpu_lock", threading.Lock())
    return lock


async def run_on_thread(engine, fn, *args):
    lock = _lock_of(engine)

    def locked():
        with lock:
            return fn(*args)

    return await asyncio.to_thread(locked)


def _chars(value) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_chars(v) for v in value)
    return 0


async def chat_prompt_ids(engine, messages, tools: list[dict] | None = None) -> list[int]:
    if tools:
        return await run_on_thread(engine, lambda: engine.chat_prompt_ids(engine.render_chat(messages, tools)))
    return await run_on_thread(engine, lambda: engine.chat_prompt_ids(engine.render_chat(messages)))


async def tokenize(engine, text: str) -> list[int]:
    if len(text) <= INLINE_CHARS:
        return engine.tokenize(text)
    return await run_on_thread(engine, engine.tokenize, text)


async def count_tokens(engine, texts) -> list[int]:
    if _chars(texts) <= INLINE_CHARS:
        return engine.count_tokens(texts)
    return await run_on_thread(engine, engine.count_tokens, texts)


async def vision_prompt_ids(engine, messages, tools: list[dict] | None, images: list) -> tuple[list[int], dict]:
    """A vision-language prompt: the template rendered over content parts, then the processor's
    token ids (image tokens expanded) and pixel inputs."""
    from .chat_template import as_parts

    return await run_on_thread(engine, lambda: engine.prepare(engine.render_chat(as_parts(messages), tools), images))
