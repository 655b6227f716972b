"""Models running in their own worker processes (issue 17): the hub's side of ``worker.py``.

The hub keeps only the tokenizer (to count, render chat templates and detokenize, as before); the
weights, the KV cache and the continuous-batching thread live in the worker, so a heavy step never
holds the hub's GIL, a crash takes only the worker, and unloading frees the memory for certain
(the process exits). A reader thread turns the worker's messages into event-loop callbacks.

When the worker dies (killed, out of memory, a crash in native code) every request in flight gets
a 503 with ``Retry-After: 1`` (clients retry it), ``healthy()`` turns false, and the model manager
loads a fresh worker for the next request.
"""

from __future__ import annotations

import asyncio
import faulthandler
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .. import worker_protocol as P
from ..engine import PROMPT_LOGPROBS, EngineStep, SamplingParams
from ..errors import GenerationFailed, InvalidRequest, Overloaded
from ..source import ResolvedModel
from .transformers_lm import LMText, gguf_kwargs
from .vision_lm import VisionPrompts

_rids = itertools.count(1)
log = logging.getLogger("aicommons.inference")


def _worker_died() -> Overloaded:
    return Overloaded("the model's engine process stopped; it is being restarted", headers={"Retry-After": "1"})


class _WorkerClient:
    """The hub's end of one worker: its process, the socket, the requests waiting on it."""

    def _init_client(self, proc: subprocess.Popen, conn: Connection, ready: P.Ready, on_batch=None) -> None:
        self.proc = proc
        self.conn = conn
        self.worker_pid = ready.pid
        self._footprint = ready.footprint
        self._on_batch = on_batch
        self._pending: dict[int, asyncio.Queue] = {}
        self._alive = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._send_lock = threading.Lock()

    @staticmethod
    def _start(resolved: ResolvedModel, task: str, settings,
               meanwhile: Callable[[], Any] = lambda: None) -> tuple[subprocess.Popen, Connection, P.Ready, Any]:
        """On the loader thread: spawn the worker, run ``meanwhile`` (the hub's own part of the load,
        such as its tokenizer, done while the worker imports torch: both cores work), then wait for
        the worker's model to load. -> (process, connection, its Ready, what ``meanwhile`` returned).

        A worker that stops using CPU before it is ready is stuck (a load always computes): after
        ``STALL_SECONDS`` its threads' stacks go to the log and it is replaced, once."""
        proc, conn = spawn_worker(resolved, task, settings)
        try:
            mine = meanwhile()
        except BaseException:
            _kill(proc, conn)  # still importing: it would not hear a Shutdown
            raise
        for attempt in (1, 2):
            waited = _wait_ready(proc, conn, settings.load_timeout_seconds, resolved.repo_id)
            if waited == "ready":
                break
            _kill(proc, conn)
            if waited == "timeout" or attempt == 2:
                raise GenerationFailed("the engine process did not load the model in time")
            log.warning("the engine process loading %s was stuck; starting another", resolved.repo_id)
            proc, conn = spawn_worker(resolved, task, settings)
        try:
            ready = conn.recv()
        except (EOFError, OSError):
            ready = None
        if not isinstance(ready, P.Ready):
            _stop(proc, conn)
            detail = f": {ready.kind}: {ready.message}" if isinstance(ready, P.LoadFailed) else ""
            raise GenerationFailed(f"the engine process could not load the model{detail}")
        return proc, conn, ready, mine

    # ---- messages from the worker ------------------------------------------------------------
    def _ensure_reader(self) -> None:
        if self._loop is not None:
            return
        self._loop = loop = asyncio.get_running_loop()

        def read():
            while True:
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    _call_soon(loop, self._died)
                    return
                if not _call_soon(loop, self._dispatch, msg):
                    return

        threading.Thread(target=read, name=f"aicommons-engine-{self.worker_pid}", daemon=True).start()

    def _dispatch(self, msg) -> None:
        if isinstance(msg, P.Steps):
            for rid, step in msg.items:
                queue = self._pending.get(rid)
                if queue is not None:
                    queue.put_nowait(step)
        elif isinstance(msg, (P.Failed, P.Result)):
            queue = self._pending.get(msg.rid)
            if queue is not None:
                queue.put_nowait(_error(msg) if isinstance(msg, P.Failed) else msg)
        elif isinstance(msg, P.Batch) and self._on_batch is not None:
            self._on_batch((msg.task,), msg.size)

    def _died(self) -> None:
        self._alive = False
        for queue in self._pending.values():
            queue.put_nowait(_worker_died())

    def _send(self, msg) -> None:
        try:
            with self._send_lock:
                self.conn.send(msg)
        except (OSError, EOFError, ValueError):
            self._alive = False
            raise _worker_died() from None

    def _open(self) -> tuple[int, asyncio.Queue]:
        if not self.healthy():
            raise _worker_died()
        self._ensure_reader()
        rid = next(_rids)
        queue: asyncio.Queue = asyncio.Queue()
        self._pending[rid] = queue
        return rid, queue

    def _cancel(self, rid: int) -> None:
        self._pending.pop(rid, None)
        if self._alive:
            try:
                self._send(P.Cancel(rid))
            except Overloaded:
                pass

    async def _call(self, task: str, inputs: list, params: dict, cost: int) -> list:
        """One ``Run`` message and its ``Result``: the worker's ``engine.run``."""
        rid, queue = self._open()
        done = False
        try:
            self._send(P.Run(rid, task, list(inputs), params, cost))
            item = await queue.get()
            done = True
            if isinstance(item, Exception):
                raise item
            return item.value
        finally:
            if done:
                self._pending.pop(rid, None)
            else:
                self._cancel(rid)

    def healthy(self) -> bool:
        return self._alive and self.proc.poll() is None

    def footprint_bytes(self) -> int:
        return self._footprint

    def close(self) -> None:
        self._alive = False
        _stop(self.proc, self.conn)


