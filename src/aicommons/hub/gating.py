"""Gated repos: users ask for access; "auto" gating accepts at once, "manual" waits for a
maintainer. Metadata stays public; files need an accepted request (or being on the owner side)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aicommons.db.access_requests import AccessRequestStore
from aicommons.db.accounts import AccountStore
from aicommons.db.repos import RepoRow
from aicommons.errors import BadRequest, Conflict, Forbidden, NotFound
from aicommons.hub.access import Principal
from aicommons.hub.policy import Action, Policy
from aicommons.times import utcnow

STATUSES = ("pending", "accepted", "rejected")

# The card's ``extra_gated_fields`` types, as the Hub spells them, and what the form shows.
FIELD_KINDS = {"text": "text", "checkbox": "checkbox", "date_picker": "date", "country": "country", "select": "select"}
MAX_FIELDS = 30
MAX_ANSWER = 1000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class GateField:
    name: str
    kind: str  # text | checkbox | date | country | select
    options: tuple[tuple[str, str], ...] = ()  # (value, label), for select


@dataclass(frozen=True)
class GateForm:
    """What a gated repo's card asks of those who request access (the Hub's ``extra_gated_*``
    metadata): a heading, a prompt (markdown), the fields to fill and the button's text."""

    heading: str | None = None
    prompt: str | None = None
    button: str | None = None
    fields: tuple[GateField, ...] = ()

    def answers(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The request's ``fields`` from the form's ``field-<i>`` values; every field is required,
        as on the Hub (a checkbox must be ticked). Without fields: the optional free-text reason."""
        if not self.fields:
            return {"reason": (form.get("reason") or "").strip()[:MAX_ANSWER]}
        out: dict[str, Any] = {}
        for i, f in enumerate(self.fields):
            value = (form.get(f"field-{i}") or "").strip()
            if f.kind == "checkbox":
                if not value:
                    raise BadRequest(f"Tick '{f.name}' to ask for access")
                out[f.name] = True
                continue
            if not value:
                raise BadRequest(f"'{f.name}' is required to ask for access")
            if f.kind == "date" and not _DATE.fullmatch(value):
                raise BadRequest(f"'{f.name}' must be a date (YYYY-MM-DD)")
            if f.kind == "select" and value not in {v for v, _ in f.options}:
                raise BadRequest(f"'{f.name}': choose one of the options")
            out[f.name] = value[:MAX_ANSWER]
        return out


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _option(raw: Any) -> tuple[str, str] | None:
    if isinstance(raw, dict):
        value = raw.get("value", raw.get("label"))
        label = raw.get("label", value)
        return (str(value), str(label)) if value is not None else None
    return (str(raw), str(raw)) if raw is not None and str(raw).strip() else None


def gate_form(card_data: dict[str, Any] | None) -> GateForm:
    """The access form a card describes (``extra_gated_heading``, ``_prompt``, ``_button_content``,
    ``_fields``); a field of an unknown type is a text field, a select without options too."""
    data = card_data or {}
    fields = []
    raw = data.get("extra_gated_fields")
    for name, spec in list(raw.items())[:MAX_FIELDS] if isinstance(raw, dict) else []:
        options: tuple[tuple[str, str], ...] = ()
        if isinstance(spec, dict):
            listed = spec.get("options")
            options = tuple(o for o in map(_option, listed if isinstance(listed, list) else []) if o is not None)
            spec = spec.get("type")
        kind = FIELD_KINDS.get(spec if isinstance(spec, str) else "", "text")
        if str(name).strip():
            fields.append(GateField(str(name).strip()[:200], "text" if kind == "select" and not options else kind,
                                    options))
    return GateForm(_text(data.get("extra_gated_heading")), _text(data.get("extra_gated_prompt")),
                    _text(data.get("extra_gated_button_content")), tuple(fields))


class GatingService:
    def __init__(self, store: AccessRequestStore, accounts: AccountStore, policy: Policy):
        self.store = store
        self.accounts = accounts
        self.policy = policy

    def check(self, repo: RepoRow, principal: Principal) -> None:
        """The gating part of the policy (``Action.READ_CONTENT`` on a repo the caller can see)."""
        if not self.policy.content_allowed(principal, repo):
            raise self.policy.gated_refusal(principal, repo)

    def status(self, repo: RepoRow, principal: Principal) -> str | None:
        """The caller's own access request's status (``None``: never asked, or anonymous)."""
        return self.store.status(repo.id, principal.account.id) if principal.account is not None else None

    def ask(self, repo: RepoRow, principal: Principal, fields: dict[str, Any] | None) -> str:
        self.policy.check(principal, repo, Action.PARTICIPATE)
        if not repo.gated:
            raise BadRequest(f"{repo.full_id} is not gated")
        current = self.store.status(repo.id, principal.user.id)
        if current == "accepted":
            return "accepted"
        if current == "rejected":  # as on the Hub: asked once, declined; only the authors can change it
            raise Forbidden("Your request to access this repo has been rejected by the repo's authors")
        status = "accepted" if repo.gated == "auto" else "pending"
        self.store.upsert(repo.id, principal.user.id, status, utcnow(), fields=fields)
        return status

    def _require_maintainer(self, repo: RepoRow, principal: Principal) -> None:
        if self.policy.decide(principal, repo, Action.WRITE) is not None:
            raise Forbidden("Only maintainers of the repo manage access requests")

    def list(self, repo: RepoRow, principal: Principal, status: str) -> list[dict[str, Any]]:
        self._require_maintainer(repo, principal)
        if status not in STATUSES:
            raise BadRequest(f"Invalid status {status!r}")
        return self.store.list(repo.id, status)

    def handle(self, repo: RepoRow, principal: Principal, user_name: str | None, status: str,
               rejection_reason: str | None = None, request_id: str | None = None, grant: bool = False) -> None:
        """Accept, reject or reset a request (by user name or request id); ``grant`` gives access to a
        user who never asked. Changing a request to the status it already has is refused."""
        self._require_maintainer(repo, principal)
        if status not in STATUSES:
            raise BadRequest(f"Invalid status {status!r}")
        if request_id is not None:
            user_id = self.store.user_of_request(repo.id, int(request_id)) if str(request_id).isdigit() else None
            user = self.accounts.get_by_id(user_id) if user_id else None
            if user is None:
                raise NotFound(f"No access request {request_id} on {repo.full_id}")
        else:
            user = self.accounts.get(user_name) if isinstance(user_name, str) else None
            if user is None or user.kind != "user":
                raise NotFound(f"No user named {user_name!r}")
        current = self.store.status(repo.id, user.id)
        if current is None and not grant:
            raise NotFound(f"{user.name} has not asked for access to {repo.full_id}")
        if current == status:
            raise Conflict(f"The access request of {user.name} is already {status}")
        self.store.upsert(repo.id, user.id, status, utcnow(), rejection_reason=rejection_reason)
