"""Collections: ordered lists of repos, papers and other collections, with notes, owned by a user or
an organisation, public or private.

A slug is ``{owner}/{title-slug}-{24 hex id}``; collections are found by the id alone, so a slug from
before a rename still resolves. Who may see or change one is decided in ``hub/policy.py`` (the same
rules as a repo of the same owner); items pointing at repos or collections the caller may not see
are left out of every answer.
"""

from __future__ import annotations

import re

from aicommons.db.accounts import AccountStore, AlreadyExists
from aicommons.db.collections import CollectionRow, CollectionStore, ItemRow
from aicommons.db.repos import RepoStore
from aicommons.errors import BadRequest, Conflict, NotFound
from aicommons.hub.access import Principal
from aicommons.hub.names import REPO_TYPE_PLURAL, REPO_TYPE_PREFIX
from aicommons.hub.policy import may_see, may_see_owned, owned_refusal
from aicommons.hub.token_scopes import COLLECTIONS_READ
from aicommons.times import iso_z, utcnow

THEMES = ("default", "orange", "blue", "green", "purple", "pink", "indigo")
ITEM_TYPES = ("model", "dataset", "space", "paper", "collection")
MAX_TITLE = 60
MAX_DESCRIPTION = 150
MAX_NOTE = 500
MAX_ITEMS = 1000
PAPER_ID = re.compile(r"\d{4}\.\d{4,5}")
_SLUG_ID = re.compile(r"(?:.*-)?([0-9a-f]{24})")


