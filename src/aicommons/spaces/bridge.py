"""Runs inside a Space's sandbox, before and around the app (standard library only: it runs with the
space's own Python, and imports nothing of the hub).

The sandbox has its own network namespace with loopback only. This process:

1. lays out the app: ``/home/user/app`` is a tree of symlinks to the read-only ``/srv/app`` in the
   private, size-limited tmpfs, so the app may write beside its files (caches, outputs) without
   changing them or filling the host's disk;
2. relays the hub's requests: ``/run/space/app.sock`` (the hub connects to it from outside) to the
   app's ``127.0.0.1:<app port>``;
3. relays the app's calls to the hub: ``127.0.0.1:<hub port>`` (``HF_ENDPOINT``) to
   ``/run/space/hub.sock``, which the hub serves from outside. Nothing else leaves the sandbox;
4. runs the app as its child and exits with its status (a signal ends both).

Usage: ``python bridge.py APP_PORT HUB_PORT -- command...``; for a build, ``python bridge.py --build
PROXY_PORT -- command...`` relays only ``127.0.0.1:PROXY_PORT`` to the hub's package-index proxy
(``/run/space/proxy.sock``, see ``build_proxy.py``).
"""

import asyncio
import os
import signal
import sys

SRC, APP, RUN = "/srv/app", "/home/user/app", "/run/space"


def lay_out() -> None:
    os.makedirs(os.path.realpath("/home/user"), exist_ok=True)  # HOME: a link into the private /tmp
    for root, dirs, files in os.walk(SRC):
        rel = os.path.relpath(root, SRC)
        target = os.path.normpath(os.path.join(APP, rel))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.symlink(os.path.join(root, name), os.path.join(target, name))
        dirs[:] = [d for d in dirs if d != ".git"]


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def relay(connect):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await connect()
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return handle


async def main(app_port: int, hub_port: int, command: list[str]) -> int:
    lay_out()
    app_sock, hub_sock = os.path.join(RUN, "app.sock"), os.path.join(RUN, "hub.sock")
    if os.path.exists(app_sock):
        os.unlink(app_sock)
    await asyncio.start_unix_server(relay(lambda: asyncio.open_connection("127.0.0.1", app_port)), app_sock)
    await asyncio.start_server(relay(lambda: asyncio.open_unix_connection(hub_sock)), "127.0.0.1", hub_port)
    process = await asyncio.create_subprocess_exec(*command, cwd=APP)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, process.send_signal, sig)
    return await process.wait()


async def build(proxy_port: int, command: list[str]) -> int:
    """A build: its only network is the hub's package-index proxy (``/run/space/proxy.sock``),
    offered inside as ``127.0.0.1:<proxy port>`` (HTTP(S)_PROXY)."""
    proxy_sock = os.path.join(RUN, "proxy.sock")
    await asyncio.start_server(relay(lambda: asyncio.open_unix_connection(proxy_sock)), "127.0.0.1", proxy_port)
    process = await asyncio.create_subprocess_exec(*command)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, process.send_signal, sig)
    return await process.wait()


if __name__ == "__main__":
    split = sys.argv.index("--")
    if sys.argv[1] == "--build":
        code = asyncio.run(build(int(sys.argv[2]), sys.argv[split + 1:]))
    else:
        code = asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[split + 1:]))
    sys.exit(code if code >= 0 else 128 - code)
