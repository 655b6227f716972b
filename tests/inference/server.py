"""A live uvicorn server on a free port, serving inference routes in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from aicommons.inference import build_inference_service, inference_routes


@dataclass(frozen=True)
class Principal:
    key: str
    is_anonymous: bool
    name: str | None = None
    is_admin: bool = False


class NamingCaller:
    """Names the caller for the fairness tests, and decides nothing: 'Bearer <name>' is principal
    token:<name>, no token is an anonymous caller. Nobody is an administrator here; access rules
    are the hub's auth middleware's and are tested on the real hub (test_hub_e2e.py)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode()
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            client = (scope.get("client") or ("?", 0))[0]
            principal = Principal(f"token:{token}", False, token) if token and token != "EMPTY" \
                else Principal(f"anon:{client}", True)
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, source, inference_settings):
        self.service = build_inference_service(None, source, inference_settings)
        app = Starlette(routes=inference_routes(self.service), middleware=[Middleware(NamingCaller)])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx.get(self.url + "/v1/models", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("inference test server did not start")

    def stop(self) -> None:
        import asyncio

        self.server.should_exit = True
        self.thread.join(timeout=20)
        asyncio.run(self.service.close())  # stops generation threads, unloads models
