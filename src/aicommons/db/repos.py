"""Queries on repos, their tags, redirects and LFS object references."""

from __future__ import annotations

import builtins
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Row,
    Text,
    TextClause,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from aicommons.db import search
from aicommons.db.accounts import AlreadyExists
from aicommons.db.tables import (
    lfs_objects,
    likes,
    repo_downloads_daily,
    repo_facet_counts,
    repo_heads,
    repo_lfs_objects,
    repo_redirects,
    repo_tags,
    repos,
)
from aicommons.db.upsert import insert_ignore, new_id, upsert, upsert_add
from aicommons.times import utcnow

# Built once: every file download and repo page looks its repo up here, and constructing a select
# costs about twice what executing it does on SQLite (~100 µs against ~40, measured).
_REPO_BY_NAME = select(repos).where(repos.c.type == bindparam("type"), repos.c.full_id_lower == bindparam("name"))
_REPO_BY_ID = select(repos).where(repos.c.id == bindparam("id"))


@dataclass(frozen=True)
class RepoRow:
    id: int
    type: str
    namespace: str
    name: str
    full_id: str
    owner_id: int
    storage_key: str
    private: bool
    gated: str | None
    disabled: bool
    sha: str | None
    card_data: dict[str, Any] | None
    tags: list[str]
    library_name: str | None
    pipeline_tag: str | None
    downloads: int
    likes: int
    created_at: datetime
    last_modified: datetime
    created_by: int | None = None  # the user who created it
    trending_score: int = 0  # thousandths (hub/listing_counts.py)


def _repo(row: Row[Any]) -> RepoRow:
    return RepoRow(
        id=row.id, type=row.type, namespace=row.namespace, name=row.name, full_id=row.full_id,
        owner_id=row.owner_id, storage_key=row.storage_key, private=bool(row.private), gated=row.gated,
        disabled=bool(row.disabled), sha=row.sha, card_data=row.card_data, tags=list(row.tags or []),
        library_name=row.library_name, pipeline_tag=row.pipeline_tag, downloads=row.downloads or 0,
        likes=row.likes or 0, created_at=row.created_at, last_modified=row.last_modified,
        created_by=row.created_by, trending_score=row.trending_score or 0,
    )


@dataclass(frozen=True)
class RepoQuery:
    """What ``list_models``/``list_datasets`` ask for."""

    type: str
    search: str | None = None
    author: str | None = None
    filters: tuple[str, ...] = ()
    sort: str | None = None
    offset: int = 0  # the web pages' numbered pages; the API pages with ``after``
    limit: int = 1000
    after: tuple[Any, ...] | None = None  # keyset: (sort value, id) of the last row of the previous page
    before: tuple[Any, ...] | None = None  # keyset backwards: (sort value, id) of the first row of the next page
    visible_owner_ids: tuple[int, ...] = ()  # private repos of these owners are included
    visible_repo_ids: tuple[int, ...] = ()  # and these private repos (a fine-grained token's own repos)
    gated: bool | None = None


# How far a tag's repos are counted to choose how a query finds them (``_clauses``).
NARROW_TAGS = 5000

SORT_COLUMNS = {
    "downloads": repos.c.downloads, "likes": repos.c.likes, "lastModified": repos.c.last_modified,
    "createdAt": repos.c.created_at, "trendingScore": repos.c.trending_score,
}


@dataclass(frozen=True)
class Facets:
    """A listing's match count and, per facet, its most common values with their counts."""

    total: int
    values: dict[str, list[tuple[str, int]]]
    at_least: bool = False  # ``total`` is a lower bound (a broad narrowed listing, not counted to the end)
    site_wide: bool = False  # ``values`` are over every public repo of the type, not over the matches


# The facets the listing pages offer: columns of the repo row, and tag prefixes. A model's
# languages are its bare language tags (``en``, as the Hub tags models), the ones its card lists
# under ``language:``; a dataset's are ``language:en`` tags.
COLUMN_FACETS = {"task": "pipeline_tag", "library": "library_name", "author": "namespace"}
TAG_FACETS = {"license": "license:", "language": "language:", "category": "task_categories:",
              "size": "size_categories:", "format": "format:"}
