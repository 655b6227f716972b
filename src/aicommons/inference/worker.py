"""An engine worker process: loads one model and serves the hub over ``worker_protocol``.

Started by ``engines/process.py`` as ``python -m aicommons.inference.worker FD``, where FD is its
end of a socket pair; the first message it reads is ``(resolved, task, settings)``. It runs the same
engine classes the hub would run in-process, on its own asyncio loop: a reader thread turns
incoming messages into loop callbacks, and everything the engines produce in one turn of the loop
goes back as one ``Steps`` message. When the hub goes away (EOF on the socket) the worker exits.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from multiprocessing.connection import Connection

from aicommons.errors import HubError

from . import worker_protocol as P
from .engine import EngineStep
from .errors import InvalidRequest, Overloaded


def load_engine(resolved, task: str, settings, on_batch=None):
    from . import tasks as T

    if task == T.GENERATION:
        from .engines.llama_cpp import LlamaCppLM, use_llama_cpp

        if use_llama_cpp(resolved, settings):
            return LlamaCppLM.load(resolved, settings)
        from .engines.transformers_lm import TransformersLM

        return TransformersLM.load(resolved, settings)
    if task == T.VISION_CHAT:
        from .engines.vision_lm import VisionLM

        return VisionLM.load(resolved, settings)
    from .engines.transformers_encoder import TransformersEncoder

    return TransformersEncoder.load(resolved, task, settings, on_batch=on_batch)


class Worker:
    def __init__(self, conn: Connection, engine, loop: asyncio.AbstractEventLoop):
        self.conn = conn
        self.engine = engine
        self.loop = loop
        self.tasks: dict[int, asyncio.Task] = {}
        self.outbox: list[tuple[int, EngineStep]] = []
        self.flush_scheduled = False
        self.stopped = loop.create_future()

    # ---- from the reader thread, on the loop ----------------------------------------------------
    def handle(self, msg) -> None:
        if isinstance(msg, P.Generate):
            self.tasks[msg.rid] = self.loop.create_task(self._generate(msg))
        elif isinstance(msg, P.Run):
            self.tasks[msg.rid] = self.loop.create_task(self._run(msg))
        elif isinstance(msg, P.Cancel):
            task = self.tasks.pop(msg.rid, None)
            if task is not None:
                task.cancel()
        elif isinstance(msg, P.Shutdown) and not self.stopped.done():
            self.stopped.set_result(None)

    def hub_gone(self) -> None:
        if not self.stopped.done():
            self.stopped.set_result(None)

    # ---- work -----------------------------------------------------------------------------------
    async def _generate(self, msg: P.Generate) -> None:
        try:
            extra = {"media": msg.media} if msg.media else {}
            async for step in self.engine.generate(msg.prompt_ids, msg.params, **extra):
                self._queue(msg.rid, step)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the request it belongs to
            self._send(_failed(msg.rid, exc))
        finally:
            self.tasks.pop(msg.rid, None)

    async def _run(self, msg: P.Run) -> None:
        try:
            value = await self.engine.run(msg.task, msg.inputs, msg.params, msg.tokens)
            self._send(P.Result(msg.rid, value))
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001
            self._send(_failed(msg.rid, exc))
        finally:
            self.tasks.pop(msg.rid, None)

    def _queue(self, rid: int, step: EngineStep) -> None:
        self.outbox.append((rid, step))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        items, self.outbox = self.outbox, []
        if items:
            self._send(P.Steps(items))

    def _send(self, msg) -> None:
        if isinstance(msg, P.Failed) or isinstance(msg, P.Result):
            self._flush()  # keep a request's steps ahead of its end
        try:
            self.conn.send(msg)
        except (OSError, EOFError):
            self.hub_gone()


def _failed(rid: int, exc: Exception) -> P.Failed:
    if isinstance(exc, InvalidRequest):
        return P.Failed(rid, "invalid", str(exc), getattr(exc, "param", None))
    if isinstance(exc, Overloaded):
        return P.Failed(rid, "overloaded", str(exc))
    if isinstance(exc, HubError):
        return P.Failed(rid, "failed", str(exc))
    return P.Failed(rid, "failed", f"{type(exc).__name__} in the engine")


async def serve(conn: Connection, engine) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker(conn, engine, loop)

    def read():
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(worker.hub_gone)
                return
            loop.call_soon_threadsafe(worker.handle, msg)
            if isinstance(msg, P.Shutdown):
                return

    threading.Thread(target=read, name="aicommons-worker-reader", daemon=True).start()
    await worker.stopped
    for task in list(worker.tasks.values()):
        task.cancel()


def main(fd: int) -> None:
    conn = Connection(fd)
    resolved, task, settings = conn.recv()

    def on_batch(key, size):  # the batcher calls it on the worker's loop, the one thread that sends
        try:
            conn.send(P.Batch(key[0], size))
        except (OSError, EOFError):
            pass

    try:
        engine = load_engine(resolved, task, settings, on_batch)
    except Exception as exc:  # noqa: BLE001 - reported to the hub, which answers the request
        conn.send(P.LoadFailed(type(exc).__name__, str(exc)[:500]))
        return
    info = dict(getattr(engine, "text_info", {}) or getattr(engine, "encoder_info", {}) or {})
    conn.send(P.Ready(os.getpid(), int(engine.footprint_bytes()), info))
    try:
        asyncio.run(serve(conn, engine))
    finally:
        try:
            engine.close()
        finally:
            conn.close()


if __name__ == "__main__":
    import faulthandler
    import signal

    # The hub asks for every thread's stack when a load seems stuck (engines/process.py): to its log.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    main(int(sys.argv[1]))