def title_slug(title: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return words[:80].strip("-") or "collection"


def slug_of(collection: CollectionRow) -> str:
    return f"{collection.owner_name}/{title_slug(collection.title)}-{collection.id}"


class CollectionService:
    def __init__(self, store: CollectionStore, accounts: AccountStore, repos: RepoStore):
        self.store = store
        self.accounts = accounts
        self.repos = repos

    # --- finding ----------------------------------------------------------------------------------

    def find(self, principal: Principal, namespace: str, slug: str, write: bool = False) -> CollectionRow:
        """The collection named by ``namespace/slug`` (any title part), if the caller may see it (and
        change it, with ``write``); a hidden one answers exactly like a missing one."""
        match = _SLUG_ID.fullmatch(slug)
        collection = self.store.get(match.group(1)) if match else None
        if collection is None or collection.owner_name.lower() != namespace.lower() \
                or not may_see_owned(principal, collection.owner_id, collection.private):
            raise NotFound("Collection not found")
        if write:
            refusal = owned_refusal(principal, collection.owner_id, collection.private, "Collection")
            if refusal is not None:
                raise refusal
        return collection

    def reload(self, collection: CollectionRow) -> CollectionRow:
        """The collection as stored now (after a change made through this service)."""
        return self.store.get(collection.id) or collection

    def list(self, principal: Principal, owners: list[str], items: list[str], sort: str | None, offset: int,
             limit: int) -> tuple[list[CollectionRow], bool]:
        owner_ids = None
        if owners:
            owner_ids = [a.id for a in (self.accounts.get(name) for name in owners) if a is not None]
        item_keys = None
        if items:
            item_keys = [key for key in (self._item_key_of(principal, item) for item in items) if key]
        visible = None if principal.is_admin and principal.grants is None \
            else principal.visible_owner_ids(COLLECTIONS_READ)
        if owner_ids == [] or item_keys == []:
            return [], False
        return self.store.list(visible_owner_ids=visible, owner_ids=owner_ids, item_keys=item_keys,
                               sort=sort or "lastModified", offset=offset, limit=limit)

    def _item_key_of(self, principal: Principal, item: str) -> str | None:
        """``models/ns/name``, ``datasets/…``, ``spaces/…``, ``papers/<id>`` → the stored item key,
        or ``None`` when it names nothing the caller may see."""
        kind, _, rest = item.partition("/")
        if kind == "papers":
            return f"paper:{rest}" if PAPER_ID.fullmatch(rest) else None
        repo_type = {v: k for k, v in REPO_TYPE_PLURAL.items()}.get(kind)
        if repo_type is None:
            return None
        repo = self.repos.get(repo_type, rest) if rest.count("/") == 1 else None
        return f"repo:{repo.id}" if repo is not None and may_see(principal, repo) else None

    # --- changing ---------------------------------------------------------------------------------

    @staticmethod
    def require_creator(principal: Principal) -> None:
        """Creating needs a signed-in write credential (the namespace is checked in ``create``)."""
        own = principal.account.id if principal.account is not None else -1
        refusal = owned_refusal(principal, own, False, "Namespace")
        if refusal is not None:
            raise refusal

    def create(self, principal: Principal, namespace: str | None, title, description, private) -> CollectionRow:
        """A new collection; ``Conflict`` (with the existing slug) when the owner has one so named."""
        title, description = _check_title(title), _check_description(description)
        owner = self.accounts.get(namespace or principal.name or "")
        if owner is None:
            refusal = owned_refusal(principal, -1, False, "Namespace")
            raise refusal or NotFound(f"No user or organization named {namespace!r}")
        refusal = owned_refusal(principal, owner.id, False, "Namespace")
        if refusal is not None:
            raise refusal
        existing = self.store.find_by_title(owner.id, title)
        if existing is not None:
            raise CollectionExists(slug_of(existing))
        collection_id = self.store.create(owner.id, title, description, bool(private), "default", utcnow())
        return self.store.get(collection_id)

    def update(self, principal: Principal, collection: CollectionRow, changes: dict) -> CollectionRow:
        values: dict = {}
        if changes.get("title") is not None:
            values["title"] = _check_title(changes["title"])
            other = self.store.find_by_title(collection.owner_id, values["title"])
            if other is not None and other.id != collection.id:
                raise CollectionExists(slug_of(other))
        if changes.get("description") is not None:
            values["description"] = _check_description(changes["description"])
        if changes.get("private") is not None:
            if not isinstance(changes["private"], bool):
                raise BadRequest("'private' must be true or false")
            values["private"] = changes["private"]
        if changes.get("theme") is not None:
            if changes["theme"] not in THEMES:
                raise BadRequest(f"'theme' must be one of {', '.join(THEMES)}")
            values["theme"] = changes["theme"]
        position = changes.get("position")
        if position is not None:
            position = _check_position(position)
        self.store.update(collection.id, utcnow(), position=position, **values)
        return self.store.get(collection.id)

    def delete(self, collection: CollectionRow) -> None:
        if not self.store.delete(collection.id):
            raise NotFound("Collection not found")

    def add_item(self, principal: Principal, collection: CollectionRow, item, note) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("type"), str):
            raise BadRequest("'item' must be an object with the string fields 'id' and 'type'")
        item_type, item_id = item["type"], item["id"]
        if item_type not in ITEM_TYPES:
            raise BadRequest(f"Unsupported item type {item_type!r}: must be one of {', '.join(ITEM_TYPES)}")
        note = _check_note(note)
        if self.store.count_items(collection.id) >= MAX_ITEMS:
            raise BadRequest(f"A collection holds at most {MAX_ITEMS} items")
        kwargs: dict = {}
        if item_type == "paper":
            if not PAPER_ID.fullmatch(item_id):
                raise NotFound(f"Paper {item_id!r} not found: a paper is named by its arXiv id (2307.09288)")
            key, kwargs["paper_id"] = f"paper:{item_id}", item_id
        elif item_type == "collection":
            namespace, _, slug = item_id.partition("/")
            target = self.find(principal, namespace, slug)
            if target.id == collection.id:
                raise BadRequest("A collection cannot contain itself")
            key, kwargs["target_id"] = f"collection:{target.id}", target.id
        else:
            repo = self.repos.get(item_type, item_id) if item_id.count("/") == 1 else None
            if repo is None or not may_see(principal, repo):
                raise NotFound(f"The {item_type} {item_id} does not exist")
            key, kwargs["repo_id"] = f"repo:{repo.id}", repo.id
        try:
            self.store.add_item(collection.id, item_type, key, utcnow(), note=note, **kwargs)
        except AlreadyExists:
            raise Conflict(f"{item_id} is already in the collection") from None

    def update_item(self, collection: CollectionRow, item_id: str, changes: dict) -> None:
        if self.store.get_item(collection.id, item_id) is None:
            raise NotFound("Item not found in the collection")
        position = changes.get("position")
        if position is not None:
            position = _check_position(position)
        set_note = changes.get("note") is not None
        self.store.update_item(collection.id, item_id, utcnow(), position=position,
                               note=_check_note(changes.get("note")) if set_note else None, set_note=set_note)

    def delete_item(self, collection: CollectionRow, item_id: str) -> None:
        if not self.store.delete_item(collection.id, item_id, utcnow()):
            raise NotFound("Item not found in the collection")

    # --- the Hub's JSON ---------------------------------------------------------------------------

    def to_json(self, principal: Principal, collection: CollectionRow, *, listing: bool = False) -> dict:
        """The collection as huggingface_hub's ``Collection`` reads it. List entries carry at most
        4 items and no ``position`` (the client sets its own)."""
        writer = owned_refusal(principal, collection.owner_id, collection.private, "Collection") is None
        items = []
        for item in self.store.items(collection.id):
            entry = self._item_json(principal, item)
            if entry is None:
                continue
            if not writer:  # a reader never learns where hidden items sit
                entry["position"] = len(items)
            items.append(entry)
            if listing and len(items) == 4:
                break
        out = {
            "slug": slug_of(collection), "title": collection.title, "description": collection.description,
            "owner": {"_id": str(collection.owner_id), "name": collection.owner_name,
                      "fullname": collection.owner_fullname or collection.owner_name,
                      "type": "org" if collection.owner_kind == "org" else "user", "avatarUrl": ""},
            "items": items, "lastUpdated": iso_z(collection.updated_at), "private": collection.private,
            "theme": collection.theme, "upvotes": 0, "isUpvotedByUser": False, "shareUrl": None,
            "gating": False,
        }
        if not listing:
            out["position"] = collection.position
        return out

    def item_views(self, principal: Principal, collection: CollectionRow) -> list[dict]:
        """The visible items with what a web page shows of each."""
        entries = (self._item_json(principal, item) for item in self.store.items(collection.id))
        return [{"note": None, "slug": None, "title": None, **entry} for entry in entries if entry is not None]

    def _item_json(self, principal: Principal, item: ItemRow) -> dict | None:
        entry = {"_id": item.id, "type": item.item_type, "position": item.position}
        if item.note:
            entry["note"] = {"text": item.note, "html": _escape(item.note)}
        if item.repo_id is not None:
            repo = self.repos.get_by_id(item.repo_id)
            if repo is None or not may_see(principal, repo):
                return None
            entry.update(id=repo.full_id, author=repo.namespace, private=repo.private, gated=repo.gated or False,
                         likes=repo.likes, downloads=repo.downloads, lastModified=iso_z(repo.last_modified),
                         repoType=repo.type, url=f"/{REPO_TYPE_PREFIX[repo.type]}{repo.full_id}")
        elif item.target_id is not None:
            target = self.store.get(item.target_id)
            if target is None or not may_see_owned(principal, target.owner_id, target.private):
                return None
            entry.update(id=target.id, slug=slug_of(target), title=target.title, private=target.private,
                         url=f"/collections/{slug_of(target)}")
        else:
            entry.update(id=item.paper_id, title=item.paper_id, url=f"https://arxiv.org/abs/{item.paper_id}")
        return entry


class CollectionExists(Conflict):
    """The owner already has a collection with this title; the 409 body names its ``slug``."""

    def __init__(self, slug: str):
        super().__init__("A collection with this title already exists")
        self.slug = slug


def _check_title(title) -> str:
    if not isinstance(title, str) or not title.strip() or len(title.strip()) > MAX_TITLE:
        raise BadRequest(f"'title' must be 1 to {MAX_TITLE} characters long")
    return title.strip()


def _check_description(description) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"'description' must be a string of at most {MAX_DESCRIPTION} characters")
    return description


def _check_note(note) -> str | None:
    if note is None:
        return None
    if isinstance(note, dict):
        note = note.get("text")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise BadRequest(f"'note' must be a string of at most {MAX_NOTE} characters")
    return note or None


def _check_position(position) -> int:
    if not isinstance(position, int) or isinstance(position, bool) or not 0 <= position <= 100_000:
        raise BadRequest("'position' must be a non-negative integer")
    return position


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
