"""A pull request's diff, bounded and computed once per (merge base, head).

A PR may add a gigabyte of files; its diff is shown to anyone who may read the repo, anonymous
visitors included, and a page view must not cost a patch of everything. So: a file whose blobs
together pass ``MAX_FILE_BYTES`` is not diffed at all (its sizes come from the object headers), a
file's patch longer than ``MAX_FILE_PATCH_BYTES`` is replaced, and once the whole diff reaches
``MAX_TOTAL_BYTES`` the remaining files are only named; each omission is a "too large to show"
line. The result is kept per (repo, merge base, head) in a small in-process cache (a new push to
the PR or its target moves one of them), and concurrent first views compute it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pygit2

MAX_FILE_BYTES = 1024 * 1024  # old + new blob
MAX_FILE_PATCH_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 2 * 1024 * 1024
CACHE_ENTRIES = 32  # at most CACHE_ENTRIES * MAX_TOTAL_BYTES held

_ZERO = "0" * 40


def _blob_size(git_repo: pygit2.Repository, oid: pygit2.Oid) -> int:
    if str(oid) == _ZERO:
        return 0
    try:
        return git_repo.odb.read_header(oid)[1]
    except (KeyError, ValueError, pygit2.GitError):
        return 0


def _paths(delta: pygit2.DiffDelta) -> str:
    old, new = delta.old_file.path, delta.new_file.path
    return f"a/{old} b/{new}"


def bounded_patch(git_repo: pygit2.Repository, old: pygit2.Commit, new: pygit2.Commit) -> str:
    diff = git_repo.diff(old, new)
    parts: list[str] = []
    total = 0
    deltas = list(diff.deltas)
    for index, delta in enumerate(deltas):
        if total >= MAX_TOTAL_BYTES:
            rest = len(deltas) - index
            parts.append(f"# {rest} more changed file{'s' if rest > 1 else ''}: too large to show "
                         f"(the diff passed {MAX_TOTAL_BYTES} bytes)\n")
            for later in deltas[index:]:
                parts.append(f"diff --git {_paths(later)}\n# too large to show\n")
            break
        size = _blob_size(git_repo, delta.old_file.id) + _blob_size(git_repo, delta.new_file.id)
        if size > MAX_FILE_BYTES:
            text = f"diff --git {_paths(delta)}\n# too large to show ({size} bytes changed)\n"
        else:
            patch = diff[index]
            text = (patch.text if patch is not None else None) or ""
            if len(text) > MAX_FILE_PATCH_BYTES:
                text = f"diff --git {_paths(delta)}\n# too large to show ({len(text)} bytes of diff)\n"
        parts.append(text)
        total += len(text)
    return "".join(parts)


class PrDiffCache:
    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self._done: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._computing: dict[tuple[Any, ...], threading.Lock] = {}
        self._lock = threading.Lock()
        self.computed = 0  # how many diffs were built (tests read it)

    def get(self, key: tuple[Any, ...], compute: Callable[[], str]) -> str:
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            flight = self._computing.setdefault(key, threading.Lock())
        with flight:  # the first caller computes; the others wait for it and find the result
            with self._lock:
                if key in self._done:
                    return self._done[key]
            text = compute()
            with self._lock:
                self.computed += 1
                self._done[key] = text
                while len(self._done) > self.entries:
                    self._done.popitem(last=False)
                self._computing.pop(key, None)
            return text
