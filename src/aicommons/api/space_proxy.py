"""The door to Space apps: HTTP (streamed both ways, so server-sent events flow unbuffered) and
WebSockets, proxied to the app's unix socket (``hub/space_apps.py``); static spaces served as files.

Where an app answers (``SpaceService.host``):

- path mode (one machine): ``<hub>/spaces-apps/<ns>/<name>/...``. The app shares the hub's origin,
  so every answer carries ``Content-Security-Policy: sandbox`` without ``allow-same-origin`` (its
  pages run in an opaque origin: they cannot read the hub's pages or send its forms as the
  visitor), the hub's cookies never reach the app, and the app cannot set them;
- domain mode (``AICOMMONS_SPACES_DOMAIN``): ``<ns>-<name>.<domain>``, its own origin; the hub's
  session cookie is not sent there at all.

Private spaces answer only to those who may read the repo (a bearer token, gradio_client's
``x-hf-authorization``, or in path mode the hub's session), exactly like a missing repo otherwise.
Credentials are never forwarded to the app.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aicommons.api.http import base_url, hub_of, param, run_sync
from aicommons.errors import NotFound
from aicommons.hub.access import Principal, anonymous
from aicommons.hub.spaces import VISIT_SECONDS

PREFIX = "/spaces-apps"
SIGN_PARAM = "__sign"  # the signed visit in the URL the space page frames (the Hub's name for it)
VISIT_COOKIE = "aicommons_space_visit"  # ...and where the app's pages keep it (a hub cookie: never forwarded)
HUB_COOKIES = ("aicommons_",)  # the hub's cookie names start so (web/session.py)
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "content-length"})
DROPPED = HOP | {"authorization", "x-hf-authorization", "cookie"}
SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-downloads allow-modals"
_clients: dict[str, httpx.AsyncClient] = {}


def _client(sock: str) -> httpx.AsyncClient:
    client = _clients.get(sock)
    if client is None:
        client = _clients[sock] = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=sock), timeout=httpx.Timeout(10, read=None, write=60),
            follow_redirects=False)
    return client


def _app_cookies(raw: str) -> str:
    kept = [part.strip() for part in raw.split(";") if part.strip()
            and not part.strip().split("=", 1)[0].startswith(HUB_COOKIES)]
    return "; ".join(kept)


def visitor(hub, headers, cookies: dict, principal: Principal | None, full_id: str = "",
            visit: str = "") -> Principal:
    """Who is asking: the Authorization principal, else gradio_client's ``x-hf-authorization``, else
    a signed visit (``visit``: the space page's ``__sign`` or its cookie), else (path mode) the hub's
    web session."""
    if principal is not None and not principal.is_anonymous:
        return principal
    token = headers.get("x-hf-authorization", "")
    if token.lower().startswith("bearer "):
        return hub.accounts.principal_for_token(token[7:].strip())
    key = hub.spaces.visit_caller(visit, full_id) if visit and full_id else None
    if key is not None:
        signed = hub.accounts.principal_for_key(key)
        if signed is not None:
            return signed
    session_id = cookies.get("aicommons_session")
    if session_id and not hub.settings.spaces_domain:
        account = hub.sessions.account_for(session_id)
        if account is not None:
            return hub.accounts.principal_for_account(account)
    return principal or anonymous(None)


def _caller(hub, request: Request) -> tuple[str, str]:
    """The credential this request came with, as ``visitor`` will read it: the key under which its
    access decision is remembered for a second (``SpaceService.app_for``). Secrets are hashed."""
    principal = request.state.principal
    if principal is not None and not principal.is_anonymous:
        return ("principal", f"{principal.key}:{principal.token_role}")
    token = request.headers.get("x-hf-authorization", "")
    if token:
        return ("x-hf-authorization", hashlib.sha256(token.encode()).hexdigest())
    visit = _visit(request)
    if visit:
        return ("visit", hashlib.sha256(visit.encode()).hexdigest())
    session_id = request.cookies.get("aicommons_session")
    if session_id and not hub.settings.spaces_domain:
        return ("session", hashlib.sha256(session_id.encode()).hexdigest())
    return ("anonymous", "")


def _visit(request) -> str:
    """A signed visit: in the URL the space page framed (``__sign``), then in the app's own cookie."""
    return request.query_params.get(SIGN_PARAM) or request.cookies.get(VISIT_COOKIE, "")


def _resolve(hub, request: Request, full_id: str, caller: tuple[str, str]):
    principal = visitor(hub, request.headers, request.cookies, request.state.principal, full_id, _visit(request))
    return hub.spaces.app_for(principal, full_id, caller)


def _enter_with_visit(request: Request, hub, full_id: str) -> Response | None:
    """A page opened with a valid ``__sign`` (the space page's frame): keep the visit in a cookie of
    this app's own host and send the browser on to the same URL without it, so the token never stays
    in the app's location or in a Referer. The cookie is ``SameSite=None; Secure; Partitioned``: the
    app's host is another site framed by the hub's page, and a partitioned cookie is one that
    browsers blocking third-party cookies still keep, for this hub's pages only."""
    token = request.query_params.get(SIGN_PARAM)
    if not token or request.method not in ("GET", "HEAD") or not hub.spaces.visit_caller(token, full_id):
        return None
    query = [(k, v) for k, v in request.query_params.multi_items() if k != SIGN_PARAM]
    here = "/" + request.path_params.get("path", "") if hub.settings.spaces_domain else request.url.path
    response = RedirectResponse(here + ("?" + urlencode(query) if query else ""), status_code=303)
    path = "/" if hub.settings.spaces_domain else f"{PREFIX}/{full_id}/"
    # (Written by hand: Starlette writes ``Partitioned`` on Python 3.14 only; the token is cookie-safe.)
    response.headers.append("set-cookie", f"{VISIT_COOKIE}={token}; Max-Age={VISIT_SECONDS}; Path={path}; "
                                          "Secure; HttpOnly; SameSite=None; Partitioned")
    return _sandboxed(response, hub)


def _repo_id(scope, hub) -> str:
    """``ns/name`` from the path (path mode) or from the sub-host (domain mode, set by the middleware).
    In domain mode the hub's own host serves no app: an app there would run its scripts on the hub's
    origin, with the visitor's session cookie, unsandboxed (``_sandboxed`` adds no ``sandbox`` rule in
    domain mode), so ``/spaces-apps/...`` on any other host is a route that is not there."""
    if "aicommons.space" in scope:
        return scope["aicommons.space"]
    if hub.settings.spaces_domain:
        raise NotFound("Spaces' apps answer on their own hosts here (see the space's `host`)")
    params = scope["path_params"]
    return f"{params['ns']}/{params['name']}"


async def proxy(request: Request) -> Response:
    hub = hub_of(request)
    full_id = _repo_id(request.scope, hub)
    caller = _caller(hub, request)
    # Who, which space, how it runs: decided in one thread hop, then reused for a second.
    repo, config = hub.spaces.decided_app(caller, full_id) or await run_sync(_resolve, hub, request, full_id, caller)
    entered = _enter_with_visit(request, hub, full_id)
    if entered is not None:
        return entered
    path = request.path_params.get("path", "")
    apps = hub.spaces.apps
    if apps is None:  # a hub made without a runner (tools, tests); `aicommons serve` always has one
        raise NotFound(f"{full_id}'s app is not run by this hub")
    if config.sdk == "static":
        file = await run_sync(apps.static_file, repo, path)
        return _sandboxed(FileResponse(file) if file else HTMLResponse("Not found", status_code=404), hub)
    sock = None if not apps.running(repo.id) else str(apps.runner.socket(repo.id))
    if sock is None:
        accept = request.headers.get("accept", "")
        if "text/html" in accept and request.method == "GET":  # a visitor: the waking page, then a reload
            apps.wake_in_background(repo)
            return _sandboxed(HTMLResponse(WAKING.format(name=repo.full_id), status_code=503,
                                           headers={"Retry-After": "2"}), hub)
        sock = str(await run_sync(apps.ensure, repo))
    apps.touch(repo.id)
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in DROPPED]
    cookies = _app_cookies(request.headers.get("cookie", ""))
    if cookies:
        headers.append(("cookie", cookies))
    host = request.headers.get("host", "")
    headers += [("x-forwarded-host", host), ("x-forwarded-proto", base_url(request).split("://", 1)[0]),
                ("x-forwarded-for", request.client.host if request.client else "")]
    url = "http://space/" + path
    query = [(k, v) for k, v in request.query_params.multi_items() if k != SIGN_PARAM]
    if query:
        url += "?" + urlencode(query)
    client = _client(sock)
    upstream_request = client.build_request(request.method, url, headers=headers, content=request.stream())
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError:
        return _sandboxed(HTMLResponse("The Space's app is not answering", status_code=502), hub)
    out_headers = [(k, v) for k, v in upstream.headers.multi_items()
                   if k.lower() not in HOP and not (k.lower() == "set-cookie" and v.strip().startswith(HUB_COOKIES))]
    if request.headers.get("origin") == "null" and "access-control-allow-origin" not in upstream.headers:
        # The app's own sandboxed pages (an opaque origin) load its module scripts in CORS mode.
        out_headers.append(("access-control-allow-origin", "*"))

    async def body():
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    response = StreamingResponse(body(), status_code=upstream.status_code)
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
    return _sandboxed(response, hub)


def _sandboxed(response: Response, hub) -> Response:
    """Path mode: a sandboxed document (opaque origin) that the hub's own space page may frame.
    Domain mode: its own origin; framed by the hub's page (``AICOMMONS_PUBLIC_URL``) only, or, when
    the hub does not know its public URL, by any page, as apps on the Hub may be embedded anywhere (a
    private app framed elsewhere gets no visit cookie: its cookie is partitioned by the framing site)."""
    if not hub.settings.spaces_domain:
        response.headers["Content-Security-Policy"] = f"{SANDBOX}; frame-ancestors 'self'"
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    else:
        response.headers["Content-Security-Policy"] = f"frame-ancestors {hub.settings.public_url or '*'}"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


async def websocket_proxy(websocket: WebSocket) -> None:
    from websockets.asyncio.client import unix_connect
    from websockets.exceptions import ConnectionClosed

    hub = websocket.app.state.hub
    try:
        full_id = _repo_id(websocket.scope, hub)
    except NotFound:
        await websocket.close(code=1008)
        return
    try:
        principal = await run_sync(visitor, hub, websocket.headers, websocket.cookies, None, full_id,
                                   websocket.cookies.get(VISIT_COOKIE, ""))
        repo = await run_sync(hub.spaces.app_repo, principal, full_id)
        sock = str(await run_sync(hub.spaces.apps.ensure, repo))
    except Exception:  # noqa: BLE001 - refused or not running: close before accepting
        await websocket.close(code=1008)
        return
    path = websocket.path_params.get("path", "")
    url = "ws://space/" + path + (("?" + websocket.url.query) if websocket.url.query else "")
    headers = [(k, v) for k, v in websocket.headers.items()
               if k.lower() not in DROPPED and not k.lower().startswith("sec-websocket")]
    cookies = _app_cookies(websocket.headers.get("cookie", ""))
    if cookies:
        headers.append(("cookie", cookies))
    protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    try:
        upstream = await unix_connect(sock, url, additional_headers=headers, subprotocols=protocols or None,
                                      max_size=None, open_timeout=10)
    except Exception:  # noqa: BLE001
        await websocket.close(code=1011)
        return
    await websocket.accept(subprotocol=upstream.subprotocol)

    async def client_to_app():
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await upstream.send(message.get("bytes") if message.get("bytes") is not None else message.get("text"))
        except (WebSocketDisconnect, ConnectionClosed, RuntimeError):
            pass
        finally:
            await upstream.close()

    async def app_to_client():
        try:
            async for message in upstream:
                hub.spaces.apps.touch(repo.id)
                if isinstance(message, bytes):
                    await websocket.send_bytes(message)
                else:
                    await websocket.send_text(message)
        except (ConnectionClosed, RuntimeError):
            pass
        finally:
            try:
                await websocket.close()
            except RuntimeError:
                pass

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(client_to_app)
        tasks.start_soon(app_to_client)


