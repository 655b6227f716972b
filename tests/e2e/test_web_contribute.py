"""Changing a repo from the site, as a newcomer does before they ever install a client: create the
card, upload files (a weight file goes to LFS), edit a text file (web/upload.py; readers get no such
buttons and are refused); close, reopen and merge discussions and pull requests (web/community.py)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from huggingface_hub import CommitOperationAdd, hf_hub_download

from tests.conftest import unique_name
from tests.e2e.test_web_ui import browser, page, sign_in  # noqa: F401 - the shared Chromium fixtures


def safetensors(n: int = 64) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(range(256)) * (n // 64)


def test_create_the_card_upload_files_and_edit_one_from_the_site(page, browser, live_hub, api, repo_id, tmp_path):  # noqa: F811
    sign_in(page)
    page.goto(f"/{repo_id}")
    page.click(".card-actions >> text=Create the card")  # an empty repo: a starting card to fill in
    page.wait_for_url(f"**/{repo_id}/edit/main/README.md")
    assert "license:" in page.input_value("#edit-content")
    page.fill("#edit-content", "---\nlicense: mit\n---\n# Made in the browser\n\nA card.\n")
    page.click("text=Commit changes")
    page.wait_for_url(f"**/{repo_id}")
    assert page.inner_text("article.card h1") == "Made in the browser"
    assert "mit" in page.inner_text("aside")

    weights, config = tmp_path / "model.safetensors", tmp_path / "config.json"
    weights.write_bytes(safetensors())
    config.write_text('{"hidden_size": 8}')
    page.click(".card-actions >> text=Upload files")
    page.set_input_files("input[type=file]", [str(weights), str(config)])
    page.fill("input[name=folder]", "ckpt")
    page.fill("input[name=summary]", "Add the first checkpoint")
    page.click("text=Commit the files")
    page.wait_for_url(f"**/{repo_id}/tree/main/ckpt")
    rows = page.locator("#file-list tr").all_inner_texts()
    assert any("model.safetensors" in r and ("LFS" in r or "Xet" in r) for r in rows), rows  # binary: LFS
    assert any("config.json" in r and "LFS" not in r and "Xet" not in r for r in rows), rows
    got = hf_hub_download(repo_id, "ckpt/model.safetensors", endpoint=live_hub.url, cache_dir=tmp_path / "cache")
    assert hashlib.sha256(Path(got).read_bytes()).hexdigest() == hashlib.sha256(safetensors()).hexdigest()
    assert [f.filename for f in api.list_lfs_files(repo_id)] == ["ckpt/model.safetensors"]

    page.click("#file-list >> text=config.json")
    page.click("#file-meta >> text=edit")
    page.fill("#edit-content", '{"hidden_size": 16}')
    page.fill("input[name=summary]", "Widen the model")
    page.click("text=Commit changes")
    page.wait_for_url(f"**/{repo_id}/blob/main/ckpt/config.json")
    assert '"hidden_size": 16' in page.inner_text("pre.code")
    assert [c.title for c in api.list_repo_commits(repo_id)][:3] == [
        "Widen the model", "Add the first checkpoint", "Create README.md"]

    # A commit made meanwhile: the stale page says so and keeps the text; nothing is lost or overwritten.
    page.goto(f"/{repo_id}/edit/main/README.md")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="other.txt", repo_id=repo_id)
    page.fill("#edit-content", "# Mine\n")
    page.click("text=Commit changes")
    assert "changed this branch" in page.inner_text("#edit-error")
    assert page.input_value("#edit-content") == "# Mine\n"
    assert api.list_repo_commits(repo_id)[0].title.startswith("Upload other.txt")

    # Someone who may not write proposes: their edit opens a pull request, and main does not move.
    reader_name = unique_name("reader")
    live_hub.cli("user", "create", reader_name, "--email", f"{reader_name}@example.org", "--password", "read-only-pw")
    reader = browser.new_context(base_url=live_hub.url).new_page()
    sign_in(reader, reader_name, "read-only-pw")
    reader.goto(f"/{repo_id}")
    assert "Edit the card" not in reader.inner_text(".card-actions")
    head = api.repo_info(repo_id).sha
    reader.click("text=Propose a change to the card")
    reader.fill("#edit-content", "---\nlicense: mit\n---\n# Made in the browser\n\nA better card.\n")
    reader.fill("input[name=summary]", "Improve the card")
    reader.click("text=Open a pull request")
    reader.wait_for_url(f"**/{repo_id}/discussions/*")
    num = int(reader.url.rsplit("/", 1)[1])
    details = api.get_discussion_details(repo_id, num)
    assert details.is_pull_request and details.status == "open" and details.title == "Improve the card"
    assert details.author == reader_name and api.repo_info(repo_id).sha == head
    proposed = api.hf_hub_download(repo_id, "README.md", revision=f"refs/pr/{num}", cache_dir=tmp_path / "pr")
    assert "A better card." in Path(proposed).read_text()
    reader.context.close()
    anonymous = browser.new_context(base_url=live_hub.url).new_page()
    anonymous.goto(f"/{repo_id}/upload/main")  # sent to sign in, and back afterwards
    assert anonymous.url.endswith(f"/login?next=/{repo_id}/upload/main")
    anonymous.goto(f"/{repo_id}")
    assert anonymous.locator(".card-actions").count() == 0
    anonymous.context.close()


def test_merge_a_pull_request_from_its_page(page, api, bob_api, repo_id):  # noqa: F811
    pr = bob_api.create_commit(repo_id, operations=[CommitOperationAdd("fix.txt", b"fixed\n")],
                               commit_message="A fix", create_pr=True)
    sign_in(page)
    page.goto(f"/{repo_id}/discussions/{pr.pr_num}")
    page.fill("textarea[name=comment]", "Thanks!")
    page.click("text=Merge the pull request")
    assert api.get_discussion_details(repo_id, pr.pr_num).status == "merged"
    assert "fix.txt" in api.list_repo_files(repo_id)
    assert page.locator("text=Merge the pull request").count() == 0 and page.locator("text=Close the").count() == 0


def test_follow_and_unfollow_from_a_profile(page, api, live_hub):  # noqa: F811
    page.goto("/bob")
    assert "Sign in to follow" in page.inner_text(".follow")  # anonymous: told how, no button
    sign_in(page)
    page.goto("/alice")
    assert page.locator(".follow button").count() == 0  # not oneself
    page.goto("/bob")
    before = len(list(api.list_user_followers("bob")))
    page.click("text=Follow bob")
    assert "alice" in [u.username for u in api.list_user_followers("bob")]
    assert page.inner_text("#followers") == f"{before + 1} follower{'' if before + 1 == 1 else 's'}"
    page.click("text=Unfollow bob")
    assert "alice" not in [u.username for u in api.list_user_followers("bob")]
    assert page.inner_text(".follow button") == "Follow bob"
