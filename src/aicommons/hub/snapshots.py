"""Materialised snapshots of a repo at one commit, for code that needs files on disk (inference).

A snapshot folder ``<data>/snapshots/<storage key>/<commit>/`` holds every file of the commit:
regular files written from git, LFS files hard-linked from the local blob store (or copied from
object storage). It is built in a temp folder and renamed into place, so a reader never sees a
half-built snapshot; commits are immutable, so a built snapshot never changes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pygit2

from aicommons.db.repos import RepoRow
from aicommons.hub import content
from aicommons.hub.cards import card_from_readme
from aicommons.hub.lfs import blob_key


def materialize(hub, repo: RepoRow, commit: pygit2.Commit) -> Path:
    root = hub.settings.data_dir / "snapshots" / repo.storage_key
    final = root / str(commit.id)
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".building-"))
    try:
        git_repo = hub.git.open(repo.storage_key)
        for entry in content.iter_files(git_repo, commit):
            target = staging / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.lfs is None:
                target.write_bytes(content.read_blob(git_repo, entry.oid))
                continue
            key = blob_key(entry.lfs.oid)
            local = hub.blobs.local_path(key)
            if local is not None:
                os.link(local, target)
            else:
                with hub.blobs.open(key) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
        try:
            os.rename(staging, final)
        except OSError:  # another process built it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


class HubModelSource:
    """``aicommons.inference.source.ModelSource`` over the hub's own repos, with its access rules."""

    def __init__(self, hub):
        self.hub = hub

    def resolve(self, model: str, principal):
        from aicommons.inference.source import ResolvedModel, split_model_ref

        repo_id, revision = split_model_ref(model)
        repo = self.hub.repos.find("model", repo_id, principal)
        self.hub.gating.check(repo, principal)
        git_repo, commit = self.hub.refs.resolve(repo, revision or "main")
        card = card_from_readme(content.read_text(git_repo, commit, "README.md"), repo.type)
        return ResolvedModel(repo_id=repo.full_id, commit=str(commit.id), local_dir=materialize(self.hub, repo, commit),
                             card_data=card.data or {}, pipeline_tag=card.pipeline_tag,
                             library_name=card.library_name)

    def list_models(self, principal):
        """Models with a pipeline tag the caller can see (``GET /v1/models``), newest first."""
        from aicommons.db.repos import RepoQuery
        from aicommons.inference.source import ModelListing

        rows, _ = self.hub.repo_store.list(RepoQuery(type="model", limit=1000,
                                                     visible_owner_ids=principal.visible_owner_ids()))
        return [ModelListing(repo_id=r.full_id, pipeline_tag=r.pipeline_tag, library_name=r.library_name,
                             created=int(r.created_at.timestamp()), owned_by=r.namespace)
                for r in rows if r.pipeline_tag]
