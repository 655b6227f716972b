"""Webhooks: huggingface_hub's webhook methods, and deliveries received by a real HTTP server on
loopback (a hub started with AICOMMONS_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1), each payload parsed with
huggingface_hub's own ``WebhookPayload`` model. The shared hub (without the setting) refuses the same
loopback target."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from huggingface_hub import HfApi, WebhookPayload
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import ALICE_READ_TOKEN, BOB_TOKEN, auth, server_env, start_hub, stop_hub, unique_name

SECRET = "s3cret-value"


class Receiver:
    """A webhook target: records every request; answers 500 ``fail`` times first, or as ``answer`` says."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail: dict[str, int] = {}  # path -> failures left
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body),
                                          "at": time.monotonic()})
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                elif receiver.fail.get(self.path, 0) > 0:
                    receiver.fail[self.path] -= 1
                    self.send_response(500)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def wait(self, path: str, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.at(path)) < count:
            time.sleep(0.1)
        return self.at(path)


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hook_hub(tmp_path_factory):
    """A hub that may deliver to loopback, retrying fast, with alice (member of org ``hooks``) and bob."""
    data_dir = tmp_path_factory.mktemp("webhooks") / "data"
    data_dir.mkdir()
    port = _free_port()
    extra = {"AICOMMONS_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1", "AICOMMONS_WEBHOOK_RETRY_SECONDS": "0.5",
             "AICOMMONS_WEBHOOK_MAX_ATTEMPTS": "3", "AICOMMONS_SCAN_UPLOADS": "false"}
    env = server_env(data_dir, port, **extra)
    for args in (["user", "create", "alice", "--password", "wonderland"], ["user", "create", "bob"],
                 ["org", "create", "hooks", "--member", "alice"], ["token", "create", "alice", "--value", "hf_hook_alice"],
                 ["token", "create", "bob", "--value", "hf_hook_bob"]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    hub = start_hub(data_dir, port, **extra)
    yield hub
    stop_hub(hub)


def test_every_webhook_method(api, live_hub, http):
    watched = [{"type": "user", "name": "alice"}, {"type": "org", "name": "acme"},
               {"type": "model", "name": "alice/some-model"}]
    hook = api.create_webhook(url="https://example.org/hook", watched=watched, domains=["repo"], secret=SECRET)
    assert (hook.url, hook.domains, hook.secret, hook.disabled) == ("https://example.org/hook", ["repo"], SECRET, False)
    assert [(w.type, w.name) for w in hook.watched] == [(w["type"], w["name"]) for w in watched]
    assert api.get_webhook(hook.id).url == hook.url
    assert hook.id in [w.id for w in api.list_webhooks()]
    # update_webhook always sends ``watched`` ([] when not given): [] keeps the list.
    updated = api.update_webhook(hook.id, url="https://example.org/new", domains=["repo", "discussion"])
    assert updated.url == "https://example.org/new" and len(updated.watched) == 3
    assert updated.domains == ["repo", "discussion"] and updated.secret == SECRET
    updated = api.update_webhook(hook.id, watched=[{"type": "user", "name": "bob"}])
    assert [(w.type, w.name) for w in updated.watched] == [("user", "bob")]
    assert api.disable_webhook(hook.id).disabled is True
    assert api.enable_webhook(hook.id).disabled is False
    # Someone else's webhook answers like a missing one; anonymous callers must sign in; a read token
    # lists but does not create.
    bob = HfApi(endpoint=live_hub.url, token=BOB_TOKEN)
    with pytest.raises(HfHubHTTPError) as exc:
        bob.get_webhook(hook.id)
    assert exc.value.response.status_code == 404
    assert hook.id not in [w.id for w in bob.list_webhooks()]
    for method, path in (("DELETE", ""), ("POST", "/disable"), ("POST", ""), ("GET", "/deliveries")):
        mine = http.request(method, f"/api/settings/webhooks/{hook.id}{path}", headers=auth(BOB_TOKEN), json={})
        missing = http.request(method, f"/api/settings/webhooks/{'0' * 24}{path}", headers=auth(BOB_TOKEN), json={})
        assert (mine.status_code, mine.text) == (missing.status_code, missing.text) == (404, missing.text)
    assert http.get("/api/settings/webhooks").status_code == 401
    reader = HfApi(endpoint=live_hub.url, token=ALICE_READ_TOKEN)
    assert hook.id in [w.id for w in reader.list_webhooks()]
    with pytest.raises(HfHubHTTPError) as exc:
        reader.disable_webhook(hook.id)
    assert exc.value.response.status_code == 403
    # Bad input: a 400 with the Hub's error code, never a 5xx.
    for body in ({"watched": [], "url": "https://example.org"}, {"watched": watched, "url": "ftp://example.org"},
                 {"watched": [{"type": "bucket", "name": "x"}], "url": "https://example.org"},
                 {"watched": watched, "url": "https://example.org", "domains": ["nope"]},
                 {"watched": watched, "url": "https://example.org", "secret": "é\n"},
                 {"watched": watched, "jobSourceId": "abc"}, {"watched": [{"type": "user", "name": "a/b"}], "url": "http://x"},
                 {"watched": "alice", "url": "https://example.org"}, []):
        response = http.post("/api/settings/webhooks", json=body, headers=auth(api.token))
        assert response.status_code == 400 and response.headers["X-Error-Code"] == "BadRequest", body
    api.delete_webhook(hook.id)
    with pytest.raises(HfHubHTTPError):
        api.get_webhook(hook.id)


def test_deliveries_carry_the_hubs_payload(hook_hub, receiver):
    alice = HfApi(endpoint=hook_hub.url, token="hf_hook_alice")
    repo = f"alice/{unique_name('hooked')}"
    alice.create_repo(repo)
    hook = alice.create_webhook(url=receiver.url + "/all", watched=[{"type": "model", "name": repo},
                                                                     {"type": "org", "name": "hooks"}], secret=SECRET)
    alice.create_webhook(url=receiver.url + "/discussions-only", watched=[{"type": "model", "name": repo}],
                         domains=["discussion"])
    before = alice.model_info(repo).sha
    commit = alice.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id=repo).oid
    alice.create_branch(repo, branch="dev")
    alice.update_repo_settings(repo, private=True)
    discussion = alice.create_discussion(repo, title="A question", description="first")
    alice.comment_discussion(repo, discussion.num, "a comment")
    org_repo = f"hooks/{unique_name('made')}"
    alice.create_repo(org_repo)
    alice.move_repo(org_repo, org_repo + "-moved")

    got = receiver.wait("/all", 7)
    payloads = [WebhookPayload.model_validate(r["body"]) for r in got]  # huggingface_hub's own model
    events = [(p.event.action, p.event.scope, p.repo.name) for p in payloads]
    assert events == [
        ("update", "repo.content", repo), ("update", "repo.content", repo), ("update", "repo.config", repo),
        ("create", "discussion", repo), ("create", "discussion.comment", repo), ("create", "repo", org_repo),
        ("move", "repo", org_repo)], events
    assert all(r["headers"]["X-Webhook-Secret"] == SECRET for r in got)
    assert all(p.webhook.id == hook.id and p.webhook.version == 3 for p in payloads)
    by_scope = {(p.event.action, p.event.scope): (p, r["body"]) for p, r in zip(payloads, got, strict=True)}
    content, raw = by_scope[("update", "repo.content")]
    first = [p for p in payloads if p.event.scope == "repo.content" and p.repo.name == repo]
    assert first[0].updatedRefs[0].model_dump() == {"ref": "refs/heads/main", "oldSha": before, "newSha": commit}
    assert first[1].updatedRefs[0].model_dump() == {"ref": "refs/heads/dev", "oldSha": None, "newSha": commit}
    assert raw["repo"]["headSha"] == raw["repo"]["head_sha"] == content.repo.head_sha
    config, raw = by_scope[("update", "repo.config")]
    assert config.repo.private is True and raw["updatedConfig"] == {"private": True}
    created, _ = by_scope[("create", "discussion")]
    assert (created.discussion.num, created.discussion.title, created.discussion.isPullRequest,
            created.discussion.status) == (discussion.num, "A question", False, "open")
    assert created.discussion.url.web.endswith(f"/{repo}/discussions/{discussion.num}")
    comment, _ = by_scope[("create", "discussion.comment")]
    assert comment.comment.content == "a comment" and comment.comment.hidden is False
    moved, _ = by_scope[("move", "repo")]
    assert moved.movedTo.name == org_repo + "-moved"
    # The discussion-only webhook heard the discussion events alone.
    only = receiver.wait("/discussions-only", 2)
    assert [r["body"]["event"]["scope"] for r in only] == ["discussion", "discussion.comment"]
    # The delivery log: status, time, response; newest first.
    log = httpx.get(f"{hook_hub.url}/api/settings/webhooks/{hook.id}/deliveries", headers=auth("hf_hook_alice")).json()
    assert len(log) == 7 and all(d["status"] == "delivered" and d["responseStatus"] == 200 for d in log)
    assert log[0]["event"] == "move repo" and log[0]["responseBody"] == "ok" and log[0]["lastAttemptAt"]


