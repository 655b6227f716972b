"""A ModelSource over plain folders, for the serving tests: revisions pin a commit, every model is
visible to every caller. Access rules are the hub's (``HubModelSource``), tested on the real hub in
``test_hub_e2e.py``; this source does not imitate them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aicommons.errors import RepoNotFound, RevisionNotFound
from aicommons.inference.source import ModelListing, ResolvedModel, split_model_ref


def fake_commit(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def read_card(folder: Path) -> dict:
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    text = readme.read_text()
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}


@dataclass
class Repo:
    revisions: dict = field(default_factory=dict)  # revision name or commit -> folder; "main" is the default


class DirectoryModelSource:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.resolve_calls = 0

    def add(self, repo_id: str, folder: Path, *, revision: str = "main") -> str:
        repo = self.repos.setdefault(repo_id, Repo())
        commit = fake_commit(repo_id, revision, str(folder))
        repo.revisions[revision] = (commit, Path(folder))
        repo.revisions[commit] = (commit, Path(folder))
        return commit

    def resolve(self, model: str, principal) -> ResolvedModel:
        self.resolve_calls += 1
        repo_id, revision = split_model_ref(model)
        repo = self.repos.get(repo_id)
        if repo is None:
            raise RepoNotFound(f"Repository {repo_id} not found")
        if (revision or "main") not in repo.revisions:
            raise RevisionNotFound(f"Revision {revision} not found in {repo_id}")
        commit, folder = repo.revisions[revision or "main"]
        card = read_card(folder)
        return ResolvedModel(repo_id, commit, folder, card, card.get("pipeline_tag"), card.get("library_name"))

    def list_models(self, principal):
        for repo_id, repo in self.repos.items():
            _, folder = repo.revisions["main"]
            card = read_card(folder)
            yield ModelListing(repo_id, card.get("pipeline_tag"), card.get("library_name"))
