"""Security headers on every HTML response the hub sends (web pages, error pages, anything else
answered as ``text/html``): no framing by other sites (clickjacking), a Content-Security-Policy
that allows only the hub's own scripts, no MIME sniffing, and no full URLs in ``Referer``.

A response that brings its own policy keeps it (``/resolve/`` serves repo HTML sandboxed); only
``frame-ancestors 'none'`` is added to it when missing.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders

CSP = ("default-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


class HtmlSecurityHeadersMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").lower().startswith("text/html"):
                    policy = headers.get("content-security-policy")
                    if policy is None:
                        headers["Content-Security-Policy"] = CSP
                    elif "frame-ancestors" not in policy:
                        headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
                    for name, value in HEADERS.items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
