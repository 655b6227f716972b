"""The encoder micro-batcher: what runs together, in what order, and what each caller gets back."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from aicommons.inference.batcher import MicroBatcher

from .aio import run_async


class Recorder:
    """A forward pass that records each batch and answers every item with ``(key, item)``."""

    def __init__(self, delay_s: float = 0.0, fail_on=None):
        self.batches: list[tuple] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.running = threading.Event()

    def __call__(self, key, items):
        self.running.set()
        self.batches.append((key, list(items)))
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot run {self.fail_on}")
        return [(key, item) for item in items]


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(1) as executor:
        yield executor


def batcher(run, pool, **kwargs) -> MicroBatcher:
    options = dict(max_wait_s=0.02, max_tokens=1000, max_items=100)
    options.update(kwargs)
    return MicroBatcher(run, pool, **options)


@run_async
async def test_concurrent_requests_share_one_pass_and_get_their_own_results(pool):
    run = Recorder()
    b = batcher(run, pool)
    results = await asyncio.gather(*(b.submit("k", [f"t{i}a", f"t{i}b"], 2) for i in range(5)))
    assert results == [[("k", f"t{i}a"), ("k", f"t{i}b")] for i in range(5)]
    assert len(run.batches) == 1 and len(run.batches[0][1]) == 10
    b.close()


@run_async
async def test_different_keys_never_share_a_pass(pool):
    run = Recorder()
    b = batcher(run, pool)
    await asyncio.gather(b.submit("a", ["x"], 1), b.submit("b", ["y"], 1), b.submit("a", ["z"], 1))
    assert sorted((key, tuple(items)) for key, items in run.batches) == [("a", ("x", "z")), ("b", ("y",))]
    b.close()


@run_async
async def test_token_and_item_budgets_split_batches(pool):
    run = Recorder()
    b = batcher(run, pool, max_tokens=10, max_items=3)
    await asyncio.gather(*(b.submit("k", [i], 4) for i in range(4)))  # 2 jobs fit 10 tokens
    assert [len(items) for _, items in run.batches] == [2, 2]
    run.batches.clear()
    await asyncio.gather(*(b.submit("k", [i], 1) for i in range(7)))
    assert [len(items) for _, items in run.batches] == [3, 3, 1]
    b.close()


@run_async
async def test_a_failed_pass_fails_its_callers_only_and_the_batcher_goes_on(pool):
    run = Recorder(fail_on="bad")
    b = batcher(run, pool)
    outcomes = await asyncio.gather(b.submit("k", ["bad"], 1), b.submit("k", ["ok"], 1), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)  # they shared the failing pass
    assert await b.submit("k", ["later"], 1) == [("k", "later")]
    b.close()


@run_async
async def test_a_caller_that_went_away_is_not_run(pool):
    run = Recorder(delay_s=0.05)
    b = batcher(run, pool, max_wait_s=0.001)
    first = asyncio.ensure_future(b.submit("k", ["first"], 1))
    await asyncio.get_running_loop().run_in_executor(None, run.running.wait)  # the first pass runs
    gone = asyncio.ensure_future(b.submit("k", ["gone"], 1))
    kept = asyncio.ensure_future(b.submit("k", ["kept"], 1))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == [("k", "kept")] and await first == [("k", "first")]
    assert [items for _, items in run.batches] == [["first"], ["kept"]]
    b.close()


@run_async
async def test_a_batch_cut_in_two_grows_back_together(pool):
    # Five clients start a pass; three more arrive while it runs. Taking whatever is pending when a
    # pass ends would run the three alone while the five come back, then the five alone, for ever
    # ([5, 3, 5, 3, 5, 3]). The batcher waits for the callers of the pass that just ended, so the
    # two groups merge.
    run = Recorder(delay_s=0.05)
    b = batcher(run, pool, max_wait_s=0.5)
    loop = asyncio.get_running_loop()

    async def client(name, rounds=3):
        for round_ in range(rounds):
            await b.submit("k", [(name, round_)], 1)

    early = [asyncio.ensure_future(client(f"a{i}")) for i in range(5)]
    await loop.run_in_executor(None, run.running.wait)  # the five are in the first pass
    late = [asyncio.ensure_future(client(f"b{i}")) for i in range(3)]
    await asyncio.gather(*early, *late)
    assert [len(items) for _, items in run.batches] == [5, 8, 8, 3]
    b.close()


@run_async
async def test_a_lone_request_after_a_pass_does_not_wait_for_callers_that_never_return(pool):
    run = Recorder()
    b = batcher(run, pool, max_wait_s=0.1)
    await asyncio.gather(*(b.submit("k", [i], 1) for i in range(4)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await b.submit("k", ["alone"], 1) == [("k", "alone")]  # 4 callers just finished; one is back
    assert loop.time() - started < 1.0  # waited at most about max_wait_s for the others
    b.close()


@run_async
async def test_a_request_larger_than_a_batch_is_split_and_answered_in_order(pool):
    """A client batch may be larger than one forward pass (LangChain's OpenAIEmbeddings sends up to
    1,000 texts a request): it runs as several batches of at most ``max_items``, answered in order."""
    run = Recorder()
    b = batcher(run, pool, max_items=4)
    assert await b.submit("k", list(range(10)), 10) == [("k", i) for i in range(10)]
    assert [len(items) for _, items in run.batches] == [4, 4, 2]
    b.close()
