"""Listings at scale (issue 14): the keyset cursors that the API's and the web's listing pages
share, and the listing_counts job, which repairs the precomputed facet counts and computes each
repo's trending score.

- Cursors are opaque to clients: base64 of ``[sort value, repo id, rows served so far]``; the
  value of the row a page ends (or, going back, starts) on. Anything else is a 400.
- Facet counts of public repos live in ``repo_facet_counts``, kept in the same transaction as every
  change of a repo row (db/repos.py); ``recount`` rebuilds them from the rows, so a count that
  drifted (a row changed behind the store's back, a bulk import) is right again after the next run.
- Trending: each repo's downloads per day and the likes it got over the last ``WINDOW_DAYS``, each
  weighted by ``0.5 ** (age / HALF_LIFE_DAYS)``; a like weighs ``LIKE_WEIGHT`` downloads. Stored in
  thousandths (``repos.trending_score``), so ``sort=trendingScore`` walks an index.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aicommons.db.repos import RepoRow, RepoStore, sort_attribute, sort_is_date
from aicommons.errors import BadRequest
from aicommons.times import utcnow

BAD_CURSOR = "Query parameter 'cursor' is not one this server gave: pass the one from the previous page's Link header"
MAX_DB_INT = 2**63 - 1
WINDOW_DAYS = 14
HALF_LIFE_DAYS = 3.0
LIKE_WEIGHT = 5.0


def read_cursor(raw: str | None, sort: str | None, name: str = "cursor") -> tuple[tuple[Any, ...] | None, int]:
    """The keyset position a cursor names: ((sort value, id), rows served before it), or
    (None, 0) without one."""
    if not raw:
        return None, 0
    try:
        if len(raw) > 512:
            raise ValueError
        value, repo_id, served = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        ints = [repo_id, served] if sort_is_date(sort) else [value, repo_id, served]
        if any(type(n) is not int or not 0 <= n <= MAX_DB_INT for n in ints):
            raise ValueError
        if sort_is_date(sort):
            value = datetime.fromisoformat(value)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(BAD_CURSOR.replace("'cursor'", repr(name))) from None
    return (value, repo_id), served


def make_cursor(row: RepoRow, sort: str | None, served: int = 0) -> str:
    value = getattr(row, sort_attribute(sort))
    if isinstance(value, datetime):
        value = value.isoformat()
    return base64.urlsafe_b64encode(json.dumps([value, row.id, served]).encode()).decode().rstrip("=")


@dataclass
class RecountReport:
    facet_rows: int
    trending_repos: int
    seconds: float


class ListingCounts:
    def __init__(self, store: RepoStore):
        self.store = store

    def trending_scores(self, now: datetime | None = None) -> dict[int, int]:
        now = now or utcnow()
        since = (now - timedelta(days=WINDOW_DAYS)).date()
        downloads, liked = self.store.recent_activity(since)
        scores: dict[int, float] = {}
        for repo_id, day, n in downloads:  # a day's downloads count from its middle
            age = (now - datetime(day.year, day.month, day.day)).total_seconds() / 86400 - 0.5
            scores[repo_id] = scores.get(repo_id, 0.0) + n * 0.5 ** (max(age, 0.0) / HALF_LIFE_DAYS)
        for repo_id, at in liked:
            age = (now - at).total_seconds() / 86400
            scores[repo_id] = scores.get(repo_id, 0.0) + LIKE_WEIGHT * 0.5 ** (max(age, 0.0) / HALF_LIFE_DAYS)
        return {rid: round(1000 * s) for rid, s in scores.items() if round(1000 * s) > 0}

    def recount(self) -> RecountReport:
        """The listing_counts job: rebuild the facet counts and recompute every trending score."""
        t0 = time.perf_counter()
        rows = self.store.rebuild_facets()
        scores = self.trending_scores()
        self.store.set_trending(scores)
        return RecountReport(rows, len(scores), round(time.perf_counter() - t0, 3))
