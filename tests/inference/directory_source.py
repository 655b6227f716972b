"""A ModelSource over plain folders, for inference tests until the hub's own source is mounted.

Mimics the hub's rules that inference relies on: revisions pin a commit, private repos are
invisible (RepoNotFound) to others, gated repos answer GatedRepo.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aicommons.errors import GatedRepo, RepoNotFound, RevisionNotFound
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
    revisions: dict  # revision name or commit -> folder; "main" is the default
    private_to: set | None = None  # principal keys allowed; None = public
    gated_for: set = field(default_factory=set)  # principal keys that must not read it


class DirectoryModelSource:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.resolve_calls = 0

    def add(self, repo_id: str, folder: Path, *, revision: str = "main", private_to=None, gated_for=()) -> str:
        repo = self.repos.setdefault(repo_id, Repo({}, private_to, set(gated_for)))
        commit = fake_commit(repo_id, revision, str(folder))
        repo.revisions[revision] = (commit, Path(folder))
        repo.revisions[commit] = (commit, Path(folder))
        return commit

    def resolve(self, model: str, principal) -> ResolvedModel:
        self.resolve_calls += 1
        repo_id, revision = split_model_ref(model)
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private_to is not None and principal.key not in repo.private_to):
            raise RepoNotFound(f"Repository {repo_id} not found")
        if principal.key in repo.gated_for:
            raise GatedRepo(f"Access to {repo_id} is restricted; ask for access on its page")
        if (revision or "main") not in repo.revisions:
            raise RevisionNotFound(f"Revision {revision} not found in {repo_id}")
        commit, folder = repo.revisions[revision or "main"]
        card = read_card(folder)
        return ResolvedModel(repo_id, commit, folder, card, card.get("pipeline_tag"), card.get("library_name"))

    def list_models(self, principal):
        for repo_id, repo in self.repos.items():
            if repo.private_to is None or principal.key in repo.private_to:
                _, folder = repo.revisions["main"]
                card = read_card(folder)
                yield ModelListing(repo_id, card.get("pipeline_tag"), card.get("library_name"))
