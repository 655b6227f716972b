"""The data dir and backups are private to the hub's account (issue 9, findings 12 and 20): a local
user who could read ``secret_key`` forges sessions and signed URLs, and the SQLite file holds the
password and token hashes. Files 0600, folders 0700; what an older version left readable is fixed
at start-up."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from huggingface_hub import HfApi

from tests.backends import free_port
from tests.conftest import start_hub, stop_hub


def readable_by_others(root: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            if not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077:
                found.append(f"{path.relative_to(root)} {oct(stat.S_IMODE(path.stat().st_mode))}")
    return found


def test_data_dir_and_backup_are_private(tmp_path):
    old_umask = os.umask(0o022)  # what the operator's shell usually has
    try:
        data = tmp_path / "data"
        data.mkdir(mode=0o755)
        key = data / "secret_key"  # as an older version left it: world-readable
        key.write_text("ab" * 32)
        key.chmod(0o644)
        hub = start_hub(data, free_port())
    finally:
        os.umask(old_umask)
    try:
        hub.cli("user", "create", "alice")
        token = hub.cli("token", "create", "alice").stdout.split()[-1]
        api = HfApi(endpoint=hub.url, token=token)
        repo = api.create_repo("alice/modes", private=True).repo_id
        api.upload_file(path_or_fileobj=b"secret weights" * 100, path_in_repo="w.bin", repo_id=repo)
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_text() == "ab" * 32  # fixed, kept
        assert stat.S_IMODE((data / "hub.db").stat().st_mode) == 0o600
        # The one exception: Spaces' folder is traverse-only (0711, nothing listable) so that a
        # sandboxed app's uid can follow paths inside its bind mounts (spaces/runner.py). No other
        # local user reaches it: the data folder above it is 0700.
        assert [f for f in readable_by_others(data) if f != "spaces 0o711"] == []

        backup = tmp_path / "backup"
        hub.cli("backup", str(backup))
        assert (backup / "hub.db").exists() and any((backup / "git").rglob("objects"))
        assert stat.S_IMODE(backup.stat().st_mode) == 0o700
        assert readable_by_others(backup) == []
    finally:
        stop_hub(hub)
