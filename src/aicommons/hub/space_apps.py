"""What runs: Space apps built on push, started and woken on demand, put to sleep when idle or when
the cap on running apps needs room (least recently used first), restarted after a crash with a
backoff, stopped on pause or delete. The stage each space is in is written to its runtime row
(``hub/spaces.py`` answers from it), and build and run logs are kept (``hub/spaces.py: log_path``).

One machine: the apps are children of the process that started them (a server, or a job worker of
it); every server finds a running app by its socket (``<DATA_DIR>/spaces/run/<id>/app.sock``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aicommons.config import SPACES_RELAY_ADDRESS
from aicommons.db.repos import RepoRow
from aicommons.errors import HubError
from aicommons.hub import content
from aicommons.hub.spaces import SpaceConfig, SpaceService, log_path
from aicommons.spaces.cgroups import Cgroups
from aicommons.spaces.runner import AppSpec, BuildFailed, LocalRunner, RunningApp
from aicommons.spaces.sandbox import Limits, SandboxUnavailable, readable
from aicommons.times import utcnow

if TYPE_CHECKING:
    from aicommons.hub.hub import Hub

log = logging.getLogger(__name__)
READY_TIMEOUT = 180.0  # an app that does not answer HTTP within this is a RUNTIME_ERROR
CRASH_WINDOW = 300.0  # crashes counted over this long...
MAX_RESTARTS = 3  # ...at most this many automatic restarts in it, after 1, 2, 4 s
WATCH_SECONDS = 1.0


class NotRunning(HubError):
    """The app cannot answer now (paused, failed, no app file): 503 with the stage."""

    status = 503
    code = "SpaceNotRunning"

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


class RepoLog:
    """A log sink: each line as ``{"data", "timestamp"}`` JSON, secrets' values masked. The file is
    open only while something writes: ``close`` when the app stops (a later line reopens it)."""

    def __init__(self, path: Path, secrets: list[str], truncate: bool):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.mask(secrets)
        self._file: TextIO | None = open(path, "w" if truncate else "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def mask(self, secrets: list[str]) -> None:
        """The values written as ``***`` from now on (the space's secrets, the app's token)."""
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def line(self, text: str) -> None:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        with self._lock:
            try:
                if self._file is None:
                    self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - until close()
                self._file.write(json.dumps({"data": text + "\n", "timestamp": stamp}) + "\n")
                self._file.flush()
            except OSError:  # the space was deleted (its logs with it) while its app said its last words
                pass

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def tail(self, lines: int = 5) -> str:
        try:
            rows = self.path.read_text(encoding="utf-8").splitlines()[-lines:]
            return "".join(json.loads(r)["data"] for r in rows).strip()
        except (OSError, ValueError):
            return ""


def _hub_name(data_dir: Path) -> str:
    """Names this hub's control groups: hubs on one machine have different data folders."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]


