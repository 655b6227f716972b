"""Upload bodies read from the socket by the receiving thread (api/socket_body.py) in a real uvicorn with
our protocol: whole bodies, kept-alive connections, a request pipelined behind a body, Expect:
100-continue, slow and vanishing clients, a consumer that refuses, and the cases left to uvicorn
(chunked bodies, bodies that came with their headers)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from aicommons.api.socket_body import SocketBody, upload_body
from aicommons.api.zerocopy_server import ZeroCopyHttpToolsProtocol
from aicommons.storage.staging import receive
from tests.backends import free_port

MiB = 1024 * 1024
POOL = ThreadPoolExecutor(1, thread_name_prefix="test-receive")


@pytest.fixture(scope="module")
def server():
    events: list[str] = []

    async def upload(request: Request):
        body = upload_body(request)
        digest, size = hashlib.sha256(), 0
        limit = int(request.query_params.get("refuse_after", "0"))

        def consume(pieces):
            nonlocal size
            for piece in pieces:
                size += len(piece)
                if limit and size > limit:
                    raise ValueError("refused")
                digest.update(piece)

        try:
            await receive(body, consume, executor=POOL)
        except ValueError:
            return PlainTextResponse("refused", status_code=413)
        except BaseException as exc:
            events.append(type(exc).__name__)
            raise
        return JSONResponse({"direct": isinstance(body, SocketBody), "size": size, "sha256": digest.hexdigest()})

    async def hello(request: Request):
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/lfs-transfer/r/{oid}/{size}", upload, methods=["PUT"]),
                            Route("/other", upload, methods=["PUT"]), Route("/hello", hello)])
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off",
                                        http=ZeroCopyHttpToolsProtocol))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/hello", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield port, events
    srv.should_exit = True
    thread.join(10)


def _url(port: int, path: str = "/lfs-transfer/r/x/1") -> str:
    return f"http://127.0.0.1:{port}{path}"


def test_bodies_read_from_the_socket_on_a_kept_alive_connection(server):
    port, _ = server
    with httpx.Client(timeout=30) as client:
        for size in (5 * MiB + 17, 3 * MiB, 1):
            data = os.urandom(size)
            r = client.put(_url(port), content=data)
            assert r.status_code == 200
            answer = r.json()
            assert answer["size"] == size and answer["sha256"] == hashlib.sha256(data).hexdigest()
        assert client.put(_url(port), content=os.urandom(4 * MiB)).json()["direct"] is True
        assert client.get(_url(port, "/hello")).text == "hello"  # the same connection, parsed afresh
    # other routes and chunked bodies go through uvicorn's messages
    data = os.urandom(2 * MiB)
    assert httpx.put(_url(port, "/other"), content=data, timeout=30).json()["direct"] is False
    chunked = httpx.put(_url(port), content=iter([data[:MiB], data[MiB:]]), timeout=30).json()
    assert chunked == {"direct": False, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _raw_request(port: int, head: bytes, parts: list[bytes], pause: float = 0.0, ends: bytes = b"") -> bytes:
    """The server's answer to ``head`` and ``parts`` sent as they are, up to the connection's end or
    to ``ends``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for part in parts:
            if pause:
                time.sleep(pause)
            sock.sendall(part)
        if not ends:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while not (ends and answer.endswith(ends)) and (chunk := sock.recv(65536)):
            answer += chunk
        return answer


def _put_head(size: int, extra: bytes = b"") -> bytes:
    return (b"PUT /lfs-transfer/r/x/1 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n" % size) + extra + b"\r\n"


def test_slow_client_pipelined_request_and_expect_continue(server):
    port, _ = server
    data = os.urandom(3 * MiB)
    pieces = [data[i:i + 256 * 1024] for i in range(0, len(data), 256 * 1024)]
    # pauses longer than the thread's wait: the event loop waits for the socket between pieces
    answer = _raw_request(port, _put_head(len(data)), pieces[:3] + [b"".join(pieces[3:])], pause=0.12)
    assert hashlib.sha256(data).hexdigest().encode() in answer and b'"direct":true' in answer
    # a second request sent right behind the body, in the same write: read by the fresh parser
    answer = _raw_request(port, _put_head(len(data)), [data[:MiB], data[MiB:] + b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"])
    assert hashlib.sha256(data).hexdigest().encode() in answer and answer.endswith(b"hello")
    # a small body that came in the same write as its headers: parsed whole already, uvicorn's path
    answer = _raw_request(port, _put_head(5) + b"hello", [], ends=b"}")
    assert b'"direct":false' in answer and hashlib.sha256(b"hello").hexdigest().encode() in answer
    # Expect: 100-continue, as curl sends it: the body comes only after the interim answer
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_put_head(len(data), b"Expect: 100-continue\r\n"))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(data)
        answer = b""
        while b"}" not in answer:
            answer += sock.recv(65536)
    assert hashlib.sha256(data).hexdigest().encode() in answer


def test_a_refused_body_is_drained_or_cut_off_and_a_vanished_client_is_noticed(server, monkeypatch):
    port, events = server
    data = os.urandom(4 * MiB)
    refused = _put_head(len(data)).replace(b"/x/1 ", b"/x/1?refuse_after=1048576 ")
    # refused after 1 MiB: the rest is read and dropped, the answer says why, the connection goes on
    answer = _raw_request(port, refused, [data[:2 * MiB], data[2 * MiB:] + b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"],
                          ends=b"hello")
    assert answer.startswith(b"HTTP/1.1 413") and answer.endswith(b"refused" + answer[answer.index(b"HTTP/1.1 200"):])
    assert b"connection: close" not in answer.lower()
    # a rest larger than the server drains: the connection is closed after the answer
    from aicommons.api import socket_body

    monkeypatch.setattr(socket_body, "DRAIN_BYTES", 512 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(refused + data[:2 * MiB])
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass  # the server closed with the body's rest unread: the kernel answers with a reset
    # the client sends half its body and goes away: the upload fails as a disconnect
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_put_head(len(data)) + data[:MiB])
        time.sleep(0.2)
    deadline = time.time() + 10
    while "ClientGone" not in events and time.time() < deadline:
        time.sleep(0.05)
    assert "ClientGone" in events
    assert httpx.get(_url(port, "/hello"), timeout=10).text == "hello"  # the server goes on
