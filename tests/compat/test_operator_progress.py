"""The long operator commands (backup, restore, fsck, gc) as an operator runs them: a progress bar on
a terminal (a real pseudo-terminal here), only the summary when output is not a terminal, ``--json``
for scripts, and Ctrl-C leaving nothing half-done (issue 22)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import select
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import server_env

BLOBS = 1200
BLOB_BYTES = 64 * 1024


def cli_env(data_dir: Path) -> dict:
    return server_env(data_dir, 0)


def run(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, capture_output=True,
                          text=True, check=check)


class Terminal:
    """A command running on a pseudo-terminal, its output collected as it comes."""

    def __init__(self, env: dict, *args: str):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 40 rows, 120 columns
        self.process = subprocess.Popen([sys.executable, "-m", "aicommons.cli.main", *args], env=env,
                                        stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        self.output = b""

    def read_until(self, marker: bytes, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while marker not in self.output:
            if time.time() > deadline:
                raise AssertionError(f"{marker!r} never appeared in {self.output[-2000:]!r}")
            self._read(0.2)

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the command ended and closed its side
            return False
        self.output += data
        return bool(data)

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        deadline = time.time() + timeout
        while self.process.poll() is None and time.time() < deadline:
            self._read(0.2)
        while self._read(0.05):
            pass
        code = self.process.wait(timeout=5)
        os.close(self.master)
        return code, self.output.decode(errors="replace")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A hub with a user, a repo and BLOBS LFS-style blobs of 64 KiB: enough for every command to take
    a few seconds."""
    data = tmp_path_factory.mktemp("ops") / "data"
    env = cli_env(data)
    run(env, "user", "create", "olivia")
    for i in range(BLOBS):
        content = i.to_bytes(4, "big") * (BLOB_BYTES // 4)
        oid = hashlib.sha256(content).hexdigest()
        path = data / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return data


def test_progress_on_a_terminal(data_dir, tmp_path):
    env = cli_env(data_dir)
    code, out = Terminal(env, "fsck").wait()
    assert code == 0, out
    assert "re-hashing blobs" in out and "reading repositories" in out
    assert "100%" in out and "B/s" in out  # bytes done, with the rate
    assert f"{BLOBS} blobs re-hashed" in out

    code, out = Terminal(env, "backup", str(tmp_path / "b")).wait()
    assert code == 0, out
    for stage in ("database", "git repositories", "blobs"):
        assert stage in out
    assert "100%" in out and "\r" in out  # a bar redrawn in place

    code, out = Terminal(env, "gc").wait()
    assert code == 0, out
    assert "sweeping blobs" in out and "100%" in out


def test_only_the_summary_when_not_a_terminal(data_dir, tmp_path):
    env = cli_env(data_dir)
    for args in (["fsck"], ["backup", str(tmp_path / "b")], ["gc"]):
        proc = run(env, *args)
        assert "%|" not in proc.stderr and "\r" not in proc.stderr, (args, proc.stderr)
        assert proc.stdout.strip(), args
    assert run(env, "fsck").stdout.strip().splitlines() == [f"{BLOBS} blobs re-hashed ({BLOBS * BLOB_BYTES} bytes), "
                                                            "0 repos and 0 files read, 0 errors"]


def test_json_for_scripts(data_dir, tmp_path):
    env = cli_env(data_dir)
    assert json.loads(run(env, "fsck", "--json").stdout)["blobs_checked"] == BLOBS
    manifest = json.loads(run(env, "backup", "--json", str(tmp_path / "b")).stdout)
    assert manifest["blobs"] == BLOBS and manifest == json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert json.loads(run(env, "gc", "--json").stdout)["scanned"] == BLOBS
    restored = tmp_path / "restored"
    result = json.loads(run(cli_env(restored), "restore", "--json", str(tmp_path / "b")).stdout)
    assert result["restored_blobs"] == BLOBS


def interrupt_during_blobs(env: dict, *args: str, undo=lambda: None) -> tuple[int, str]:
    """Ctrl-C once the command copies blobs. On a loaded box the test may send it only after the
    copy has finished (exit 0, nothing interrupted: CI's PostgreSQL run once): ``undo`` the finished
    work and try again, up to three times."""
    for _ in range(3):
        terminal = Terminal(env, *args)
        terminal.read_until(b"blobs:")
        terminal.process.send_signal(signal.SIGINT)
        code, out = terminal.wait()
        if code != 0:
            return code, out
        undo()
    return code, out


def test_ctrl_c_leaves_nothing_half_done(data_dir, tmp_path):
    env = cli_env(data_dir)
    dest = tmp_path / "backup"
    code, out = interrupt_during_blobs(env, "backup", str(dest), undo=lambda: shutil.rmtree(dest))
    assert code == 130, out  # (0 would mean the backup finished before the signal: make BLOBS larger)
    assert "partial backup was removed" in out
    assert not dest.exists()  # no folder that could pass for a backup
    run(env, "backup", str(dest))  # and a new one works

    target = tmp_path / "restored"
    target_env = cli_env(target)
    code, out = interrupt_during_blobs(target_env, "restore", str(dest), undo=lambda: shutil.rmtree(target))
    assert code == 130, out
    database = target / "hub.db"
    if database.exists():  # an empty database: a second run may restore into it
        with sqlite3.connect(database) as db:
            assert db.execute("select count(*) from sqlite_master where type='table'").fetchone()[0] == 0
    assert not list((target / "git").glob("*/*.git")) if (target / "git").exists() else True
    done = run(target_env, "restore", str(dest))
    assert "restored the sqlite database" in done.stdout
    assert f"{BLOBS} blobs re-hashed" in run(target_env, "fsck").stdout
