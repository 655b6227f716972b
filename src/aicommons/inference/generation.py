"""From engine token steps to text: incremental detokenising, stop sequences, timing.

Shared by the OpenAI and TGI routes so both stop, count and time generation the same way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .engine import SamplingParams


@dataclass
class Delta:
    token_id: int | None  # one generated token (None only for a closing delta)
    token_text: str  # that token's own text, as TGI token events carry it
    text: str  # text now safe to show (stop sequences held back / cut)
    finish_reason: str | None = None  # "eos" | "length" | "stop_sequence"
    logprob: tuple[float, list[tuple[int, float]]] | None = None  # (its logprob, top alternatives)


@dataclass
class GenerationStats:
    prompt_tokens: int
    completion_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    last_token_at: float | None = None
    gaps: list[float] = field(default_factory=list)

    def token(self) -> None:
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
        elif self.last_token_at is not None:
            self.gaps.append(now - self.last_token_at)
        self.last_token_at = now
        self.completion_tokens += 1


class StopMatcher:
    """Cuts the output at the first stop sequence and holds back any tail that might start one,
    so a streamed client never sees text that a later token turns into a stop."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self._held = ""
        self._longest = max((len(s) for s in self.stops), default=0)

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        buf = self._held + text
        cut = min((i for i in (buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return buf[:cut], True
        keep = 0
        for n in range(min(len(buf), self._longest - 1), 0, -1):
            if any(s.startswith(buf[-n:]) for s in self.stops):
                keep = n
                break
        self._held = buf[len(buf) - keep:] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


async def stream_deltas(engine, prompt_ids: list[int], params: SamplingParams,
                        stats: GenerationStats) -> AsyncIterator[Delta]:
    """Yield one ``Delta`` per generated token; the last one carries the finish reason.
    Leaving early (client gone, stop matched) closes the engine stream, which cancels the work."""
    decoder = engine.new_decoder()
    matcher = StopMatcher(params.stop)
    steps = engine.generate(prompt_ids, params)
    try:
        async for step in steps:
            ids = step.new_token_ids
            logprobs = getattr(step, "logprobs", None)
            for i, token_id in enumerate(ids):
                stats.token()
                piece = decoder.step(token_id)
                text, stopped = matcher.feed(piece)
                lp = logprobs[i] if logprobs is not None and i < len(logprobs) else None
                if stopped:
                    yield Delta(token_id, piece, text, "stop_sequence", lp)
                    return
                last = step.finished and i == len(ids) - 1
                if last:
                    yield Delta(token_id, piece, text + matcher.flush(), step.finish_reason, lp)
                    return
                yield Delta(token_id, piece, text, None, lp)
            if step.finished:  # finished without a new token in this step
                yield Delta(None, "", matcher.flush(), step.finish_reason)
                return
    finally:
        await steps.aclose()
