"""The one outbound door: every request the hub makes on someone's behalf to a URL they chose.

Server-side request forgery is refused here: the host is resolved once, every address it resolves
to must be public (not loopback, private, link-local, shared, multicast, reserved or unspecified)
unless the operator allows private targets, and the connection goes to the checked address (the
``Host`` header and TLS server name stay the URL's), so a second DNS answer cannot swap in another
address. Redirects are never followed, proxies from the environment are not used, and time and
response size are capped.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

SCHEMES = {"http": 80, "https": 443}


class TargetRefused(Exception):
    """The URL may not be fetched (scheme, host, or an address that is not public)."""


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    body: str  # at most ``max_response_bytes`` of it, decoded leniently


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


def check_url(url: str) -> None:
    """The URL's shape alone (no DNS): http(s), a host, no user info."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname or "@" in parts.netloc:
        raise TargetRefused("The URL must be http:// or https:// with a host name and no user info")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise TargetRefused("The URL has an invalid port") from None


def resolve(url: str, allow_private: bool) -> str:
    """The address to connect to for ``url``; ``TargetRefused`` when any address it resolves to is
    not public (and private targets are not allowed)."""
    check_url(url)
    parts = urlsplit(url)
    port = parts.port or SCHEMES[parts.scheme]
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OSError(f"cannot resolve {parts.hostname}: {exc}") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"{parts.hostname} has no address")
    refused = [str(a) for a in addresses if not is_public(a)]
    if refused and not allow_private:
        raise TargetRefused(f"{parts.hostname} resolves to a private, loopback or link-local address "
                            f"({', '.join(refused)}); an operator may allow such targets "
                            "(AICOMMONS_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1)")
    return str(addresses[0])


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool, timeout: float,
         max_response_bytes: int = 4096) -> OutboundResponse:
    """POST ``body`` to ``url`` through the checks above. Network failures raise ``OSError`` or
    ``httpx.HTTPError``; a refused target raises ``TargetRefused`` before anything is sent."""
    return _request("POST", url, body, headers, allow_private, timeout, max_response_bytes)


def get(url: str, *, allow_private: bool, timeout: float, max_response_bytes: int = 65536) -> OutboundResponse:
    """GET ``url`` through the same checks (an identity provider's discovery document and keys).
    A body longer than ``max_response_bytes`` is cut there, so it will not parse."""
    return _request("GET", url, b"", {"Accept": "application/json"}, allow_private, timeout, max_response_bytes)


def _request(method: str, url: str, body: bytes, headers: dict[str, str], allow_private: bool, timeout: float,
             max_response_bytes: int) -> OutboundResponse:
    address = resolve(url, allow_private)
    parts = urlsplit(url)
    port = parts.port or SCHEMES[parts.scheme]
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=timeout) as client:
        with client.stream(method, pinned, content=body if method != "GET" else None, headers={**headers, "Host": host_header},
                           extensions=extensions) as response:
            received = b""
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= max_response_bytes:
                    break
            return OutboundResponse(response.status_code, received[:max_response_bytes].decode("utf-8", "replace"))
