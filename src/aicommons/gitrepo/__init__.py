"""Real git underneath every hub repo: one bare repository per repo, read and written with
libgit2 (pygit2); ref updates go through ``git update-ref`` so that they are compare-and-swap under
git's own lock files, which also holds across replicas sharing the folder."""

from aicommons.gitrepo.objects import blob_at, commit_at, entry_name, tree_at
from aicommons.gitrepo.store import GitStore, RefUpdateConflict, commit_address
from aicommons.gitrepo.trees import TreeChange

__all__ = ["GitStore", "RefUpdateConflict", "TreeChange", "blob_at", "commit_address", "commit_at", "entry_name", "tree_at"]