def test_private_repos_are_told_only_to_those_who_see_them(hook_hub, receiver):
    alice = HfApi(endpoint=hook_hub.url, token="hf_hook_alice")
    bob = HfApi(endpoint=hook_hub.url, token="hf_hook_bob")
    secret, public = f"alice/{unique_name('private')}", f"alice/{unique_name('public')}"
    alice.create_repo(secret, private=True)
    alice.create_repo(public)
    bob.create_webhook(url=receiver.url + "/bob", watched=[{"type": "user", "name": "alice"},
                                                           {"type": "model", "name": secret}])
    alice.create_webhook(url=receiver.url + "/alice", watched=[{"type": "user", "name": "alice"}])
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="secret.txt", repo_id=secret)
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="public.txt", repo_id=public)
    assert [r["body"]["repo"]["name"] for r in receiver.wait("/alice", 2)] == [secret, public]
    time.sleep(2)  # bob's deliveries are queued at the same time as alice's
    assert [r["body"]["repo"]["name"] for r in receiver.at("/bob")] == [public]


def test_retries_back_off_and_give_up(hook_hub, receiver):
    alice = HfApi(endpoint=hook_hub.url, token="hf_hook_alice")
    repo = f"alice/{unique_name('flaky')}"
    alice.create_repo(repo)
    flaky = alice.create_webhook(url=receiver.url + "/flaky", watched=[{"type": "model", "name": repo}])
    down = alice.create_webhook(url=receiver.url + "/down", watched=[{"type": "model", "name": repo}])
    moved = alice.create_webhook(url=receiver.url + "/redirect", watched=[{"type": "model", "name": repo}])
    receiver.fail.update({"/flaky": 1, "/down": 99})
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert len(receiver.wait("/flaky", 2)) == 2
    tries = receiver.wait("/down", 3)
    assert len(tries) == 3  # AICOMMONS_WEBHOOK_MAX_ATTEMPTS=3
    gaps = [b["at"] - a["at"] for a, b in zip(tries, tries[1:])]
    assert gaps[0] >= 0.4 and gaps[1] >= 0.9, gaps  # 0.5 s, then twice that
    assert len(receiver.wait("/redirect", 1)) == 1 and not receiver.at("/elsewhere")  # never followed

    def log(hook):
        for _ in range(100):
            entries = httpx.get(f"{hook_hub.url}/api/settings/webhooks/{hook.id}/deliveries",
                                headers=auth("hf_hook_alice")).json()
            if entries and entries[0]["status"] in ("delivered", "failed"):
                return entries[0]
            time.sleep(0.1)
        return entries[0]

    assert (log(flaky)["status"], log(flaky)["attempts"]) == ("delivered", 2)
    assert (log(down)["status"], log(down)["attempts"], log(down)["responseStatus"]) == ("failed", 3, 500)
    assert (log(moved)["status"], log(moved)["attempts"], log(moved)["responseStatus"]) == ("failed", 1, 302)
    assert "redirect" in log(moved)["error"]


