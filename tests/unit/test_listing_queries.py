"""Listing queries give the same repos whichever way they are driven: a broad tag checked row by row
(EXISTS, walking the sort index) or a rare one collected first (IN), a search by its trigram index or
by scanning ids; counts read every match from the indexes (db/repos.py, db/search.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aicommons.db import search
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.repos import RepoQuery, RepoStore
from aicommons.times import utcnow


@pytest.fixture
def store(sqlite_repos):
    repos, owner = sqlite_repos
    start = utcnow()
    for i in range(40):  # every repo is "common", every 4th "rare"; names mistral-0..19 and other-20..39
        name = f"mistral-{i}" if i < 20 else f"other-{i}"
        row = repos.create(type="model", namespace="alice", name=name, owner_id=owner.id, storage_key=f"k{i}",
                           private=i == 5, now=start + timedelta(seconds=i))
        tags = ["common"] + (["rare"] if i % 4 == 0 else [])
        repos.set_card(row.id, sha=f"{i:040x}", card_data={}, tags=tags, library_name=None, pipeline_tag=None, now=None)
    return repos


def names(store: RepoStore, **kw) -> list[str]:
    found, pages, after = [], 0, None
    while True:
        rows, more = store.list(RepoQuery(type="model", limit=7, after=after, **kw))
        found += [r.name for r in rows]
        pages += 1
        if not more:
            return found
        after = (rows[-1].created_at, rows[-1].id)


@pytest.mark.parametrize("broad_above", [2000, 3])  # every tag rare (IN), or "common" and "rare" broad (EXISTS)
def test_tag_filters_list_and_count_the_same_repos_either_way(store, monkeypatch, broad_above):
    monkeypatch.setattr(search, "BROAD_MATCHES", broad_above)
    public = [i for i in range(40) if i != 5]
    expected = [f"mistral-{i}" if i < 20 else f"other-{i}" for i in reversed(public)]
    assert names(store, filters=("common",)) == expected
    assert names(store, filters=("common", "rare")) == [n for n in expected if int(n.rsplit("-", 1)[1]) % 4 == 0]
    assert names(store, filters=("nothing",)) == []
    assert store.count_up_to(RepoQuery(type="model", filters=("common",)), 100) == 39
    assert store.count_up_to(RepoQuery(type="model", filters=("common",)), 10) == 11  # stops past the cap
    facets = store.facets(RepoQuery(type="model", filters=("rare",)))
    assert facets.total == 10 and facets.values["author"] == [("alice", 10)]


@pytest.mark.parametrize("broad_above", [2000, 3])  # the trigram index drives the page, or the sort index does
def test_a_search_lists_and_counts_the_same_repos_either_way(store, monkeypatch, broad_above):
    monkeypatch.setattr(search, "BROAD_MATCHES", broad_above)
    assert names(store, search="mistral") == [f"mistral-{i}" for i in reversed(range(20)) if i != 5]
    # A count reads every match from the trigram index, however broad the term.
    assert store.count_up_to(RepoQuery(type="model", search="mistral"), 100) == 19
    assert store.count_up_to(RepoQuery(type="model", search="MISTRAL", filters=("rare",)), 100) == 5
    assert store.facets(RepoQuery(type="model", search="istra")).total == 19


def test_migration_0032_tags_the_datasets_already_there_and_counts_the_new_facets(tmp_path):
    """A hub upgraded from 0031: its datasets get size_categories: and format: tags from the card
    and files stored with them, and the counts gain those facets and the models' languages."""
    from alembic import command
    from alembic.config import Config

    from aicommons.db.accounts import AccountStore
    from aicommons.db.engine import MIGRATIONS_DIR
    from aicommons.db.repos import RepoHead

    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0031")
    owner = AccountStore(engine).create("alice", "user")
    store = RepoStore(engine)
    now = utcnow()
    data = store.create(type="dataset", namespace="alice", name="d", owner_id=owner.id, storage_key="d",
                        private=False, now=now)
    files = [["README.md", 10, "a" * 40, None, None], ["train.csv", 5, "b" * 40, None, None],
             ["test.csv", 5, "c" * 40, None, None], ["extra/notes.json", 5, "d" * 40, None, None],
             ["dataset_infos.json", 5, "e" * 40, None, None], ["dataset_info.json", 5, "f" * 40, None, None]]
    store.set_card(data.id, sha="1" * 40, card_data={"size_categories": ["n<1K"]}, tags=["language:en"],
                   library_name=None, pipeline_tag=None, now=None, head=RepoHead("1" * 40, files, 25, None))
    model = store.create(type="model", namespace="alice", name="m", owner_id=owner.id, storage_key="m",
                         private=False, now=now)
    store.set_card(model.id, sha="2" * 40, card_data={"language": ["fr"]}, tags=["fr", "demo"],
                   library_name=None, pipeline_tag=None, now=None)
    upgrade_schema(engine)
    assert set(store.get_by_id(data.id).tags) == {"language:en", "size_categories:n<1K", "format:csv"}
    datasets = store.facet_table("dataset")
    assert datasets.values["size"] == [("size_categories:n<1K", 1)] and datasets.values["format"] == [("format:csv", 1)]
    assert store.facet_table("model").values["language"] == [("fr", 1)]  # "demo" is no language
    assert store.list(RepoQuery(type="dataset", filters=("format:csv",)))[0][0].id == data.id
    engine.dispose()
