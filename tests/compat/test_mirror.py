"""The pull-through mirror (issue 12) with two hubs on loopback: an upstream AI Commons holding
public, gated and private repos, and a mirror hub whose AICOMMONS_UPSTREAM_URL names it. The real
clients talk only to the mirror."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

from tests.backends import free_port
from tests.compat.test_git import Git
from tests.conftest import start_hub, stop_hub, unique_name

TOKEN = "hf_upstream_owner_token_000000001"
WEIGHTS = os.urandom(300_000)


@pytest.fixture(scope="module")
def upstream(live_hub):
    """The session's hub as the upstream: on the PostgreSQL + S3 run (make test-scale) its downloads
    answer with 302 redirects to the bucket, as huggingface.co's do, and the mirror follows them."""
    if live_hub.cli("user", "create", "maker", check=False).returncode == 0:
        live_hub.cli("token", "create", "maker", "--value", TOKEN)
    return live_hub


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, upstream):
    data = tmp_path_factory.mktemp("mirror")
    hub = start_hub(data, free_port(), AICOMMONS_UPSTREAM_URL=upstream.url, AICOMMONS_SIGNUP="open",
                    AICOMMONS_UPSTREAM_METADATA_TTL_SECONDS="1", AICOMMONS_UPSTREAM_TIMEOUT_SECONDS="5",
                    AICOMMONS_UPSTREAM_BLOCK="maker/blocked-*")
    yield hub
    stop_hub(hub)


def blob(hub, oid: str):
    return hub.data_dir / "blobs" / "lfs" / oid[:2] / oid[2:4] / oid


def wait_for(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def publish(upstream, **settings) -> tuple[str, str]:
    api = HfApi(endpoint=upstream.url, token=TOKEN)
    repo = api.create_repo(f"maker/{unique_name('up')}", **settings).repo_id
    api.create_commit(repo, [CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n# Upstream model\n"),
                             CommitOperationAdd("config.json", b'{"hidden_size": 8}'),
                             CommitOperationAdd("model.bin", WEIGHTS)], commit_message="weights")
    return repo, api.model_info(repo).sha


def test_a_public_repo_is_pulled_through_with_upstreams_commit_ids(upstream, mirror, tmp_path):
    repo, sha = publish(upstream)
    api = HfApi(endpoint=mirror.url)  # anonymous, as most downloads are
    info = api.model_info(repo)
    assert info.sha == sha and info.card_data["license"] == "mit"
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "README.md", "config.json", "model.bin"]
    assert [c.commit_id for c in api.list_repo_commits(repo)] == \
        [c.commit_id for c in HfApi(endpoint=upstream.url).list_repo_commits(repo)]
    path = hf_hub_download(repo, "model.bin", revision=sha, endpoint=mirror.url, cache_dir=tmp_path / "c1")
    assert Path(path).read_bytes() == WEIGHTS
    # Now cached here (stored just after the last byte went out): in the mirror's own store.
    oid = hashlib.sha256(WEIGHTS).hexdigest()
    assert wait_for(lambda: blob(mirror, oid).exists()) and blob(mirror, oid).read_bytes() == WEIGHTS
    folder = snapshot_download(repo, endpoint=mirror.url, cache_dir=tmp_path / "c2")
    assert Path(os.path.join(folder, "config.json")).read_bytes() == b'{"hidden_size": 8}'
    # git sees the same history.
    git = Git(tmp_path / "home")
    git.env["GIT_LFS_SKIP_SMUDGE"] = "1"
    clone = tmp_path / "clone"
    git("clone", f"{mirror.url}/{repo}", str(clone))
    assert git.head(clone) == sha


def test_git_lfs_clone_through_the_mirror(upstream, mirror, tmp_path):
    """git clone with git-lfs of a repo never downloaded before: the LFS batch API sends git-lfs to
    the file's resolve URL, which fetches it from upstream."""
    repo, sha = publish(upstream)
    git = Git(tmp_path / "home")
    clone = tmp_path / "clone"
    git("clone", f"{mirror.url}/{repo}", str(clone))
    assert git.head(clone) == sha
    assert (clone / "model.bin").read_bytes() == WEIGHTS


