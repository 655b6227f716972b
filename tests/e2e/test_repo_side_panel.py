"""The repo page's side panel in a real browser (issue 14): the datasets a model's card names, linked
to their pages; the repo's size; the scan verdict of its files; snippets for this very repo (git,
huggingface_hub, transformers for a model with a config), which are run as shown; and the models
derived from a base model, counted and linked by relation."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

from huggingface_hub import CommitOperationAdd

from aicommons.web.render import human_size
from tests.compat.test_scans import RunsAShell, wait_for_scans
from tests.conftest import unique_name
from tests.e2e.test_web_ui import browser, page  # noqa: F401 - the shared Chromium fixtures


def test_a_model_page_names_its_datasets_size_scan_and_snippets_that_work(page, api, live_hub, repo_id, tmp_path):  # noqa: F811
    data = f"alice/{unique_name('data')}"
    api.create_repo(data, repo_type="dataset")
    card = f"---\ndatasets:\n- {data}\ntags:\n- dataset:someone/other-data\nlicense: mit\n---\n# A model\n"
    api.create_commit(repo_id, commit_message="model", operations=[
        CommitOperationAdd("README.md", card.encode()),
        CommitOperationAdd("config.json", json.dumps({"architectures": ["BertForMaskedLM"],
                                                      "model_type": "bert"}).encode()),
        CommitOperationAdd("weights.bin", b"\0" * 3000),
    ])
    status = wait_for_scans(api, repo_id)
    assert status["scansDone"] and not status["filesWithIssues"]

    page.goto(f"/{repo_id}")
    used = page.locator("#datasets-used a")
    assert used.all_inner_texts() == [data, "someone/other-data"]
    assert page.inner_text("#repo-size") == human_size(api.model_info(repo_id, expand=["usedStorage"]).used_storage)
    assert page.inner_text("#repo-scan") == "✓ scanned, no issues"
    assert page.inner_text("#snippet-transformers") == (
        f'from transformers import AutoModelForMaskedLM\nmodel = AutoModelForMaskedLM.from_pretrained("{repo_id}")')
    git_line = page.inner_text("#snippet-git")
    hub_snippet = page.inner_text("#snippet-hub")
    used.first.click()
    page.wait_for_url(f"**/datasets/{data}")

    # The snippets work as shown: git clones this repo, snapshot_download fetches its files.
    assert git_line == f"git clone {live_hub.url}/{repo_id}"
    subprocess.run([*git_line.split(), str(tmp_path / "clone")], check=True, capture_output=True, timeout=60)
    assert (tmp_path / "clone" / "config.json").exists()
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    code = hub_snippet.replace("snapshot_download(", "print(snapshot_download(", 1) + ")"  # the snippet, printing its result
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, timeout=120)
    assert (tmp_path / "hf").exists() and os.path.exists(os.path.join(out.stdout.strip(), "weights.bin"))


def test_a_repo_with_an_unsafe_file_says_so_and_a_dataset_gets_its_own_snippets(page, api):  # noqa: F811
    bad = f"alice/{unique_name('bad')}"
    api.create_repo(bad)
    api.upload_file(path_or_fileobj=pickle.dumps(RunsAShell(), protocol=2), path_in_repo="evil.pkl", repo_id=bad)
    assert wait_for_scans(api, bad)["filesWithIssues"]
    page.goto(f"/{bad}")
    assert page.inner_text("#repo-scan") == "⚠ 1 file with issues"
    assert page.locator("#snippet-transformers").count() == 0  # no config: no transformers snippet
    page.click("#repo-scan a")
    page.wait_for_url(f"**/{bad}/tree/main")
    assert "unsafe" in page.inner_text("#file-list")

    data = f"alice/{unique_name('data')}"
    api.create_repo(data, repo_type="dataset")
    page.goto(f"/datasets/{data}")
    assert page.inner_text("#snippet-datasets") == f'import datasets\nds = datasets.load_dataset("{data}")'
    assert page.inner_text("#snippet-hub").endswith(f'snapshot_download("{data}", repo_type="dataset")')
    assert page.inner_text("#snippet-git").endswith(f"/datasets/{data}")


def test_derived_models_are_counted_and_linked_by_relation(page, api):  # noqa: F811
    base = f"alice/{unique_name('base')}"
    other = f"alice/{unique_name('other')}"
    for rid in (base, other):
        api.create_repo(rid)
    children = {}

    def child(kind: str, card: str, files: dict[str, bytes] | None = None) -> None:
        rid = children[kind] = f"alice/{unique_name(kind)}"
        api.create_repo(rid)
        ops = [CommitOperationAdd("README.md", f"---\n{card}\n---\n".encode())]
        ops += [CommitOperationAdd(path, data) for path, data in (files or {}).items()]
        api.create_commit(rid, commit_message=kind, operations=ops)

    child("tuned", f"base_model: {base}")
    child("tuned2", f"base_model: {base}")
    child("adapter", f"base_model: {base}", {"adapter_config.json": b"{}"})
    child("quant", f"base_model: {base}", {"config.json": json.dumps({"quantization_config": {"bits": 4}}).encode()})
    child("merged", f"base_model:\n- {base}\n- {other}")
    assert "base_model:adapter:" + base in api.model_info(children["adapter"]).tags

    page.goto(f"/{base}")
    facts = dict(zip(page.locator("#model-facts dt").all_inner_texts(),
                     page.locator("#model-facts dd").all_inner_texts(), strict=True))
    assert facts["Derived models"] == "5 models"
    assert (facts["Fine-tunes"], facts["Adapters"], facts["Quantizations"], facts["Merges"]) == \
        ("2 models", "1 model", "1 model", "1 model")
    page.click("#model-facts dt:has-text('Adapters') + dd a")
    page.wait_for_url(lambda url: "/models?filter=base_model" in url)
    assert page.locator("li.repo-row > a").all_inner_texts() == [children["adapter"]]
    page.go_back()
    page.click("#model-facts dt:has-text('Fine-tunes') + dd a")
    page.wait_for_url(lambda url: "/models?filter=base_model" in url)
    assert sorted(page.locator("li.repo-row > a").all_inner_texts()) == sorted([children["tuned"], children["tuned2"]])
    page.goto(f"/{other}")
    assert "Fine-tunes" not in page.inner_text("#model-facts") and "Merges" in page.inner_text("#model-facts")
