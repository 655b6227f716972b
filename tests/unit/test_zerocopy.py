"""The zero-copy send extension (api/zerocopy_server.py) in a real uvicorn, and the file response
that uses it (api/file_response.py), against the same response without the extension."""

from __future__ import annotations

import os
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from aicommons.api.file_response import LocalFileResponse
from aicommons.api.zerocopy_server import EXTENSION, ZeroCopyHttpToolsProtocol

MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def content(tmp_path_factory):
    path = tmp_path_factory.mktemp("zc") / "w.bin"
    data = os.urandom(24 * MiB + 12345)
    path.write_bytes(data)
    return path, data


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """A chunk-stored file over two local xorbs: raw chunks (sent from the xorb files) and LZ4 ones
    (decoded), more than one list of parts long (``PART_BYTES``)."""
    import random

    from aicommons.xet.files import ChunkedFile
    from aicommons.xet.hashing import to_hex
    from aicommons.xet.shard import FileSegment
    from aicommons.xet.xorb import Scheme, read_index, serialize_xorb, verify_upload

    rng = random.Random(7)
    root = tmp_path_factory.mktemp("xorbs")
    xorbs = [[rng.randbytes(65536) if i % 5 else b"%d," % i * 9000 for i in range(300)] for _ in range(2)]
    indexes, segments = {}, []
    for chunks in xorbs:
        verified = verify_upload(*serialize_xorb(chunks, Scheme.LZ4))
        (root / to_hex(verified.layout.hash)).write_bytes(verified.stored())
        indexes[verified.layout.hash] = read_index(verified.footer[:-4])
        segments.append(FileSegment(verified.layout.hash, sum(map(len, chunks)), 0, len(chunks)))
    data = b"".join(b"".join(chunks) for chunks in xorbs)
    assert len(data) > 16 * MiB
    return lambda: ChunkedFile(segments, indexes.__getitem__, lambda h: open(root / to_hex(h), "rb"), len(data)), data


@pytest.fixture(scope="module")
def app(content, chunked):
    from aicommons.api.chunked import chunked_file_response

    path, data = content
    seen: dict = {}

    async def chunked_file(request):
        return chunked_file_response(chunked[0](), {"ETag": '"v1"'}, request.headers.get("range"),
                                     request.headers.get("if-range"), "application/octet-stream",
                                     request.method == "HEAD")

    async def file(request):
        seen["extensions"] = dict(request.scope.get("extensions", {}))
        return LocalFileResponse(path, len(data), {"ETag": '"v1"'}, "application/octet-stream")

    async def mixed(scope, receive, send):  # body and zero-copy messages interleaved, by hand
        with open(path, "rb") as f:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"%d" % (3 + 10 + 3 + MiB + 3))]})
            await send({"type": "http.response.body", "body": b"<a>", "more_body": True})
            await send({"type": EXTENSION, "file": f, "offset": 5, "count": 10, "more_body": True})
            await send({"type": "http.response.body", "body": b"<b>", "more_body": True})
            await send({"type": EXTENSION, "file": f, "offset": 2 * MiB, "count": MiB, "more_body": True})
            await send({"type": "http.response.body", "body": b"<c>", "more_body": False})

    return Starlette(routes=[Route("/x/resolve/f", file, methods=["GET", "HEAD"]), Mount("/x/resolve/mixed", app=mixed),
                             Route("/x/resolve/c", chunked_file, methods=["GET", "HEAD"]),
                              Route("/f", file, methods=["GET", "HEAD"])]), seen


