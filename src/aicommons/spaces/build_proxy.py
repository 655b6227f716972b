"""The only network a Space build has: an HTTP proxy that reaches the package index and nothing else.

A build runs in its own network namespace with loopback only (like an app). pip (and any setup code
it runs) finds ``HTTP(S)_PROXY=http://127.0.0.1:<port>`` there, which ``bridge.py --build`` relays to
a unix socket this proxy serves from outside. The proxy accepts ``CONNECT host:port`` (HTTPS) and
plain ``GET http://host/...`` only for the index's host names (``hosts``: the host of
``SPACES_INDEX_URL``, else PyPI's two, plus ``SPACES_BUILD_HOSTS``), and never connects to a
link-local, multicast or unspecified address whatever a name resolves to (a cloud's metadata
service). So a package's ``setup.py`` cannot reach the hub's own ports, other loopback services,
the metadata service or private networks: only the index names the operator chose. Each refusal is
written to the build log.
"""

from __future__ import annotations

import ipaddress
import os
import selectors
import socket
import socketserver
import threading
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

PYPI_HOSTS = ("pypi.org", "files.pythonhosted.org")
MAX_HEAD = 65536
TIMEOUT = 60.0


class LogSink(Protocol):
    def line(self, text: str) -> None: ...


def index_hosts(index_url: str, extra: str = "") -> frozenset[str]:
    """The host names a build may reach: the index's (PyPI's by default) and the operator's extra ones."""
    hosts = {urlsplit(index_url).hostname or ""} if index_url else set(PYPI_HOSTS)
    hosts |= {h.strip().lower() for h in extra.split(",") if h.strip()}
    return frozenset(h.lower() for h in hosts if h)


def _allowed_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return not (ip.is_link_local or ip.is_multicast or ip.is_unspecified)


class Refused(Exception):
    pass


def _connect(host: str, port: int, hosts: frozenset[str]) -> socket.socket:
    if host.lower().strip("[]") not in hosts:
        raise Refused(f"{host} is not a package index host ({', '.join(sorted(hosts))})")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        if not _allowed_address(str(info[4][0])):
            raise Refused(f"{host} resolves to {info[4][0]}, a link-local or special address")
    error: OSError = OSError(f"{host} has no address")
    for family, kind, proto, _, address in infos:  # each address in turn, as pip would (no IPv6 route, ...)
        upstream = socket.socket(family, kind, proto)
        upstream.settimeout(TIMEOUT)
        try:
            upstream.connect(address)
            return upstream
        except OSError as exc:
            upstream.close()
            error = exc
    raise error


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Both ways until either side closes."""
    a.settimeout(None)
    b.settimeout(None)
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while events := selector.select(timeout=TIMEOUT * 5):  # (nothing for 5 minutes: given up)
            for key, _ in events:
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data:
                    return
                key.data.sendall(data)


class BuildProxy:
    """Serves one unix socket for the build in progress (``start``/``stop`` around it)."""

    def __init__(self, hosts: frozenset[str]):
        self.hosts = hosts
        self.log: LogSink | None = None
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def start(self, path: Path, log: LogSink, uid: int) -> None:
        self.log = log
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        if path.exists():
            path.unlink()
        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        server.daemon_threads = True
        os.chown(path, uid, uid)
        path.chmod(0o600)
        threading.Thread(target=server.serve_forever, daemon=True, name="space-build-proxy").start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(TIMEOUT)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk or len(head) > MAX_HEAD:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = _connect(host, int(port), self.hosts)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head.split(b"\r\n\r\n", 1)[1]
            else:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    raise Refused(f"{method} {target[:100]}: only CONNECT and http:// requests")
                upstream = _connect(parts.hostname, parts.port or 80, self.hosts)
                rest = head  # servers accept the absolute form; keep-alive requests go to this host
            with upstream:
                if rest:
                    upstream.sendall(rest)
                _pipe(client, upstream)
        except Refused as exc:
            if self.log is not None:
                self.log.line(f"Build network: refused: {exc}")
            try:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
        except (OSError, ValueError):
            try:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