class ProcessLM(LMText, _WorkerClient):
    engine_name = "transformers-cb"
    isolated = True

    def __init__(self, proc: subprocess.Popen, conn: Connection, tokenizer, ready: P.Ready):
        self._init_client(proc, conn, ready)
        info = ready.info
        self.engine_name = str(info.get("engine", type(self).engine_name))  # llama.cpp for a GGUF file
        self._init_text(tokenizer, context_length=int(info["context_length"]), eos_ids=list(info["eos_ids"]),
                        vocab_size=int(info["vocab_size"]))
        self.scores_prompts = bool(info.get("scores_prompts"))

    @classmethod
    def load(cls, resolved: ResolvedModel, settings) -> ProcessLM:
        def tokenizer():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(Path(resolved.local_dir), **gguf_kwargs(resolved))

        proc, conn, ready, loaded = cls._start(resolved, "text-generation", settings, tokenizer)
        return cls(proc, conn, loaded, ready)

    async def prompt_logprobs(self, prompt_ids: list[int], top: int = 0) -> list:
        (value,) = await self._call(PROMPT_LOGPROBS, [list(prompt_ids)], {"top": top}, len(prompt_ids))
        return value

    async def generate(self, prompt_ids: list[int], params: SamplingParams,
                       media: dict | None = None) -> AsyncIterator[EngineStep]:
        rid, queue = self._open()
        finished = False
        try:
            self._send(P.Generate(rid, list(prompt_ids), params, media))
            while True:
                item = await queue.get()
                if isinstance(item, Exception):
                    finished = True
                    raise item
                if item.finished:
                    finished = True
                yield item
                if finished:
                    return
        finally:
            if finished:
                self._pending.pop(rid, None)
            else:
                self._cancel(rid)  # the client left or a stop sequence matched


class ProcessVisionLM(VisionPrompts, ProcessLM):
    """A vision-language model in a worker: the hub keeps the processor (template, image tokens,
    pixel values); the worker runs generate() on them (engines/vision_lm.py)."""

    engine_name = "transformers-vlm"

    @classmethod
    def load(cls, resolved: ResolvedModel, settings) -> ProcessVisionLM:
        from .. import tasks as T
        from .vision_lm import load_processor

        proc, conn, ready, processor = cls._start(resolved, T.VISION_CHAT, settings,
                                                  lambda: load_processor(Path(resolved.local_dir)))
        engine = cls(proc, conn, processor.tokenizer, ready)
        engine._init_processor(processor)
        return engine


