"""Cost of the request rate limiter per request (``RateLimitMiddleware``), in process: an anonymous
request, a token's (principal already named), and a signed-in browser's (session cookie, the user
remembered: the common case; a miss is one lookup a minute per session). Prints µs per request,
best of --rounds, each over --requests calls of the middleware around an app that does nothing.

    PYTHONPATH=src python bench/rate_limit_bench.py --requests 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from aicommons.api.middleware import RateLimitMiddleware
from aicommons.api.rate_limits import RequestLimiter
from aicommons.db.accounts import AccountStore
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.sessions import SessionStore
from aicommons.hub.access import Principal, anonymous
from aicommons.hub.accounts import AccountService
from aicommons.hub.sessions import SessionService


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def _send(message):
    pass


async def _run(middleware, scope, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await middleware(scope, None, _send)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'hub.db'}")
        upgrade_schema(engine)
        accounts = AccountStore(engine)
        alice = AccountService(accounts).create_user("alice")
        sessions = SessionService(SessionStore(engine), accounts, 3600)
        cookie = sessions.start(alice)
        sessions.budget_key(cookie)  # remembered, as after a browser's first request
        unlimited = 10**9  # never refused: the cost of counting, not of refusing
        limiter = RequestLimiter({(r, s): unlimited for r in ("api", "resolvers") for s in (True, False)})
        middleware = RateLimitMiddleware(_app, limiter, sessions)
        base = {"type": "http", "path": "/alice/m", "method": "GET"}
        headers = [(b"host", b"hub"), (b"accept", b"text/html")]
        cases = {
            "anonymous": dict(base, headers=headers, state={"principal": anonymous("10.0.0.1")}),
            "token": dict(base, headers=headers, state={"principal": Principal(key="token:1", account=alice)}),
            "session cookie": dict(base, state={"principal": anonymous("10.0.0.1")}, headers=[
                *headers, (b"cookie", f"aicommons_visitor=v{'x' * 42}; aicommons_session={cookie}".encode())]),
        }
        for name, scope in cases.items():
            best = min(asyncio.run(_run(middleware, scope, args.requests)) for _ in range(args.rounds))
            print(f"{name:15s} {best:6.2f} µs/request")
        engine.dispose()


if __name__ == "__main__":
    main()
