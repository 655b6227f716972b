"""What describing a model commit costs with and without reading its library, task and tags from its
files (config.json 3 KiB, tokenizer_config.json 3 KiB, a 10 KiB card, 40 other files), side by side in
one process: 7 rounds of 500 of each, the median round.

Run: ``PYTHONPATH=src .venv/bin/python bench/describe_files.py`` (holding the benchmark locks).
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time

import pygit2

from aicommons.hub import content, file_tags
from aicommons.hub.cards import card_from_readme
from aicommons.hub.repos import _small_json

FILES = {
    "config.json": json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                               **{f"k{i}": i for i in range(300)}}).encode(),
    "tokenizer_config.json": json.dumps({"chat_template": "{{ messages }}" * 200, "eos_token": "</s>"}).encode(),
    "README.md": b"---\nlicense: mit\ntags: [a, b]\n---\n# m\n" + b"text " * 2000,
}


def main() -> None:
    folder = tempfile.mkdtemp(prefix="describe-bench-")
    repo = pygit2.init_repository(folder, bare=True)
    top, extra = repo.TreeBuilder(), repo.TreeBuilder()
    for path, data in FILES.items():
        top.insert(path, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    for i in range(40):
        extra.insert(f"file{i}.txt", repo.create_blob(b"x" * 100), pygit2.GIT_FILEMODE_BLOB)
    top.insert("extra", extra.write(), pygit2.GIT_FILEMODE_TREE)
    sig = pygit2.Signature("a", "a@example.org")
    commit = repo[repo.create_commit("refs/heads/main", sig, sig, "m", top.write(), [])]

    def card_only():
        return card_from_readme(content.read_text(repo, commit, "README.md"), "model"), \
            content.file_rows(repo, commit, None)

    def with_files():
        card, rows = card_only()
        small = {str(r[0]): _small_json(repo, r) for r in rows if str(r[0]) in file_tags.READ_FILES}
        return file_tags.with_file_metadata(card, (str(r[0]) for r in rows), small.get("config.json"),
                                            small.get("tokenizer_config.json")), rows

    assert with_files()[0].pipeline_tag == "text-generation"
    rounds: dict[str, list[float]] = {"card only": [], "with the files": []}
    for _ in range(7):
        for name, fn in (("card only", card_only), ("with the files", with_files)):
            t0 = time.perf_counter()
            for _ in range(500):
                fn()
            rounds[name].append((time.perf_counter() - t0) / 500 * 1e6)
    before, after = (statistics.median(v) for v in rounds.values())
    print(f"describe a model commit: {before:.0f} us card only, {after:.0f} us with the files' library, task "
          f"and tags ({after / before:.2f}x, +{after - before:.0f} us)")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
