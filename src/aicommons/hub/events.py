"""Hub events: the one function the domain calls after a change to a repo or a discussion has landed.

``Events.emit`` is called by the services (``RepoService`` for repos and refs, ``DiscussionService``
for discussions and comments), never by request handlers, so every door (API, git push, web UI, CLI)
fires the same events. Listeners (webhooks) run synchronously but must be quick and must not fail the
change: an exception in a listener is logged and swallowed.

Actions and scopes are the Hub's (webhooks payload v3): ``create``/``delete``/``move``/``update`` on
``repo``, ``repo.content`` (branches, tags and PR refs moved: ``updated_refs``), ``repo.config``
(settings), ``discussion`` and ``discussion.comment``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aicommons.db.discussions import DiscussionRow, EventRow
from aicommons.db.repos import RepoRow

log = logging.getLogger(__name__)

UNKNOWN = "unknown"  # an ``old_sha`` the caller does not know (left out of the payload)


@dataclass(frozen=True)
class HubEvent:
    action: str  # create | delete | move | update
    scope: str  # repo | repo.content | repo.config | discussion | discussion.comment
    repo: RepoRow  # for a move: the repo under its old name
    updated_refs: tuple[dict, ...] = ()
    updated_config: dict = field(default_factory=dict)
    moved_to: str | None = None  # the new full id of a moved repo
    discussion: DiscussionRow | None = None
    comment: EventRow | None = None
    comment_hidden: bool = False

    @property
    def domain(self) -> str:
        return self.scope.split(".", 1)[0]


class Events:
    def __init__(self) -> None:
        self.listeners: list = []

    def emit(self, event: HubEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - the change has landed; a lost notification is logged
                log.exception("event listener failed on %s %s of %s", event.action, event.scope, event.repo.full_id)

    # --- what the services say ----------------------------------------------------------------------

    def repo(self, action: str, repo: RepoRow, **details) -> None:
        self.emit(HubEvent(action, "repo", repo, **details))

    def ref_moved(self, repo: RepoRow, ref: str, old_sha: str | None, new_sha: str | None) -> None:
        update = {"ref": ref, "newSha": new_sha}
        if old_sha != UNKNOWN:
            update["oldSha"] = old_sha
        self.emit(HubEvent("update", "repo.content", repo, updated_refs=(update,)))

    def config_changed(self, repo: RepoRow, changes: dict) -> None:
        self.emit(HubEvent("update", "repo.config", repo, updated_config=changes))

    def discussion(self, action: str, repo: RepoRow, discussion: DiscussionRow) -> None:
        self.emit(HubEvent(action, "discussion", repo, discussion=discussion))

    def comment(self, action: str, repo: RepoRow, discussion: DiscussionRow, comment: EventRow,
                hidden: bool = False) -> None:
        self.emit(HubEvent(action, "discussion.comment", repo, discussion=discussion, comment=comment,
                           comment_hidden=hidden))
