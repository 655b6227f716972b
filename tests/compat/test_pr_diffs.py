"""PR diffs are bounded (issue 19 finding 4): a 39 MB PR made a 58.8 MB page, rebuilt on every
view. Now each file's diff and the whole diff are capped with "too large to show" lines, the diff
is computed once per PR head, and the discussion page loads it lazily from its own URL."""

from __future__ import annotations

import threading

from huggingface_hub import CommitOperationAdd

from aicommons.hub import pr_diffs
from aicommons.hub.pr_diffs import PrDiffCache

MiB = 1024 * 1024


def text_file(tag: str, size: int) -> bytes:
    line = f"{tag} the quick brown fox jumps over the lazy dog 0123456789\n".encode()
    return line * (size // len(line))


def test_pr_diff_is_capped_per_file_and_in_total(api, repo_id, http):
    ops = [CommitOperationAdd("a-small.txt", b"hello small\n"),  # diffs run in path order
           CommitOperationAdd("huge.txt", text_file("huge", 3 * MiB))]  # one file past the per-file cap
    ops += [CommitOperationAdd(f"part-{i:02d}.txt", text_file(f"p{i:02d}", 200 * 1024)) for i in range(30)]
    num = api.create_commit(repo_id, ops, commit_message="a big PR", create_pr=True).pr_num

    diff = api.get_discussion_details(repo_id, num).diff
    assert "hello small" in diff  # small files are shown
    assert "diff --git a/huge.txt b/huge.txt\n# too large to show" in diff and "huge the quick" not in diff
    assert "more changed files: too large to show" in diff  # the total cap stopped the listing
    assert "diff --git a/part-29.txt b/part-29.txt\n# too large to show" in diff  # ... yet names every file
    assert len(diff) < pr_diffs.MAX_TOTAL_BYTES + pr_diffs.MAX_FILE_PATCH_BYTES + 64 * 1024

    # The web page does not carry the diff; it loads it from the diff URL, which answers the same text.
    page = http.get(f"/{repo_id}/discussions/{num}")
    assert page.status_code == 200 and len(page.content) < 100 * 1024
    assert "hello small" not in page.text and f"/{repo_id}/discussions/{num}/diff" in page.text
    lazy = http.get(f"/{repo_id}/discussions/{num}/diff")
    assert lazy.status_code == 200 and lazy.headers["content-type"].startswith("text/plain")
    assert lazy.text == diff


def test_diff_cache_computes_once_for_concurrent_views():
    cache = PrDiffCache(entries=2)
    started = threading.Event()
    calls = []

    def compute():
        calls.append(1)
        started.wait(2)
        return "patch"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(("r", "a", "h"), compute))) for _ in range(4)]
    for t in threads:
        t.start()
    started.set()
    for t in threads:
        t.join()
    assert results == ["patch"] * 4 and len(calls) == 1 and cache.computed == 1
    cache.get(("r", "a", "h2"), lambda: "new head")  # a new head is a new key
    cache.get(("r", "a", "h3"), lambda: "newer")
    assert cache.computed == 3 and ("r", "a", "h") not in cache._done  # bounded: the oldest went
