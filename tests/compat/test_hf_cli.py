"""The ``hf`` CLI as a user runs it (its own HF_HOME, HF_ENDPOINT at the live hub): what each command
prints, compared with what huggingface.co gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from huggingface_hub import CommitOperationAdd

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, unique_name


@pytest.fixture
def hf(live_hub, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "hf")
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_TOKEN": ALICE_TOKEN, "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)

    return run


@pytest.mark.parametrize(("args", "product"), [
    (("jobs", "ps"), "Jobs"),
    (("jobs", "inspect", "0123abcd"), "Jobs"),
    (("jobs", "run", "python:3.12", "echo", "hi"), "Jobs"),
    (("buckets", "ls"), "Storage buckets"),
    (("buckets", "create", "alice/bucket"), "Storage buckets"),
    (("papers", "ls"), "Papers"),
])
def test_unserved_products_say_so(hf, args, product):
    """`hf jobs ps` and `hf buckets ls` said "Repository not found ... create it with: hf repos create",
    `hf jobs run` a bare 405 and `hf papers ls` a 404 of an HTML page: they now say the hub has no such
    product."""
    result = hf(*args)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{product} are not available on this hub" in out
    assert "Repository not found" not in out and "Bucket not found" not in out and "create it with" not in out
    assert "405" not in out and "<html" not in out


def test_spaces_search_templates_and_zero_gpu(hf, api, bob_api):
    """`hf spaces search` and `hf spaces templates` said "Space 'semantic-search' not found ... create it
    with: hf repos create semantic-search --type space" (GET /api/spaces/<x> was taken for a repo id
    without a namespace), `hf spaces zero-gpu quota` "Repository not found". Search now answers from
    the hub's text search (running spaces unless --include-non-running; private ones to their readers),
    templates with none, ZeroGPU with a 404 saying there is none."""
    word = unique_name("searchable").replace("-", "")
    running, stopped, hidden = (f"alice/{word}-{kind}" for kind in ("static", "gradio", "private"))
    card = "---\ntitle: {title}\nemoji: 💬\nsdk: {sdk}\n---\n# demo\n"
    for repo_id, sdk, private in ((running, "static", False), (stopped, "gradio", False), (hidden, "static", True)):
        api.create_repo(repo_id, repo_type="space", space_sdk=sdk, private=private)
        api.create_commit(repo_id, repo_type="space", commit_message="app", operations=[
            CommitOperationAdd("README.md", card.format(title=f"Demo {sdk}", sdk=sdk).encode()),
            *([CommitOperationAdd("index.html", b"<h1>demo</h1>")] if sdk == "static" else [])])  # gradio: no app
    result = hf("spaces", "search", word, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    found = {item["id"]: item for item in json.loads(result.stdout)}
    assert set(found) == {running, hidden}, found  # the gradio space has no app file: it never runs
    assert found[running]["title"] == "Demo static" and found[running]["sdk"] == "static"
    everything = hf("spaces", "search", word, "--include-non-running", "--format", "json")
    assert {item["id"] for item in json.loads(everything.stdout)} == {running, stopped, hidden}
    assert {s.id for s in bob_api.search_spaces(word, include_non_running=True)} == {running, stopped}
    assert {s.id for s in api.search_spaces(word, sdk="gradio", include_non_running=True)} == {stopped}
    assert api.list_space_templates() == []
    quota = hf("spaces", "zero-gpu", "quota")
    out = quota.stdout + quota.stderr
    assert quota.returncode == 1 and "ZeroGPU is not available on this hub" in out and "Repository" not in out


def test_space_features_the_hub_lacks_say_so(hf, api):
    """`hf spaces volumes set` and `hf spaces dev-mode` said "Unknown endpoint: PUT /api/spaces/.../volumes":
    they now name the feature this hub's Spaces do not have. A private space still answers as a missing one."""
    space = f"alice/{unique_name('featureless')}"
    api.create_repo(space, repo_type="space", space_sdk="static")
    for args, feature in ((("volumes", "set", space, "-v", "hf://models/alice/m:/data"), "Volumes are"),
                          (("dev-mode", space), "Dev mode is"), (("dev-mode", space, "--stop"), "Dev mode is")):
        result = hf("spaces", *args)
        assert result.returncode == 1 and f"{feature} not available on this hub's Spaces" in result.stdout + result.stderr
    api.update_repo_settings(space, repo_type="space", private=True)
    hidden = hf("spaces", "dev-mode", space, "--stop", "--token", BOB_TOKEN)
    assert hidden.returncode == 1 and "not found" in hidden.stdout + hidden.stderr


def test_creating_an_existing_repo_says_what_the_hub_says(hf):
    """`hf repos create` of an existing repo printed "You already created this repo"; the Hub says
    "You already created this model repo" (dataset, space), and scripts match that sentence."""
    name = f"alice/{unique_name('twice')}"
    for repo_type in ("model", "dataset", "space"):
        extra = ("--space-sdk", "static") if repo_type == "space" else ()
        assert hf("repos", "create", name, "--repo-type", repo_type, *extra).returncode == 0
        again = hf("repos", "create", name, "--repo-type", repo_type, *extra)
        assert again.returncode == 1 and f"You already created this {repo_type} repo" in again.stdout + again.stderr
    copy = f"{name}-copy"
    assert hf("repos", "duplicate", name, copy).returncode == 0
    again = hf("repos", "duplicate", name, copy)
    assert again.returncode == 1 and "You already created this model repo" in again.stdout + again.stderr