@pytest.fixture(scope="module")
def server(app):
    port = _free_port()
    config = uvicorn.Config(app[0], host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            http=ZeroCopyHttpToolsProtocol)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(url + "/f", headers={"Range": "bytes=0-0"}, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    srv.should_exit = True
    thread.join(10)


def _ranges_cases(data: bytes):
    size = len(data)
    return [
        ({}, 200, data),
        ({"Range": "bytes=70000-3145727"}, 206, data[70000:3145728]),
        ({"Range": "bytes=-5000"}, 206, data[-5000:]),
        ({"Range": f"bytes={size - 10}-"}, 206, data[-10:]),
        ({"Range": "bytes=0-9", "If-Range": '"other"'}, 200, data),
        ({"Range": "bytes=0-9", "If-Range": '"v1"'}, 206, data[:10]),
    ]


def _multipart_parts(response: httpx.Response) -> list[bytes]:
    boundary = response.headers["content-type"].split("boundary=")[1]
    parts = [p for p in response.content.split(f"--{boundary}".encode()) if p.strip(b"-\r\n")]
    return [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts]


def _check_answers(client, url: str, data: bytes, multi: list[tuple[int, int]]) -> None:
    """Whole, single ranges, If-Range, several ranges (``multi``, inclusive) and HEAD of ``url``."""
    for headers, status, body in _ranges_cases(data):
        r = client.get(url, headers=headers)
        assert r.status_code == status, headers
        assert r.content == body, headers
        assert r.headers["content-length"] == str(len(body))
    r = client.get(url, headers={"Range": "bytes=" + ",".join(f"{a}-{b}" for a, b in multi)})
    assert r.status_code == 206 and int(r.headers["content-length"]) == len(r.content)
    assert _multipart_parts(r) == [data[a:b + 1] for a, b in multi]
    r = client.head(url)
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == str(len(data))


@pytest.mark.parametrize("zerocopy", [True, False], ids=["sendfile", "reads"])
def test_file_response_whole_ranges_multipart_head(content, app, server, zerocopy):
    """The same answers with the kernel moving the bytes and without the extension (TestClient)."""
    _, data = content
    client = httpx.Client(base_url=server, timeout=30) if zerocopy else TestClient(app[0])
    with client:
        _check_answers(client, "/x/resolve/f", data, [(0, 9), (1048570, 1048585), (5242000, 5242999)])
        r = client.get("/x/resolve/f", headers={"Range": f"bytes={len(data)}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    assert (EXTENSION in app[1]["extensions"]) is zerocopy
    if zerocopy:  # offered to downloads only: any other request runs as under uvicorn's own protocol
        assert httpx.get(server + "/f", headers={"Range": "bytes=0-1"}).content == data[:2]
        assert EXTENSION not in app[1]["extensions"]


@pytest.mark.parametrize("zerocopy", [True, False], ids=["sendfile", "reads"])
def test_chunk_stored_file_whole_ranges_multipart_head(chunked, app, server, zerocopy):
    """A file rebuilt from its xorbs (api/chunked.py): raw chunks sent from the xorb files with
    sendfile, LZ4 ones decoded between them; the same answers without the extension."""
    _, data = chunked
    client = httpx.Client(base_url=server, timeout=30) if zerocopy else TestClient(app[0])
    with client:
        _check_answers(client, "/x/resolve/c", data,
                       [(0, 9), (65530, 65545), (1048570, 1048585), (5242000, 5242999), (16777000, 16778000)])


def test_a_client_that_leaves_a_chunk_stored_download_leaves_no_xorb_open(chunked, server):
    _, data = chunked
    port = int(server.rsplit(":", 1)[1])
    open_before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /x/resolve/c HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(MiB)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    assert httpx.get(server + "/x/resolve/c", headers={"Range": "bytes=3-20000000"}, timeout=30).content == data[3:20000001]
    deadline = time.time() + 10
    while len(os.listdir("/proc/self/fd")) > open_before and time.time() < deadline:
        time.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= open_before  # the xorbs of the cut downloads are closed


def test_body_and_zerocopy_messages_interleave(content, server):
    _, data = content
    r = httpx.get(server + "/x/resolve/mixed/")
    assert r.status_code == 200
    assert r.content == b"<a>" + data[5:15] + b"<b>" + data[2 * MiB:3 * MiB] + b"<c>"


def test_a_slow_reader_gets_every_byte(content, server):
    """The socket's buffer fills up again and again: the server waits for it, nothing is lost."""
    _, data = content
    with httpx.stream("GET", server + "/x/resolve/f", timeout=60) as r:
        got = bytearray()
        for i, piece in enumerate(r.iter_raw(256 * 1024)):
            got += piece
            if i % 16 == 0:
                time.sleep(0.05)
    assert bytes(got) == data


def test_a_client_that_leaves_mid_download_does_not_hurt_the_next(content, server):
    _, data = content
    port = int(server.rsplit(":", 1)[1])
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /x/resolve/f HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(MiB)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    # Keep-alive: two answers on one connection, the second after a zero-copy body.
    with httpx.Client(base_url=server) as client:
        assert client.get("/x/resolve/f").content == data
        assert client.get("/x/resolve/f", headers={"Range": "bytes=1-2"}).content == data[1:3]


@pytest.fixture
def drained_socket():
    """A non-blocking socket whose reader (a thread) takes everything as fast as it comes."""
    sender, receiver = socket.socketpair()
    sender.setblocking(False)
    got = bytearray()

    def drain():
        while piece := receiver.recv(MiB):
            got.extend(piece)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    yield sender, got
    sender.close()
    reader.join(10)
    receiver.close()


def test_a_reader_that_keeps_up_gets_the_whole_part_in_one_hand_off(content, drained_socket, monkeypatch):
    """Issue 11: one trip through the thread pool per part, not one per MAX_CALL bytes (each trip
    wakes the event loop and passes the GIL twice)."""
    from aicommons.api import zerocopy_server

    path, data = content
    sender, got = drained_socket
    monkeypatch.setattr(zerocopy_server, "THREAD_WAIT_MS", 10_000)  # a loaded box's pauses are no stall
    with open(path, "rb") as f:
        sent = zerocopy_server._send_parts_until_full(sender.fileno(), [(f.fileno(), 0, len(data))], [0, 0])
    assert sent == len(data) > 2 * zerocopy_server.MAX_CALL
    sender.shutdown(socket.SHUT_WR)
    deadline = time.time() + 10
    while len(got) < len(data) and time.time() < deadline:
        time.sleep(0.01)
    assert bytes(got) == data


def test_a_thread_others_wait_for_comes_back_every_max_call(content, drained_socket, monkeypatch):
    """While sends are queued for a thread (every one of the pool's is busy), a running send gives
    its thread back after MAX_CALL bytes, so downloads take turns."""
    from aicommons.api import socket_body, zerocopy_server

    path, data = content
    sender, _ = drained_socket
    monkeypatch.setattr(zerocopy_server, "THREAD_WAIT_MS", 10_000)
    release = threading.Event()
    busy = [zerocopy_server._pool.submit(release.wait, 30) for _ in range(zerocopy_server._pool._max_workers + 1)]
    try:
        deadline = time.time() + 10
        while not socket_body.others_wait(zerocopy_server._pool) and time.time() < deadline:
            time.sleep(0.01)
        with open(path, "rb") as f:
            sent = zerocopy_server._send_parts_until_full(sender.fileno(), [(f.fileno(), 0, len(data))], [0, 0])
        assert zerocopy_server.MAX_CALL <= sent < len(data)
    finally:
        release.set()
        for job in busy:
            job.result(30)
    assert not socket_body.others_wait(zerocopy_server._pool)
