"""The Space build proxy's connection rules (spaces/build_proxy.py): only the index's host names, never a
link-local address, and each address of a name tried in turn."""

from __future__ import annotations

import socket

import pytest

from aicommons.spaces import build_proxy
from aicommons.spaces.build_proxy import Refused, _connect


def test_only_the_index_hosts_are_reached():
    with pytest.raises(Refused, match="not a package index host"):
        _connect("example.org", 443, frozenset({"pypi.org"}))


def test_a_name_resolving_to_a_link_local_address_is_refused():
    with pytest.raises(Refused, match="link-local"):
        _connect("169.254.169.254", 80, frozenset({"169.254.169.254"}))


def test_each_address_is_tried_in_turn(monkeypatch):
    listener = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the first address fails
    tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
    addresses = [(*tcp, ("127.0.0.1", closed_port)), (*tcp, listener.getsockname())]
    monkeypatch.setattr(build_proxy.socket, "getaddrinfo", lambda *a, **k: addresses)
    with listener, _connect("index.example", 443, frozenset({"index.example"})) as upstream:
        assert upstream.getpeername() == listener.getsockname()
    monkeypatch.setattr(build_proxy.socket, "getaddrinfo", lambda *a, **k: addresses[:1])
    with pytest.raises(ConnectionRefusedError):
        _connect("index.example", 443, frozenset({"index.example"}))
