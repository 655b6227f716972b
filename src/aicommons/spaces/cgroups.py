"""CPU, memory and process limits for a Space's whole process tree, through Linux control groups.

rlimits (``sandbox.limit_preexec``) bound each process; a control group bounds the tree: its CPU time
per period (``AICOMMONS_SPACES_CPUS``), its resident memory and its number of tasks, and it lets
``stop`` end every process the app started, even one that left its process group.

Where the groups live:

- cgroup v1 (one hierarchy per controller, as on this project's CI machines): a group
  ``aicommons-spaces/<key>`` below the hub's own group in each of the ``cpu``, ``memory`` and
  ``pids`` hierarchies;
- cgroup v2: only below a folder delegated to the hub (``AICOMMONS_SPACES_CGROUP``, e.g. a systemd
  service with ``Delegate=yes``), because v2 forbids controllers in a group that holds processes;
- neither writable (an unprivileged hub without delegation): no group; the rlimits still hold and
  the build and run logs say that CPU is not limited.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
V1_CONTROLLERS = ("cpu", "memory", "pids")


@dataclass(frozen=True)
class TreeLimits:
    cpus: float  # 0: no CPU quota
    memory_mb: int
    processes: int


@dataclass(frozen=True)
class Cgroup:
    """One space's group: a folder per v1 controller, or one v2 folder."""

    folders: tuple[Path, ...]

    def join(self) -> None:
        """Put the calling process in the group (run in the child before it becomes the app)."""
        pid = str(os.getpid())
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as f:
                f.write(pid)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return found

    def remove(self) -> None:
        """Kill what is left in the group and delete it."""
        for _ in range(50):
            left = self.pids()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            os.sched_yield()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                folder.rmdir()


class Cgroups:
    """Makes the groups of the spaces of one hub: ``aicommons-spaces/<hub>/<key>``, where ``hub``
    names this hub's data folder (hubs sharing a machine never touch each other's groups) and
    ``base`` is a delegated v2 folder, or "" to find the hub's own v1 groups."""

    def __init__(self, hub: str, base: str = "", root: Path = ROOT) -> None:
        self.root = root
        self.hub = hub
        self.version, self.parents = self._find(base)
        for parent in self.parents:  # groups a previous run of this hub left (its apps died with it)
            if parent.is_dir():
                for stale in (p for p in parent.iterdir() if p.is_dir()):
                    with contextlib.suppress(OSError):
                        stale.rmdir()

    @property
    def available(self) -> bool:
        return bool(self.parents)

    def describe(self) -> str:
        if not self.available:
            return ("CPU time is not limited: no writable control group here (cgroup v2 needs "
                    "AICOMMONS_SPACES_CGROUP, a folder delegated to the hub); rlimits still apply")
        return f"Limits by control group (cgroup v{self.version})"

    def create(self, key: int, limits: TreeLimits) -> Cgroup | None:
        """The group of space ``key`` with ``limits`` set (a stale one is emptied and remade), or
        None where groups cannot be made."""
        if not self.available:
            return None
        folders = tuple(parent / str(key) for parent in self.parents)
        stale = Cgroup(folders)
        if any(f.exists() for f in folders):
            stale.remove()
        try:
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
            self._limit(folders, limits)
        except OSError:
            stale.remove()
            return None
        return Cgroup(folders)

    def close(self) -> None:
        """Remove this hub's folders once its groups are gone (a hub that ran no app leaves none)."""
        for parent in self.parents:
            with contextlib.suppress(OSError):
                parent.rmdir()

    def _limit(self, folders: tuple[Path, ...], limits: TreeLimits) -> None:
        memory = limits.memory_mb * 1024 * 1024
        if self.version == 2:
            (folder,) = folders
            if limits.cpus > 0:
                _write(folder / "cpu.max", f"{int(limits.cpus * PERIOD_US)} {PERIOD_US}")
            _write(folder / "memory.max", str(memory))
            _write(folder / "memory.swap.max", "0", optional=True)
            _write(folder / "pids.max", str(limits.processes))
            return
        by_controller = dict(zip(V1_CONTROLLERS, folders, strict=True))
        if limits.cpus > 0:
            _write(by_controller["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
            _write(by_controller["cpu"] / "cpu.cfs_quota_us", str(int(limits.cpus * PERIOD_US)))
        _write(by_controller["memory"] / "memory.limit_in_bytes", str(memory))
        _write(by_controller["memory"] / "memory.memsw.limit_in_bytes", str(memory), optional=True)
        _write(by_controller["pids"] / "pids.max", str(limits.processes))

    def _find(self, base: str) -> tuple[int, tuple[Path, ...]]:
        if base:
            folder = Path(base) / "aicommons-spaces" / self.hub
            if (Path(base) / "cgroup.controllers").exists() and _writable(folder.parent):
                folder.mkdir(exist_ok=True)  # v2: the controllers are enabled level by level, now
                for level in (Path(base), folder.parent, folder):  # each level passes the controllers down
                    with contextlib.suppress(OSError):
                        _write(level / "cgroup.subtree_control", "+cpu +memory +pids")
                return 2, (folder,)
            return 0, ()
        if (self.root / "cgroup.controllers").exists():
            return 2, ()  # v2 without a delegated folder: see the module's docstring
        own = _own_v1_groups()
        parents = []
        for controller in V1_CONTROLLERS:
            hierarchy = self.root / controller
            if not (hierarchy / "cgroup.procs").exists():
                return 1, ()
            folder = hierarchy / own.get(controller, "/").lstrip("/") / "aicommons-spaces" / self.hub
            if not _writable(folder.parent):  # this hub's own folder is made with its first group
                return 1, ()
            parents.append(folder)
        return 1, tuple(parents)


def _own_v1_groups() -> dict[str, str]:
    """This process's group per v1 controller, from ``/proc/self/cgroup`` (``4:memory:/a/b``)."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                out[controller] = path
    return out


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _write(path: Path, value: str, optional: bool = False) -> None:
    try:
        path.write_text(value)
    except OSError:
        if not optional:
            raise
