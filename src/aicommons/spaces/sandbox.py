"""The sandbox every Space process runs in: bubblewrap (Debian's ``bubblewrap``) started by the hub,
then ``setpriv`` down to the space's own unprivileged uid before the app's first instruction.

What the process sees (``bwrap_argv``):

- a new root: ``/usr`` and ``/etc`` read-only, the Python installation the environment was made from
  read-only, the app's files read-only, its environment read-only (when running) or writable (when
  building); nothing else of the host: not the hub's data folder, not other spaces, not ``/root``;
- a private ``/tmp`` (tmpfs of ``disk_mb``), which also holds ``HOME`` (``/home/user``); a ``/run/space`` folder of its own
  that holds the two unix sockets of the network bridge;
- its own PID, IPC, UTS and network namespace: only loopback, no route out; an app reaches the hub
  through ``/run/space/hub.sock``, a build the package index through ``/run/space/proxy.sock``
  (see ``bridge.py``, ``build_proxy.py``);
- a real uid of its own (``SPACE_UID_BASE + repo id``, builds one builder uid), no capabilities, no
  new privileges (``setpriv --no-new-privs``), so the rlimits below hold: ``RLIMIT_NPROC`` counts per
  real uid and does not bind root;
- rlimits: address space (``memory_mb``), processes and threads (``processes``), file size
  (``disk_mb``), open files, no core dumps;
- a control group for the whole tree where the host lets the hub make one (``cgroups.py``): CPU
  time (``cpus``), resident memory and tasks.

bwrap runs as root here (it needs to bind folders the space's uid may not traverse, such as a
Python under ``/root``); the mounts are made before ``setpriv`` drops every privilege.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aicommons.spaces.cgroups import Cgroup

SPACE_UID_BASE = 200_000  # space uids: SPACE_UID_BASE + repo id (no host account has them)
BUILDER_UID = 199_999  # every build runs as this uid (the shared pip cache is its)
APP_DIR = "/home/user/app"  # where the app's files appear (symlinked into a writable tree)
SRC_DIR = "/srv/app"  # the app's files, read-only
VENV_DIR = "/srv/venv"
RUN_DIR = "/run/space"


class SandboxUnavailable(RuntimeError):
    """bubblewrap or setpriv is missing: spaces cannot run on this host."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    processes: int
    disk_mb: int
    open_files: int = 1024
    cpus: float = 0.0  # CPU time per second for the whole tree, where control groups allow (0: none)


def tools() -> tuple[str, str]:
    """bwrap and setpriv, on a hub that can use them (root); else why not (SandboxUnavailable)."""
    bwrap, setpriv = shutil.which("bwrap"), shutil.which("setpriv")
    if not bwrap or not setpriv:
        raise SandboxUnavailable("bubblewrap (bwrap) and setpriv are needed to run Spaces: "
                                 "apt-get install bubblewrap util-linux")
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            f"This hub runs as uid {os.geteuid()}, not root: Spaces need root, to give each build and app a uid "
            "of its own (setpriv), hand it its folders (chown), and mount its sandbox (bubblewrap) before "
            "every privilege is dropped. Run `aicommons serve` as root, or set AICOMMONS_SPACES_RUN=false "
            "(docs/spaces.md)")
    return bwrap, setpriv


def python_roots() -> list[str]:
    """The folders the hub's Python lives in (its installation, and the hub's own environment, whose
    packages an environment built with ``SPACES_SITE_PACKAGES`` sees), bound read-only."""
    roots = {os.path.realpath(sys.base_prefix)}
    if sys.prefix != sys.base_prefix:
        roots.add(os.path.realpath(sys.prefix))
    return sorted(roots)


def base_python() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def hub_site_packages() -> str:
    # The real path: the sandbox binds python_roots() by their real paths, so a venv reached through a
    # symlink must be named the same way or the app's ``.pth`` points at nothing.
    return os.path.realpath(sysconfig.get_paths()["purelib"])


def _dirs(target: str, made: set[str]) -> list[str]:
    """``--dir`` for each missing parent of ``target`` (mode 0755: bwrap would copy the host's)."""
    out, path = [], Path(target)
    for parent in reversed(path.parents):
        p = str(parent)
        if p == "/" or p in made:
            continue
        made.add(p)
        out += ["--perms", "0755", "--dir", p]
    return out


def bwrap_argv(*, uid: int, app_src: Path, venv: Path, run_dir: Path, limits: Limits, command: list[str],
               network: bool, venv_writable: bool, pip_cache: Path | None = None,
               python_root: str = "") -> list[str]:
    """``python_root``: the installation of the environment's Python when it is not the hub's. The
    environment is not in here: it is bwrap's own (``spawn``'s ``env``), which the sandbox inherits,
    because a command line is readable by every user of the machine (``ps``) and the environment
    holds the space's secrets and token."""
    bwrap, setpriv = tools()
    made: set[str] = set()
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "space"]
    if not network:
        argv.append("--unshare-net")
    argv += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]
    for name in ("bin", "lib", "lib64", "sbin", "lib32"):
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    argv += ["--size", str(limits.disk_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--size", str(64 * 1024 * 1024), "--perms", "1777", "--tmpfs", "/dev/shm"]  # POSIX semaphores
    argv += ["--perms", "0755", "--dir", "/home", "--symlink", "/tmp/user", "/home/user"]  # HOME: in the tmpfs
    made.update({"/usr", "/etc", "/proc", "/dev", "/tmp", "/home"})
    for root in sorted({*python_roots(), *([python_root] if python_root else [])}):
        if not root.startswith("/usr/"):
            argv += _dirs(root, made) + ["--ro-bind", root, root]
    argv += _dirs(SRC_DIR, made) + ["--ro-bind", str(app_src), SRC_DIR]
    argv += ["--bind" if venv_writable else "--ro-bind", str(venv), VENV_DIR]
    argv += _dirs(RUN_DIR, made) + ["--bind", str(run_dir), RUN_DIR]
    if pip_cache is not None:
        argv += _dirs("/var/cache/pip", made) + ["--bind", str(pip_cache), "/var/cache/pip"]
    argv += ["--chdir", "/tmp", "--", setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
             "--no-new-privs", "--"]
    return argv + command


def limit_preexec(limits: Limits, group: Cgroup | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` joining the space's control group and setting the rlimits (both inherited
    through bwrap and setpriv by the app)."""

    def apply() -> None:
        if group is not None:
            group.join()
        os.nice(5)
        as_bytes = limits.memory_mb * 1024 * 1024
        disk = limits.disk_mb * 1024 * 1024
        for which, value in ((resource.RLIMIT_AS, as_bytes), (resource.RLIMIT_NPROC, limits.processes),
                             (resource.RLIMIT_FSIZE, disk), (resource.RLIMIT_NOFILE, limits.open_files),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(which, (value, value))

    return apply


def own(path: Path, uid: int, mode: int = 0o700) -> None:
    """Make a folder the space's (or the builder's): created, chowned, ``mode``."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, uid)
    path.chmod(mode)


def readable(root: Path) -> None:
    """Let every uid read (not write) a tree: folders 0755, files 0644 (0755 if executable).
    Servers run with umask 077, and an app reads its files and environment as its own uid."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
