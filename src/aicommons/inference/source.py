"""Where models come from: the contract between the hub core and inference.

The core implements ``ModelSource`` (``aicommons.app.HubModelSource``, an adapter over
``aicommons.hub.snapshots.ModelSnapshots``) and does the access checks there; inference only ever
sees a resolved, read-only snapshot pinned to one commit. Pinning is what makes answers
reproducible: a later push produces a new commit, hence a new cache key, and never changes what an
already-pinned revision answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ResolvedModel:
    repo_id: str  # "ns/name" as stored
    commit: str  # 40-hex git commit id the files come from
    local_dir: Path  # a folder with all files of the repo at that commit (read-only)
    card_data: dict = field(default_factory=dict, hash=False, compare=False)
    pipeline_tag: str | None = None
    library_name: str | None = None
    variant: str | None = None  # the GGUF file served, for a repo of GGUF files (``gguf.py``)
    created: int = 0  # when the repo was created (Unix seconds): ``GET /v1/models/{id}``'s ``created``

    @property
    def license(self) -> str | None:
        value = self.card_data.get("license") if self.card_data else None
        return str(value) if value else None

    @property
    def key(self) -> tuple[str, str, str]:
        """Cache key of a loaded model: the same commit (and GGUF file) is the same model, whatever
        name led to it."""
        return (self.repo_id, self.commit, self.variant or "")


@dataclass(frozen=True)
class ModelListing:
    """One row of ``GET /v1/models``."""

    repo_id: str
    pipeline_tag: str | None = None
    library_name: str | None = None
    created: int = 0
    owned_by: str = ""
    usable: bool = True  # the caller may load it: not gated, or on the owner side, or access granted


@runtime_checkable
class ModelSource(Protocol):
    def resolve(self, model: str, principal) -> ResolvedModel:
        """``model`` is "ns/name" or "ns/name@revision". Raises ``aicommons.errors.RepoNotFound`` /
        ``RevisionNotFound`` / ``GatedRepo`` when missing or not readable by ``principal``."""
        ...


@runtime_checkable
class CachingModelSource(Protocol):
    """Optional: a source that remembers recent resolutions. ``resolve_cached`` must never block
    (it runs on the event loop) and must apply the same access rules as ``resolve``; it returns
    None whenever it cannot answer without I/O, and the service then calls ``resolve``."""

    def resolve_cached(self, model: str, principal) -> ResolvedModel | None: ...


@runtime_checkable
class ListableModelSource(Protocol):
    """Optional: a source that can list the models ``principal`` may use (for ``GET /v1/models``).
    Sources without it make ``/v1/models`` list only the models currently loaded."""

    def list_models(self, principal) -> Iterable[ModelListing]: ...


@runtime_checkable
class FileSource(Protocol):
    """Optional: a source that reads single files of the repos the caller may read (images that a
    chat message names by this hub's ``/resolve/`` URL). Raises ``aicommons.errors.RepoNotFound`` /
    ``EntryNotFound`` alike for missing and unreadable files, ValueError past ``limit`` bytes."""

    def read_file(self, repo_type: str, repo_id: str, revision: str, path: str, principal,
                  limit: int) -> bytes: ...


def split_model_ref(model: str) -> tuple[str, str | None]:
    """"ns/name@rev" -> ("ns/name", "rev"); the revision part may itself contain "/"."""
    name, sep, rev = model.partition("@")
    return name, (rev if sep else None)