def test_a_range_of_an_uncached_file_comes_from_upstream(upstream, mirror):
    import httpx

    repo, sha = publish(upstream)
    r = httpx.get(f"{mirror.url}/{repo}/resolve/{sha}/model.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == WEIGHTS[10:20]


def test_upstream_changes_are_seen_after_the_ttl(upstream, mirror):
    repo, sha = publish(upstream)
    api = HfApi(endpoint=mirror.url)
    assert api.model_info(repo).sha == sha
    new = HfApi(endpoint=upstream.url, token=TOKEN).upload_file(path_or_fileobj=b"v2", path_in_repo="v2.txt",
                                                                repo_id=repo).oid
    time.sleep(1.5)
    assert api.model_info(repo).sha in (sha, new)  # the request that notices fetches...
    assert api.model_info(repo).sha == new  # ...and the next one sees it


def test_gated_and_private_upstream_repos_are_not_served(upstream, mirror):
    """Without a linked upstream grant (tests/compat/test_mirror_gated.py has the grants): a gated
    repo answers GatedRepo, a private one exactly like a missing one."""
    from huggingface_hub.errors import GatedRepoError

    gated, _ = publish(upstream)
    HfApi(endpoint=upstream.url, token=TOKEN).update_repo_settings(gated, gated="manual")
    private, _ = publish(upstream, private=True)
    api = HfApi(endpoint=mirror.url)
    with pytest.raises(GatedRepoError):
        api.model_info(gated)
    for repo in (private, "maker/never-existed"):
        with pytest.raises(RepositoryNotFoundError) as refused:
            api.model_info(repo)
        assert not isinstance(refused.value, GatedRepoError)



def test_a_repo_made_private_or_gated_upstream_stops_being_served(upstream, mirror, tmp_path):
    """A public repo pulled through, then made private (or gated) upstream, was still served to
    everyone from the mirror's copy, cached files included; past the TTL it is restricted here too."""
    from huggingface_hub.errors import GatedRepoError

    owner = HfApi(endpoint=upstream.url, token=TOKEN)
    api = HfApi(endpoint=mirror.url)
    hidden, _ = publish(upstream)
    gated, _ = publish(upstream)
    for repo in (hidden, gated):
        assert api.model_info(repo).private is False
        hf_hub_download(repo, "config.json", endpoint=mirror.url, cache_dir=tmp_path / "before")
    owner.update_repo_settings(hidden, private=True)
    owner.update_repo_settings(gated, gated="manual")
    time.sleep(1.5)  # the mirror's metadata TTL
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(hidden)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(hidden, "config.json", endpoint=mirror.url, cache_dir=tmp_path / "after")
    assert hidden not in {m.id for m in api.list_models(author="maker")}
    assert api.model_info(gated).gated == "manual"  # metadata stays public, files do not
    with pytest.raises(GatedRepoError):
        hf_hub_download(gated, "config.json", endpoint=mirror.url, cache_dir=tmp_path / "after")

def test_blocked_upstream_repos_are_not_pulled(upstream, mirror):
    api = HfApi(endpoint=upstream.url, token=TOKEN)
    blocked = api.create_repo(f"maker/blocked-{unique_name()}").repo_id
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=mirror.url).model_info(blocked)


