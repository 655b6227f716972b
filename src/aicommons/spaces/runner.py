"""The runner interface and the local runner: environments built from ``requirements.txt`` and apps
started in the sandbox (``sandbox.py``) on this machine.

A ``Runner`` knows nothing of repos or access: it gets a space key (the repo id), a folder of files,
an environment and limits. ``hub/space_apps.py`` decides when to build, start, stop and wake. A
Kubernetes runner (one Deployment and Service per space) would implement the same four methods;
docs/spaces.md describes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from aicommons.spaces import sandbox
from aicommons.spaces.build_proxy import BuildProxy, index_hosts
from aicommons.spaces.cgroups import Cgroup, Cgroups, TreeLimits
from aicommons.spaces.sandbox import BUILDER_UID, SPACE_UID_BASE, VENV_DIR, Limits

APP_PORT = 7860
HUB_PORT = 8000  # HF_ENDPOINT inside the sandbox: http://127.0.0.1:8000
PROXY_PORT = 3128  # HTTP(S)_PROXY inside a build's sandbox: the package index and nothing else
BRIDGE = Path(__file__).with_name("bridge.py")
SDK_PACKAGES = {"gradio": "gradio", "streamlit": "streamlit"}


PYTHON_ROOT_FILE = ".python-root"
RETIRED = ".retired"  # in envs/: environments a factory reboot replaced, deleted when the runner starts  # in an environment: the installation its Python comes from


@dataclass(frozen=True)
class Python:
    """The interpreter an environment is made from."""

    executable: str
    root: str  # its installation (bound read-only into the sandbox)
    version: str  # "3.11.7"
    is_hubs: bool  # the hub's own Python (its packages may be shared, SPACES_SITE_PACKAGES)
    note: str = ""  # said in the build log


def find_python(wanted: str) -> Python:
    """The card's ``python_version`` ("3.10", "3.10.4": its major.minor counts) if this machine has
    that Python (``python3.10`` on PATH), else the hub's own, with a note saying so."""
    hubs = Python(sandbox.base_python(), os.path.realpath(sys.base_prefix),
                  ".".join(map(str, sys.version_info[:3])), True)
    minor = ".".join(wanted.strip().split(".")[:2])
    if not minor or minor == f"{sys.version_info[0]}.{sys.version_info[1]}":
        return hubs
    found = shutil.which(f"python{minor}") if all(p.isdigit() for p in minor.split(".")) else None
    if found:
        try:
            out = subprocess.run([found, "-c", "import sys; print(sys.base_prefix); print(sys.version.split()[0])"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout.split()
            return Python(os.path.realpath(found), os.path.realpath(out[0]), out[1], False,
                          f"Python {out[1]} (the card's python_version {wanted})")
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    return Python(hubs.executable, hubs.root, hubs.version, True,
                  f"python_version {wanted!r} is not installed on this hub: using Python {hubs.version}")


class BuildFailed(Exception):
    """The environment could not be built; the message says why (the build log has the rest)."""


@dataclass(frozen=True)
class AppSpec:
    """What to run: the space's files, its SDK and app file, its environment variables."""

    key: int  # the repo id: names folders, the uid and the sockets
    src: Path  # the app's files (read-only to the app)
    sdk: str
    app_file: str
    env: dict[str, str]
    requirements: str = ""
    sdk_version: str = ""
    python_version: str = ""  # the card's, e.g. "3.10"; "" for the hub's own
    owner: str = ""  # whose builds may share a pip cache with this one
    root_path: str = ""  # the URL path the hub serves the app under ("" on its own host)


class LogSink(Protocol):
    def line(self, text: str) -> None: ...


class Runner(Protocol):
    def build(self, spec: AppSpec, log: LogSink, rebuild: bool = False) -> Path: ...
    def start(self, spec: AppSpec, env_dir: Path, log: LogSink) -> RunningApp: ...
    def stop(self, app: RunningApp, grace: float = 5.0) -> None: ...
    def socket(self, key: int) -> Path: ...


@dataclass
class RunningApp:
    key: int
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    reader: threading.Thread | None = None
    stopping: bool = False
    ready: bool = False  # it has answered HTTP (set by whoever waits for it)
    group: Cgroup | None = None  # its control group (cgroups.py), where the host allows one

    def alive(self) -> bool:
        return self.process.poll() is None


class LocalRunner:
    """Environments in ``<root>/envs/<hash>`` (shared by spaces with the same requirements; built
    once), run folders in ``<root>/run/<key>``."""

    def __init__(self, root: Path, limits: Limits, *, index_url: str = "", site_packages: bool = False,
                 build_timeout: float = 900, pip_cache: Path | None = None, cgroups: Cgroups | None = None,
                 build_hosts: str = ""):
        self.root = root
        self.build_hosts = index_hosts(index_url, build_hosts)  # all a build's network reaches
        self.cgroups = cgroups
        self.limits = limits
        self.index_url = index_url
        self.site_packages = site_packages
        self.build_timeout = build_timeout
        self.pip_cache = pip_cache or root / "pip-cache"
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o711)  # the space uids reach their own folders by path, and list nothing
        # Environments replaced by a factory reboot while an app may still have run from them: no
        # app runs before this runner starts one, so they go now.
        shutil.rmtree(root / "envs" / RETIRED, ignore_errors=True)
        self._build_lock = threading.Lock()

    # --- environments --------------------------------------------------------------------------

    def requirements(self, spec: AppSpec) -> list[str]:
        lines = [ln.strip() for ln in spec.requirements.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        package = SDK_PACKAGES.get(spec.sdk)
        if package and not any(ln.lower().replace("_", "-").startswith(package) for ln in lines):
            lines.append(f"{package}=={spec.sdk_version}" if spec.sdk_version else package)
        return lines

    def env_key(self, spec: AppSpec, python: Python) -> str:
        material = json.dumps([self.requirements(spec), python.version, python.executable, self.site_packages,
                               self.index_url, spec.owner])  # per owner, like the pip cache it is built from
        return hashlib.sha256(material.encode()).hexdigest()[:24]

    def build(self, spec: AppSpec, log: LogSink, rebuild: bool = False) -> Path:
        """The environment for ``spec`` (already built: at once, unless ``rebuild``: a factory reboot
        builds it anew). pip runs in the sandbox as the builder uid, without the hub's files; its
        only network is the build proxy to the package index (``build_proxy.py``)."""
        sandbox.tools()  # (SandboxUnavailable, saying why, before anything is made)
        python = find_python(spec.python_version)
        if python.note:
            log.line(python.note)
        env_dir = self.root / "envs" / self.env_key(spec, python)
        site_packages = self.site_packages and python.is_hubs
        with self._build_lock:
            if rebuild and env_dir.exists():
                log.line(f"Factory reboot: building the environment {env_dir.name} anew")
            elif (env_dir / ".ready").exists():
                log.line(f"Using the cached environment {env_dir.name} (Python {python.version}): "
                         + ", ".join(self.requirements(spec)))
                return env_dir
            tmp = env_dir.with_name(env_dir.name + ".building")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.parent.chmod(0o711)
            subprocess.run([python.executable, "-m", "venv", "--without-pip", str(tmp)], check=True,
                           capture_output=True)
            (tmp / PYTHON_ROOT_FILE).write_text(python.root)
            if site_packages:
                site = next((tmp / "lib").glob("python*/site-packages"))
                (site / "_aicommons_hub.pth").write_text(sandbox.hub_site_packages() + "\n")
            requirements = tmp / "requirements.txt"
            requirements.write_text("\n".join(self.requirements(spec)) + "\n")
            for path in [tmp, *tmp.rglob("*")]:
                os.lchown(path, BUILDER_UID, BUILDER_UID)
            pip_cache = self.pip_cache_of(spec)
            sandbox.own(self.pip_cache, BUILDER_UID)
            sandbox.own(pip_cache, BUILDER_UID)
            venv_python = f"{VENV_DIR}/bin/python"
            steps = [] if site_packages else [[venv_python, "-m", "ensurepip", "--default-pip"]]
            pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar",
                   "off", "--cache-dir", "/var/cache/pip", "-r", f"{VENV_DIR}/requirements.txt"]
            if self.index_url:
                pip += ["--index-url", self.index_url]
            steps.append(pip)
            run_dir = self.root / "run" / "builder"
            sandbox.own(run_dir, BUILDER_UID)
            proxy_url = f"http://127.0.0.1:{PROXY_PORT}"
            env = _base_env({"HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url, "http_proxy": proxy_url,
                             "https_proxy": proxy_url})
            proxy = BuildProxy(self.build_hosts)
            proxy.start(run_dir / "proxy.sock", log, BUILDER_UID)
            try:
                for step in steps:
                    log.line("$ " + " ".join(step[2:]))
                    command = [venv_python, "/srv/bridge.py", "--build", str(PROXY_PORT), "--", *step]
                    argv = sandbox.bwrap_argv(uid=BUILDER_UID, app_src=spec.src, venv=tmp, run_dir=run_dir,
                                              limits=self.limits, command=command, network=False,
                                              venv_writable=True, pip_cache=pip_cache, python_root=python.root)
                    code = _run_logged(self._with_bridge(argv), env, log, self.build_timeout, self.limits)
                    if code != 0:
                        shutil.rmtree(tmp, ignore_errors=True)
                        raise BuildFailed(f"`{' '.join(step[2:5])}` failed (exit status {code}): see the build log")
            finally:
                proxy.stop()
            sandbox.readable(tmp)
            (tmp / ".ready").touch()
            if env_dir.exists():  # another space of this owner may run from it: retired, not deleted
                retired = self.root / "envs" / RETIRED / f"{env_dir.name}-{time.time_ns()}"
                retired.parent.mkdir(parents=True, exist_ok=True)
                env_dir.rename(retired)
            tmp.rename(env_dir)
            return env_dir

    def pip_cache_of(self, spec: AppSpec) -> Path:
        """pip's cache for this build: one per owner. A build runs the setup code of packages, which may
        write anything into the cache it sees; sharing it only between one owner's spaces means a
        hostile package can only poison its own owner's builds."""
        return self.pip_cache / hashlib.sha256(spec.owner.encode()).hexdigest()[:16]

    # --- apps -------------------------------------------------------------------------------------

    def socket(self, key: int) -> Path:
        return self.root / "run" / str(key) / "app.sock"

    def hub_socket(self, key: int) -> Path:
        return self.root / "run" / str(key) / "hub.sock"

    def command(self, spec: AppSpec) -> list[str]:
        python = f"{VENV_DIR}/bin/python"
        if spec.sdk == "streamlit":  # its pages find their base path from the browser's location
            return [python, "-m", "streamlit", "run", spec.app_file, "--server.port", str(APP_PORT),
                    "--server.address", "127.0.0.1", "--server.headless", "true",
                    "--browser.gatherUsageStats", "false", "--server.enableXsrfProtection", "false",
                    "--server.enableCORS", "false", "--server.fileWatcherType", "none"]
        return [python, spec.app_file]

    def start(self, spec: AppSpec, env_dir: Path, log: LogSink) -> RunningApp:
        uid = SPACE_UID_BASE + spec.key
        run_dir = self.root / "run" / str(spec.key)
        shutil.rmtree(run_dir, ignore_errors=True)
        sandbox.own(run_dir, uid)
        env = _base_env({**spec.env, "HF_ENDPOINT": f"http://127.0.0.1:{HUB_PORT}", "PORT": str(APP_PORT),
                         "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(APP_PORT),
                         "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
                         "GRADIO_TEMP_DIR": "/tmp/gradio", "MPLCONFIGDIR": "/tmp/mpl"})
        if spec.root_path:
            env["GRADIO_ROOT_PATH"] = spec.root_path.rstrip("/")
        command = [f"{VENV_DIR}/bin/python", "/srv/bridge.py", str(APP_PORT), str(HUB_PORT), "--",
                   *self.command(spec)]
        root_file = env_dir / PYTHON_ROOT_FILE
        argv = self._with_bridge(sandbox.bwrap_argv(
            uid=uid, app_src=spec.src, venv=env_dir, run_dir=run_dir, limits=self.limits, command=command,
            network=False, venv_writable=False, python_root=root_file.read_text() if root_file.is_file() else ""))
        group = None
        if self.cgroups is not None:
            group = self.cgroups.create(spec.key, TreeLimits(self.limits.cpus, self.limits.memory_mb,
                                                             self.limits.processes))
            log.line(f"{self.cgroups.describe()}: {self.limits.cpus:g} CPU, {self.limits.memory_mb} MB, "
                     f"{self.limits.processes} tasks" if group else self.cgroups.describe())
        process = _spawn(argv, env, self.limits, group)
        app = RunningApp(spec.key, process, group=group)
        app.reader = threading.Thread(target=_pump, args=(process, log), daemon=True, name=f"space-{spec.key}-log")
        app.reader.start()
        return app

    def _with_bridge(self, argv: list[str]) -> list[str]:
        """``argv`` with the bridge script (``bridge.py``) bound read-only at ``/srv/bridge.py``."""
        bridge = self.root / "bridge.py"  # a copy readable by every uid (the source may be private)
        if not bridge.exists() or bridge.read_bytes() != BRIDGE.read_bytes():
            tmp = bridge.with_suffix(".tmp")
            tmp.write_bytes(BRIDGE.read_bytes())
            tmp.chmod(0o644)
            tmp.replace(bridge)
        at = argv.index("--chdir")  # beside the app's files (the parents of /srv/bridge.py exist by now)
        return argv[:at] + ["--ro-bind", str(bridge), "/srv/bridge.py"] + argv[at:]

    def stop(self, app: RunningApp, grace: float = 5.0) -> None:
        app.stopping = True
        if app.alive():
            _signal_group(app.process, signal.SIGTERM)
            try:
                app.process.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(app.process, signal.SIGKILL)
                app.process.wait()
        if app.group is not None:  # anything of the app still running, even outside its process group
            app.group.remove()
        shutil.rmtree(self.root / "run" / str(app.key), ignore_errors=True)


def _base_env(extra: dict[str, str]) -> dict[str, str]:
    return {"PATH": f"{VENV_DIR}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/home/user", "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/tmp", "PIP_NO_INPUT": "1",
            "XDG_CACHE_HOME": "/tmp/cache", **extra}


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(process: subprocess.Popen, log: LogSink) -> None:
    assert process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        log.line(raw.decode("utf-8", "replace").rstrip("\n"))


# bwrap's --die-with-parent is the death signal of the *thread* that forked it: every sandbox is
# forked by this one long-lived thread, so none dies with the short-lived thread that asked for it.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="space-spawner")


def _spawn(argv: list[str], env: dict[str, str], limits: Limits, group: Cgroup | None = None) -> subprocess.Popen:
    """bwrap with exactly ``env`` as its environment, which the sandbox inherits (never in ``argv``:
    a command line is readable by every user of the machine)."""
    def fork() -> subprocess.Popen:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, preexec_fn=sandbox.limit_preexec(limits, group), start_new_session=True)

    return _SPAWNER.submit(fork).result()


def _run_logged(argv: list[str], env: dict[str, str], log: LogSink, timeout: float, limits: Limits) -> int:
    process = _spawn(argv, env, limits)
    reader = threading.Thread(target=_pump, args=(process, log), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()
        log.line(f"Build stopped: it took longer than {timeout:.0f} s")
        code = -9
    reader.join(5)
    return code