class SpaceApps:
    def __init__(self, hub: Hub, spaces: SpaceService) -> None:
        self.hub = hub
        self.settings = settings = hub.settings
        self.spaces = spaces
        self.store = spaces.store
        self.root = settings.data_dir / "spaces"
        self.runner = LocalRunner(self.root, Limits(settings.spaces_memory_mb, settings.spaces_processes,
                                                    settings.spaces_disk_mb, cpus=settings.spaces_cpus),
                                  cgroups=Cgroups(_hub_name(settings.data_dir), settings.spaces_cgroup),
                                  index_url=settings.spaces_index_url, site_packages=settings.spaces_site_packages,
                                  build_timeout=settings.spaces_build_timeout_seconds,
                                  build_hosts=settings.spaces_build_hosts,
                                  pip_cache=Path(settings.spaces_pip_cache_dir) if settings.spaces_pip_cache_dir else None)
        self.apps: dict[int, RunningApp] = {}
        self.logs: dict[int, RepoLog] = {}
        self.tokens: dict[int, str] = {}  # the running app's HF_TOKEN, revoked when it stops
        self.last_used: dict[int, float] = {}
        self.crashes: dict[int, list[float]] = {}
        self.retry_at: dict[int, float] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bridges: dict[int, asyncio.AbstractServer] = {}
        self._watch: threading.Thread | None = None
        self._closed = threading.Event()

    # --- stages ----------------------------------------------------------------------------------

    def initial_stage(self, repo: RepoRow) -> str:
        return self.spaces.static_stage(repo)

    def may_run(self, repo: RepoRow) -> bool:
        """Whether this hub builds and runs the space's app: SPACES_RUN, and for a space pulled through
        from the upstream hub also UPSTREAM_SPACES_RUN (a mirror must not run upstream code because
        someone asked for it, unless its operator chose so)."""
        if not self.settings.spaces_run:
            return False
        upstream = self.hub.upstream
        return self.settings.upstream_spaces_run or upstream is None or upstream.mirror_of(repo) is None

    def _stage(self, repo_id: int, stage: str, error: str | None = None, sha: str | None = None) -> None:
        self.store.set_stage_unless_paused(repo_id, stage, error, utcnow(), sha=sha)

    def _key_lock(self, key: int) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    # --- pushes, restarts, pauses ------------------------------------------------------------------

    def on_ref_moved(self, repo: RepoRow, ref: str, new_sha: str | None) -> None:
        """A listener of RepoService: a push to a space's default branch queues its build."""
        if repo.type != "space" or ref != "refs/heads/main" or new_sha is None:
            return
        repo = self.hub.repo_store.get_by_id(repo.id) or repo
        self.spaces.row(repo)
        stage = self.spaces.static_stage(repo)
        if stage == "STOPPED" and self.may_run(repo):
            self._stage(repo.id, "BUILDING", sha=new_sha)
            self.hub.jobs.space_build(repo.id, new_sha)
        else:
            self.stop(repo.id)
            self._stage(repo.id, stage, sha=new_sha)

    def restart(self, repo: RepoRow, rebuild: bool) -> None:
        self.stop(repo.id)
        with self._lock:
            self.crashes.pop(repo.id, None)
        if rebuild:
            shutil.rmtree(self.root / "src" / str(repo.id), ignore_errors=True)
        stage = self.spaces.static_stage(repo)
        if stage == "STOPPED" and self.may_run(repo):
            self._stage(repo.id, "BUILDING", error=None)
            self.hub.jobs.space_build(repo.id, repo.sha or "", rebuild)
        else:
            self._stage(repo.id, stage, error=None)

    def env_changed(self, repo: RepoRow) -> None:
        """Secrets or variables changed: a running app restarts with them (as on the Hub)."""
        if self.running(repo.id):
            self.restart(repo, rebuild=False)

    def stop(self, repo_id: int) -> None:
        with self._lock:
            app = self.apps.pop(repo_id, None)
            self.last_used.pop(repo_id, None)
        if app is not None:
            self.runner.stop(app)
            self._close_bridge(repo_id)
            if app.reader is not None:
                app.reader.join(5)  # the app's last lines, then its log file is closed
        self._revoke_token(repo_id)
        run_log = self.logs.get(repo_id)
        if run_log is not None:
            run_log.close()

    def deleted(self, repo: RepoRow) -> None:
        self.stop(repo.id)
        run_log = self.logs.pop(repo.id, None)
        if run_log is not None:
            run_log.close()
        if repo.created_by:  # any token of its app a killed hub left behind
            self.hub.accounts.revoke_app_tokens(repo.created_by, _token_prefix(repo.id))
        for folder in (self.root / "src" / str(repo.id), log_path(self.settings, repo.id, "run").parent):
            shutil.rmtree(folder, ignore_errors=True)

    def touch(self, repo_id: int) -> None:
        if repo_id in self.apps:
            self.last_used[repo_id] = time.monotonic()

    def wake_in_background(self, repo: RepoRow) -> None:
        lock = self._key_lock(repo.id)
        if lock.locked() or self.running(repo.id):
            return  # already starting or up
        threading.Thread(target=self._restart_quietly, args=(repo,), daemon=True, name=f"space-wake-{repo.id}").start()

    def static_file(self, repo: RepoRow, path: str) -> Path | None:
        """A static space's file (``index.html`` for a folder); None when there is none."""
        root = self._export(repo).resolve()
        target = (root / path).resolve() if path else root
        if target != root and root not in target.parents:
            return None
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_file() else None

    def running(self, repo_id: int) -> bool:
        app = self.apps.get(repo_id)
        return app is not None and app.alive()

    # --- building and starting ------------------------------------------------------------------

    def build(self, repo_id: int, sha: str, rebuild: bool = False) -> None:
        """The job: export the files, build the environment, start the app (on this process)."""
        repo = self.hub.repo_store.get_by_id(repo_id)
        if repo is None or repo.type != "space" or (sha and repo.sha != sha):
            return  # deleted, or pushed again since (that push queued its own build)
        row = self.spaces.row(repo)
        if row.paused:
            return
        self.stop(repo.id)
        try:
            self.ensure(repo, build_log_fresh=True, rebuild=rebuild)
        except NotRunning:
            pass  # the stage says why

    def ensure(self, repo: RepoRow, build_log_fresh: bool = False, rebuild: bool = False) -> Path | None:
        """The app's socket once it answers (started or woken as needed); None for a static space."""
        config = self.spaces.config(repo)
        if config.sdk == "static":
            return None
        with self._key_lock(repo.id):
            if self.running(repo.id):
                self.last_used[repo.id] = time.monotonic()
                return self.runner.socket(repo.id)
            row = self.spaces.row(repo)
            if row.paused:
                raise NotRunning("PAUSED", "This Space is paused by its owner")
            if not self.settings.spaces_run:
                raise NotRunning("STOPPED", "This hub does not run Spaces")
            if not self.may_run(repo):
                raise NotRunning("STOPPED", "This hub keeps Spaces from its upstream hub as stored repos and does not "
                                 "run them (AICOMMONS_UPSTREAM_SPACES_RUN)")
            if len(self.crashes.get(repo.id, [])) > MAX_RESTARTS and not build_log_fresh:
                raise NotRunning("RUNTIME_ERROR", "This Space crashed repeatedly: its owner may restart it")
            stage = self.spaces.static_stage(repo)
            if stage != "STOPPED":
                self._stage(repo.id, stage)
                raise NotRunning(stage, f"This Space cannot run: {stage}")
            secrets = self.spaces.secret_values(repo)
            spec = self._spec(repo, config)
            build_log = RepoLog(log_path(self.settings, repo.id, "build"), secrets, truncate=build_log_fresh)
            if build_log_fresh or rebuild:
                self._stage(repo.id, "BUILDING", sha=repo.sha)
            try:
                env_dir = self.runner.build(spec, build_log, rebuild=rebuild)
            except (BuildFailed, SandboxUnavailable, OSError) as exc:
                build_log.line(f"Build failed: {exc}")
                self._stage(repo.id, "BUILD_ERROR", str(exc))
                raise NotRunning("BUILD_ERROR", f"The build failed: {exc}") from None
            finally:
                build_log.close()
            self._make_room(repo.id)
            run_log = self.logs.get(repo.id)
            if run_log is None or build_log_fresh:
                if run_log is not None:
                    run_log.close()
                run_log = self.logs[repo.id] = RepoLog(log_path(self.settings, repo.id, "run"), secrets,
                                                       truncate=True)
            token = self._token(repo) if "HF_TOKEN" not in spec.env else None
            if token:
                spec = dataclasses.replace(spec, env={**spec.env, "HF_TOKEN": token})
            run_log.mask([*secrets, *([token] if token else [])])  # (secrets may have changed since)
            run_log.line(f"===== Application Startup at {utcnow():%Y-%m-%d %H:%M:%S} =====")
            app = self.runner.start(spec, env_dir, run_log)
            with self._lock:
                self.apps[repo.id] = app
                self.last_used[repo.id] = time.monotonic()
            self._open_bridge(repo.id)
            self._watch_start()
            if not self._wait_ready(app):
                reason = self._exit_reason(app, run_log)
                self.stop(repo.id)
                self._failed(repo.id, reason, run_log, time.monotonic())
                raise NotRunning("RUNTIME_ERROR", reason)
            app.ready = True
            self.last_used[repo.id] = time.monotonic()  # idle from when it could first answer
            self._stage(repo.id, "RUNNING", None, sha=repo.sha)
            return self.runner.socket(repo.id)

    def _spec(self, repo: RepoRow, config: SpaceConfig) -> AppSpec:
        src = self._export(repo)
        requirements = src / "requirements.txt"
        card = repo.card_data or {}
        env = {**self.spaces.app_env(repo), "SPACE_ID": repo.full_id, "SPACE_AUTHOR_NAME": repo.namespace,
               "SPACE_REPO_NAME": repo.name}
        root_path = "" if self.settings.spaces_domain else f"/spaces-apps/{repo.full_id}"
        return AppSpec(key=repo.id, src=src, sdk=config.sdk or "", app_file=config.app_file, env=env,
                       python_version=config.python_version, owner=repo.namespace,
                       requirements=requirements.read_text(errors="replace") if requirements.is_file() else "",
                       sdk_version=str(card.get("sdk_version") or ""), root_path=root_path)

    def _token(self, repo: RepoRow) -> str | None:
        """A read token of the space's creator, valid for a day, for the app's own calls to the hub:
        one per run (revoked when the app stops, ``_revoke_token``); minting it deletes any earlier
        one of this space (a hub that was killed could not revoke it) and the expired ones of apps."""
        creator = self.hub.accounts.by_id(repo.created_by) if repo.created_by else None
        if creator is None:
            return None
        self._revoke_token(repo.id)
        self.hub.accounts.revoke_app_tokens(creator.id, _token_prefix(repo.id))
        try:
            token = self.hub.accounts.create_token(creator.name, role="read",
                                                   name=f"{_token_prefix(repo.id)}{repo.full_id}",
                                                   expires_at=utcnow() + timedelta(days=1), origin="space")
        except HubError:
            return None
        with self._lock:
            self.tokens[repo.id] = token
        return token

    def _revoke_token(self, repo_id: int) -> None:
        with self._lock:
            token = self.tokens.pop(repo_id, None)
        if token is not None:
            try:
                self.hub.accounts.revoke_token(token)
            except Exception:  # noqa: BLE001 - (a hub shutting down) the next mint deletes it
                log.warning("spaces: could not revoke the token of %s's app", repo_id, exc_info=True)

    def _export(self, repo: RepoRow) -> Path:
        """The files of the space's head, written once per commit (LFS files with their content)."""
        folder = self.root / "src" / str(repo.id) / (repo.sha or "empty")
        if folder.is_dir():
            return folder
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        git_repo = self.hub.git.open(repo.storage_key)
        commit = content.resolve_revision(git_repo, repo.sha or "")
        for entry in content.iter_files(git_repo, commit):
            target = tmp / entry.path
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            if entry.lfs is not None:
                with self.hub.objects.open(entry.lfs.oid) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            else:
                target.write_bytes(content.read_blob(git_repo, entry.oid))
            target.chmod(0o644)
        tmp.mkdir(parents=True, exist_ok=True)
        for old in folder.parent.iterdir():
            if old.name != tmp.name:
                shutil.rmtree(old, ignore_errors=True)
        readable(tmp)
        for path in (folder.parent.parent, folder.parent):
            path.chmod(0o755)
        tmp.rename(folder)
        return folder

    def _wait_ready(self, app: RunningApp) -> bool:
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT
        sock = str(self.runner.socket(app.key))
        transport = httpx.HTTPTransport(uds=sock)
        with httpx.Client(transport=transport, timeout=2) as client:
            while time.monotonic() < deadline and not self._closed.is_set():
                if not app.alive():
                    return False
                try:
                    client.get("http://space/")
                    return True
                except httpx.HTTPError:
                    time.sleep(0.1)
        return False

    @staticmethod
    def _exit_reason(app: RunningApp, run_log: RepoLog) -> str:
        code = app.process.poll()
        if code is None:
            return f"The app did not answer HTTP within {READY_TIMEOUT:.0f} s"
        why = {-9: "killed", 137: "killed"}.get(code, f"exit status {code}")
        tail = run_log.tail()
        return f"The app stopped ({why})" + (f": {tail[-500:]}" if tail else "")

    def _make_room(self, key: int) -> None:
        """At the cap, the least recently used running app goes to sleep."""
        with self._lock:
            others = [k for k in self.apps if k != key and self.apps[k].alive()]
            if len(others) < self.settings.spaces_max_running:
                return
            victim = min(others, key=lambda k: self.last_used.get(k, 0))
        log.info("spaces: %s put to sleep to make room", victim)
        self.stop(victim)
        self._stage(victim, "SLEEPING")

    # --- the bridge from apps to the hub -------------------------------------------------------------

    def _loop_running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, daemon=True, name="space-bridges").start()
                self._loop = loop
            return self._loop

    def _open_bridge(self, key: int) -> None:
        path = self.runner.hub_socket(key)
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        port = self.settings.port

        # From an address of its own, which TRUSTED_PROXIES may not list (config.py): whatever
        # X-Forwarded-For an app sends, its client address stays this one.
        source = (SPACES_RELAY_ADDRESS, 0) if ":" not in host else None

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port, local_addr=source)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        async def serve() -> asyncio.AbstractServer:
            server = await asyncio.start_unix_server(relay, str(path))
            path.chmod(0o666)
            return server

        loop = self._loop_running()
        self._bridges[key] = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)

    def _close_bridge(self, key: int) -> None:
        server = self._bridges.pop(key, None)
        if server is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(server.close)

    # --- the watchdog: crashes, idle sleep ----------------------------------------------------------

    def _watch_start(self) -> None:
        with self._lock:
            if self._watch is None:
                self._watch = threading.Thread(target=self._watch_loop, daemon=True, name="space-watchdog")
                self._watch.start()

    def _watch_loop(self) -> None:
        while not self._closed.wait(WATCH_SECONDS):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watchdog must keep watching
                log.exception("spaces watchdog")

    def check(self) -> None:
        now = time.monotonic()
        for key, app in list(self.apps.items()):
            if app.stopping:
                continue
            if not app.alive():
                self._crashed(key, app, now)
                continue
            row = self.store.runtime(key)
            sleep = row.sleep_seconds if row and row.sleep_seconds is not None else self.settings.spaces_sleep_seconds
            if app.ready and sleep >= 0 and now - self.last_used.get(key, now) > sleep:  # never while starting
                self.stop(key)
                self._stage(key, "SLEEPING")
        for key, when in list(self.retry_at.items()):
            if now >= when:
                self.retry_at.pop(key, None)
                repo = self.hub.repo_store.get_by_id(key)
                if repo is not None:
                    threading.Thread(target=self._restart_quietly, args=(repo,), daemon=True).start()

    def _crashed(self, key: int, app: RunningApp, now: float) -> None:
        run_log = self.logs.get(key)
        reason = self._exit_reason(app, run_log) if run_log else "The app stopped"
        with self._lock:
            self.apps.pop(key, None)
        self.runner.stop(app)  # its control group: whatever the app left running
        self._close_bridge(key)
        if app.reader is not None:
            app.reader.join(5)
        self._revoke_token(key)
        self._failed(key, reason, run_log, now)

    def _failed(self, key: int, reason: str, run_log: RepoLog | None, now: float) -> None:
        """A start or a run ended in error: RUNTIME_ERROR, and a restart after 1, 2, 4 s, at most
        MAX_RESTARTS in CRASH_WINDOW (then it stays down until its owner restarts it)."""
        with self._lock:
            recent = [t for t in self.crashes.get(key, []) if now - t < CRASH_WINDOW] + [now]
            self.crashes[key] = recent
        if run_log:
            run_log.line(f"Runtime error: {reason}")
        self._stage(key, "RUNTIME_ERROR", reason)
        if len(recent) <= MAX_RESTARTS:
            self.retry_at[key] = now + 2 ** (len(recent) - 1)
        elif run_log:
            run_log.line(f"Not restarted again: {len(recent)} crashes in {CRASH_WINDOW:.0f} s")
        if run_log:
            run_log.close()

    def _restart_quietly(self, repo: RepoRow) -> None:
        try:
            self.ensure(repo)
        except NotRunning:
            pass

    def close(self) -> None:
        self._closed.set()
        for key in list(self.apps):
            self.stop(key)
        for run_log in list(self.logs.values()):
            run_log.close()
        if self.runner.cgroups is not None:
            self.runner.cgroups.close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)


def _token_prefix(repo_id: int) -> str:
    """How the tokens minted for a space's app are named (the repo id: a rename keeps it)."""
    return f"space #{repo_id} "


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass
