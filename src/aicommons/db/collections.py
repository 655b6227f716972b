"""Queries on collections and their items. Positions are kept dense (0..n-1) by every change."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from aicommons.db.accounts import AlreadyExists
from aicommons.db.tables import accounts, collection_items, collections


@dataclass(frozen=True)
class CollectionRow:
    id: str
    owner_id: int
    owner_name: str
    owner_kind: str
    owner_fullname: str
    title: str
    description: str | None
    private: bool
    theme: str
    position: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ItemRow:
    id: str
    collection_id: str
    item_type: str
    repo_id: int | None
    paper_id: str | None
    target_id: str | None
    position: int
    note: str | None
    created_at: datetime


_COLUMNS = [*collections.c, accounts.c.name.label("owner_name"), accounts.c.kind.label("owner_kind"),
            accounts.c.fullname.label("owner_fullname")]


def _collection(row) -> CollectionRow:
    return CollectionRow(row.id, row.owner_id, row.owner_name, row.owner_kind, row.owner_fullname or "", row.title,
                         row.description, bool(row.private), row.theme, row.position, row.created_at,
                         row.updated_at)


def _item(row) -> ItemRow:
    return ItemRow(row.id, row.collection_id, row.item_type, row.repo_id, row.paper_id, row.target_id, row.position,
                   row.note, row.created_at)


def new_id() -> str:
    return secrets.token_hex(12)


def _select():
    return select(*_COLUMNS).join(accounts, accounts.c.id == collections.c.owner_id)


class CollectionStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- collections ------------------------------------------------------------------------------

    def create(self, owner_id: int, title: str, description: str | None, private: bool, theme: str,
               now: datetime) -> str:
        collection_id = new_id()
        with self.engine.begin() as conn:
            position = conn.execute(select(func.count()).where(collections.c.owner_id == owner_id)).scalar()
            conn.execute(insert(collections).values(
                id=collection_id, owner_id=owner_id, title=title, description=description, private=private,
                theme=theme, position=position, created_at=now, updated_at=now))
        return collection_id

    def get(self, collection_id: str) -> CollectionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(_select().where(collections.c.id == collection_id)).first()
        return _collection(row) if row else None

    def find_by_title(self, owner_id: int, title: str) -> CollectionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(_select().where(collections.c.owner_id == owner_id,
                                               func.lower(collections.c.title) == title.lower())).first()
        return _collection(row) if row else None

    def list(self, *, visible_owner_ids: tuple[int, ...] | None, owner_ids: list[int] | None = None,
             item_keys: list[str] | None = None, sort: str = "lastModified", offset: int = 0,
             limit: int = 100) -> tuple[list[CollectionRow], bool]:
        """Collections the caller may see (public, or owned by ``visible_owner_ids``; ``None``: all)."""
        clauses = []
        if visible_owner_ids is not None:
            clauses.append(or_(collections.c.private.is_(False), collections.c.owner_id.in_(visible_owner_ids)))
        if owner_ids is not None:
            clauses.append(collections.c.owner_id.in_(owner_ids))
        if item_keys is not None:
            clauses.append(collections.c.id.in_(select(collection_items.c.collection_id)
                                                .where(collection_items.c.item_key.in_(item_keys))))
        order = [collections.c.updated_at.desc(), collections.c.id]
        if owner_ids is not None and len(owner_ids) == 1 and sort == "position":
            order = [collections.c.position, collections.c.id]
        query = _select().where(and_(*clauses)).order_by(*order).offset(offset).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [_collection(r) for r in conn.execute(query)]
        return rows[:limit], len(rows) > limit

    def update(self, collection_id: str, now: datetime, position: int | None = None, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(collections).where(collections.c.id == collection_id).values(**values, updated_at=now))
            if position is not None:
                owner_id = conn.execute(select(collections.c.owner_id).where(collections.c.id == collection_id)).scalar()
                ids = [r.id for r in conn.execute(select(collections.c.id).where(collections.c.owner_id == owner_id)
                                                  .order_by(collections.c.position, collections.c.id))]
                _renumber(conn, collections, ids, collection_id, position)

    def delete(self, collection_id: str) -> bool:
        with self.engine.begin() as conn:
            owner_id = conn.execute(select(collections.c.owner_id).where(collections.c.id == collection_id)).scalar()
            if owner_id is None:
                return False
            conn.execute(delete(collection_items).where(or_(collection_items.c.collection_id == collection_id,
                                                            collection_items.c.target_id == collection_id)))
            conn.execute(delete(collections).where(collections.c.id == collection_id))
            ids = [r.id for r in conn.execute(select(collections.c.id).where(collections.c.owner_id == owner_id)
                                              .order_by(collections.c.position, collections.c.id))]
            _renumber(conn, collections, ids)
        return True

    # --- items ------------------------------------------------------------------------------------

    def items(self, collection_id: str) -> list[ItemRow]:
        query = (select(collection_items).where(collection_items.c.collection_id == collection_id)
                 .order_by(collection_items.c.position, collection_items.c.created_at, collection_items.c.id))
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(query)]

    def count_items(self, collection_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(collection_items.c.collection_id == collection_id)).scalar()

    def add_item(self, collection_id: str, item_type: str, item_key: str, now: datetime, *, repo_id: int | None = None,
                 paper_id: str | None = None, target_id: str | None = None, note: str | None = None) -> str:
        """Append an item; ``AlreadyExists`` when the collection holds it already."""
        item_id = new_id()
        try:
            with self.engine.begin() as conn:
                position = conn.execute(select(func.count()).where(
                    collection_items.c.collection_id == collection_id)).scalar()
                conn.execute(insert(collection_items).values(
                    id=item_id, collection_id=collection_id, item_type=item_type, item_key=item_key, repo_id=repo_id,
                    paper_id=paper_id, target_id=target_id, position=position, note=note, created_at=now))
                conn.execute(update(collections).where(collections.c.id == collection_id).values(updated_at=now))
        except IntegrityError:
            raise AlreadyExists(item_key) from None
        return item_id

    def get_item(self, collection_id: str, item_id: str) -> ItemRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(collection_items).where(collection_items.c.collection_id == collection_id,
                                                              collection_items.c.id == item_id)).first()
        return _item(row) if row else None

    def update_item(self, collection_id: str, item_id: str, now: datetime, *, position: int | None = None,
                    note: str | None = None, set_note: bool = False) -> None:
        with self.engine.begin() as conn:
            if set_note:
                conn.execute(update(collection_items).where(collection_items.c.id == item_id).values(note=note))
            if position is not None:
                conn.execute(update(collection_items).where(collection_items.c.id == item_id).values(position=-1))
                ids = [r.id for r in conn.execute(_item_order(collection_id))]
                _renumber(conn, collection_items, ids, item_id, position)
            conn.execute(update(collections).where(collections.c.id == collection_id).values(updated_at=now))

    def delete_item(self, collection_id: str, item_id: str, now: datetime) -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(delete(collection_items).where(collection_items.c.collection_id == collection_id,
                                                               collection_items.c.id == item_id)).rowcount
            if not gone:
                return False
            _renumber(conn, collection_items, [r.id for r in conn.execute(_item_order(collection_id))])
            conn.execute(update(collections).where(collections.c.id == collection_id).values(updated_at=now))
        return True


def _item_order(collection_id: str):
    return (select(collection_items.c.id).where(collection_items.c.collection_id == collection_id)
            .order_by(collection_items.c.position, collection_items.c.created_at, collection_items.c.id))


def _renumber(conn: Connection, table, ids: list[str], moved: str | None = None, position: int = 0) -> None:
    """Positions 0..n-1 in the order of ``ids``, with ``moved`` (if given) put at ``position``."""
    if moved is not None:
        ids = [i for i in ids if i != moved]
        ids.insert(max(0, min(position, len(ids))), moved)
    for index, row_id in enumerate(ids):
        conn.execute(update(table).where(table.c.id == row_id, table.c.position != index).values(position=index))
