"""The mirror's HTTP client to its upstream hub(s): one pooled ``httpx.Client`` per process, whose
large-file bodies are read straight from the socket in large pieces.

httpx (through httpcore and h11) reads a body 64 KiB at a time and copies each piece three times
before it reaches us; for a first download through the mirror that was most of the mirror's CPU
(docs/benchmarks.md, "Pull-through mirror"). So the client's connections are our own
``_RawStream`` (httpcore's documented network-backend interface): it keeps the bytes read since the
last request, so that once httpx has parsed a response's headers, ``raw_body`` can hand the rest of
the body to ``recv_into`` on the socket itself, into the caller's buffers, with no copy in Python.
Such a connection is then closed rather than reused (h11 did not see the body). A response that is
not a plain ``Content-Length`` body on one of these connections (chunked, compressed, or through a
proxy from the environment, which httpx serves with its own transport) is read through httpx as
usual. Requests, redirects (``Authorization`` dropped when a redirect leaves the host), TLS and
timeouts stay httpx's.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

_HEAD_LOG_LIMIT = 256 * 1024  # bytes kept per request for finding where the body starts


class _RawStream(httpcore.NetworkStream):
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.log: list[bytes] = []  # what was read since the last request was written
        self.logged = 0

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc
        if self.logged <= _HEAD_LOG_LIMIT:
            self.log.append(data)
            self.logged += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.log, self.logged = [], 0
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def close(self) -> None:
        self.sock.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        self.sock.settimeout(timeout)
        try:
            return _RawStream(ssl_context.wrap_socket(self.sock, server_hostname=server_hostname))
        except TimeoutError as exc:
            self.sock.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            self.sock.close()
            raise httpcore.ConnectError(str(exc)) from exc

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self.sock, ssl.SSLSocket):
            return getattr(self.sock, "_sslobj", None)  # what httpcore's own stream answers (ALPN)
        if info == "client_addr":
            return self.sock.getsockname()
        if info == "server_addr":
            return self.sock.getpeername()
        if info == "socket":
            return self.sock
        if info == "is_readable":
            return _is_readable(self.sock)
        return None


def _is_readable(sock: socket.socket) -> bool:
    """True when an idle pooled connection has data or was closed by the server (so not reusable)."""
    import select

    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class _Backend(httpcore.NetworkBackend):
    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            sock = socket.create_connection((host, port), timeout,
                                            source_address=None if local_address is None else (local_address, 0))
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _RawStream(sock)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the mirror reaches its upstream over TCP")

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)


class UpstreamClient:
    """The process's one client to upstream (created on first use, closed with the hub)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._guard = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        with self._guard:
            if self._client is None:
                transport = httpx.HTTPTransport()
                # httpx's transport with our connections (httpcore's public network_backend option).
                transport._pool = httpcore.ConnectionPool(  # noqa: SLF001
                    ssl_context=httpx.create_ssl_context(), max_connections=100, max_keepalive_connections=20,
                    keepalive_expiry=5.0, network_backend=_Backend())
                self._client = httpx.Client(transport=transport, timeout=self.timeout, follow_redirects=True)
            return self._client

    def close(self) -> None:
        with self._guard:
            if self._client is not None:
                self._client.close()
                self._client = None


class RawBody:
    """The rest of a plain ``Content-Length`` body, read from the socket into the caller's buffer."""

    def __init__(self, sock: socket.socket, prefix: bytes, length: int, timeout: float):
        self.sock, self.prefix, self.remaining = sock, prefix, length - len(prefix)
        self.timeout = timeout

    def read_into(self, buffer: memoryview) -> int:
        """Fill ``buffer`` (all of it unless the body ends first); the byte count, 0 at the end.
        ``httpx.ReadError`` if the connection ends before the body does."""
        filled = 0
        if self.prefix:
            filled = min(len(self.prefix), len(buffer))
            buffer[:filled] = self.prefix[:filled]
            self.prefix = self.prefix[filled:]
        self.sock.settimeout(self.timeout)
        while filled < len(buffer) and self.remaining > 0:
            try:
                got = self.sock.recv_into(buffer[filled:], min(len(buffer) - filled, self.remaining))
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc)) from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc)) from exc
            if got == 0:
                raise httpx.ReadError(f"the connection closed with {self.remaining} bytes of the body still to come")
            filled += got
            self.remaining -= got
        return filled


def raw_body(response: httpx.Response, timeout: float) -> RawBody | None:
    """The body of ``response`` (opened with ``stream``, not read yet) straight from its socket, or
    None when it must be read through httpx (not one of our connections, chunked, compressed)."""
    stream = response.extensions.get("network_stream")
    length = response.headers.get("content-length", "")
    if not isinstance(stream, _RawStream) or not length.isdigit() or stream.logged > _HEAD_LOG_LIMIT \
            or "transfer-encoding" in response.headers \
            or response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    received = b"".join(stream.log)
    position = 0
    while True:  # skip interim (1xx) responses to the final one's head
        end = received.find(b"\r\n\r\n", position)
        if end < 0:
            return None
        status_line = received[position:received.find(b"\r\n", position)].split()
        position = end + 4
        if len(status_line) < 2 or not status_line[1].isdigit():
            return None
        if int(status_line[1]) >= 200:
            break
    if int(status_line[1]) != response.status_code or len(received) - position > int(length):
        return None
    return RawBody(stream.sock, received[position:], int(length), timeout)
