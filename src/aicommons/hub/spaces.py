"""Spaces' runtime API: the Hub's ``SpaceRuntime`` shapes, hardware, sleep time, pause and restart,
secrets (stored encrypted, never returned) and variables, duplication.

Who may do what is the policy's (``hub/policy.py``): the runtime of a space is metadata (anyone who
may see the repo), its logs and restart need ``WRITE``, everything else (secrets, variables,
hardware, sleep time, pause) ``ADMIN``; a private space answers exactly like a missing one. What
runs is the runner's (``hub/space_apps.py`` over ``aicommons.spaces``), told through ``self.apps``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicommons.db.repos import RepoRow
from aicommons.db.spaces import SpaceRuntimeRow, SpaceStore
from aicommons.errors import BadRequest, NotFound
from aicommons.hub.access import Principal
from aicommons.hub.policy import Action
from aicommons.spaces.hardware import offered
from aicommons.times import utcnow
from aicommons.ttl_cache import TTLCache

if TYPE_CHECKING:
    from aicommons.config import Settings
    from aicommons.db.spaces import SpaceEnvRow
    from aicommons.hub.repos import RepoService
    from aicommons.hub.space_apps import SpaceApps

Json = dict[str, Any]

STAGES = ("NO_APP_FILE", "CONFIG_ERROR", "BUILDING", "BUILD_ERROR", "RUNNING", "RUNNING_BUILDING",
          "RUNTIME_ERROR", "DELETING", "STOPPED", "PAUSED", "SLEEPING", "APP_STARTING", "RUNNING_APP_STARTING")
# Stages in which no hardware is assigned yet ("current" is null, as on the Hub during a first build).
NOT_PLACED = frozenset({"NO_APP_FILE", "CONFIG_ERROR", "BUILDING", "BUILD_ERROR"})
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# Set by the hub for every app; a secret or variable may not replace them.
RESERVED_KEYS = frozenset({"SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME", "SPACE_REPO_NAME", "HF_ENDPOINT",
                           "SYSTEM", "HOME", "PATH", "PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME"})
MAX_ENV_VALUE = 64 * 1024
MAX_ENV_ENTRIES = 100


RUNNABLE_SDKS = ("gradio", "streamlit", "static")
DECISION_SECONDS = 1.0  # how long the proxy may reuse an access decision (``SpaceService.app_for``)
VISIT_SECONDS = 3600  # how long a browser may use a private app after opening its page (``sign_visit``)



@dataclass(frozen=True)
class SpaceConfig:
    sdk: str | None
    app_file: str
    app_file_exists: bool
    python_version: str


def subdomain(repo: RepoRow) -> str:
    """The Hub's sub-host of a space: ``<ns>-<name>``, lower case, other characters as dashes."""
    return re.sub(r"[^a-z0-9]+", "-", repo.full_id.lower()).strip("-")


