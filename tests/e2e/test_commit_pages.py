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


def test_commit_pages_summarise_each_file_with_its_sizes_before_and_after(page, api, repo_id):  # noqa: F811
    """Binary and LFS files get a line with their sizes before and after (an LFS file's are its
    object's, from the pointers), text files too; an initial commit lists what it added."""
    # image.dat: binary to git (a NUL byte early on) but kept in git: its first 512 bytes, the sample
    # the upload is routed by, look like text (as a git push of any binary file would keep it).
    def binary(n: int) -> bytes:
        return b"a" * 600 + b"\0" * (n - 600)

    api.create_commit(repo_id, commit_message="Add", operations=[
        CommitOperationAdd("notes.txt", b"alpha\n"), CommitOperationAdd("image.dat", binary(2000)),
        CommitOperationAdd("model.safetensors", b"\0" * 3_000_000)])  # an LFS file (by .gitattributes)
    api.create_commit(repo_id, commit_message="Change", operations=[
        CommitOperationAdd("notes.txt", b"alpha\nbeta\n"), CommitOperationAdd("image.dat", binary(3000)),
        CommitOperationAdd("model.safetensors", b"\1" * 5_000_000)])
    api.create_commit(repo_id, commit_message="Remove", operations=[CommitOperationDelete("image.dat")])

    def rows() -> dict[str, list[str]]:
        cells = page.locator("#changed-files tbody tr, #changed-files tr:has(td)")
        out = {}
        for i in range(cells.count()):
            texts = cells.nth(i).locator("td").all_inner_texts()
            out[texts[0]] = texts[1:]
        return out

    page.goto(f"/{repo_id}/commits/main")
    page.click("ul.commits >> text=Change")
    assert page.locator("#changed-files caption").inner_text() == "3 files changed"
    assert rows() == {"image.dat binary": ["modified", "2.0 kB", "3.0 kB"],
                      "model.safetensors LFS": ["modified", "3.0 MB", "5.0 MB"],
                      "notes.txt": ["modified", "6 B", "11 B"]}
    page.click("#changed-files >> text=model.safetensors")  # a link to the file at that commit
    assert "5.0 MB" in page.inner_text("main")
    page.go_back()
    page.click("#parent-link")  # "Add": every file added
    assert rows()["model.safetensors LFS"] == ["added", "—", "3.0 MB"]
    page.goto(f"/{repo_id}/commits/main")
    page.click("ul.commits >> text=Remove")
    assert rows() == {"image.dat binary": ["deleted", "3.0 kB", "—"]}
    assert page.locator("#changed-files a").count() == 0  # a deleted file has no page at this commit
