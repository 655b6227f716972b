"""One contract for the metadata stores on every database: SQLite (a temp file) and PostgreSQL 15."""

from __future__ import annotations

import threading
import warnings
from datetime import datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from aicommons.db.accounts import AccountStore, AlreadyExists
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.repos import RepoQuery, RepoStore
from aicommons.db.tables import metadata

NOW = datetime(2026, 1, 2, 3, 4, 5)
OID = "a" * 64


@pytest.fixture
def engine(db_engine):
    return db_engine


@pytest.fixture
def accounts(engine):
    return AccountStore(engine)


@pytest.fixture
def repos(engine):
    return RepoStore(engine)


@pytest.fixture
def alice(accounts):
    return accounts.create("alice", "user", fullname="Alice", now=NOW)


def make_repo(repos, owner, name, type="model", private=False, now=NOW):
    return repos.create(type=type, namespace=owner.name, name=name, owner_id=owner.id,
                        storage_key=f"key-{type}-{owner.name}-{name}", private=private, now=now)


def run_concurrently(fn, n: int = 8) -> list[Exception]:
    errors: list[Exception] = []
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait()
            fn(i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return errors


# --- schema -------------------------------------------------------------------------------------

def test_migrations_build_exactly_the_declared_schema(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    insp = inspect(engine)
    for table in metadata.sorted_tables:
        assert insp.has_table(table.name), table.name
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLite cannot reflect indexes on expressions (``lower(namespace)``): checked below instead.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        author_index = conn.execute(text(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_repos_type_author'" if engine.dialect.name == "sqlite"
            else "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_repos_type_author'")).scalar()
    assert author_index is not None and "lower(" in author_index
    # The search index is raw per-dialect DDL (FTS5 tables / a pg_trgm index), not in tables.py.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("repo_search"))
            and not (d[0] == "remove_index" and d[1].name == "ix_repos_full_id_trgm")]
    assert diff == []


def test_upgrade_is_idempotent_and_safe_from_several_replicas_at_once(engine):
    def replica_upgrades(_i: int) -> None:
        replica = make_engine(engine.url.render_as_string(False))
        try:
            upgrade_schema(replica)
        finally:
            replica.dispose()  # its pooled connections are closed, not left to the GC

    assert run_concurrently(replica_upgrades, 4) == []
    upgrade_schema(engine)


# --- accounts -----------------------------------------------------------------------------------

def test_account_names_are_unique_case_insensitively(accounts, alice):
    assert accounts.get("ALICE").id == alice.id
    assert accounts.get("alice").created_at == NOW
    with pytest.raises(AlreadyExists):
        accounts.create("Alice", "user")


def test_memberships_upsert(accounts, alice):
    org = accounts.create("acme", "org", now=NOW)
    accounts.add_member(org.id, alice.id, "read")
    accounts.add_member(org.id, alice.id, "admin")
    assert accounts.member_role(org.id, alice.id) == "admin"
    assert [(o.name, role) for o, role in accounts.orgs_of(alice.id)] == [("acme", "admin")]
    assert run_concurrently(lambda i: accounts.add_member(org.id, alice.id, "write")) == []
    assert accounts.member_role(org.id, alice.id) == "write"


def test_tokens(accounts, alice):
    accounts.add_token(alice.id, "t1", "write", "h" * 64)
    row, account = accounts.token_by_hash("h" * 64)
    assert (row.name, row.role, account.name) == ("t1", "write", "alice")
    with pytest.raises(AlreadyExists):
        accounts.add_token(alice.id, "t2", "read", "h" * 64)
    assert accounts.delete_token("h" * 64)
    assert accounts.token_by_hash("h" * 64) is None


# --- repos --------------------------------------------------------------------------------------

def test_repo_create_get_and_duplicates(repos, alice):
    repo = make_repo(repos, alice, "Bert-Base")
    assert repos.get("model", "alice/bert-base").id == repo.id
    assert repo.created_at == NOW and repo.tags == [] and repo.private is False
    with pytest.raises(AlreadyExists):
        make_repo(repos, alice, "bert-base")
    # The same name in another repo type is another repo.
    assert make_repo(repos, alice, "bert-base", type="dataset").id != repo.id


def test_rename_leaves_a_redirect(repos, alice):
    repo = make_repo(repos, alice, "old")
    repos.rename(repo, "alice", "new", alice.id)
    assert repos.get("model", "alice/new").id == repo.id
    assert repos.redirect_target("model", "alice/old").id == repo.id


def test_card_json_and_tags(repos, alice):
    repo = make_repo(repos, alice, "carded")
    card = {"license": "mit", "nested": {"list": [1, 2, "three"]}}
    repos.set_card(repo.id, sha="f" * 40, card_data=card, tags=["b", "a", "a"], library_name="transformers",
                   pipeline_tag="fill-mask", now=NOW)
    got = repos.get_by_id(repo.id)
    assert got.card_data == card and got.tags == ["b", "a", "a"] and got.sha == "f" * 40
    rows, _ = repos.list(RepoQuery(type="model", filters=("a",)))
    assert [r.id for r in rows] == [repo.id]


def test_a_refreshed_card_never_undoes_a_newer_head(repos, alice):
    """``unmoved``: a refresh of head A stores nothing once a push stored head B."""
    repo = make_repo(repos, alice, "refreshed")
    repos.set_card(repo.id, sha="b" * 40, card_data={}, tags=["new"], library_name=None, pipeline_tag=None, now=NOW)
    assert not repos.set_card(repo.id, sha="a" * 40, card_data={}, tags=["old"], library_name="x", pipeline_tag="y",
                              now=None, unmoved=True)
    got = repos.get_by_id(repo.id)
    assert got.sha == "b" * 40 and got.tags == ["new"] and got.pipeline_tag is None
    assert [r.id for r in repos.list(RepoQuery(type="model", filters=("old",)))[0]] == []
    assert repos.set_card(repo.id, sha="b" * 40, card_data={}, tags=["new", "more"], library_name="x",
                          pipeline_tag="y", now=None, unmoved=True)
    assert repos.get_by_id(repo.id).pipeline_tag == "y"
    assert repo.id in repos.ids_of_type("model") and repo.id not in repos.ids_of_type("dataset")


def test_concurrent_card_refreshes_do_not_collide(repos, alice):
    repo = make_repo(repos, alice, "busy")

    def refresh(i):
        repos.set_card(repo.id, sha=f"{i:040d}", card_data={}, tags=["x", "y"], library_name=None,
                       pipeline_tag=None, now=NOW)

    assert run_concurrently(refresh) == []
    rows, _ = repos.list(RepoQuery(type="model", filters=("y",)))
    assert [r.id for r in rows] == [repo.id]


def test_search_substring_case_insensitive_and_literal(repos, alice):
    for name in ["Llama-7B-chat", "llama-13b", "mistral-7b", "odd_name%x", "oddxname"]:
        make_repo(repos, alice, name)

    def ids(term):
        rows, _ = repos.list(RepoQuery(type="model", search=term, sort="createdAt"))
        return sorted(r.name for r in rows)

    assert ids("LLAMA") == ["Llama-7B-chat", "llama-13b"]  # trigram path (>= 3 chars)
    assert ids("7b") == ["Llama-7B-chat", "mistral-7b"]  # short term: plain scan
    assert ids("alice/mis") == ["mistral-7b"]
    assert ids("d_n") == ["odd_name%x"]  # "_" and "%" are literal, not wildcards
    assert ids("%") == ["odd_name%x"]
    assert ids("nothing-like-this") == []


def test_listing_filters_sorting_paging_and_privacy(repos, accounts, alice):
    bob = accounts.create("bob", "user", now=NOW)
    for i in range(5):
        make_repo(repos, alice, f"r{i}", now=NOW + timedelta(minutes=i))
    secret = make_repo(repos, bob, "secret", private=True)
    for _ in range(3):
        repos.count_download(repos.get("model", "alice/r1").id)
    rows, more = repos.list(RepoQuery(type="model", limit=2))
    assert [r.name for r in rows] == ["secret", "r4"] or [r.name for r in rows] == ["r4", "r3"]
    rows, more = repos.list(RepoQuery(type="model", author="ALICE", limit=2, offset=2))
    assert [r.name for r in rows] == ["r2", "r1"] and more
    rows, _ = repos.list(RepoQuery(type="model", sort="downloads", limit=1))
    assert rows[0].name == "r1" and rows[0].downloads == 3
    assert secret.id not in {r.id for r in repos.list(RepoQuery(type="model"))[0]}
    assert secret.id in {r.id for r in repos.list(RepoQuery(type="model", visible_owner_ids=(bob.id,)))[0]}


@pytest.mark.parametrize("broad_above", [1000, 3])
def test_broad_and_narrow_search_terms_list_the_same_rows(repos, alice, monkeypatch, broad_above):
    """A term with more matches than BROAD_MATCHES is served by walking the sort index (SQLite):
    same rows, same order, same paging as through the trigram matches."""
    from aicommons.db import search

    monkeypatch.setattr(search, "BROAD_MATCHES", broad_above)
    for i in range(8):
        repo = make_repo(repos, alice, f"{'mistral' if i % 2 else 'qwen'}-{i}", now=NOW + timedelta(minutes=i))
        repos.add_downloads({repo.id: 8 - i})
    for sort in (None, "downloads"):
        rows = [r.name for r in repos.list(RepoQuery(type="model", search="MISTRAL", sort=sort))[0]]
        assert rows == (["mistral-7", "mistral-5", "mistral-3", "mistral-1"] if sort is None
                        else ["mistral-1", "mistral-3", "mistral-5", "mistral-7"])
        first, more = repos.list(RepoQuery(type="model", search="mistral", sort=sort, limit=3))
        last = first[-1]
        rest, _ = repos.list(RepoQuery(type="model", search="mistral", sort=sort, limit=3,
                                       after=(last.downloads if sort else last.created_at, last.id)))
        assert more and [r.name for r in first + rest] == rows


@pytest.mark.parametrize("sort", [None, "downloads", "likes", "lastModified", "createdAt"])
def test_keyset_pages_visit_every_row_once_in_order_ties_included(repos, accounts, alice, engine, sort):
    """``after`` = (sort value, id) of a page's last row: the next page starts strictly after it,
    ties on the sort value broken by id, so no row is skipped or repeated however pages fall."""
    from aicommons.db.repos import sort_attribute

    bob = accounts.create("bob", "user", now=NOW)
    for i in range(13):  # three created at the same instant, downloads and likes with many ties
        repo = make_repo(repos, alice if i % 4 else bob, f"k{i}", private=i == 5, now=NOW + timedelta(minutes=min(i, 9)))
        repos.add_downloads({repo.id: i % 3})
        repos.update(repo.id, likes=i % 2)
    want = [r.id for r in repos.list(RepoQuery(type="model", sort=sort, limit=100))[0]]
    assert len(want) == 12  # the private one is not listed
    attr = sort_attribute(sort)
    for page_size in (1, 2, 5, 12):
        seen, after = [], None
        while True:
            rows, more = repos.list(RepoQuery(type="model", sort=sort, limit=page_size, after=after))
            seen += [r.id for r in rows]
            if not more:
                break
            after = (getattr(rows[-1], attr), rows[-1].id)
        assert seen == want, (page_size, sort)
    author = [r.id for r in repos.list(RepoQuery(type="model", author="ALICE", sort=sort, limit=100))[0]]
    assert author and all(repos.get_by_id(i).namespace == "alice" for i in author)


def test_stored_heads_likes_and_storage_in_one_query(repos, alice, engine):
    from aicommons.db.likes import LikeStore
    from aicommons.db.repos import RepoHead

    a, b = make_repo(repos, alice, "ha"), make_repo(repos, alice, "hb")
    head = RepoHead("1" * 40, [["README.md", 12, "b" * 40, None, None], ["w.bin", 5000, "c" * 40, OID, 134]],
                    5012, 777)
    repos.set_card(a.id, sha=head.sha, card_data={"license": "mit"}, tags=["x"], library_name=None,
                   pipeline_tag=None, now=None, head=head)
    assert repos.heads([a.id, b.id]) == {a.id: head}
    assert repos.get_by_id(a.id).last_modified == a.last_modified  # now=None: a backfill is no change
    repos.put_head(b.id, head)  # b's head is not that commit: not stored
    assert repos.heads([b.id]) == {}
    repos.add_lfs_object(a.id, OID, 5000, NOW)
    rows = {r.name: (git, lfs) for r, git, lfs in repos.storage_rows(alice.id, 10)}
    assert rows == {"ha": (777, 5000), "hb": (None, 0)}
    likes = LikeStore(engine)
    likes.set(alice.id, a.id, True, NOW)
    likes.set(alice.id, b.id, True, NOW + timedelta(seconds=1))
    assert [r.name for r in repos.liked_by(alice.id)] == ["hb", "ha"]
    repos.delete(a.id)
    assert repos.heads([a.id]) == {}  # the stored head goes with its repo


# --- LFS references -----------------------------------------------------------------------------

def test_lfs_grants(repos, alice):
    repo = make_repo(repos, alice, "weights")
    other = make_repo(repos, alice, "other")
    repos.add_lfs_object(repo.id, OID, 123, NOW)
    repos.add_lfs_object(repo.id, OID, 123, NOW)  # idempotent
    assert repos.repo_lfs_size(repo.id, OID) == 123
    assert repos.repo_lfs_size(other.id, OID) is None  # stored once, but granted per repo
    assert repos.list_lfs(repo.id) == []  # uploaded, not committed yet
    assert repos.lfs_bytes(repo.id) == 123 and type(repos.lfs_bytes(repo.id)) is int  # not a Decimal
    assert repos.lfs_bytes(other.id) == 0
    repos.mark_lfs_committed(repo.id, [(OID, "model.bin", 123)], "refs/heads/main", NOW)
    [row] = repos.list_lfs(repo.id)
    assert (row["filename"], row["ref"], row["size"]) == ("model.bin", "refs/heads/main", 123)
    repos.forget_lfs(repo.id, [OID])
    assert repos.repo_lfs_size(repo.id, OID) is None


def test_the_same_object_uploaded_through_several_replicas_at_once(repos, alice):
    repo = make_repo(repos, alice, "race")
    assert run_concurrently(lambda i: repos.add_lfs_object(repo.id, OID, 7, NOW)) == []
    assert run_concurrently(lambda i: repos.mark_lfs_committed(repo.id, [(OID, f"f{i}", 7)], "refs/heads/main", NOW)) == []
    [row] = repos.list_lfs(repo.id)
    assert row["filename"].startswith("f")


def test_deleting_a_repo_drops_its_grants(repos, alice):
    repo = make_repo(repos, alice, "gone")
    repos.add_lfs_object(repo.id, OID, 7, NOW)
    repos.delete(repo.id)
    assert repos.get_by_id(repo.id) is None
    assert repos.repo_lfs_size(repo.id, OID) is None
    assert repos.lfs_object_size(OID) == 7  # the object stays until GC