@dataclass
class SecretBox:
    """AES-GCM with the hub's ``space-secrets`` key (hub/keys.py); the repo and key are bound in as
    associated data, so a value copied to another row does not decrypt."""

    key: bytes

    def seal(self, repo_id: int, name: str, value: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        sealed = AESGCM(self.key).encrypt(nonce, value.encode(), f"{repo_id}:{name}".encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, repo_id: int, name: str, stored: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        raw = base64.b64decode(stored)
        return AESGCM(self.key).decrypt(raw[:12], raw[12:], f"{repo_id}:{name}".encode()).decode()


class SpaceService:
    def __init__(self, store: SpaceStore, repos: RepoService, settings: Settings, box_key: bytes,
                 visit_key: bytes) -> None:
        self.store = store
        self.visit_key = visit_key
        self.repos = repos  # RepoService: finding a repo with the policy's decision
        self.settings = settings
        self.box = SecretBox(box_key)
        self.apps: SpaceApps | None = None  # set when this hub runs spaces (hub/space_apps.py)
        self._configs: dict[tuple[int, str | None], SpaceConfig] = {}
        self._decisions: TTLCache[tuple[Hashable, str], tuple[RepoRow, SpaceConfig]] = \
            TTLCache(DECISION_SECONDS, max_entries=10_000)

    # --- finding ------------------------------------------------------------------------------------

    def find(self, principal: Principal, repo_type: str, full_id: str, action: Action) -> RepoRow:
        repo = self.repos.find(repo_type, full_id, principal, action=action)
        if repo.type != "space":
            raise NotFound(f"{full_id} is a {repo.type}, not a Space: only Spaces have a runtime")
        return repo

    def app_repo(self, principal: Principal, full_id: str) -> RepoRow:
        """The space whose app ``principal`` wants to use: using it is reading its content."""
        return self.find(principal, "space", full_id, Action.READ_CONTENT)

    def decided_app(self, caller: Hashable, full_id: str) -> tuple[RepoRow, SpaceConfig] | None:
        """The proxy's fast path: ``app_for``'s answer for this caller and space if it was given less
        than ``DECISION_SECONDS`` ago and nothing changed the space since; else None."""
        return self._decisions.get((caller, full_id))

    def app_for(self, principal: Principal, full_id: str, caller: Hashable) -> tuple[RepoRow, SpaceConfig]:
        """The space ``principal`` may use, and its config; remembered briefly under ``caller`` (the
        credential the request came with: ``decided_app``) because an app's page makes dozens of
        requests. Any change to a space (a push, visibility, deletion) forgets every remembered
        decision at once; a change to the caller (a revoked token, a lost membership, signing out)
        applies within ``DECISION_SECONDS``."""
        generation = self._decisions.generation
        repo = self.app_repo(principal, full_id)
        decided = (repo, self.config(repo))
        self._decisions.put((caller, full_id), decided, generation)
        return decided

    # --- signed visits: a browser reaching a private app -----------------------------------------------

    def sign_visit(self, principal: Principal, repo: RepoRow, now: float | None = None) -> str:
        """A token saying that ``principal`` opened ``repo``'s page: the space page puts it in the
        app's URL, and the proxy turns it into a cookie valid for that app only (a browser sends no
        hub cookie to a sandboxed frame or to the app's own host). It names the caller, never
        grants more than the caller has: the proxy decides access for that caller as usual."""
        expires = int((now if now is not None else time.time()) + VISIT_SECONDS)
        payload = f"{repo.full_id.lower()}|{expires}|{principal.key}"
        mac = hmac.new(self.visit_key, payload.encode(), hashlib.sha256).hexdigest()[:40]
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=") + "." + mac

    def visit_caller(self, token: str, full_id: str, now: float | None = None) -> str | None:
        """The principal key a valid, unexpired visit token for ``full_id`` names; else None."""
        encoded, _, mac = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        good = hmac.new(self.visit_key, payload.encode(), hashlib.sha256).hexdigest()[:40]
        if not hmac.compare_digest(mac, good):
            return None
        space, expires, key = (payload.split("|", 2) + ["", ""])[:3]
        if space != full_id.lower() or not expires.isdigit() or int(expires) < (now or time.time()):
            return None
        return key or None

    def forget_decisions(self) -> None:
        self._decisions.clear()

    def by_subdomain(self, sub: str) -> str | None:
        """The space a sub-host names (domain mode): ``<ns>-<name>``, tried at each dash."""
        for at in (i for i, c in enumerate(sub) if c == "-"):
            repo = self.repos.store.get("space", f"{sub[:at]}/{sub[at + 1:]}")
            if repo is not None and subdomain(repo) == sub:
                return repo.full_id
        return None

    def hardware(self) -> list[Json]:
        return offered(self.settings.spaces_hardware)

    @property
    def default_hardware(self) -> str:
        return self.settings.spaces_hardware.split(",")[0]

    def row(self, repo: RepoRow) -> SpaceRuntimeRow:
        row = self.store.runtime(repo.id)
        if row is None:
            stage = self.apps.initial_stage(repo) if self.apps is not None else self.static_stage(repo)
            row = self.store.ensure(repo.id, self.default_hardware, stage, utcnow())
        return row

    def config(self, repo: RepoRow) -> SpaceConfig:
        """The card's ``sdk`` / ``app_file`` / ``python_version``, and whether the app file exists at the
        head (remembered per commit: the proxy asks on every request)."""
        key = (repo.id, repo.sha)
        found = self._configs.get(key)
        if found is None:
            found = self._configs[key] = self._read_config(repo)
            if len(self._configs) > 4096:
                self._configs.pop(next(iter(self._configs)))
        return found

    def _read_config(self, repo: RepoRow) -> SpaceConfig:
        from aicommons.hub import content

        card = repo.card_data or {}
        sdk = card.get("sdk") if isinstance(card.get("sdk"), str) else None
        app_file = card.get("app_file") if isinstance(card.get("app_file"), str) else None
        app_file = app_file or ("index.html" if sdk == "static" else "app.py")
        exists = False
        if repo.sha:
            git_repo = self.repos.git.open(repo.storage_key)
            exists = content.get_entry(git_repo, content.resolve_revision(git_repo, repo.sha), app_file) is not None
        return SpaceConfig(sdk, app_file, exists, str(card.get("python_version") or ""))

    def static_stage(self, repo: RepoRow) -> str:
        """The stage before anything ran: ``NO_APP_FILE``, ``CONFIG_ERROR`` (an SDK this hub does not
        run), ``RUNNING`` for a static space (its files are served), else ``STOPPED``."""
        config = self.config(repo)
        if config.sdk not in RUNNABLE_SDKS:
            return "CONFIG_ERROR"
        if not config.app_file_exists:
            return "NO_APP_FILE"
        return "RUNNING" if config.sdk == "static" else "STOPPED"

    # --- the runtime --------------------------------------------------------------------------------

    def runtime_of(self, repo: RepoRow) -> Json:
        """The Hub's SpaceRuntime JSON for ``repo`` (no access decision: callers made it)."""
        row = self.row(repo)
        stage = row.stage
        sleep = row.sleep_seconds if row.sleep_seconds is not None else self.settings.spaces_sleep_seconds
        out: Json = {"stage": stage,
               "hardware": {"current": None if stage in NOT_PLACED else row.hardware, "requested": row.hardware},
               "storage": None, "gcTimeout": None if sleep < 0 else sleep, "replicas": {"current": 1, "requested": 1},
               "devMode": False, "domains": [], "sha": row.sha}
        if row.error and stage in ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR"):
            out["errorMessage"] = row.error
        return out

    def runtime(self, principal: Principal, repo_type: str, full_id: str) -> Json:
        """A sleeping space read by someone who may use it starts waking, and answers ``BUILDING``
        until it is up: the clients about to call an app (gradio_client) wait only on that stage."""
        repo = self.find(principal, repo_type, full_id, Action.READ_METADATA)
        runtime = self.runtime_of(repo)
        if runtime["stage"] == "SLEEPING" and self.apps is not None and \
                self.repos.policy.allows(principal, repo, Action.READ_CONTENT):
            self.apps.wake_in_background(repo)
            runtime["stage"] = "BUILDING"
        return runtime

    def request_hardware(self, principal: Principal, repo_type: str, full_id: str, flavor: object, sleep: object) -> Json:
        repo = self.find(principal, repo_type, full_id, Action.ADMIN)
        names = [f["name"] for f in self.hardware()]
        if not isinstance(flavor, str) or flavor not in names:
            raise BadRequest(f"Hardware {flavor!r} is not offered here: choose one of {', '.join(names)}")
        self.row(repo)
        values: dict[str, object] = {"hardware": flavor}
        if sleep is not None:
            values["sleep_seconds"] = _sleep_seconds(sleep)
        self.store.set(repo.id, utcnow(), **values)
        return self.runtime_of(repo)

    def set_sleep_time(self, principal: Principal, repo_type: str, full_id: str, seconds: object) -> Json:
        repo = self.find(principal, repo_type, full_id, Action.ADMIN)
        self.row(repo)
        self.store.set(repo.id, utcnow(), sleep_seconds=_sleep_seconds(seconds))
        return self.runtime_of(repo)

    def pause(self, principal: Principal, repo_type: str, full_id: str) -> Json:
        repo = self.find(principal, repo_type, full_id, Action.ADMIN)
        self.row(repo)
        self.store.set(repo.id, utcnow(), paused=True, stage="PAUSED", error=None)
        if self.apps is not None:
            self.apps.stop(repo.id)
        return self.runtime_of(repo)

    def restart(self, principal: Principal, repo_type: str, full_id: str, factory: bool) -> Json:
        repo = self.find(principal, repo_type, full_id, Action.WRITE)
        self.row(repo)
        self.store.set(repo.id, utcnow(), paused=False)
        if self.apps is not None:
            self.apps.restart(repo, rebuild=factory)
        else:
            self.store.set(repo.id, utcnow(), stage="STOPPED", error=None)
        return self.runtime_of(repo)

    def logs(self, principal: Principal, repo_type: str, full_id: str, kind: str) -> RepoRow:
        if kind not in ("build", "run"):
            raise NotFound(f"No {kind!r} logs: they are 'build' or 'run'")
        return self.find(principal, repo_type, full_id, Action.WRITE)

    def failure(self, principal: Principal, repo: RepoRow, lines: int = 30) -> tuple[str, str, str] | None:
        """Why a space is down, for its page: ``(errorMessage, log kind, the log's last lines)`` on
        BUILD_ERROR / RUNTIME_ERROR / CONFIG_ERROR, else None. The message is what the runtime API
        shows every reader; the log's lines only to those who may read the logs (the write right)."""
        row = self.row(repo)
        if row.stage not in ("BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR"):
            return None
        kind = "build" if row.stage == "BUILD_ERROR" else "run"
        tail = ""
        if self.repos.policy.allows(principal, repo, Action.WRITE):
            raw, _ = read_log(self.settings, repo.id, kind, 0)
            tail = "".join(_log_text(line) for line in raw[-lines:]).rstrip()
        return row.error or row.stage, kind, tail

    # --- secrets and variables ----------------------------------------------------------------------

    def secrets(self, principal: Principal, repo_type: str, full_id: str) -> Json:
        repo = self.find(principal, repo_type, full_id, Action.ADMIN)
        return {r.key: _meta(r) for r in self.store.env(repo.id, "secret")}

    def variables(self, principal: Principal, repo_type: str, full_id: str) -> Json:
        repo = self.find(principal, repo_type, full_id, Action.ADMIN)
        return self._variables(repo)

    def _variables(self, repo: RepoRow) -> Json:
        return {r.key: {"value": r.value, **_meta(r)} for r in self.store.env(repo.id, "variable")}

    def put(self, principal: Principal, repo_type: str, full_id: str, kind: str, body: Json) -> Json | None:
        repo = self.find(principal, repo_type, full_id, Action.ADMIN)
        self._put_entry(repo, kind, body)
        return self._variables(repo) if kind == "variable" else None

    def _put_entry(self, repo: RepoRow, kind: str, body: Json) -> None:
        key, value, description = _check_entry(body)
        existing = {r.key for r in self.store.env(repo.id)}
        if key not in existing and len(existing) >= MAX_ENV_ENTRIES:
            raise BadRequest(f"A Space has at most {MAX_ENV_ENTRIES} secrets and variables")
        stored = self.box.seal(repo.id, key, value) if kind == "secret" else value
        self.store.put_env(repo.id, kind, key, stored, description, utcnow())
        self._changed(repo)

    def delete(self, principal: Principal, repo_type: str, full_id: str, kind: str, body: Json) -> Json | None:
        repo = self.find(principal, repo_type, full_id, Action.ADMIN)
        key = _check_key(body.get("key"))
        if self.store.delete_env(repo.id, kind, key):
            self._changed(repo)
        return self._variables(repo) if kind == "variable" else None

    def app_env(self, repo: RepoRow) -> dict[str, str]:
        """The secrets (decrypted) and variables the app gets as environment; secrets win a tie."""
        rows = self.store.env(repo.id)
        env = {r.key: r.value for r in rows if r.kind == "variable"}
        env.update({r.key: self.box.open(repo.id, r.key, r.value) for r in rows if r.kind == "secret"})
        return env

    def secret_values(self, repo: RepoRow) -> list[str]:
        """The secrets' values, for masking them in logs."""
        return [self.box.open(repo.id, r.key, r.value) for r in self.store.env(repo.id, "secret")]

    def _changed(self, repo: RepoRow) -> None:
        if self.apps is not None:
            self.apps.env_changed(repo)

    # --- duplication --------------------------------------------------------------------------------

    def duplicate(self, principal: Principal, repo_type: str, full_id: str, body: Json) -> tuple[RepoRow, bool]:
        """Copy a space's files and history to ``body["repository"]`` (``RepoService.duplicate``: the
        caller's namespace when it names none, as private as the source unless the body says);
        returns (repo, created). Settings, secrets and variables given in the body are set on the
        copy; the source's secrets are never copied."""
        source = self.find(principal, repo_type, full_id, Action.READ_CONTENT)
        if source.type == "space":
            self.check_settings(body)
        repo, created = self.repos.duplicate(principal, source, body)
        if not created:
            return repo, False
        self.apply_settings(repo, body)
        return repo, True

    def check_settings(self, body: Json) -> None:
        """400 for settings of a new space (``hardware``, ``sleepTimeSeconds``, ``secrets``,
        ``variables``: create_repo's and duplicate_repo's ``space_*`` arguments) that it could not
        take, before anything is created."""
        if body.get("hardware") is not None and body["hardware"] not in [f["name"] for f in self.hardware()]:
            raise BadRequest(f"Hardware {body['hardware']!r} is not offered here: choose one of "
                             f"{', '.join(f['name'] for f in self.hardware())}")
        if body.get("sleepTimeSeconds") is not None:
            _sleep_seconds(body["sleepTimeSeconds"])
        keys = set()
        for kind, items in (("secret", body.get("secrets")), ("variable", body.get("variables"))):
            if items is not None and not isinstance(items, list):
                raise BadRequest(f"'{kind}s' must be a list of objects with 'key' and 'value'")
            for item in items or []:
                if not isinstance(item, dict):
                    raise BadRequest(f"each of '{kind}s' must be an object with 'key' and 'value'")
                keys.add(_check_entry(item)[0])
        if len(keys) > MAX_ENV_ENTRIES:
            raise BadRequest(f"A Space has at most {MAX_ENV_ENTRIES} secrets and variables")

    def apply_settings(self, repo: RepoRow, body: Json) -> None:
        """Set the settings ``check_settings`` accepted on the space its caller just created. They are
        part of creating it, so no admin right on the new repo is asked for (an organisation's write
        member may create a space there, and push its code, without administering it)."""
        values: dict[str, object] = {}
        if body.get("hardware") is not None:
            values["hardware"] = body["hardware"]
        if body.get("sleepTimeSeconds") is not None:
            values["sleep_seconds"] = _sleep_seconds(body["sleepTimeSeconds"])
        if values:
            self.row(repo)
            self.store.set(repo.id, utcnow(), **values)
        for kind, items in (("secret", body.get("secrets")), ("variable", body.get("variables"))):
            for item in items or []:
                self._put_entry(repo, kind, item)

    # --- what the repo API shows ------------------------------------------------------------------------

    def host(self, repo: RepoRow, base_url: str) -> str:
        """Where the app answers: its own sub-host in domain mode, else a path of the hub (ending in
        '/', as gradio_client joins paths onto it)."""
        if self.settings.spaces_domain:
            scheme, _, authority = base_url.partition("://") if "://" in base_url else ("https", "", "")
            port = authority.split("/", 1)[0].rpartition(":")[2] if ":" in authority.split("/", 1)[0] else ""
            # The apps answer on the hub's own server, so on its port too (``make serve`` on :8000).
            return f"{scheme}://{subdomain(repo)}.{self.settings.spaces_domain}" + (f":{port}" if port else "")
        return f"{base_url}/spaces-apps/{repo.full_id}/"

    def info_fields(self, repo: RepoRow, base_url: str) -> Json:
        return {"host": self.host(repo, base_url), "subdomain": subdomain(repo), "runtime": self.runtime_of(repo)}


def _meta(row: SpaceEnvRow) -> Json:
    out = {"updatedAt": row.updated_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    if row.description:
        out["description"] = row.description
    return out


def _check_key(key: object) -> str:
    """``key`` if it may name a secret or variable."""
    if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
        raise BadRequest("'key' must be an environment variable name: letters, digits and '_', not starting "
                         "with a digit, at most 128 characters")
    if key.upper() in RESERVED_KEYS:
        raise BadRequest(f"{key!r} is set by the hub for every Space and cannot be replaced")
    return key


def _check_entry(body: Json) -> tuple[str, str, str | None]:
    """(key, value, description) of a secret or variable, if it may be stored."""
    key, value, description = _check_key(body.get("key")), body.get("value", ""), body.get("description")
    if not isinstance(value, str) or len(value) > MAX_ENV_VALUE:
        raise BadRequest(f"'value' must be a string of at most {MAX_ENV_VALUE} characters")
    if description is not None and (not isinstance(description, str) or len(description) > 1000):
        raise BadRequest("'description' must be a string of at most 1000 characters")
    return key, value, description


def _sleep_seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or 60 <= value <= 2**31 - 1):
        raise BadRequest("'seconds' must be -1 (never sleep) or a number of seconds of at least 60")
    return value


# --- logs ---------------------------------------------------------------------------------------------


def log_path(settings: Settings, repo_id: int, kind: str) -> Path:
    """A space's build or run log: one JSON object per line, ``{"data": line, "timestamp": "…Z"}``,
    the Hub's SSE event shape (written by hub/space_apps.py, replayed by ``read_log``)."""
    return settings.data_dir / "spaces" / "logs" / str(repo_id) / f"{kind}.jsonl"


def read_log(settings: Settings, repo_id: int, kind: str, offset: int) -> tuple[list[bytes], int]:
    """Whole lines of the log from byte ``offset``; the offset after them."""
    try:
        with open(log_path(settings, repo_id, kind), "rb") as f:
            f.seek(offset)
            data = f.read(1 << 20)
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), offset + end


def _log_text(line: bytes) -> str:
    try:
        return str(json.loads(line)["data"])
    except (ValueError, KeyError, TypeError):
        return ""