async def to_slash(request: Request) -> Response:
    _repo_id(request.scope, hub_of(request))  # (domain mode: not on the hub's host)
    return RedirectResponse(f"{PREFIX}/{param(request, 'ns')}/{param(request, 'name')}/", status_code=307)


WAKING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Waking up {name}</title>
<style>body{{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;margin:0}}
@media (prefers-color-scheme: dark){{body{{background:#111;color:#eee}}}}</style></head>
<body><main><h1>This Space is waking up</h1><p>{name} was asleep. This page reloads by itself in a moment.</p>
</main></body></html>"""


def space_app_routes() -> list:
    return [
        Route(PREFIX + "/{ns}/{name}", to_slash, methods=["GET", "HEAD"]),
        Route(PREFIX + "/{ns}/{name}/{path:path}", proxy,
              methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        WebSocketRoute(PREFIX + "/{ns}/{name}/{path:path}", websocket_proxy),
    ]


class SpacesDomainMiddleware:
    """Domain mode: ``<ns>-<name>.<domain>/x`` is the app of that space (``/spaces-apps/ns/name/x``)."""

    def __init__(self, app, hub):
        self.app = app
        self.hub = hub
        self.suffix = "." + hub.settings.spaces_domain if hub.settings.spaces_domain else None

    async def __call__(self, scope, receive, send):
        if self.suffix and scope["type"] in ("http", "websocket"):
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").split(":", 1)[0].lower()
            if host.endswith(self.suffix):
                sub = host[: -len(self.suffix)]
                full_id = await anyio.to_thread.run_sync(self.hub.spaces.by_subdomain, sub)
                # The spaces domain serves spaces only, never the hub's pages; a sub-host that names
                # no space answers exactly like a private one (a repo that is not there).
                ns, name = full_id.split("/", 1) if full_id is not None else ("-", sub or "-")
                path = f"{PREFIX}/{ns}/{name}{scope['path']}"
                scope = dict(scope, path=path, raw_path=path.encode())
                scope["aicommons.space"] = f"{ns}/{name}"
        await self.app(scope, receive, send)
