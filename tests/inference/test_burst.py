"""A burst of requests that reaches an idle engine a few ms apart is prefilled in one step
(``engines/burst.py``, issue 17): the gate itself, and the real engine on the tiny Llama, where the
first forward pass after the burst must carry every prompt with the gate and only the first prompt
without it."""

from __future__ import annotations

import asyncio
import time

import pytest

from aicommons.inference.engines.burst import BurstGate


def run(coro):
    return asyncio.run(coro)


def test_window_is_a_fraction_of_the_measured_step_capped():
    gate = BurstGate(0.15, max_wait_s=0.05)
    assert gate.window_s() == 0.0  # no step measured yet: nobody waits
    gate.observe_step(0.2)
    assert gate.window_s() == pytest.approx(0.03)
    gate.observe_step(1.2)  # smoothed, not replaced
    assert 0.2 < gate.step_s < 1.2
    assert gate.window_s() == 0.05
    off = BurstGate(0.0)
    off.observe_step(0.2)
    assert off.window_s() == 0.0


def test_an_idle_engine_holds_the_first_request_until_its_burst_has_arrived():
    async def go():
        # A window far longer than the arrivals' spread: a loaded box may run a 10 ms sleep 30 ms late
        # (a 30 ms window let the third request miss it while two helpers ran test suites beside it).
        gate = BurstGate(0.15, max_wait_s=0.5)
        gate.observe_step(2.0)  # window 300 ms
        entered: list[float] = []

        async def request(delay):
            await asyncio.sleep(delay)
            await gate.enter()
            entered.append(time.perf_counter())

        start = time.perf_counter()
        await asyncio.gather(request(0.0), request(0.01), request(0.02))
        return start, entered, gate.active

    start, entered, active = run(go())
    assert active == 3
    assert max(entered) - min(entered) < 0.005  # released together
    assert min(entered) - start >= 0.299  # after the window, counted from the first arrival


def test_a_busy_engine_never_holds_a_request():
    async def go():
        gate = BurstGate(0.15)
        gate.observe_step(0.2)
        gate.active = 1  # a request is running: the next step picks newcomers up anyway
        start = time.perf_counter()
        await gate.enter()
        return time.perf_counter() - start, gate.active

    waited, active = run(go())
    assert waited < 0.01 and active == 2


def test_a_cancelled_waiter_leaves_the_others_window_alone():
    async def go():
        gate = BurstGate(0.15)
        gate.observe_step(0.2)
        first = asyncio.ensure_future(gate.enter())
        second = asyncio.ensure_future(gate.enter())
        await asyncio.sleep(0.005)
        first.cancel()
        await asyncio.wait_for(second, 1.0)  # still released when the window ends
        with pytest.raises(asyncio.CancelledError):
            await first
        return gate.active

    assert run(go()) == 1  # only the request that went on counts as running


# ---- the real engine ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engines(model_dirs):
    pytest.importorskip("torch")
    from aicommons.inference.engines.transformers_lm import TransformersLM
    from aicommons.inference.settings import InferenceSettings
    from aicommons.inference.source import ResolvedModel

    out = {}
    for name, steps in (("gate", 0.15), ("off", 0.0)):
        settings = InferenceSettings.from_env({}, device="cpu", dtype="float32", engine="transformers",
                                              isolation="thread", threads=2, kv_cache_bytes=16 * 1024 * 1024,
                                              burst_wait_steps=steps)
        out[name] = TransformersLM.load(ResolvedModel("acme/tiny-llama", "0" * 40, model_dirs["llama"]), settings)
    yield out
    for engine in out.values():
        engine.close()


def first_pass_tokens(engine, prompts: list[list[int]], stagger_s: float) -> list[int]:
    """Query tokens of each forward pass while ``prompts`` arrive ``stagger_s`` apart on an idle engine
    (each generating 2 tokens)."""
    from aicommons.inference.engine import SamplingParams

    sizes: list[int] = []

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids")
        sizes.append(int(ids.shape[-1]) if ids is not None else -1)

    async def one(k, ids):
        await asyncio.sleep(k * stagger_s)
        async for _ in engine.generate(ids, SamplingParams(max_new_tokens=2, temperature=0.0)):
            pass

    async def burst():
        await asyncio.wait_for(asyncio.gather(*(one(k, p) for k, p in enumerate(prompts))), 60)

    handle = engine.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        asyncio.run(burst())
    finally:
        handle.remove()
    return sizes


def test_the_engine_prefills_a_staggered_burst_in_one_step_only_with_the_gate(engines):
    prompts = [engines["gate"].tokenize(text) for text in ("the quick fox", "a lazy dog runs over", "paris river")]
    total = sum(len(p) for p in prompts)
    for engine in engines.values():
        engine.burst.step_s = 0.3  # as if a decode step took 300 ms: a 45 ms window with the gate
    with_gate = first_pass_tokens(engines["gate"], prompts, stagger_s=0.012)
    without = first_pass_tokens(engines["off"], prompts, stagger_s=0.012)
    assert with_gate[0] == total, with_gate  # one step prefilled all three prompts
    assert without[0] == len(prompts[0]), without  # the first prompt went alone
    assert engines["gate"].burst.active == 0 and engines["off"].burst.active == 0
