"""Gated and private upstream repos through the pull-through mirror (issue 12), with two hubs on
loopback: a gated (manual) repo and a private repo upstream are served here only to a user whose
own linked upstream token upstream accepts for that repo, checked upstream and remembered for
AICOMMONS_UPSTREAM_GRANT_TTL_SECONDS (2 s here). The mirror's service token is the upstream owner's,
which can read everything: it must never hand the files to anyone else."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from tests.backends import free_port
from tests.conftest import start_hub, stop_hub, unique_name

PASSWORD = "a long enough password"
WEIGHTS = os.urandom(200_000)
GRANT_TTL = 2.0


def tok(name: str) -> str:
    return "hf_" + hashlib.sha1(name.encode()).hexdigest()[:34]


@pytest.fixture(scope="module")
def hubs(tmp_path_factory):
    up = start_hub(tmp_path_factory.mktemp("gated-up"), free_port())
    for name in ("maker", "alice", "bob"):  # maker owns the gated repo; alice is granted; bob never is
        up.cli("user", "create", name)
        up.cli("token", "create", name, "--value", tok(f"up-{name}"))
    mir = start_hub(tmp_path_factory.mktemp("gated-mirror"), free_port(), AICOMMONS_UPSTREAM_URL=up.url,
                    AICOMMONS_UPSTREAM_TOKEN=tok("up-maker"),  # the owner's: reads everything upstream
                    AICOMMONS_UPSTREAM_GRANT_TTL_SECONDS=str(GRANT_TTL),
                    AICOMMONS_UPSTREAM_METADATA_TTL_SECONDS="1", AICOMMONS_UPSTREAM_TIMEOUT_SECONDS="5")
    for name in ("ann", "ben", "carl"):  # ann links alice's upstream token, ben bob's, carl none
        mir.cli("user", "create", name, "--password", PASSWORD)
        mir.cli("token", "create", name, "--value", tok(f"mir-{name}"))
    try:
        yield up, mir
    finally:
        stop_hub(mir)
        stop_hub(up)


def publish(up, owner: str, **settings) -> str:
    api = HfApi(endpoint=up.url, token=tok(f"up-{owner}"))
    repo = api.create_repo(f"{owner}/{unique_name('g')}", **settings).repo_id
    api.create_commit(repo, [CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n# Restricted\n"),
                             CommitOperationAdd("model.bin", WEIGHTS)], commit_message="weights")
    return repo


def web(mir, user: str) -> httpx.Client:
    http = httpx.Client(base_url=mir.url, timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text).group(1)
    assert http.post("/login", data={"csrf": csrf, "username": user, "password": PASSWORD, "next": "/"}).status_code \
        in (200, 303)
    return http


def settings_form(http: httpx.Client, up_url: str, **fields) -> httpx.Response:
    page = http.get("/settings/upstream")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return http.post("/settings/upstream", data={"csrf": csrf, "upstream": up_url, **fields})


def download(mir, repo: str, user: str | None, cache: Path) -> bytes:
    path = hf_hub_download(repo, "model.bin", endpoint=mir.url, token=tok(f"mir-{user}") if user else False,
                           cache_dir=cache)
    return Path(path).read_bytes()


def test_gated_and_private_upstream_repos_need_the_users_own_upstream_grant(hubs, tmp_path):
    up, mir = hubs
    gated = publish(up, "maker")
    maker = HfApi(endpoint=up.url, token=tok("up-maker"))
    maker.update_repo_settings(gated, gated="manual")
    private = publish(up, "alice", private=True)

    # Linking: the token is checked upstream, stored encrypted, and never shown back.
    ann, ben = web(mir, "ann"), web(mir, "ben")
    bad = settings_form(ann, up.url, action="link", token="hf_not_a_token_upstream_knows_00000")
    assert bad.status_code == 400 and "did not accept this token" in bad.text
    linked = settings_form(ann, up.url, action="link", token=tok("up-alice"))
    assert linked.status_code == 200 and "Linked to alice" in linked.text and tok("up-alice") not in linked.text
    assert settings_form(ben, up.url, action="link", token=tok("up-bob")).status_code == 200
    assert tok("up-alice") not in ann.get("/settings/upstream").text
    stored = b"".join(p.read_bytes() for p in mir.data_dir.rglob("*.db*") if p.is_file())
    assert stored and tok("up-alice").encode() not in stored

    # Before upstream grants alice the gated repo: nobody here gets its files.
    for user in ("ann", "ben", "carl", None):
        with pytest.raises(GatedRepoError):
            download(mir, gated, user, tmp_path / f"before-{user}")

    # The private repo (alice's upstream): only ann, through alice's token.
    assert download(mir, private, "ann", tmp_path / "p-ann") == WEIGHTS
    folder = snapshot_download(private, endpoint=mir.url, token=tok("mir-ann"), cache_dir=tmp_path / "p-snap")
    assert Path(folder, "README.md").read_bytes().startswith(b"---\nlicense: mit")
    for user in ("ben", "carl", None):
        with pytest.raises(RepositoryNotFoundError):
            download(mir, private, user, tmp_path / f"p-{user}")
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=mir.url, token=tok(f"mir-{user}") if user else False).model_info(private)

    # git (with git-lfs) as well: ann clones the private repo with its large file; ben cannot.
    host = mir.url.split("//")[1]
    env = {"GIT_TERMINAL_PROMPT": "0", "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    cloned = subprocess.run(["git", "clone", f"http://ann:{tok('mir-ann')}@{host}/{private}", str(tmp_path / "git-ann")],
                            capture_output=True, text=True, env=env)
    assert cloned.returncode == 0, cloned.stderr
    assert (tmp_path / "git-ann" / "model.bin").read_bytes() == WEIGHTS
    refused = subprocess.run(["git", "clone", f"http://ben:{tok('mir-ben')}@{host}/{private}",
                              str(tmp_path / "git-ben")], capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and not (tmp_path / "git-ben" / "model.bin").exists()

    # Upstream grants alice the gated repo: ann gets it (after the remembered "no" runs out), the
    # others still do not, although the service token could read it and the file is now cached.
    maker.grant_access(gated, "alice")
    time.sleep(GRANT_TTL + 0.2)
    assert download(mir, gated, "ann", tmp_path / "g-ann") == WEIGHTS
    folder = snapshot_download(gated, endpoint=mir.url, token=tok("mir-ann"), cache_dir=tmp_path / "g-snap")
    assert Path(folder, "model.bin").read_bytes() == WEIGHTS
    blob = mir.data_dir / "blobs" / "lfs" / hashlib.sha256(WEIGHTS).hexdigest()[:2]
    assert blob.exists()  # cached here
    assert HfApi(endpoint=mir.url, token=tok("mir-ann")).model_info(gated).sha == maker.model_info(gated).sha
    for user in ("ben", "carl", None):
        with pytest.raises(GatedRepoError):
            download(mir, gated, user, tmp_path / f"g-{user}")
    r = httpx.get(f"{mir.url}/{gated}/resolve/main/model.bin", headers={"Authorization": f"Bearer {tok('mir-ben')}"})
    assert r.status_code == 403 and r.headers["x-error-code"] == "GatedRepo"

    # Upstream revokes the grant: within the grant TTL ann is refused too, cached file or not.
    maker.reject_access_request(gated, "alice", rejection_reason="revoked")
    time.sleep(GRANT_TTL + 0.2)
    with pytest.raises(GatedRepoError):
        download(mir, gated, "ann", tmp_path / "g-ann-revoked")

    # Unlinking applies at once.
    assert "Unlinked" in settings_form(ann, up.url, action="unlink").text
    with pytest.raises(RepositoryNotFoundError):
        download(mir, private, "ann", tmp_path / "p-ann-unlinked")
    assert "Not linked" in ann.get("/settings/upstream").text
    # The service token is never used to sync a restricted repo.
    synced = mir.cli("mirror", "add", private, check=False)
    assert synced.returncode == 1
    ann.close()
    ben.close()


def test_the_settings_page_needs_a_session_and_a_known_upstream(hubs):
    up, mir = hubs
    assert httpx.get(f"{mir.url}/settings/upstream", follow_redirects=False).status_code in (302, 303)
    carl = web(mir, "carl")
    assert carl.post("/settings/upstream", data={"action": "link", "upstream": up.url, "token": "x"}).status_code in \
        (400, 403)  # no CSRF token
    foreign = settings_form(carl, "http://127.0.0.1:1", action="link", token=tok("up-bob"))
    assert foreign.status_code == 404
    assert "Not linked" in carl.get("/settings/upstream").text  # nobody sees another user's links
    carl.close()