class ProcessEncoder(_WorkerClient):
    """An encoder (embeddings, classification, ranking, seq2seq, images) in a worker process. Its
    micro-batcher runs in the worker; the hub counts tokens with its own copy of the tokenizer."""

    engine_name = "transformers-encoder"
    proxies_openai = False
    isolated = True

    def __init__(self, task: str, proc, conn, tokenizer, ready: P.Ready, on_batch=None):
        from .transformers_encoder import _private_counter

        self._init_client(proc, conn, ready, on_batch)
        self.task = task
        self.tokenizer = tokenizer
        self._counter = _private_counter(tokenizer) if tokenizer is not None else None
        self.max_input_tokens = int(ready.info.get("max_input_tokens", 0))
        self.encoder_info = dict(ready.info)

    @classmethod
    def load(cls, resolved: ResolvedModel, task: str, settings, on_batch=None) -> ProcessEncoder:
        from .. import tasks as T

        def tokenizer():
            if task in T.MEDIA_TASKS:
                return None
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(Path(resolved.local_dir))

        proc, conn, ready, loaded = cls._start(resolved, task, settings, tokenizer)
        return cls(task, proc, conn, loaded, ready, on_batch)

    def count_tokens(self, texts: list[str]) -> list[int]:
        from .transformers_encoder import count_tokens

        return count_tokens(self._counter, self.tokenizer, texts)

    async def run(self, task: str, inputs: list, params: dict, cost: int) -> list:
        return await self._call(task, inputs, params, cost)


def spawn_worker(resolved: ResolvedModel, task: str, settings) -> tuple[subprocess.Popen, Connection]:
    """``python -m aicommons.inference.worker FD`` with FD its end of a socket pair."""
    mine, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "aicommons.inference.worker", str(theirs.fileno())],
                                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
    finally:
        theirs.close()
    conn = Connection(mine.detach())
    conn.send((resolved, task, settings))
    return proc, conn


def _stop(proc: subprocess.Popen, conn: Connection) -> None:
    try:
        conn.send(P.Shutdown())
    except (OSError, EOFError, ValueError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    finally:
        try:
            conn.close()
        except OSError:
            pass


STALL_SECONDS = 60.0  # a loading worker whose CPU time stays put this long is stuck
SLOW_LOAD_DUMP_SECONDS = 120.0  # a load still under way after this long: every thread's stack to the log
POLL_SECONDS = 5.0


def _wait_ready(proc: subprocess.Popen, conn: Connection, timeout: float, repo_id: str) -> str:
    """Wait for the worker's first message: "ready" (it came, or the worker exited: the caller reads
    which), "stalled" (no CPU used for ``STALL_SECONDS``), or "timeout"."""
    started = time.monotonic()
    cpu, since, dumped = _cpu_seconds(proc.pid), started, False
    while True:
        if conn.poll(POLL_SECONDS) or proc.poll() is not None:
            return "ready"
        now = time.monotonic()
        if now - started >= timeout:
            return "timeout"
        if not dumped and now - started >= SLOW_LOAD_DUMP_SECONDS:
            dumped = True
            _dump_stacks(proc, f"loading {repo_id} is taking {now - started:.0f} s")
        used = _cpu_seconds(proc.pid)
        if used is None or cpu is None or used > cpu:
            cpu, since = used, now
        elif now - since >= STALL_SECONDS:
            _dump_stacks(proc, f"the engine process loading {repo_id} used no CPU for {STALL_SECONDS:.0f} s")
            return "stalled"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (and its waited-for children), from /proc; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _dump_stacks(proc: subprocess.Popen, why: str) -> None:
    """Where a slow or stuck load is: the worker's threads (it prints them on SIGUSR1, worker.py) and
    the hub's, both into the server's log."""
    log.warning("%s: the stacks of its threads and of the hub's follow", why)
    try:
        os.kill(proc.pid, signal.SIGUSR1)
    except OSError:
        pass
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    time.sleep(0.5)  # the worker's dump lands before whatever the hub logs next


def _kill(proc: subprocess.Popen, conn: Connection) -> None:
    proc.kill()
    proc.wait(timeout=10)
    conn.close()


def _call_soon(loop, fn, *args) -> bool:
    try:
        loop.call_soon_threadsafe(fn, *args)
        return True
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        return False


def _error(msg) -> Exception:
    if msg.kind == "invalid":
        return InvalidRequest(msg.message, param=msg.param)
    if msg.kind == "overloaded":
        return Overloaded(msg.message, headers={"Retry-After": "1"})
    return GenerationFailed(msg.message)
