"""Git smart HTTP: ``git clone / fetch / pull / push`` on hub repos, served by the real
``git http-backend`` with the hub's access rules in front of it and its push rules behind it.

URLs are those of the Hub: ``/{ns}/{name}``, ``/datasets/{ns}/{name}``, ``/spaces/{ns}/{name}``,
each with or without ``.git``, followed by git's three smart-HTTP endpoints. git-lfs derives its
endpoint ``…/{name}.git/info/lfs`` from either form; the batch API lives in ``api/lfs.py``.

Access is decided here, before git runs, exactly as for the API: reading needs read access (a
private repo answers 401 with a Basic challenge, so git asks for credentials, and 404 to a signed-in
stranger), pushing needs write access, or the contributor right (``Action.CONTRIBUTE``, as for
commits to a pull request through the API): such a pusher's key goes to the hook, which then lets
the push update only refs/pr/N of that pusher's own open pull requests (``PushService.check``).
The content of a push is checked by the pre-receive hook
(``api/git_hook.py`` → ``hub/push.py``) while git still holds it in quarantine; once git has
moved the refs, the server records the push (``PushService.record``) before the response ends, so
the API shows it as soon as ``git push`` returns.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aicommons.api import git_wants
from aicommons.api.errors import moved_response
from aicommons.api.git_cgi import CgiResponse
from aicommons.api.http import hub_of, param, principal_of, run_sync
from aicommons.config import SETTINGS, Settings
from aicommons.errors import Forbidden, HubError
from aicommons.hub.hub import Hub
from aicommons.hub.policy import Action
from aicommons.hub.push import PushPlan, PushService
from aicommons.hub.reachability import Reachability
from aicommons.hub.repos import RepoMoved, RepoRow

SERVICES = ("git-upload-pack", "git-receive-pack")
PUSH = "git-receive-pack"
log = logging.getLogger("aicommons.git")
CHALLENGE = 'Basic realm="AI Commons"'
# Set for a push by a non-writer: the pusher's ``Principal.key``, for the hook to rebuild them.
CONTRIBUTOR_ENV = "AICOMMONS_PUSH_CONTRIBUTOR"

# The only hook git runs for a push; see api/git_hook.py.
PRE_RECEIVE = """#!/bin/sh
# Written by AI Commons (aicommons/api/git_http.py): the hub checks every push before it lands.
exec "$AICOMMONS_GIT_HOOK_PYTHON" -m aicommons.api.git_hook
"""


def git_routes() -> list[Route]:
    routes = []
    for prefix, repo_type in (("", "model"), ("/datasets", "dataset"), ("/spaces", "space")):
        base = prefix + "/{ns}/{name}"
        routes += [
            Route(base + "/info/refs", _endpoint(repo_type, "info/refs"), methods=["GET"]),
            Route(base + "/git-upload-pack", _endpoint(repo_type, "git-upload-pack"), methods=["POST"]),
            Route(base + "/git-receive-pack", _endpoint(repo_type, "git-receive-pack"), methods=["POST"]),
        ]
    return routes


def _endpoint(repo_type: str, path: str):
    async def endpoint(request: Request) -> Response:
        return await serve_git(request, repo_type, path)

    return endpoint


def _repo_id(request: Request) -> str:
    name = param(request, "name")
    return f"{param(request, 'ns')}/{name[:-4] if name.endswith('.git') else name}"


def git_error(exc: HubError) -> Response:
    """Git prints a text/plain error body to the user as ``remote: …`` lines."""
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = CHALLENGE  # without it, git would not send credentials
    if exc.code:
        headers["X-Error-Code"] = exc.code
    return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=headers)


async def serve_git(request: Request, repo_type: str, path: str) -> Response:
    service = request.query_params.get("service") if path == "info/refs" else path
    if service not in SERVICES:
        return PlainTextResponse("Only git's smart HTTP protocol is served; please use a newer git.\n",
                                 status_code=403)
    hub, principal = hub_of(request), principal_of(request)
    push = service == PUSH

    def authorize() -> tuple[RepoRow, bool]:
        """The repo, and whether the caller may write to it."""
        repo_id = _repo_id(request)
        if not push:
            return hub.repos.find(repo_type, repo_id, principal, action=Action.READ_CONTENT), False
        try:
            return hub.repos.find(repo_type, repo_id, principal, action=Action.WRITE), True
        except Forbidden:  # signed in, may see the repo, may not write: perhaps their own pull request
            return hub.repos.find(repo_type, repo_id, principal, action=Action.CONTRIBUTE), False

    try:
        repo, writer = await run_sync(authorize)
    except RepoMoved as exc:
        return moved_response(request, exc)
    except HubError as exc:
        return git_error(exc)

    env = cgi_env(hub, request, repo.storage_key, path, service)
    if path == "git-upload-pack":
        return await _checked_upload_pack(request, hub, repo, env)
    if not push:
        return CgiResponse(["git", "http-backend"], env)
    plan_dir = push_plan_dir(hub.settings)
    plan_dir.mkdir(parents=True, exist_ok=True)
    plan_path = plan_dir / f"{uuid.uuid4().hex}.json"
    env.update(AICOMMONS_PUSH_REPO_ID=str(repo.id), AICOMMONS_PUSH_PLAN=str(plan_path),
               AICOMMONS_GIT_HOOK_PYTHON=sys.executable)
    if not writer:  # the hook lets this pusher update only their own pull requests
        env[CONTRIBUTOR_ENV] = principal.key

    async def record(_returncode: int) -> None:
        await run_sync(record_push, hub, repo, plan_path, principal.user.id if principal.account else None)

    return CgiResponse(["git", "http-backend"], env, after=record, kill_on_disconnect=False)


async def _checked_upload_pack(request: Request, hub: Hub, repo: RepoRow, env: dict) -> Response:
    """A fetch may only want objects some ref reaches (``api/git_wants.py``)."""
    try:
        body = await git_wants.read_request(request.receive)
        plain = git_wants.gunzip(body) if request.headers.get("content-encoding", "").lower() in ("gzip", "x-gzip") \
            else body
    except HubError as exc:
        return git_error(exc)
    wanted = git_wants.wants(plain)
    if wanted:
        def first_unreachable():
            reach = Reachability(hub.git.open(repo.storage_key))
            return next((oid for oid in wanted if not reach.object(oid)), None)

        refused = await run_sync(first_unreachable)
        if refused is not None:
            return Response(git_wants.not_our_ref(refused), media_type="application/x-git-upload-pack-result",
                            headers={"Cache-Control": "no-cache"})
    env["CONTENT_LENGTH"] = str(len(body))
    return git_wants.Replay(CgiResponse(["git", "http-backend"], env), body)


def push_plan_dir(settings: Settings) -> Path:
    """Where the pre-receive hook leaves each checked push's plan for the server to record."""
    return settings.tmp_dir / "git-push"