def test_policy_rules_from_the_cli_hold_for_pull_through_and_pinned_mirrors(upstream, mirror):
    """`aicommons mirror policy allow|block|remove|list`: a blocked repo (or license) is refused with
    the Hub's error shape, when first pulled, when already pulled before the rule, and by `mirror add`."""
    import json

    repo, _ = publish(upstream)  # its card declares license: mit
    earlier, _ = publish(upstream)
    api = HfApi(endpoint=mirror.url)
    assert api.model_info(earlier).sha  # pulled before any rule
    try:
        assert mirror.cli("mirror", "policy", "block", repo).returncode == 0
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(repo)
        r = httpx.get(f"{mirror.url}/api/models/{repo}")
        assert r.status_code == 401 and r.headers["x-error-code"] == "RepoNotFound"
        assert "policy blocks it" in r.json()["error"]
        added = mirror.cli("mirror", "add", repo, check=False)
        assert added.returncode == 1 and "policy blocks it" in added.stderr
        # A license rule also applies to what was pulled before it.
        assert mirror.cli("mirror", "policy", "block", "MIT", "--license").returncode == 0
        r = httpx.get(f"{mirror.url}/api/models/{earlier}", headers={})
        assert r.status_code == 401 and "blocks its license (mit)" in r.json()["error"]
        listed = json.loads(mirror.cli("mirror", "policy", "list", "--json").stdout)
        assert {"effect": "block", "kind": "repo", "pattern": repo.lower(), "source": "rule"} in listed
        assert {"effect": "block", "kind": "license", "pattern": "mit", "source": "rule"} in listed
        assert {"effect": "block", "kind": "repo", "pattern": "maker/blocked-*", "source": "setting"} in listed
        bad = mirror.cli("mirror", "policy", "block", "a,b", check=False)
        assert bad.returncode == 1 and "without commas" in bad.stderr
        # An allow rule admits only what it names.
        assert mirror.cli("mirror", "policy", "remove", "mit", "--license").returncode == 0
        assert mirror.cli("mirror", "policy", "allow", "nobody/*").returncode == 0
        assert "does not allow" in httpx.get(f"{mirror.url}/api/models/{earlier}").json()["error"]
    finally:
        for args in ((repo,), ("mit", "--license"), ("nobody/*",)):
            mirror.cli("mirror", "policy", "remove", *args, check=False)
    assert api.model_info(earlier).sha and api.model_info(repo).sha  # rules removed: served again
    assert mirror.cli("mirror", "policy", "remove", "nobody/*", check=False).returncode == 1


def test_pulled_files_respect_a_quota_set_on_the_mirrored_namespace(upstream, mirror, tmp_path):
    """A namespace's quota (`aicommons storage quota set`) bounds what the mirror caches for it: over
    it, a first download still reaches the client, straight from upstream, but is not kept, and
    `mirror add` fails with the quota's message."""
    repo, sha = publish(upstream)
    assert HfApi(endpoint=mirror.url).model_info(repo).sha == sha  # the namespace exists here now
    oid = hashlib.sha256(WEIGHTS).hexdigest()
    namespace = repo.split("/")[0]
    try:
        mirror.cli("storage", "quota", "set", namespace, "1KB")
        if blob(mirror, oid).exists():  # an earlier test cached these bytes: use others
            api = HfApi(endpoint=upstream.url, token=TOKEN)
            weights = os.urandom(150_000)
            sha = api.upload_file(path_or_fileobj=weights, path_in_repo="model.bin", repo_id=repo).oid
            oid = hashlib.sha256(weights).hexdigest()
            time.sleep(1.2)  # the mirror's metadata TTL
        else:
            weights = WEIGHTS
        path = hf_hub_download(repo, "model.bin", endpoint=mirror.url, cache_dir=tmp_path / "c1")
        assert Path(path).read_bytes() == weights
        time.sleep(1.5)
        assert not blob(mirror, oid).exists()
        added = mirror.cli("mirror", "add", repo, check=False)
        assert added.returncode == 1 and "Storage limit reached" in added.stderr, added.stderr
    finally:
        mirror.cli("storage", "quota", "set", namespace, "default")
    hf_hub_download(repo, "model.bin", endpoint=mirror.url, cache_dir=tmp_path / "c2")
    assert wait_for(lambda: blob(mirror, oid).exists())


def test_an_upstream_xet_file_is_fetched_verified_and_cached(upstream, mirror, monkeypatch, tmp_path):
    """A file the upstream stores through Xet (uploaded with hf_xet) arrives through upstream's resolve
    URL (reassembled there, or a 302 to its bucket on the S3 run), is checked against the pointer's
    sha256 and cached as an ordinary large file."""
    pytest.importorskip("hf_xet")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    api = HfApi(endpoint=upstream.url, token=TOKEN)
    repo = api.create_repo(f"maker/{unique_name('xet')}").repo_id
    data = os.urandom(2 * 1024 * 1024 + 7)
    (tmp_path / "w.bin").write_bytes(data)
    api.upload_file(path_or_fileobj=str(tmp_path / "w.bin"), path_in_repo="w.bin", repo_id=repo)
    head = httpx.head(f"{upstream.url}/{repo}/resolve/main/w.bin", headers={"Authorization": f"Bearer {TOKEN}"})
    assert head.headers.get("x-xet-hash"), "the upstream did not store the file through Xet"
    oid = hashlib.sha256(data).hexdigest()
    path = hf_hub_download(repo, "w.bin", endpoint=mirror.url, cache_dir=tmp_path / "c")  # Xet-enabled client
    assert Path(path).read_bytes() == data
    assert wait_for(lambda: blob(mirror, oid).exists()) and blob(mirror, oid).read_bytes() == data
    assert HfApi(endpoint=mirror.url).get_paths_info(repo, ["w.bin"])[0].lfs.sha256 == oid