MODEL_TAG_FACETS = {"license": "license:"}
FACETS = {"model": ["task", "library", "author", "license", "language"],
          "dataset": ["task", "library", "author", "license", "language", "category", "size", "format"],
          "space": ["task", "library", "author", "license"]}
FACET_COLUMNS = [repos.c.id, repos.c.type, repos.c.private, repos.c.disabled, repos.c.pipeline_tag,
                 repos.c.library_name, repos.c.namespace, repos.c.tags, repos.c.card_data]


def card_languages(card_data: Any) -> list[str]:
    value = card_data.get("language") if isinstance(card_data, dict) else None
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str) and v]


def facets_of(type: str, row: Any) -> list[tuple[str, str]]:
    """The (facet, value) pairs one repo row adds to ``repo_facet_counts``: none unless it is
    public and enabled (so private repos never show in counts)."""
    if row is None or row.private or row.disabled:
        return []
    out = [("total", "")]
    out += [(facet, str(getattr(row, column))[:256]) for facet, column in COLUMN_FACETS.items()
            if getattr(row, column)]
    tags = sorted({t for t in row.tags or [] if isinstance(t, str)})
    facets = TAG_FACETS if type == "dataset" else MODEL_TAG_FACETS
    out += [(facet, tag[:256]) for tag in tags for facet, prefix in facets.items() if tag.startswith(prefix)]
    if type == "model":
        out += [("language", tag[:256]) for tag in sorted(set(card_languages(row.card_data)) & set(tags))]
    return out


# A dataset's ``format:`` tag, as the Hub gives it: from its data files, the kind most of them are.
DATA_FORMATS = {"parquet": "parquet", "csv": "csv", "tsv": "csv", "json": "json", "jsonl": "json", "txt": "text",
                "arrow": "arrow", "tar": "webdataset", "png": "imagefolder", "jpg": "imagefolder",
                "jpeg": "imagefolder", "webp": "imagefolder", "gif": "imagefolder", "wav": "audiofolder",
                "mp3": "audiofolder", "flac": "audiofolder", "ogg": "audiofolder"}


# Files of a dataset repo that describe it rather than hold its rows (datasets' metadata files).
NOT_DATA = {"readme.md", "dataset_infos.json", "dataset_info.json", "dataset_dict.json", "state.json"}


def dataset_tags(card_data: Any, paths: Iterable[str]) -> list[str]:
    """The tags a dataset gets besides its card's own (hub/cards.py): ``size_categories:<v>`` from
    its card and ``format:<kind>`` from its files."""
    sizes = card_data.get("size_categories") if isinstance(card_data, dict) else None
    out = [f"size_categories:{v}" for v in (sizes if isinstance(sizes, list) else [sizes]) if isinstance(v, str) and v]
    kinds: Counter[str] = Counter()
    for path in paths:
        name = path.rsplit("/", 1)[-1].lower()
        if name.startswith(".") or name in NOT_DATA:
            continue
        parts = name.split(".")
        ext = parts[-2] if len(parts) > 2 and parts[-1] in ("gz", "bz2", "xz", "zst") else parts[-1]
        if ext in DATA_FORMATS:
            kinds[DATA_FORMATS[ext]] += 1
    if kinds:
        out.append("format:" + min(kinds, key=lambda k: (-kinds[k], k)))
    return out


def rebuild_facet_counts(conn: Connection) -> int:
    """Recount ``repo_facet_counts`` from the repo rows, in the caller's transaction (the repair
    path: the listing_counts job, ``aicommons listings recount``, migration 0031). Returns the
    number of rows written."""
    counts: dict[tuple[str, str, str], int] = {}
    for row in conn.execute(select(*FACET_COLUMNS).where(repos.c.private.is_(False), repos.c.disabled.is_(False))):
        for facet, value in facets_of(row.type, row):
            key = (row.type, facet, value)
            counts[key] = counts.get(key, 0) + 1
    conn.execute(delete(repo_facet_counts))
    rows = [{"type": t, "facet": f, "value": v, "n": n} for (t, f, v), n in counts.items()]
    for start in range(0, len(rows), 5000):
        conn.execute(insert(repo_facet_counts), rows[start:start + 5000])
    return len(rows)


