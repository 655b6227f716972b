"""History links to each commit's page, which shows what it changed; two revisions can be compared.
A real browser; the pages are also in the authorization matrix (tests/api/test_authz_matrix.py)."""

from __future__ import annotations

from huggingface_hub import CommitOperationAdd, CommitOperationDelete

from tests.e2e.test_web_ui import browser, page  # noqa: F401 - the shared Chromium fixtures


def test_history_commit_diff_and_compare(page, api, repo_id):  # noqa: F811
    api.upload_file(path_or_fileobj=b"alpha\nbeta\n", path_in_repo="notes.txt", repo_id=repo_id,
                    commit_message="First notes")
    api.create_commit(repo_id, commit_message="Edit notes\n\nWhy: gamma is needed.", operations=[
        CommitOperationAdd("notes.txt", b"alpha\ngamma\n"), CommitOperationAdd("weights.bin", b"\0\1" * 2000)])
    api.create_tag(repo_id, tag="v1")
    api.create_commit(repo_id, commit_message="Drop the weights", operations=[CommitOperationDelete("weights.bin")])

    page.goto(f"/{repo_id}/commits/main")
    page.click("ul.commits >> text=Edit notes")
    diff = page.inner_text("#commit-diff")
    assert "-beta" in diff and "+gamma" in diff and "weights.bin" in diff
    assert page.inner_text("h2.commit-title") == "Edit notes"
    assert "gamma is needed" in page.inner_text("pre.commit-body")
    assert page.locator("#commit-diff .d-add").count() >= 1 and page.locator("#commit-diff .d-del").count() >= 1
    page.click("#parent-link")
    assert "+beta" in page.inner_text("#commit-diff")

    page.goto(f"/{repo_id}/compare/v1...main")
    assert "weights.bin" in page.inner_text("#commit-diff") and "notes.txt" not in page.inner_text("#commit-diff")
    assert page.goto(f"/{repo_id}/compare/v1..main").status == 404
    assert page.goto(f"/{repo_id}/commit/{'0' * 40}").status == 404