def test_local_names_win_over_upstream(upstream, mirror):
    name = unique_name("local")
    token = "hf_" + hashlib.sha1(name.encode()).hexdigest()[:34]
    upstream.cli("user", "create", name)
    upstream.cli("token", "create", name, "--value", token)
    repo = HfApi(endpoint=upstream.url, token=token).create_repo(f"{name}/model").repo_id
    mirror.cli("user", "create", name)  # the same name, a different person, on the mirror
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=mirror.url).model_info(repo)


def _join(hub, username: str) -> httpx.Response:
    """The web sign-up form, as a visitor sends it."""
    with httpx.Client(base_url=hub.url, timeout=30) as http:
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/join").text).group(1)
        return http.post("/join", data={"csrf": csrf, "invite": "", "username": username, "website": "",
                                        "email": f"{username}@example.org", "password": "a long enough password"})


def test_an_upstream_name_needs_an_administrator(upstream, mirror):
    """Nobody signs up under the name of an upstream user or organisation (they would pass for its
    author and keep its repos from being pulled through); an administrator still can create it."""
    taken = unique_name("upstreamer")
    upstream.cli("user", "create", taken)
    refused = _join(mirror, taken)
    assert refused.status_code in (409, 400) and "only an administrator" in refused.text
    assert httpx.get(f"{mirror.url}/api/users/{taken}/overview").status_code == 404  # nothing was created
    assert _join(mirror, unique_name("newcomer")).status_code == 200  # a name upstream does not have
    assert mirror.cli("user", "create", taken).returncode == 0  # an administrator may


def test_cached_files_keep_working_with_upstream_down(tmp_path_factory, tmp_path):
    up = start_hub(tmp_path_factory.mktemp("up2"), free_port())
    up.cli("user", "create", "maker")
    up.cli("token", "create", "maker", "--value", TOKEN)
    mir = start_hub(tmp_path_factory.mktemp("mir2"), free_port(), AICOMMONS_UPSTREAM_URL=up.url,
                    AICOMMONS_UPSTREAM_METADATA_TTL_SECONDS="0", AICOMMONS_UPSTREAM_TIMEOUT_SECONDS="2")
    try:
        repo, sha = publish(up)
        first = hf_hub_download(repo, "model.bin", endpoint=mir.url, cache_dir=tmp_path / "c1")
        assert Path(first).read_bytes() == WEIGHTS
        assert wait_for(lambda: blob(mir, hashlib.sha256(WEIGHTS).hexdigest()).exists())
        stop_hub(up)
        started = time.monotonic()
        again = hf_hub_download(repo, "model.bin", endpoint=mir.url, cache_dir=tmp_path / "c2")
        assert Path(again).read_bytes() == WEIGHTS
        assert HfApi(endpoint=mir.url).model_info(repo).sha == sha
        import httpx

        stale = httpx.get(f"{mir.url}/api/models/{repo}", timeout=30)
        assert stale.status_code == 200 and stale.headers["x-upstream-stale"].endswith("Z")  # says it is stale
        assert time.monotonic() - started < 30
        with pytest.raises(RepositoryNotFoundError):  # uncached: fails fast
            HfApi(endpoint=mir.url).model_info("maker/not-pulled-yet")
    finally:
        stop_hub(mir)
        if up.process.poll() is None:
            stop_hub(up)


