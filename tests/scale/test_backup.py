"""Backup/restore drill on both deployments: back up a live hub, restore into a fresh data dir (and
a fresh database and bucket), re-hash every blob, and read every file of every repo back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from tests.backends import free_port
from tests.conftest import ALICE_TOKEN, server_env, start_hub, stop_hub, unique_name
from tests.scale.conftest import s3_storage_url


def fresh_target(backend_env: dict, request, tmp_path) -> dict:
    if not backend_env:
        return {}
    pg, s3 = request.getfixturevalue("pg_cluster"), request.getfixturevalue("moto_s3")
    return {"AICOMMONS_DATABASE_URL": pg.create_database(),
            "AICOMMONS_STORAGE_URL": s3_storage_url(s3, s3.create_bucket())}


def test_backup_restore_drill(served, backend_env, request, tmp_path, monkeypatch):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    content: dict[tuple[str, str, str], bytes] = {}
    for _ in range(2):
        repo = api.create_repo(f"alice/{unique_name()}").repo_id
        files = {"README.md": b"---\nlicense: mit\n---\n# hello\n", "weights.bin": os.urandom(40_000), "sub/big.safetensors": os.urandom(70_000)}
        api.create_commit(repo, [CommitOperationAdd(p, d) for p, d in files.items()], commit_message="add")
        api.create_branch(repo, branch="dev")
        api.upload_file(path_or_fileobj=b"dev only", path_in_repo="dev.txt", repo_id=repo, revision="dev")
        api.create_tag(repo, tag="v1")
        for path, data in files.items():
            content[(repo, "main", path)] = data
        content[(repo, "dev", "dev.txt")] = b"dev only"
        content[(repo, "v1", "weights.bin")] = files["weights.bin"]
    dataset = api.create_repo(f"alice/{unique_name()}", repo_type="dataset").repo_id
    api.upload_file(path_or_fileobj=os.urandom(50_000), path_in_repo="data.parquet", repo_id=dataset,
                    repo_type="dataset")
    # A file uploaded through Xet lives only in the chunk store (xorbs + shard): backed up, restored
    # and re-hashed from its chunks like any blob.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    chunked = os.urandom(1_500_000)
    api.upload_file(path_or_fileobj=chunked, path_in_repo="xet.bin", repo_id=repo)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    content[(repo, "main", "xet.bin")] = chunked

    backup_dir = tmp_path / "backup"
    proc = served.cli("backup", str(backup_dir))
    assert (backup_dir / "manifest.json").exists(), proc.stderr
    assert served.cli("backup", str(backup_dir), check=False).returncode == 1  # never overwrites

    data_dir = tmp_path / "restored"
    data_dir.mkdir()
    port = free_port()
    target = fresh_target(backend_env, request, tmp_path)
    env = server_env(data_dir, port, **target)
    import subprocess
    import sys

    def cli(*args, check=True):
        return subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, capture_output=True,
                              text=True, check=check)

    cli("restore", str(backup_dir))
    assert cli("restore", str(backup_dir), check=False).returncode == 1  # refuses a non-empty target
    report = cli("fsck")
    assert "0 errors" in report.stdout and "6 blobs re-hashed" in report.stdout, report.stdout

    restored = start_hub(data_dir, port, **target)
    try:
        rapi = HfApi(endpoint=restored.url, token=ALICE_TOKEN)  # tokens came back with the database
        assert {r.id for r in rapi.list_models(author="alice")} == {r for r, _, _ in content}
        for (repo, rev, path), data in content.items():
            got = hf_hub_download(repo, path, revision=rev, cache_dir=tmp_path / "cache", endpoint=restored.url)
            assert Path(got).read_bytes() == data, (repo, rev, path)
        assert rapi.list_repo_files(dataset, repo_type="dataset") == [".gitattributes", "data.parquet"]
    finally:
        stop_hub(restored)


def test_fsck_finds_a_corrupted_blob(served, tmp_path):
    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    api.upload_file(path_or_fileobj=os.urandom(30_000), path_in_repo="w.bin", repo_id=repo)
    assert served.cli("fsck").returncode == 0
    from tests.scale.conftest import in_process_hub

    hub = in_process_hub(served.env)
    try:
        key = next(hub.blobs.iter_keys("lfs/"))
        bad = tmp_path / "bad"
        bad.write_bytes(b"not the right bytes")
        hub.blobs.delete(key)
        hub.blobs.put_file(key, bad)
    finally:
        hub.close()
    proc = served.cli("fsck", check=False)
    assert proc.returncode == 1 and "content hashes to" in proc.stdout


def test_restore_keeps_what_the_hub_key_sealed(served, backend_env, request, tmp_path):
    """Space secrets (and linked upstream tokens) are sealed with the hub's key: a restored hub must
    open them. On one SQLite machine the key is the file `<DATA_DIR>/secret_key`, which the backup
    carries; with a different AICOMMONS_SECRET_KEY the restore refuses before writing anything."""
    import subprocess
    import sys

    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    space = api.create_repo(f"alice/{unique_name()}", repo_type="space", space_sdk="static").repo_id
    api.add_space_secret(space, "API_KEY", "s3cret value")
    backup_dir = tmp_path / "backup"
    served.cli("backup", str(backup_dir))

    data_dir = tmp_path / "restored"
    data_dir.mkdir()
    env = server_env(data_dir, free_port(), **fresh_target(backend_env, request, tmp_path))

    def run(*args, extra=None):
        return subprocess.run([sys.executable, *args], env={**env, **(extra or {})}, capture_output=True, text=True)

    wrong = run("-m", "aicommons.cli.main", "restore", str(backup_dir), extra={"AICOMMONS_SECRET_KEY": "w" * 40})
    assert wrong.returncode == 1 and "AICOMMONS_SECRET_KEY" in wrong.stderr, wrong.stderr
    assert "Traceback" not in wrong.stderr
    done = run("-m", "aicommons.cli.main", "restore", str(backup_dir))  # nothing was written: it completes
    assert done.returncode == 0, done.stderr
    opened = run("-c", "from aicommons.config import Settings; from aicommons.hub.hub import Hub\n"
                       "hub = Hub(Settings.from_env())\n"
                       f"repo = next(r for r in map(hub.repos.by_id, range(1, 50)) if r and r.name == {space.split('/')[1]!r})\n"
                       "print(hub.spaces.secret_values(repo))")
    assert opened.returncode == 0 and "['s3cret value']" in opened.stdout, opened.stderr[-2000:]


def test_fsck_names_a_truncated_git_object_instead_of_hanging(served):
    """libgit2 spins forever on a truncated loose object: fsck asks git itself first, and names the
    object and its repo."""
    import subprocess

    api = HfApi(endpoint=served.url, token=ALICE_TOKEN)
    repo = api.create_repo(f"alice/{unique_name()}").repo_id
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n# card\n", path_in_repo="README.md", repo_id=repo)
    git_dir = Path(served.env.get("AICOMMONS_GIT_DIR") or Path(served.env["AICOMMONS_DATA_DIR"]) / "git")
    repo_dir = next(p for p in git_dir.glob("*/*.git")
                    if subprocess.run(["git", "--git-dir", str(p), "log", "--oneline", "-1"],
                                      capture_output=True, text=True).stdout.strip())
    tree = subprocess.run(["git", "--git-dir", str(repo_dir), "rev-parse", "HEAD^{tree}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    loose = repo_dir / "objects" / tree[:2] / tree[2:]
    loose.chmod(0o600)
    loose.write_bytes(loose.read_bytes()[:10])
    try:
        proc = subprocess.run([sys.executable, "-m", "aicommons.cli.main", "fsck", "--skip-blobs"],
                              env=served.env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("fsck hung on a truncated git object") from None
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"repo model:{repo}: git object {tree} is corrupt or missing" in proc.stdout, proc.stdout
