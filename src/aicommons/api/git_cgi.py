"""Running a CGI program (``git http-backend``) as an ASGI response, streaming both ways.

The request body goes to the program's stdin as it arrives and its stdout goes to the client as
it is produced, in pieces of at most 64 KiB: a pack of any size passes through without being held
in memory. Pipes and the client's own pace give backpressure in both directions.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import ByteReceiveStream, Process

log = logging.getLogger("aicommons.git")

CHUNK = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024
STDERR_KEPT = 8 * 1024


def parse_cgi_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status and headers of a CGI response head (without its blank line)."""
    status, headers = 200, []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            continue
        name, _, value = line.partition(b":")
        name, value = name.strip(), value.strip()
        if name.lower() == b"status":
            status = int(value.split(b" ", 1)[0])
        else:
            headers.append((name.lower(), value))
    return status, headers


def _split_head(buffer: bytes) -> tuple[bytes, bytes] | None:
    """(head, rest of body) once the blank line that ends the head has arrived."""
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := buffer.find(sep)) >= 0]
    if not ends:
        return None
    index, length = min(ends)
    return buffer[:index], buffer[index + length:]


class _Client:
    """The ASGI ``send`` side; a client that went away turns every later send into a no-op."""

    def __init__(self, send):
        self.send = send
        self.gone = False
        self.started = False

    async def _send(self, message: dict) -> None:
        if self.gone:
            return
        try:
            await self.send(message)
        except OSError:  # uvicorn's ClientDisconnected
            self.gone = True

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})


class CgiResponse:
    """Run ``argv`` with the CGI ``env``; relay the request to it and its answer to the client.

    ``after(returncode)`` runs once the program has exited and before the response ends, even if
    the client left: a push is recorded before ``git push`` returns, and always. With
    ``kill_on_disconnect`` (reads) a client that leaves stops the program; a write is left to
    finish, since stopping it half way would only make its outcome harder to know.
    """

    def __init__(self, argv: list[str], env: dict[str, str], *,
                 after: Callable[[int], Awaitable[None]] | None = None, kill_on_disconnect: bool = True):
        self.argv = argv
        self.env = env
        self.after = after
        self.kill_on_disconnect = kill_on_disconnect
        self.killed = False

    async def __call__(self, scope, receive, send) -> None:
        # A session of its own, so that the program and its children (upload-pack, the hook)
        # can be stopped together.
        process = await anyio.open_process(self.argv, env=self.env, start_new_session=True,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        client = _Client(send)
        stderr = bytearray()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._feed, receive, process, client)
                tasks.start_soon(self._collect, process.stderr, stderr)
                await self._relay(process.stdout, client)
                await process.stdout.aclose()  # at its end already, unless the head was unusable
                await process.wait()
                tasks.cancel_scope.cancel()  # the feeder may still be waiting for a disconnect
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish(process, client, stderr)

    async def _finish(self, process: Process, client: _Client, stderr: bytearray) -> None:
        if process.returncode is None and self.kill_on_disconnect:
            self._kill(process)
        for stream in (process.stdin, process.stdout, process.stderr):  # unblocks a program writing to no one
            await stream.aclose()
        await process.wait()
        if self.killed:
            log.info("%s stopped: the client went away", self.argv[-1])
        elif process.returncode != 0 or stderr:
            log.warning("%s exited with %s: %s", self.argv[-1], process.returncode,
                        stderr.decode("utf-8", "replace").strip())
        if self.after is not None:
            try:
                await self.after(process.returncode)
            except Exception:  # noqa: BLE001 - the client still gets its (already sent) answer
                log.exception("after %s", self.argv[-1])
        if not client.started:
            await client.start(502, [(b"content-type", b"text/plain; charset=utf-8")])
            await client.body(b"git http-backend failed\n", more=False)
        else:
            await client.body(b"", more=False)

    def _kill(self, process: Process) -> None:
        self.killed = True
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def _feed(self, receive, process: Process, client: _Client) -> None:
        """Copy the request body to stdin; then watch for the client leaving."""
        stdin_open = True
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self._client_left(process, client)
                    return
                if message.get("body") and stdin_open:
                    try:
                        await process.stdin.send(message["body"])
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        stdin_open = False  # the program stopped reading: drop the rest
                if not message.get("more_body", False):
                    break
        finally:
            await process.stdin.aclose()
        while (await receive())["type"] != "http.disconnect":
            pass
        self._client_left(process, client)

    def _client_left(self, process: Process, client: _Client) -> None:
        client.gone = True
        if self.kill_on_disconnect and process.returncode is None:
            self._kill(process)

    @staticmethod
    async def _relay(stdout: ByteReceiveStream, client: _Client) -> None:
        buffer = b""
        while (parts := _split_head(buffer)) is None:
            try:
                buffer += await stdout.receive(CHUNK)
            except anyio.EndOfStream:
                return  # no response at all: _finish answers 502
            if len(buffer) > MAX_HEAD_BYTES:
                log.error("git http-backend sent no response head in %d bytes", len(buffer))
                return
        head, rest = parts
        try:
            status, headers = parse_cgi_head(head)
        except ValueError:
            log.error("git http-backend sent a bad response head: %r", head[:200])
            return
        await client.start(status, headers)
        if rest:
            await client.body(rest)
        async for chunk in stdout:
            await client.body(chunk)

    @staticmethod
    async def _collect(stream: ByteReceiveStream, kept: bytearray) -> None:
        async for chunk in stream:
            kept += chunk
            del kept[:-STDERR_KEPT]