def test_a_pinned_mirror_keeps_everything_with_upstream_gone(tmp_path_factory, tmp_path):
    """`aicommons mirror add` keeps every large file; a force-push upstream loses nothing here; with
    the upstream stopped, the repo still clones with git-lfs and downloads by old commit id."""
    import json

    up = start_hub(tmp_path_factory.mktemp("up3"), free_port())
    up.cli("user", "create", "maker")
    up.cli("token", "create", "maker", "--value", TOKEN)
    mir = start_hub(tmp_path_factory.mktemp("mir3"), free_port(), AICOMMONS_UPSTREAM_URL=up.url,
                    AICOMMONS_UPSTREAM_METADATA_TTL_SECONDS="0", AICOMMONS_UPSTREAM_TIMEOUT_SECONDS="2")
    try:
        repo, old = publish(up)
        added = mir.cli("mirror", "add", repo)
        assert "pinned main; 1 of 1 large files fetched" in added.stdout, added.stdout + added.stderr
        upstream_api = HfApi(endpoint=up.url, token=TOKEN)
        upstream_api.super_squash_history(repo)  # upstream rewrites history...
        upstream_api.upload_file(path_or_fileobj=os.urandom(50_000), path_in_repo="extra.bin", repo_id=repo)
        new = upstream_api.model_info(repo).sha
        synced = mir.cli("mirror", "sync", repo, "--json")
        assert json.loads(synced.stdout.splitlines()[-1])["fetched"] == 1  # extra.bin; model.bin was there
        listed = json.loads(mir.cli("mirror", "list", "--json").stdout)
        assert [(r["repo"], r["pinned"], r["revisions"]) for r in listed] == [(repo, True, ["main"])]
        stop_hub(up)  # ...and goes away

        api = HfApi(endpoint=mir.url)
        assert api.model_info(repo).sha == new
        old_copy = hf_hub_download(repo, "model.bin", revision=old, endpoint=mir.url, cache_dir=tmp_path / "c")
        assert Path(old_copy).read_bytes() == WEIGHTS  # the force-pushed-away commit is still served
        git = Git(tmp_path / "home")
        clone = tmp_path / "clone"
        git("clone", f"{mir.url}/{repo}", str(clone))
        assert git.head(clone) == new and (clone / "model.bin").read_bytes() == WEIGHTS
    finally:
        stop_hub(mir)
        if up.process.poll() is None:
            stop_hub(up)