def test_private_targets_are_refused_without_the_setting(api, live_hub, receiver, repo_id):
    """The shared hub has no AICOMMONS_WEBHOOKS_ALLOW_PRIVATE_TARGETS: loopback, private and
    link-local targets are refused at delivery time, after DNS resolution."""
    targets = [receiver.url + "/refused", f"http://localhost:{receiver.url.rsplit(':', 1)[1]}/refused",
               "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/", "http://[::1]:9/"]
    hooks = [api.create_webhook(url=url, watched=[{"type": "model", "name": repo_id}]) for url in targets]
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    for hook in hooks:
        for _ in range(300):
            entries = httpx.get(f"{live_hub.url}/api/settings/webhooks/{hook.id}/deliveries",
                                headers=auth(api.token)).json()
            if entries and entries[0]["status"] == "failed":
                break
            time.sleep(0.2)
        assert entries[0]["status"] == "failed" and entries[0]["attempts"] == 1, (hook.url, entries)
        assert entries[0]["error"].startswith("refused:") and entries[0]["responseStatus"] is None
        api.delete_webhook(hook.id)
    assert receiver.at("/refused") == []


def test_git_pushes_and_deletions_are_events_too(hook_hub, receiver, tmp_path):
    """The events come from the hub's ref and repo code, whichever door made the change: a real
    ``git push`` of a branch and a tag, then deleting both and the repo."""
    from tests.compat.test_git import Git, commit_files

    alice = HfApi(endpoint=hook_hub.url, token="hf_hook_alice")
    repo = f"alice/{unique_name('pushed')}"
    alice.create_repo(repo)
    alice.create_webhook(url=receiver.url + "/pushed", watched=[{"type": "model", "name": repo}], domains=["repo"])
    git = Git(tmp_path / "home")
    work = tmp_path / "work"
    host = hook_hub.url.split("://", 1)[1]
    git("clone", f"http://alice:hf_hook_alice@{host}/{repo}", str(work))
    before = git.head(work)
    head = commit_files(git, work, {"pushed.txt": b"pushed"}, "a pushed commit")
    git("tag", "v1", cwd=work)
    git("push", "origin", "main", "main:refs/heads/side", "v1", cwd=work)
    git("push", "origin", ":side", ":v1", cwd=work)
    alice.delete_repo(repo)
    got = receiver.wait("/pushed", 6)
    payloads = [WebhookPayload.model_validate(r["body"]) for r in got]
    refs = {(u.ref, u.oldSha, u.newSha) for p in payloads[:5] for u in p.updatedRefs or []}
    assert refs == set([("refs/heads/main", before, head), ("refs/heads/side", None, head),
                           ("refs/tags/v1", None, head), ("refs/heads/side", head, None),
                           ("refs/tags/v1", head, None)]), refs
    assert [(p.event.action, p.event.scope) for p in payloads][-1] == ("delete", "repo")
    assert payloads[-1].repo.name == repo