@dataclass(frozen=True)
class RepoHead:
    """The stored description of a repo's default-branch head (``repo_heads``)."""

    sha: str
    siblings: list[list[Any]]  # [path, size, blob id, lfs sha256 | None, pointer size | None]
    used_storage: int
    git_bytes: int | None


def sort_column(sort: str | None) -> Column[Any]:
    return SORT_COLUMNS.get(sort or "", repos.c.created_at)


def sort_attribute(sort: str | None) -> str:
    """The ``RepoRow`` attribute a listing sorted by ``sort`` is ordered on (keyset cursors)."""
    return str(sort_column(sort).name)


def sort_is_date(sort: str | None) -> bool:
    return sort_attribute(sort) in ("created_at", "last_modified")


FACET_FIELDS = frozenset({"private", "disabled", "namespace", "tags", "library_name", "pipeline_tag", "type"})


class RepoStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- the facet counts of public repos, kept with every change of a repo row ------------------

    @staticmethod
    def _facet_row(conn: Connection, repo_id: int, lock: bool = False) -> Row[Any] | None:
        query = select(*FACET_COLUMNS).where(repos.c.id == repo_id)
        # PostgreSQL: a concurrent change of the same repo waits, so each sees the other's result.
        return conn.execute(query.with_for_update() if lock else query).first()

    @contextmanager
    def _keep_facets(self, conn: Connection, repo_id: int | None) -> Iterator[list[int]]:
        """Around a change of one repo row in ``conn``'s transaction: take its old contribution to
        ``repo_facet_counts`` away and add its new one. A block that creates the row appends its id."""
        ids = [] if repo_id is None else [repo_id]
        before = self._facet_row(conn, repo_id, lock=True) if repo_id is not None else None
        yield ids
        after = self._facet_row(conn, ids[0]) if ids else None
        old = set(facets_of(before.type, before)) if before is not None else set()
        new = set(facets_of(after.type, after)) if after is not None else set()
        row = after if after is not None else before
        if row is not None and old != new:
            # One statement, in key order: two transactions touching the same counts lock them
            # in the same order (PostgreSQL), so they wait for each other instead of deadlocking.
            deltas = sorted([(f, v, -1) for f, v in old - new] + [(f, v, 1) for f, v in new - old])
            upsert_add(conn, repo_facet_counts, [{"type": row.type, "facet": f, "value": v, "n": n}
                                                 for f, v, n in deltas], ["type", "facet", "value"], "n")

    def facet_table(self, type: str, per_facet: int = 10) -> Facets:
        """The listing facets of every public repo of ``type``, from ``repo_facet_counts``."""
        names = FACETS.get(type, FACETS["space"])
        c = repo_facet_counts.c
        with self.engine.connect() as conn:
            total = conn.execute(select(c.n).where(c.type == type, c.facet == "total", c.value == "")).scalar()
            values = {}
            for name in names:
                rows = conn.execute(select(c.value, c.n).where(c.type == type, c.facet == name, c.n > 0)
                                    .order_by(c.n.desc(), c.value).limit(per_facet))
                values[name] = [(str(r.value), int(r.n)) for r in rows]
        return Facets(int(total or 0), values, site_wide=True)

    def rebuild_facets(self) -> int:
        with self.engine.begin() as conn:
            return rebuild_facet_counts(conn)

    def create(self, *, type: str, namespace: str, name: str, owner_id: int, storage_key: str,
               private: bool, now: datetime, created_by: int | None = None) -> RepoRow:
        full_id = f"{namespace}/{name}"
        try:
            with self.engine.begin() as conn, self._keep_facets(conn, None) as created_ids:
                res = conn.execute(insert(repos).values(
                    type=type, namespace=namespace, name=name, full_id=full_id,
                    full_id_lower=full_id.lower(), owner_id=owner_id, storage_key=storage_key,
                    private=private, disabled=False, downloads=0, likes=0, tags=[],
                    created_at=now, last_modified=now, created_by=created_by))
                repo_id = new_id(res)
                created_ids.append(repo_id)
                # A new repo takes the name back from any redirect that pointed elsewhere.
                conn.execute(delete(repo_redirects).where(repo_redirects.c.type == type,
                                                          repo_redirects.c.old_id_lower == full_id.lower()))
        except IntegrityError as exc:
            raise AlreadyExists(full_id) from exc
        created = self.get_by_id(repo_id)
        if created is None:
            raise RuntimeError("a repo vanished as it was created")
        return created

    def get(self, type: str, full_id: str) -> RepoRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(_REPO_BY_NAME, {"type": type, "name": full_id.lower()}).first()
        return _repo(row) if row else None

    def get_by_id(self, repo_id: int) -> RepoRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(_REPO_BY_ID, {"id": repo_id}).first()
        return _repo(row) if row else None

    def get_by_storage_key(self, storage_key: str) -> RepoRow | None:
        """The repo whose git folder is ``storage_key``: random and never reused, unlike ``id``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(repos).where(repos.c.storage_key == storage_key)).first()
        return _repo(row) if row else None

    def redirect_target(self, type: str, full_id: str) -> RepoRow | None:
        with self.engine.connect() as conn:
            repo_id = conn.execute(select(repo_redirects.c.repo_id).where(
                repo_redirects.c.type == type, repo_redirects.c.old_id_lower == full_id.lower())).scalar()
        return self.get_by_id(repo_id) if repo_id else None

    def ids_of_type(self, type: str) -> list[int]:
        """The id of every repo of one type, private ones included, oldest first (maintenance)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(repos.c.id).where(repos.c.type == type).order_by(repos.c.id)).scalars())

    def owned_by(self, owner_id: int) -> list[RepoRow]:
        """Every repo of one owner, private ones included (account export and deletion)."""
        query = select(repos).where(repos.c.owner_id == owner_id).order_by(repos.c.type, repos.c.full_id_lower)
        with self.engine.connect() as conn:
            return [_repo(r) for r in conn.execute(query)]

    def delete(self, repo_id: int) -> None:
        with self.engine.begin() as conn, self._keep_facets(conn, repo_id):
            conn.execute(delete(repos).where(repos.c.id == repo_id))

    def update(self, repo_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            if FACET_FIELDS & set(values):
                with self._keep_facets(conn, repo_id):
                    conn.execute(update(repos).where(repos.c.id == repo_id).values(**values))
            else:
                conn.execute(update(repos).where(repos.c.id == repo_id).values(**values))

    def rename(self, repo: RepoRow, namespace: str, name: str, owner_id: int) -> None:
        full_id = f"{namespace}/{name}"
        try:
            with self.engine.begin() as conn, self._keep_facets(conn, repo.id):
                conn.execute(update(repos).where(repos.c.id == repo.id).values(
                    namespace=namespace, name=name, full_id=full_id, full_id_lower=full_id.lower(),
                    owner_id=owner_id))
                conn.execute(delete(repo_redirects).where(repo_redirects.c.type == repo.type,
                                                          repo_redirects.c.old_id_lower == full_id.lower()))
                conn.execute(insert(repo_redirects).values(type=repo.type, old_id_lower=repo.full_id.lower(),
                                                           repo_id=repo.id))
        except IntegrityError as exc:
            raise AlreadyExists(full_id) from exc

    def set_card(self, repo_id: int, *, sha: str, card_data: dict[str, Any] | None, tags: list[str],
                 library_name: str | None, pipeline_tag: str | None, now: datetime | None,
                 head: RepoHead | None = None, unmoved: bool = False) -> bool:
        """The default branch's head ``sha`` with its card (and ``head``, its files), in one
        transaction; ``now=None`` leaves ``last_modified`` alone (a backfill, not a change).
        ``unmoved``: only if the row's head is still ``sha`` (a refresh never undoes a newer push);
        False when it was not."""
        values: dict[str, Any] = dict(sha=sha, card_data=card_data, tags=tags, library_name=library_name, pipeline_tag=pipeline_tag)
        if now is not None:
            values["last_modified"] = now
        with self.engine.begin() as conn, self._keep_facets(conn, repo_id):
            where = [repos.c.id == repo_id] + ([repos.c.sha == sha] if unmoved else [])
            if conn.execute(update(repos).where(*where).values(**values)).rowcount == 0 and unmoved:
                return False
            if head is not None:
                self._put_head(conn, repo_id, head)
            conn.execute(delete(repo_tags).where(repo_tags.c.repo_id == repo_id))
            unique = sorted(set(tags))
            if unique:
                # Two replicas refreshing one repo's card at once both delete, then both insert.
                insert_ignore(conn, repo_tags, [{"repo_id": repo_id, "tag": t} for t in unique])
        return True

    @staticmethod
    def _put_head(conn: Connection, repo_id: int, head: RepoHead) -> None:
        upsert(conn, repo_heads, {"repo_id": repo_id, "sha": head.sha, "siblings": head.siblings,
                                  "used_storage": head.used_storage, "git_bytes": head.git_bytes},
               keys=["repo_id"], update=["sha", "siblings", "used_storage", "git_bytes"])

    def put_head(self, repo_id: int, head: RepoHead) -> None:
        """Store ``head`` if it still describes the repo's head (a backfill racing a commit loses)."""
        with self.engine.begin() as conn:
            current = conn.execute(select(repos.c.sha).where(repos.c.id == repo_id)).scalar()
            if current == head.sha:
                self._put_head(conn, repo_id, head)

    def heads(self, repo_ids: list[int]) -> dict[int, RepoHead]:
        """The stored heads of these repos, in one query (callers check ``sha`` before trusting one)."""
        if not repo_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(repo_heads).where(repo_heads.c.repo_id.in_(repo_ids)))
            return {r.repo_id: RepoHead(r.sha, r.siblings, r.used_storage, r.git_bytes) for r in rows}

    def count_download(self, repo_id: int) -> None:
        self.add_downloads({repo_id: 1})

    def add_downloads(self, counts: dict[int, int], day: date | None = None) -> None:
        """Add batched download counts (hub/downloads.py): to each repo's total in one statement, and
        to its count of ``day`` (UTC; default today) for the "downloads last month" graph."""
        if not counts:
            return
        day = day or utcnow().date()
        stmt = (update(repos).where(repos.c.id == bindparam("rid"))
                .values(downloads=repos.c.downloads + bindparam("n")))
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"rid": rid, "n": n} for rid, n in sorted(counts.items())])
            # A repo deleted since its download was counted has no row to add to any more.
            alive = set(conn.execute(select(repos.c.id).where(repos.c.id.in_(list(counts)))).scalars())
            upsert_add(conn, repo_downloads_daily,
                       [{"repo_id": rid, "day": day, "downloads": n} for rid, n in sorted(counts.items()) if rid in alive],
                       ["repo_id", "day"], "downloads")

    def downloads_by_day(self, repo_id: int, since: date) -> dict[date, int]:
        """The repo's downloads per UTC day from ``since`` on (days without downloads are absent)."""
        query = (select(repo_downloads_daily.c.day, repo_downloads_daily.c.downloads)
                 .where(repo_downloads_daily.c.repo_id == repo_id, repo_downloads_daily.c.day >= since))
        with self.engine.connect() as conn:
            return {day: int(n) for day, n in conn.execute(query)}

    def liked_by(self, user_id: int) -> list[RepoRow]:
        """The repos ``user_id`` likes, newest like first, in one query (the caller filters what the
        viewer may see through the policy)."""
        query = (select(repos).join(likes, likes.c.repo_id == repos.c.id).where(likes.c.user_id == user_id)
                 .order_by(likes.c.created_at.desc(), repos.c.id.desc()))
        with self.engine.connect() as conn:
            return [_repo(r) for r in conn.execute(query)]

    def storage_rows(self, owner_id: int, limit: int) -> list[tuple[RepoRow, int | None, int]]:
        """The repos of one owner with the git bytes stored with their head (None: not stored for
        the current head) and the bytes of the LFS objects they reference, in one query."""
        lfs = (select(func.coalesce(func.sum(repo_lfs_objects.c.size), 0))
               .where(repo_lfs_objects.c.repo_id == repos.c.id).scalar_subquery())
        query = (select(repos, repo_heads.c.git_bytes.label("head_git_bytes"), repo_heads.c.sha.label("head_sha"),
                        lfs.label("lfs"))
                 .outerjoin(repo_heads, repo_heads.c.repo_id == repos.c.id)
                 .where(repos.c.owner_id == owner_id)
                 .order_by(repos.c.type, repos.c.created_at.desc(), repos.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [(_repo(r), r.head_git_bytes if r.head_sha == r.sha else None, int(r.lfs or 0))
                    for r in conn.execute(query)]

    def list(self, q: RepoQuery) -> tuple[list[RepoRow], bool]:
        """Matching repos, newest-first unless sorted, and whether more exist after this page."""
        with self.engine.connect() as conn:
            clauses = self._clauses(conn, q)
            order = sort_column(q.sort)
            if q.after is not None:  # keyset: rows strictly after the previous page's last one
                clauses.append(tuple_(order, repos.c.id) < tuple_(*q.after))
            if q.before is not None:  # keyset backwards: the page that ends just before this row
                clauses.append(tuple_(order, repos.c.id) > tuple_(*q.before))
                query = (select(repos).where(and_(*clauses)).order_by(order.asc(), repos.c.id.asc())
                         .limit(q.limit + 1))
                rows = [_repo(r) for r in conn.execute(query)]
                return rows[: q.limit][::-1], len(rows) > q.limit  # (more: rows before this page)
            query = (select(repos).where(and_(*clauses)).order_by(order.desc(), repos.c.id.desc())
                     .offset(q.offset).limit(q.limit + 1))
            rows = [_repo(r) for r in conn.execute(query)]
        return rows[: q.limit], len(rows) > q.limit

    def card_mentions(self, q: RepoQuery, key: str, name: str) -> builtins.list[RepoRow]:
        """The repos matching ``q`` whose card lists ``name`` under ``key`` (a space's ``models:``),
        newest first, at most ``q.limit``: the card's JSON text narrows them, its parsed value decides."""
        pattern = "%" + json.dumps(name).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.engine.connect() as conn:
            clauses = [*self._clauses(conn, q), cast(repos.c.card_data, Text).like(pattern, escape="\\")]
            query = select(repos).where(and_(*clauses)).order_by(repos.c.created_at.desc(), repos.c.id.desc())
            out = []
            for row in conn.execute(query):
                value = (row.card_data or {}).get(key) if isinstance(row.card_data, dict) else None
                if name in (value if isinstance(value, list) else [value]):
                    out.append(_repo(row))
                    if len(out) >= q.limit:
                        break
            return out

    def count_up_to(self, q: RepoQuery, cap: int) -> int:
        """How many repos match ``q`` (paging aside), counted no further than ``cap`` + 1."""
        with self.engine.connect() as conn:
            matching = select(repos.c.id).where(and_(*self._clauses(conn, q, counting=True))).limit(cap + 1).subquery()
            return int(conn.execute(select(func.count()).select_from(matching)).scalar() or 0)

    def set_trending(self, scores: dict[int, int]) -> int:
        """Store each repo's trending score (every repo absent from ``scores`` gets 0), in one
        transaction; returns how many rows changed."""
        changed = 0
        with self.engine.begin() as conn:
            stale = set(conn.execute(select(repos.c.id).where(repos.c.trending_score != 0)).scalars()) - set(scores)
            for start in range(0, len(stale), 5000):
                chunk = sorted(stale)[start:start + 5000]
                changed += conn.execute(update(repos).where(repos.c.id.in_(chunk)).values(trending_score=0)).rowcount
            stmt = update(repos).where(repos.c.id == bindparam("rid")).values(trending_score=bindparam("score"))
            if scores:
                conn.execute(stmt, [{"rid": rid, "score": n} for rid, n in sorted(scores.items())])
                changed += len(scores)
        return changed

    def recent_activity(self, since: date) -> tuple[builtins.list[tuple[int, date, int]], builtins.list[tuple[int, datetime]]]:
        """Downloads per repo and UTC day from ``since`` on, and the likes given since then."""
        with self.engine.connect() as conn:
            downloads = [(int(r.repo_id), r.day, int(r.downloads)) for r in conn.execute(
                select(repo_downloads_daily.c.repo_id, repo_downloads_daily.c.day, repo_downloads_daily.c.downloads)
                .where(repo_downloads_daily.c.day >= since))]
            liked = [(int(r.repo_id), r.created_at) for r in conn.execute(
                select(likes.c.repo_id, likes.c.created_at).where(
                    likes.c.created_at >= datetime(since.year, since.month, since.day)))]
        return downloads, liked

    def facets(self, q: RepoQuery, per_facet: int = 10) -> Facets:
        """How many repos match ``q`` (its paging ignored), and the most common values among them of
        each facet the listing pages offer (``FACETS``), with their counts."""
        column_facets = {"task": repos.c.pipeline_tag, "library": repos.c.library_name, "author": repos.c.namespace}
        tag_facets = TAG_FACETS if q.type == "dataset" else MODEL_TAG_FACETS
        # Read once and counted here: one pass over the matches' columns, and one over their tags of
        # each prefix, instead of a grouped query per facet that finds the matches again each time
        # (4,951 matches: 27 instead of 67 ms).
        with self.engine.connect() as conn:
            where = and_(*self._clauses(conn, q, counting=True))
            rows = conn.execute(select(*column_facets.values()).where(where)).all()
            ids = select(repos.c.id).where(where)
            tags = {name: conn.execute(select(repo_tags.c.tag).where(
                        repo_tags.c.repo_id.in_(ids), repo_tags.c.tag >= prefix,  # a range of ix_repo_tags_tag
                        repo_tags.c.tag < prefix[:-1] + chr(ord(prefix[-1]) + 1))).scalars().all()
                    for name, prefix in tag_facets.items()}
            if q.type == "model":  # the matches' tags that are some public model's card language
                known = select(repo_facet_counts.c.value).where(repo_facet_counts.c.type == "model",
                                                                repo_facet_counts.c.facet == "language")
                tags["language"] = conn.execute(select(repo_tags.c.tag).where(
                    repo_tags.c.repo_id.in_(ids), repo_tags.c.tag.in_(known))).scalars().all()

        def top(found: Iterable[object]) -> list[tuple[str, int]]:
            counted = Counter(str(v) for v in found if v is not None)
            return sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:per_facet]

        values = {name: top(r[i] for r in rows) for i, name in enumerate(column_facets)}
        values |= {name: top(found) for name, found in tags.items()}
        return Facets(len(rows), values)

    @staticmethod
    def _clauses(conn: Connection, q: RepoQuery, counting: bool = False) -> builtins.list[ColumnElement[bool] | TextClause]:
        """What a listing query matches (paging aside): type, visibility, search, author, gating, tags.

        ``counting``: for a query that reads every match (counts, facets) rather than a page in
        sort order: the matches are found from the search's trigram index and the tags' index
        however many there are. A page of a broad match set instead walks its sort index and keeps
        the rows that match, which stops after a page (``search.id_contains``; a broad tag is
        checked row by row with EXISTS instead of collecting its ~100,000 repo ids first; a rare
        one is collected, and drives a count)."""
        narrow = False
        if q.search:
            matches, narrow = search.id_contains(conn, q.search, drive=counting)
        # SQLite: each tag collected (IN) or checked row by row (EXISTS). A page collects only the
        # rare tags. A count collects only the rarest, and is driven from it (its few ids), not by
        # walking every repo of the type (llama's 4,951 of 100,000: 8 instead of 60 ms).
        collect = set(q.filters)
        if q.filters and conn.dialect.name == "sqlite":
            found = {tag: search.tag_matches(conn, tag, NARROW_TAGS) for tag in q.filters}
            rarest = min(found, key=lambda t: (found[t], t))
            collect = ({rarest} if found[rarest] <= NARROW_TAGS else set()) if counting else \
                {t for t, n in found.items() if n <= search.BROAD_MATCHES}
        clauses = [search.type_filter(conn, q.type, narrow or (counting and bool(collect))), repos.c.disabled.is_(False)]
        visible: ColumnElement[bool] = repos.c.private.is_(False)
        if q.visible_owner_ids:
            visible = visible | repos.c.owner_id.in_(q.visible_owner_ids)
        if q.visible_repo_ids:
            visible = visible | repos.c.id.in_(q.visible_repo_ids)
        clauses.append(visible)
        if q.search:
            clauses.append(matches)
        if q.author:  # served by ix_repos_type_author, an index on this very expression
            clauses.append(func.lower(repos.c.namespace) == q.author.lower())
        if q.gated is not None:
            clauses.append(repos.c.gated.is_not(None) if q.gated else repos.c.gated.is_(None))
        for tag in q.filters:
            if tag not in collect:
                clauses.append(exists().where(repo_tags.c.repo_id == repos.c.id, repo_tags.c.tag == tag))
            else:
                clauses.append(repos.c.id.in_(select(repo_tags.c.repo_id).where(repo_tags.c.tag == tag)))
        return clauses

    # --- LFS objects ----------------------------------------------------------------------------

    def lfs_object_size(self, oid: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(lfs_objects.c.size).where(lfs_objects.c.oid == oid)).scalar()

    def repo_lfs_size(self, repo_id: int, oid: str) -> int | None:
        """Size of ``oid`` if this repo may read it (uploaded through it or committed to it)."""
        with self.engine.connect() as conn:
            return conn.execute(select(repo_lfs_objects.c.size).where(
                repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.oid == oid)).scalar()

    def add_lfs_object(self, repo_id: int, oid: str, size: int, now: datetime) -> None:
        """Record a stored object and grant this repo access to it (idempotent)."""
        with self.engine.begin() as conn:
            self.add_lfs_objects_in(conn, repo_id, [(oid, size)], now)

    @classmethod
    def add_lfs_objects_in(cls, conn: Connection, repo_id: int, objects: Iterable[tuple[str, int]],
                           now: datetime) -> None:
        """``add_lfs_object`` of each (oid, size), in the caller's transaction (a Xet shard's files
        are recorded in one commit, ``XetFileStore.record_all``)."""
        for oid, size in objects:
            insert_ignore(conn, lfs_objects, {"oid": oid, "size": size, "created_at": now})
            cls._grant(conn, repo_id, oid, size, now)

    @staticmethod
    def _grant(conn: Connection, repo_id: int, oid: str, size: int, now: datetime, filename: str | None = None,
               ref: str | None = None) -> None:
        # Insert-or-ignore, then fill the name in: two replicas granting the same object at once
        # (an upload retried elsewhere) must not collide on the key.
        inserted = insert_ignore(conn, repo_lfs_objects, {"repo_id": repo_id, "oid": oid, "size": size,
                                                          "filename": filename, "ref": ref, "pushed_at": now})
        if not inserted and filename is not None:
            conn.execute(update(repo_lfs_objects).where(
                repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.oid == oid,
                repo_lfs_objects.c.filename.is_(None)).values(filename=filename, ref=ref))

    def lfs_committed(self, repo_id: int, oid: str) -> bool:
        """Whether a commit of this repo has named ``oid`` (not only an upload that none used yet)."""
        with self.engine.connect() as conn:
            return conn.execute(select(repo_lfs_objects.c.oid).where(
                repo_lfs_objects.c.repo_id == repo_id, repo_lfs_objects.c.oid == oid,
                repo_lfs_objects.c.filename.is_not(None))).first() is not None

    def mark_lfs_committed(self, repo_id: int, files: builtins.list[tuple[str, str, int]], ref: str, now: datetime) -> None:
        """Note the path under which each (oid, path, size) was first committed."""
        with self.engine.begin() as conn:
            for oid, path, size in files:
                self._grant(conn, repo_id, oid, size, now, filename=path, ref=ref)

    def list_lfs(self, repo_id: int) -> builtins.list[dict[str, Any]]:
        query = (select(repo_lfs_objects).where(repo_lfs_objects.c.repo_id == repo_id,
                                                repo_lfs_objects.c.filename.is_not(None))
                 .order_by(repo_lfs_objects.c.pushed_at.desc()))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def lfs_bytes(self, repo_id: int) -> int:
        with self.engine.connect() as conn:
            # int(): PostgreSQL's sum(bigint) is numeric, which arrives as a Decimal.
            return int(conn.execute(select(func.coalesce(func.sum(repo_lfs_objects.c.size), 0)).where(
                repo_lfs_objects.c.repo_id == repo_id)).scalar_one())

    def forget_lfs(self, repo_id: int, oids: builtins.list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(repo_lfs_objects).where(repo_lfs_objects.c.repo_id == repo_id,
                                                        repo_lfs_objects.c.oid.in_(oids)))