def upstream_gets(upstream, token: str, path_route: str = "/{ns}/{name}/resolve/{rev}/{path:path}") -> float:
    """How many GETs of resolve URLs the upstream answered (from its own /metrics)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{upstream.url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    for family in text_string_to_metric_families(text):
        if family.name == "hub_http_requests":
            return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["method"] == "GET"
                       and s.labels["route"] == path_route)
    return 0.0


def test_concurrent_first_downloads_make_one_upstream_fetch(upstream, mirror, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    admin = "hf_" + hashlib.sha1(b"mirror-admin").hexdigest()[:34]
    if upstream.cli("user", "create", "mirror-admin", "--admin", check=False).returncode == 0:
        upstream.cli("token", "create", "mirror-admin", "--value", admin)
    repo, sha = publish(upstream)
    before = upstream_gets(upstream, admin)

    def download(i: int) -> bytes:
        path = hf_hub_download(repo, "model.bin", revision=sha, endpoint=mirror.url, cache_dir=tmp_path / f"c{i}")
        return Path(path).read_bytes()

    with ThreadPoolExecutor(10) as pool:
        assert all(data == WEIGHTS for data in pool.map(download, range(10)))
    assert upstream_gets(upstream, admin) - before == 1


class FlippingProxy:
    """Between the mirror and the upstream: forwards everything, and flips one byte of every file
    served by a resolve URL while ``flip`` is set (an upstream, or a path, that corrupts data)."""

    def __init__(self, target: str):
        import http.server
        import threading

        import httpx

        proxy = self
        self.flip = True
        self.cut = False  # send the full Content-Length but only half the bytes, then hang up
        client = self.client = httpx.Client(base_url=target, timeout=30)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                # A file upstream serves by redirect (to its bucket, as huggingface.co does) is fetched
                # here, so that its bytes pass through the proxy too.
                r = client.request(self.command, self.path, content=body, headers=headers,
                                   follow_redirects="/resolve/" in self.path)
                data = r.content
                if proxy.flip and "/resolve/" in self.path and r.status_code == 200 and len(data) > 100:
                    data = data[:50] + bytes([data[50] ^ 0xFF]) + data[51:]
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD" and proxy.cut and "/resolve/" in self.path and r.status_code == 200:
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


def test_corrupted_upstream_bytes_are_never_cached(upstream, tmp_path_factory, tmp_path):
    proxy = FlippingProxy(upstream.url)
    mir = start_hub(tmp_path_factory.mktemp("mir4"), free_port(), AICOMMONS_UPSTREAM_URL=proxy.url)
    try:
        repo, sha = publish(upstream)
        oid = hashlib.sha256(WEIGHTS).hexdigest()
        try:
            got = hf_hub_download(repo, "model.bin", endpoint=mir.url, cache_dir=tmp_path / "c1")
            assert Path(got).read_bytes() != WEIGHTS  # passed on once (the client may notice)...
        except Exception:  # noqa: BLE001 - ...or refuse it: either way it must not be cached
            pass
        time.sleep(2)
        assert not blob(mir, oid).exists()
        proxy.flip = False
        got = hf_hub_download(repo, "model.bin", endpoint=mir.url, cache_dir=tmp_path / "c2")
        assert Path(got).read_bytes() == WEIGHTS
        assert wait_for(lambda: blob(mir, oid).exists())
    finally:
        stop_hub(mir)
        proxy.close()


def test_mirror_add_and_sync_show_progress_on_a_terminal(upstream, mirror):
    """Issue 22: every long command shows a bar on a terminal (a real pseudo-terminal here)."""
    from tests.compat.test_operator_progress import Terminal

    repo, _ = publish(upstream)
    code, out = Terminal(mirror.env, "mirror", "add", repo).wait()
    assert code == 0, out
    assert "100%" in out and "1 of 1 large files fetched" in out
    code, out = Terminal(mirror.env, "mirror", "sync", repo).wait()
    assert code == 0, out


def test_a_client_leaving_midway_or_an_upstream_cut_short_leave_no_partial_cache_entry(upstream, tmp_path_factory,
                                                                                       tmp_path):
    """The first download of a large file (several receive buffers): a client that reads a little and
    hangs up does not stop the fetch, whose verified file is cached whole; an upstream that hangs up
    halfway through the body it announced gives the client a broken download and caches nothing;
    neither leaves a temporary file behind."""
    proxy = FlippingProxy(upstream.url)
    proxy.flip = False
    data_dir = tmp_path_factory.mktemp("mir5")
    mir = start_hub(data_dir, free_port(), AICOMMONS_UPSTREAM_URL=proxy.url)
    try:
        api = HfApi(endpoint=upstream.url, token=TOKEN)
        repo = api.create_repo(f"maker/{unique_name('big')}").repo_id
        big, other = os.urandom(20 * 1024 * 1024 + 3), os.urandom(9 * 1024 * 1024 + 1)
        api.create_commit(repo, [CommitOperationAdd("big.bin", big), CommitOperationAdd("other.bin", other)],
                          commit_message="two large files")
        url = f"{mir.url}/{repo}/resolve/main"
        with httpx.stream("GET", f"{url}/big.bin", timeout=30) as r:
            assert r.status_code == 200 and r.headers["content-length"] == str(len(big))
            first = next(r.iter_bytes(65536))
            assert big.startswith(first)
        oid = hashlib.sha256(big).hexdigest()
        assert wait_for(lambda: blob(mir, oid).exists(), 30) and blob(mir, oid).read_bytes() == big
        assert httpx.get(f"{url}/big.bin", timeout=30).content == big

        proxy.cut = True
        with pytest.raises(httpx.HTTPError):  # the body ends before its Content-Length
            httpx.get(f"{url}/other.bin", timeout=30)
        time.sleep(1)
        assert not blob(mir, hashlib.sha256(other).hexdigest()).exists()
        assert not list(data_dir.rglob("upstream-*")), "a temporary file of a fetch was left behind"
        proxy.cut = False
        assert httpx.get(f"{url}/other.bin", timeout=30).content == other
        assert wait_for(lambda: blob(mir, hashlib.sha256(other).hexdigest()).exists())
    finally:
        stop_hub(mir)
        proxy.close()


def test_a_pulled_through_dataset_is_converted_and_viewed_on_the_mirror(upstream, tmp_path_factory, tmp_path):
    """A dataset pulled through (one `load_dataset`-style request on the mirror) is converted to
    Parquet here like any other, so its Viewer tab and the datasets-server API answer. Its large
    files were not downloaded by anyone yet: the conversion fetches them from upstream (cached as a
    download would be), where it failed before with "The large file ... is not stored on this hub"
    and `/rows` answered 503 "Storage backend failure"."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    mir = start_hub(tmp_path_factory.mktemp("mir-viewer"), free_port(), AICOMMONS_UPSTREAM_URL=upstream.url,
                    AICOMMONS_PARQUET_CONVERSION="true", AICOMMONS_PARQUET_MAX_BYTES="100000")
    try:
        buffer = io.BytesIO()
        pq.write_table(pa.table({"text": ["a cat", "a dog", "a bird"], "n": [1, 2, 3]}), buffer)
        api = HfApi(endpoint=upstream.url, token=TOKEN)
        repo = api.create_repo(f"maker/{unique_name('upds')}", repo_type="dataset").repo_id
        api.create_commit(repo, [CommitOperationAdd("data/train-00000-of-00001.parquet", buffer.getvalue())],
                          commit_message="rows", repo_type="dataset")
        sha = HfApi(endpoint=mir.url).dataset_info(repo).sha  # pulled through: refs only, no file yet
        assert sha == api.dataset_info(repo).sha

        def converted(dataset: str) -> dict | None:
            body = httpx.get(f"{mir.url}/datasets-server/parquet", params={"dataset": dataset}).json()
            return None if body["pending"] else body
        assert wait_for(lambda: converted(repo), 90)
        body = converted(repo)
        assert body is not None and body["failed"] == [] and [f["split"] for f in body["parquet_files"]] == ["train"]
        rows = httpx.get(f"{mir.url}/datasets-server/rows",
                         params={"dataset": repo, "config": "default", "split": "train"})
        assert rows.status_code == 200, rows.text
        assert [r["row"]["text"] for r in rows.json()["rows"]] == ["a cat", "a dog", "a bird"]
        assert rows.headers["x-revision"] == sha
        # The file is now the mirror's own, as after a first download.
        assert blob(mir, hashlib.sha256(buffer.getvalue()).hexdigest()).exists()

        # A dataset larger than AICOMMONS_PARQUET_MAX_BYTES is not downloaded on a metadata request:
        # its conversion says so (pinning it keeps it whole).
        big = io.BytesIO()
        pq.write_table(pa.table({"text": [os.urandom(32).hex() for _ in range(5000)]}), big, compression="none")
        assert len(big.getvalue()) > 100_000
        large = api.create_repo(f"maker/{unique_name('upbig')}", repo_type="dataset").repo_id
        api.create_commit(large, [CommitOperationAdd("data/train.parquet", big.getvalue())],
                          commit_message="rows", repo_type="dataset")
        HfApi(endpoint=mir.url).dataset_info(large)
        assert wait_for(lambda: converted(large), 90)
        failed = converted(large)["failed"]
        assert len(failed) == 1 and "pin it (aicommons mirror add)" in failed[0]["error"], failed
        assert not blob(mir, hashlib.sha256(big.getvalue()).hexdigest()).exists()
    finally:
        stop_hub(mir)


