"""Fine-grained tokens: whoami-v2 in the Hub's shape, and every door obeys the grants.

A user with two private repos gets tokens scoped to one of them, to their account, to an org; the
real ``HfApi``, git smart-HTTP, LFS batch, Xet token and inference doors are then asked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError


def _token(live_hub, user: str, permissions: dict | None, role: str = "write", **kw) -> str:
    value = f"hf_fg_{uuid.uuid4().hex}"
    args = ["token", "create", user, "--value", value, "--name", kw.get("name", "ci")]
    if permissions is not None:
        args += ["--permissions", json.dumps(permissions)]
    else:
        args += ["--role", role]
    live_hub.cli(*args)
    return value


@pytest.fixture(scope="module")
def fg(live_hub):
    suffix = uuid.uuid4().hex[:8]
    user, org = f"fg{suffix}", f"fgorg{suffix}"
    live_hub.cli("user", "create", user)
    live_hub.cli("org", "create", org, "--member", user)
    write = _token(live_hub, user, None)
    api = HfApi(endpoint=live_hub.url, token=write)
    for name in ("a", "b"):
        api.create_repo(f"{user}/{name}", private=True)
        api.upload_file(path_or_fileobj=b"secret " + name.encode(), path_in_repo="f.txt", repo_id=f"{user}/{name}")
    api.create_repo(f"{org}/c", private=True)
    api.create_repo(f"{user}/pub")
    return {"user": user, "org": org, "write": write}


def scoped(entity_type: str, name: str, *permissions: str) -> dict:
    return {"entity": {"type": entity_type, "name": name}, "permissions": list(permissions)}


def test_whoami_has_the_hubs_fine_grained_shape(live_hub, fg):
    spec = {"canReadGatedRepos": True, "global": ["discussion.write"],
            "scoped": [scoped("model", f"{fg['user']}/a", "repo.content.read"),
                       scoped("org", fg["org"], "repo.write", "org.read"),
                       scoped("user", fg["user"], "inference.serverless.write")]}
    token = _token(live_hub, fg["user"], spec, name="my-fg")
    me = HfApi(endpoint=live_hub.url, token=token).whoami()
    access = me["auth"]["accessToken"]
    assert me["name"] == fg["user"] and me["type"] == "user"
    assert access["role"] == "fineGrained" and access["displayName"] == "my-fg"
    assert access["createdAt"].endswith("Z")
    grained = access["fineGrained"]
    assert grained["canReadGatedRepos"] is True and grained["global"] == ["discussion.write"]
    entities = {(s["entity"]["type"], s["entity"]["name"]): s for s in grained["scoped"]}
    assert set(entities) == {("model", f"{fg['user']}/a"), ("org", fg["org"]), ("user", fg["user"])}
    assert entities[("org", fg["org"])]["permissions"] == ["org.read", "repo.write"]
    assert all(s["entity"]["_id"].isdigit() for s in grained["scoped"])
    # The last use is recorded (the whoami call above used the token).
    assert "lastUsedAt" in HfApi(endpoint=live_hub.url, token=token).whoami()["auth"]["accessToken"]


@pytest.mark.parametrize("spec, error", [
    ({"scoped": [scoped("model", "nobody/nothing", "repo.content.read")]}, "no model named"),
    ({"scoped": [scoped("org", "acme", "repo.write")]}, "not a member"),
    ({"scoped": [scoped("user", "alice", "repo.write")]}, "own user"),
    ({"scoped": [{"entity": {"type": "user"}, "permissions": []}]}, "entity"),
    ({"global": ["repo.write"]}, "globally"),
    ({"scoped": [scoped("model", "x/y", "org.write")]}, ""),
])
def test_bad_permissions_are_refused(live_hub, fg, spec, error):
    spec = json.loads(json.dumps(spec).replace('"x/y"', json.dumps(f"{fg['user']}/a")))
    done = live_hub.cli("token", "create", fg["user"], "--permissions", json.dumps(spec), check=False)
    assert done.returncode != 0 and error in done.stderr


def test_repo_scoped_read_token(live_hub, fg):
    user = fg["user"]
    token = _token(live_hub, user, {"scoped": [scoped("model", f"{user}/a", "repo.content.read")]})
    api = HfApi(endpoint=live_hub.url, token=token)
    assert api.model_info(f"{user}/a").private
    assert Path(api.hf_hub_download(f"{user}/a", "f.txt")).read_bytes() == b"secret a"
    with pytest.raises(RepositoryNotFoundError):  # exactly like a missing repo
        api.model_info(f"{user}/b")
    with pytest.raises(RepositoryNotFoundError):
        api.hf_hub_download(f"{user}/b", "f.txt")
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"{user}/a")
    assert refused.value.response.status_code == 403 and "repo.write" in str(refused.value)
    with pytest.raises(HfHubHTTPError) as refused:
        api.create_repo(f"{user}/new-{uuid.uuid4().hex[:6]}")
    assert refused.value.response.status_code == 403
    # Listings show what the token may read: the private repo it is scoped to (as the owner's
    # private repos are listed to a token granted on the owner), not the other one.
    names = {m.id for m in api.list_models(author=user)}
    assert f"{user}/b" not in names and {f"{user}/a", f"{user}/pub"} <= names
    assert f"{user}/a" in {m.id for m in api.list_models(search=f"{user}/")}
    # Public content stays readable, as for anyone.
    api.model_info(f"{user}/pub")


def test_every_door_obeys_the_grants(live_hub, fg):
    user = fg["user"]
    token = _token(live_hub, user, {"scoped": [scoped("model", f"{user}/a", "repo.content.read")]})
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:
        def git_refs(repo, service="git-upload-pack"):
            return http.get(f"/{repo}.git/info/refs", params={"service": service}, auth=(user, token))

        assert git_refs(f"{user}/a").status_code == 200
        assert git_refs(f"{user}/b").status_code == 404
        assert git_refs(f"{user}/a", "git-receive-pack").status_code == 403
        batch = {"operation": "download", "objects": [], "hash_algo": "sha256"}
        lfs = {**bearer, "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
        assert http.post(f"/{user}/a.git/info/lfs/objects/batch", json=batch, headers=lfs).status_code == 200
        assert http.post(f"/{user}/b.git/info/lfs/objects/batch", json=batch, headers=lfs).status_code == 404
        assert http.post(f"/{user}/a.git/info/lfs/objects/batch", json={**batch, "operation": "upload"},
                         headers=lfs).status_code == 403
        assert http.get(f"/api/models/{user}/a/xet-read-token/main", headers=bearer).status_code != 404
        assert http.get(f"/api/models/{user}/b/xet-read-token/main", headers=bearer).status_code == 404
        # Inference needs inference.serverless.write: refused before any model is loaded.
        infer = http.post(f"/models/{user}/a", json={"inputs": "hi"}, headers=bearer)
        assert infer.status_code == 403 and "inference.serverless.write" in infer.text
        assert http.post(f"/models/{user}/b", json={"inputs": "hi"}, headers=bearer).status_code == 404


def test_write_settings_and_discussion_permissions(live_hub, fg):
    user = fg["user"]
    writer = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("user", user, "repo.write")]}))
    repo = f"{user}/w-{uuid.uuid4().hex[:6]}"
    writer.create_repo(repo, private=True)
    writer.upload_file(path_or_fileobj=b"hello", path_in_repo="h.txt", repo_id=repo)
    with pytest.raises(HfHubHTTPError) as refused:  # settings need repo.settings.write
        writer.update_repo_settings(repo, private=False)
    assert refused.value.response.status_code == 403 and "repo.settings.write" in str(refused.value)
    with pytest.raises(HfHubHTTPError) as refused:  # discussions need discussion.write
        writer.create_discussion(repo, title="a question")
    assert refused.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):  # the org's repos are not granted
        writer.model_info(f"{fg['org']}/c")
    admin = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "global": ["discussion.write"], "scoped": [scoped("user", user, "repo.settings.write")]}))
    admin.update_repo_settings(repo, private=False)
    assert admin.create_discussion(repo, title="a question").num >= 1
    with pytest.raises(HfHubHTTPError):  # settings do not include content writes
        admin.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    org = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("org", fg["org"], "repo.content.read")]}))
    assert org.model_info(f"{fg['org']}/c").private
    with pytest.raises(RepositoryNotFoundError):
        org.model_info(f"{user}/a")


def test_expired_and_classic_tokens(live_hub, fg):
    user = fg["user"]
    value = f"hf_fg_{uuid.uuid4().hex}"
    script = ("import sys\nfrom datetime import timedelta\nfrom aicommons.cli.main import _hub\n"
              "from aicommons.times import utcnow\nhub = _hub()\n"
              "hub.accounts.create_token(sys.argv[1], role='write', value=sys.argv[2], "
              "expires_at=utcnow() - timedelta(seconds=1))\n")
    subprocess.run([sys.executable, "-c", script, user, value], env=live_hub.env, check=True)
    response = httpx.get(f"{live_hub.url}/api/whoami-v2", headers={"Authorization": f"Bearer {value}"})
    assert response.status_code == 401 and "expired" in response.text
    classic = HfApi(endpoint=live_hub.url, token=fg["write"]).whoami()["auth"]["accessToken"]
    assert classic["role"] == "write" and "fineGrained" not in classic


def test_webhooks_need_the_webhook_permissions(live_hub, fg):
    """A token scoped to one repo must not read the account's webhooks (their secrets) nor change them:
    that takes user.webhooks.read / user.webhooks.write, as the token page says."""
    user = fg["user"]
    owner = HfApi(endpoint=live_hub.url, token=fg["write"])
    hook = owner.create_webhook(url="https://example.com/hook", watched=[{"type": "user", "name": user}],
                                domains=["repo"], secret="do-not-leak")
    repo_only = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("model", f"{user}/a", "repo.write")]}))
    for call in (repo_only.list_webhooks, lambda: repo_only.get_webhook(hook.id),
                 lambda: repo_only.disable_webhook(hook.id), lambda: repo_only.delete_webhook(hook.id),
                 lambda: repo_only.create_webhook(url="https://example.com/2", watched=[{"type": "user", "name": user}])):
        with pytest.raises(HfHubHTTPError) as refused:
            call()
        assert refused.value.response.status_code == 403 and "user.webhooks." in str(refused.value)
        assert "do-not-leak" not in refused.value.response.text
    assert not owner.get_webhook(hook.id).disabled
    reader = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("user", user, "user.webhooks.read")]}))
    assert [w.id for w in reader.list_webhooks()] == [hook.id]
    with pytest.raises(HfHubHTTPError) as refused:
        reader.disable_webhook(hook.id)
    assert refused.value.response.status_code == 403 and "user.webhooks.write" in str(refused.value)
    manager = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("user", user, "user.webhooks.write")]}))
    assert manager.disable_webhook(hook.id).disabled  # write implies read: it answers the webhook
    manager.delete_webhook(hook.id)


def test_collections_need_the_collection_permissions(live_hub, fg):
    """collection.read / collection.write govern collections (the token page offers them): a token
    with only collection.write manages them, one with only repo permissions neither sees private
    collections nor changes any."""
    user = fg["user"]
    owner = HfApi(endpoint=live_hub.url, token=fg["write"])
    secret = owner.create_collection(f"secret {uuid.uuid4().hex[:6]}", private=True)
    manager = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("user", user, "collection.write")]}))
    made = manager.create_collection(f"by manager {uuid.uuid4().hex[:6]}", private=True)
    manager.add_collection_item(made.slug, item_id=f"{user}/pub", item_type="model")
    assert manager.get_collection(secret.slug).private  # write implies read
    assert secret.slug in {c.slug for c in manager.list_collections(owner=user)}
    reader = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("user", user, "collection.read")]}))
    assert reader.get_collection(secret.slug).title == secret.title
    with pytest.raises(HfHubHTTPError) as refused:
        reader.update_collection_metadata(secret.slug, title="renamed")
    assert refused.value.response.status_code == 403 and "collection.write" in str(refused.value)
    repo_writer = HfApi(endpoint=live_hub.url, token=_token(live_hub, user, {
        "scoped": [scoped("user", user, "repo.write", "repo.content.read")]}))
    with pytest.raises(HfHubHTTPError) as refused:
        repo_writer.create_collection(f"by repo writer {uuid.uuid4().hex[:6]}")
    assert refused.value.response.status_code == 403 and "collection.write" in str(refused.value)
    with pytest.raises(HfHubHTTPError) as hidden:  # like a missing one
        repo_writer.get_collection(secret.slug)
    assert hidden.value.response.status_code == 404
    assert not {secret.slug, made.slug} & {c.slug for c in repo_writer.list_collections(owner=user)}
    owner.delete_collection(made.slug)
    owner.delete_collection(secret.slug)


def test_a_gated_refusal_names_the_token_when_only_the_token_is_missing(live_hub, fg, tmp_path):
    """An admitted user whose fine-grained token lacks canReadGatedRepos was told to ask for access
    they already had; the GatedRepoError now says the token is what is missing."""
    owner = HfApi(endpoint=live_hub.url, token=fg["write"])
    repo = f"{fg['user']}/gated-{uuid.uuid4().hex[:6]}"
    owner.create_repo(repo)
    owner.upload_file(path_or_fileobj=b"weights", path_in_repo="w.bin", repo_id=repo)
    owner.update_repo_settings(repo, gated="manual")
    admitted, outsider = f"in{uuid.uuid4().hex[:8]}", f"out{uuid.uuid4().hex[:8]}"
    for name in (admitted, outsider):
        live_hub.cli("user", "create", name)
    owner.grant_access(repo, admitted)
    no_gated = {"global": ["discussion.write"]}
    with pytest.raises(GatedRepoError) as refused:
        hf_hub_download(repo, "w.bin", endpoint=live_hub.url, token=_token(live_hub, admitted, no_gated),
                        cache_dir=tmp_path / "a")
    assert refused.value.response.status_code == 403
    assert "canReadGatedRepos" in str(refused.value) and "not in the authorized list" not in str(refused.value)
    with pytest.raises(GatedRepoError) as refused:  # not admitted: the token is not what is missing
        hf_hub_download(repo, "w.bin", endpoint=live_hub.url, token=_token(live_hub, outsider, no_gated),
                        cache_dir=tmp_path / "b")
    assert "not in the authorized list" in str(refused.value) and "canReadGatedRepos" not in str(refused.value)
    path = hf_hub_download(repo, "w.bin", endpoint=live_hub.url, cache_dir=tmp_path / "c",
                           token=_token(live_hub, admitted, {"canReadGatedRepos": True}))
    assert Path(path).read_bytes() == b"weights"


def test_leaving_an_org_drops_its_scopes_from_the_tokens(live_hub):
    """A member removed from an org (or leaving it) keeps their fine-grained tokens, less the org's
    scopes: whoami-v2 listed them still, and they applied again when the member rejoined."""
    suffix = uuid.uuid4().hex[:8]
    user, boss, org, other = f"fgl{suffix}", f"fgboss{suffix}", f"fgleft{suffix}", f"fgkept{suffix}"
    for name in (user, boss):
        live_hub.cli("user", "create", name)
    live_hub.cli("org", "create", org, "--member", boss, "--member", user)
    live_hub.cli("org", "create", other, "--member", user)
    write = _token(live_hub, user, None)
    HfApi(endpoint=live_hub.url, token=write).create_repo(f"{org}/secret", private=True)
    spec = {"scoped": [scoped("org", org, "repo.content.read", "org.read"), scoped("org", other, "repo.write"),
                       scoped("user", user, "repo.write")]}
    token = _token(live_hub, user, spec)
    fine = HfApi(endpoint=live_hub.url, token=token)

    def scopes() -> set[tuple[str, str]]:
        return {(s["entity"]["type"], s["entity"]["name"])
                for s in fine.whoami()["auth"]["accessToken"]["fineGrained"]["scoped"]}

    assert scopes() == {("org", org), ("org", other), ("user", user)}
    assert fine.repo_info(f"{org}/secret").private
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:
        left = http.delete(f"/api/organizations/{org}/members/{user}", headers={"Authorization": f"Bearer {write}"})
        assert left.status_code == 200, left.text
    assert scopes() == {("org", other), ("user", user)}  # the other org's scope stays
    assert org not in {o["name"] for o in fine.whoami()["orgs"]}
    with pytest.raises(RepositoryNotFoundError):
        fine.repo_info(f"{org}/secret")

    live_hub.cli("org", "add-member", org, user, "--role", "write")  # rejoining brings back no scope
    assert HfApi(endpoint=live_hub.url, token=write).repo_info(f"{org}/secret").private  # (a member again)
    assert scopes() == {("org", other), ("user", user)}
    with pytest.raises(RepositoryNotFoundError):
        fine.repo_info(f"{org}/secret")