def recover_pushes(hub: Hub) -> int:
    """At start-up: record the pushes a stopped server left unrecorded (``PushService.recover``)."""
    folder = push_plan_dir(hub.settings)
    return PushService.of(hub).recover(folder) if folder.is_dir() else 0


def record_push(hub: Hub, repo: RepoRow, plan_path: Path, pusher_id: int | None = None) -> None:
    """After receive-pack: record what landed. No plan means the hook refused (or never ran)."""
    error_path = plan_path.with_name(plan_path.name + ".error")
    if error_path.exists():
        log.error("pre-receive hook failed for %s:\n%s", repo.full_id, error_path.read_text())
        error_path.unlink(missing_ok=True)
    try:
        text = plan_path.read_text()
    except FileNotFoundError:
        return
    plan_path.unlink(missing_ok=True)
    PushService.of(hub).record(repo, PushPlan.from_json(text), pusher_id)


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment ``Settings.from_env()`` reads back (for the hook)."""
    env = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.name.lower())
        # Absolute: the hook runs in the repo's folder, not in the server's working directory.
        # None (an optional setting left empty) goes back as the empty string it was read from.
        env[f"AICOMMONS_{setting.name}"] = "" if value is None else str(value.resolve() if isinstance(value, Path)
                                                                        else value)
    return env


def ensure_hooks(settings: Settings) -> Path:
    """The hooks folder git uses for pushes (written once; replicas sharing it write the same)."""
    folder = settings.data_dir / "git-hooks"
    hook = folder / "pre-receive"
    try:
        if hook.read_text() == PRE_RECEIVE and os.access(hook, os.X_OK):
            return folder
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".pre-receive.{os.getpid()}.tmp"
    tmp.write_text(PRE_RECEIVE)
    tmp.chmod(0o755)
    os.replace(tmp, hook)
    return folder


def git_config(settings: Settings, push: bool) -> dict[str, str]:
    """Configuration for this one run of http-backend (the repos' own config is left alone)."""
    return {
        "http.receivepack": "true" if push else "false",  # a read can never reach receive-pack
        "core.hooksPath": str(ensure_hooks(settings)),  # our pre-receive, and no other hook
        "receive.fsckObjects": "true",  # refuse malformed objects before our hook sees them
        "uploadpack.allowFilter": "true",  # partial clones (`git clone --filter=blob:none`)
    }


def cgi_env(hub: Hub, request: Request, storage_key: str, path: str, service: str) -> dict[str, str]:
    """The CGI environment of ``git http-backend`` (RFC 3875 plus git's own variables)."""
    # Our parent's environment minus anything that could redirect git or the hook elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AICOMMONS_"))}
    env.update(settings_env(hub.settings))
    root = hub.git.root.resolve()
    repo_path = hub.git.path(storage_key).resolve()
    client = request.scope.get("client")
    env.update({
        "GIT_PROJECT_ROOT": str(root),
        "PATH_INFO": f"/{repo_path.relative_to(root).as_posix()}/{path}",
        "GIT_HTTP_EXPORT_ALL": "1",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": f"service={service}" if path == "info/refs" else "",
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_ADDR": client[0] if client else "",
    })
    principal = principal_of(request)
    if principal.name:
        env["REMOTE_USER"] = principal.name
    if request.headers.get("content-length", "").isdigit():
        env["CONTENT_LENGTH"] = request.headers["content-length"]
    if request.headers.get("content-encoding"):  # git gzips large fetch negotiations
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    protocol = request.headers.get("git-protocol", "")
    if protocol and len(protocol) < 256 and protocol.isprintable():
        env["GIT_PROTOCOL"] = protocol  # protocol v2
    config = git_config(hub.settings, service == PUSH)
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env