def test_a_conversion_that_could_not_fetch_from_upstream_is_tried_again(upstream, tmp_path_factory):
    """A pulled-through dataset whose conversion failed fetching its files (here: more than
    AICOMMONS_PARQUET_MAX_BYTES not on the mirror yet) stayed failed for good: on a mirror the
    "next commit" that would try again may never come, and pinning it as the error says changed
    nothing. It is now tried again with a back-off (AICOMMONS_PARQUET_RETRY_MINUTES x 1, 6, 36, 144):
    once pinned, the next try converts it."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    mir = start_hub(tmp_path_factory.mktemp("mir-retry"), free_port(), AICOMMONS_UPSTREAM_URL=upstream.url,
                    AICOMMONS_PARQUET_CONVERSION="true", AICOMMONS_PARQUET_MAX_BYTES="100000",
                    AICOMMONS_PARQUET_RETRY_MINUTES="0.05")  # 3 s, then 18 s
    try:
        big = io.BytesIO()
        pq.write_table(pa.table({"text": [os.urandom(32).hex() for _ in range(5000)]}), big, compression="none")
        api = HfApi(endpoint=upstream.url, token=TOKEN)
        large = api.create_repo(f"maker/{unique_name('upretry')}", repo_type="dataset").repo_id
        api.create_commit(large, [CommitOperationAdd("data/train.parquet", big.getvalue())],
                          commit_message="rows", repo_type="dataset")
        HfApi(endpoint=mir.url).dataset_info(large)

        def parquet() -> dict:
            return httpx.get(f"{mir.url}/datasets-server/parquet", params={"dataset": large}).json()
        assert wait_for(lambda: parquet().get("failed"), 60)
        error = parquet()["failed"][0]["error"]
        assert "pin it (aicommons mirror add)" in error and "tried again at" in error, error
        added = mir.cli("mirror", "add", large, "--type", "dataset")
        assert "1 of 1 large files fetched" in added.stdout, added.stdout + added.stderr
        assert wait_for(lambda: [f["split"] for f in parquet().get("parquet_files", [])] == ["train"], 90), parquet()
        assert parquet()["failed"] == []
    finally:
        stop_hub(mir)


def test_a_pulled_through_file_is_scanned_once_it_is_cached(upstream, mirror, tmp_path):
    """The scan of a pulled-through commit runs while its large files are not here yet: it scans
    the others and leaves those `queued`; each is scanned when it is cached (its first download).
    Before, the scan job failed on the first missing file ("LFS object ... is not stored") and, once
    its retries were spent, a file downloaded later stayed `queued` for good."""
    up = HfApi(endpoint=upstream.url, token=TOKEN)
    repo = up.create_repo(f"maker/{unique_name('scan')}").repo_id
    # Bytes of their own: scan results are kept per content and name, shared by every repo.
    up.create_commit(repo, [CommitOperationAdd("config.json", b'{"seed": "%s"}' % os.urandom(8).hex().encode()),
                            CommitOperationAdd("model.bin", os.urandom(50_000))], commit_message="weights")
    api = HfApi(endpoint=mirror.url)
    assert api.model_info(repo).sha == up.model_info(repo).sha  # pulled through: refs only

    def statuses() -> dict[str, str]:
        tree = httpx.get(f"{mirror.url}/api/models/{repo}/tree/main", params={"expand": "true"}).json()
        return {e["path"]: e["securityFileStatus"]["status"] for e in tree}
    assert wait_for(lambda: statuses()["config.json"] == "safe", 30)
    assert statuses()["model.bin"] == "queued"
    hf_hub_download(repo, "model.bin", endpoint=mirror.url, cache_dir=tmp_path / "c")
    assert wait_for(lambda: statuses()["model.bin"] != "queued", 30), statuses()
    assert statuses()["model.bin"] == "safe"
    assert api.model_info(repo, securityStatus=True).security_repo_status["scansDone"] is True


def test_a_pulled_through_space_is_stored_not_run(upstream, mirror):
    """Asking a mirror for an upstream Space must not make it build and run upstream code
    (AICOMMONS_UPSTREAM_SPACES_RUN, off by default): the Space is a stored repo here, and its app
    answers that this hub does not run it."""
    api = HfApi(endpoint=upstream.url, token=TOKEN)
    space = api.create_repo(f"maker/{unique_name('sp')}", repo_type="space", space_sdk="gradio").repo_id
    api.pause_space(space)  # the upstream need not build it either
    api.upload_file(path_or_fileobj=b"import gradio as gr\n", path_in_repo="app.py", repo_id=space, repo_type="space")
    here = HfApi(endpoint=mirror.url)  # anonymous
    assert here.space_info(space).sha == api.space_info(space).sha
    assert "app.py" in here.list_repo_files(space, repo_type="space")
    time.sleep(1)  # a build, had one been queued, starts at once
    assert here.get_space_runtime(space).stage == "STOPPED"
    answer = httpx.get(f"{mirror.url}/spaces-apps/{space}/", timeout=30)
    assert answer.status_code == 503 and "does not run them" in answer.text, answer.text
