"""Start a burst of requests in one engine step (issue 17, session 10).

Continuous batching starts a step as soon as one request is waiting. When an idle engine receives
a burst (8 clients at once), the hub's admission and the worker hop hand the requests over a few
milliseconds apart, so the first one is prefilled alone and the rest wait a whole step for it: on
a CPU at Qwen2.5-0.5B's shape that is ~200 ms of a step that reads all 2 GB of weights for one
prompt, one extra step per burst (engine in-process, arrivals 3 ms apart: 66 steps instead of 64
for 16 × 32 tokens, 5-7 % fewer tokens/s, +100 CPU-ms per request; bench/inference/overhead_profile.py).

``BurstGate`` holds a request that finds the engine idle for a fraction of one decode step
(``AICOMMONS_INFERENCE_BURST_WAIT_STEPS``, 0.1 by default), and
every request that arrives meanwhile is added with it, so they share the first step. The window
is a fraction of the engine's own measured step time (an average of the gaps between a stream's
tokens), so it scales with the model and the device: ~22 ms for 220 ms CPU steps, a fraction of a
millisecond on a GPU or a tiny model, nothing before the first step was measured. A request that
finds the engine busy is never held: it joins the next step anyway.
"""

from __future__ import annotations

import asyncio

MAX_WAIT_S = 0.05  # the most a lone request's first token is delayed, whatever the step time
_SMOOTHING = 0.2


class BurstGate:
    def __init__(self, step_fraction: float, max_wait_s: float = MAX_WAIT_S):
        self.step_fraction = step_fraction
        self.max_wait_s = max_wait_s
        self.active = 0  # requests added to the engine and not finished
        self.step_s = 0.0  # smoothed decode step time
        self._window: asyncio.Future | None = None

    def window_s(self) -> float:
        return min(self.max_wait_s, self.step_fraction * self.step_s)

    async def enter(self) -> None:
        """Wait (if the engine is idle) until the burst this request belongs to has arrived; the
        caller then adds its request and calls ``leave`` when it is finished or cancelled."""
        loop = asyncio.get_running_loop()
        window = self._window
        if window is None or window.done() or window.get_loop() is not loop:
            wait = self.window_s() if self.active == 0 else 0.0
            window = None
            if wait > 0:
                window = self._window = loop.create_future()
                loop.call_later(wait, _open, window)
        if window is not None:
            # shield: a waiter that is cancelled (its client left) must not cancel the others' window
            await asyncio.shield(window)
        self.active += 1

    def leave(self) -> None:
        self.active = max(0, self.active - 1)

    def observe_step(self, seconds: float) -> None:
        """One gap between two tokens of a stream: a decode step, as the engine runs it now."""
        self.step_s = seconds if self.step_s == 0.0 else self.step_s + _SMOOTHING * (seconds - self.step_s)


def _open(window: asyncio.Future) -> None:
    if not window.done():
        window.set_result(None)
