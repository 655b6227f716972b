"""The mirror's upstream client (hub/upstream_http.py) against a raw socket server: where the body
starts after httpx read the head (also behind an interim 103 response), what is left to httpx
(chunked bodies), and a connection that ends before its Content-Length."""

from __future__ import annotations

import os
import socket
import threading

import httpx
import pytest

from aicommons.hub.upstream_http import UpstreamClient, raw_body


def serve(answers: list[bytes]) -> str:
    """A server answering each connection's request with the next of ``answers``, then closing."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        for answer in answers:
            conn, _ = listener.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                conn.sendall(answer)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def read_raw(client: UpstreamClient, url: str, size: int) -> bytes | None:
    with client.http.stream("GET", url) as response:
        body = raw_body(response, 5)
        if body is None:
            return None
        out = bytearray(size)
        view = memoryview(out)
        got = 0
        while got < size:
            n = body.read_into(view[got:got + 1_000_003])
            assert n
            got += n
        return bytes(out)


@pytest.fixture
def client():
    c = UpstreamClient(5)
    yield c
    c.close()


def test_a_plain_body_is_read_from_the_socket_whole(client):
    data = os.urandom(3 * 1024 * 1024 + 5)
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
    url = serve([head + data, early + head + data])
    assert read_raw(client, url, len(data)) == data
    assert read_raw(client, url, len(data)) == data  # behind an interim response


def test_a_chunked_body_is_left_to_httpx(client):
    data = os.urandom(100_000)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + \
        f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    url = serve([chunked, chunked])
    assert read_raw(client, url, len(data)) is None
    assert client.http.get(url).content == data


def test_a_body_cut_short_is_an_error(client):
    data = os.urandom(2 * 1024 * 1024)
    url = serve([f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data[:len(data) // 2]])
    with pytest.raises(httpx.ReadError):
        read_raw(client, url, len(data))
