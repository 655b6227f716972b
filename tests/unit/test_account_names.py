"""Who may take which user or organisation name (hub/account_names.py): the Hub's character rules
(property tests), one case-insensitive namespace for users and organisations, names derived from
the app's route table, and retired names that no other account can ever register."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicommons.app import reserved_route_names
from aicommons.db.accounts import AccountStore
from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.signup import RetiredNameStore
from aicommons.errors import BadRequest, Conflict
from aicommons.hub.account_names import NameService, check_username, top_level_names
from aicommons.hub.accounts import AccountService

PROPS = settings(derandomize=True, max_examples=300, database=None, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
VALID = re.compile(r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def names(engine):
    service = NameService(AccountStore(engine), RetiredNameStore(engine))
    service.reserve(reserved_route_names())
    return service


@pytest.fixture
def accounts(engine, names):
    return AccountService(names.accounts, names=names)


# --- the character rules -----------------------------------------------------------------------

words = st.text(ALNUM, min_size=1, max_size=10)
good_names = st.lists(words, min_size=1, max_size=5).map("-".join).filter(lambda n: 2 <= len(n) <= 42)


@PROPS
@given(good_names)
def test_letters_digits_and_single_inner_hyphens_are_accepted(name):
    assert check_username(name) == name


@PROPS
@given(st.text(max_size=50))
def test_anything_accepted_follows_the_rules(name):
    try:
        check_username(name)
    except BadRequest as exc:
        assert "Invalid user name" in exc.message
        assert exc.status == 400
        return
    assert 2 <= len(name) <= 42 and VALID.match(name), name


@PROPS
@given(good_names, st.sampled_from(["_", ".", " ", "/", "--", "é", "\u202e", "\x00", "@", "\n"]))
def test_a_foreign_character_anywhere_is_refused(name, bad):
    for candidate in (bad + name, name + bad, name[:1] + bad + name[1:]):
        if bad == "--" and candidate in (bad + name, name + bad):
            pass  # a leading/trailing hyphen: refused too
        with pytest.raises(BadRequest):
            check_username(candidate)


def test_length_bounds():
    check_username("ab")
    check_username("a" * 42)
    for bad in ("a", "a" * 43, "", "-ab", "ab-", "a--b"):
        with pytest.raises(BadRequest):
            check_username(bad)


# --- one namespace, case-insensitive, users and organisations ----------------------------------


def _case_variants(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(c.upper() if f else c.lower() for c, f in zip(name, flips)))


@PROPS
@given(st.data())
def test_a_held_name_is_refused_in_every_case(accounts, names, data):
    if accounts.store.get("alice-2") is None:
        accounts.create_user("alice-2")
        accounts.create_org("Acme-Lab")
    for held in ("alice-2", "Acme-Lab"):
        variant = data.draw(_case_variants(held))
        with pytest.raises(Conflict):
            names.check_available(variant, signup=True)
        with pytest.raises(Conflict):
            accounts.create_user(variant)
        with pytest.raises(Conflict):
            accounts.create_org(variant)


# --- reserved: derived from the route table ----------------------------------------------------


def test_reserved_names_come_from_the_route_table():
    from aicommons.api.routes import hub_routes
    from aicommons.web.routes import web_routes

    reserved = reserved_route_names()
    for name in ("api", "models", "datasets", "spaces", "settings", "login", "logout", "new", "v1", "static"):
        assert name in reserved
    # every literal top-level path the app routes, today and after any route is added
    for route in hub_routes() + web_routes():
        first = route.path.lstrip("/").split("/", 1)[0]
        if first and "{" not in first:
            assert first.lower() in reserved, route.path


def test_a_new_route_reserves_its_name():
    assert top_level_names(["/brand-new/{x}", "/{ns}/{name}", "/", "/Other"]) == {"brand-new", "other"}


@PROPS
@given(st.sampled_from(sorted(reserved_route_names() | {"admin", "join", "oauth", "datasets-server"})),
       st.data())
def test_reserved_names_are_refused_in_every_case(names, accounts, name, data):
    variant = data.draw(_case_variants(name))
    with pytest.raises((BadRequest, Conflict)):
        names.check_available(variant, signup=True)
    with pytest.raises(BadRequest):
        accounts.create_user(variant)
    with pytest.raises(BadRequest):
        accounts.create_org(variant)


# --- retired names ------------------------------------------------------------------------------


def _delete_account(engine, account_id: int) -> None:
    from sqlalchemy import delete

    from aicommons.db.tables import accounts as accounts_table

    with engine.begin() as conn:
        conn.execute(delete(accounts_table).where(accounts_table.c.id == account_id))


def test_a_retired_name_is_never_given_to_another_account(accounts, names):
    old = accounts.create_user("TheBloke")
    assert names.retire_name("TheBloke", "account deleted")
    assert not names.retire_name("thebloke", "again")  # the first retirement is kept
    _delete_account(accounts.store.engine, old.id)
    for variant in ("TheBloke", "thebloke", "THEBLOKE"):
        with pytest.raises(Conflict) as exc:
            names.check_available(variant, signup=True)
        assert "not available" in exc.value.message
        with pytest.raises(Conflict):
            accounts.create_user(variant)
        with pytest.raises(Conflict):
            accounts.create_org(variant)
    # the account that held it may take it back (a rename undone)
    assert names.check_available("TheBloke", account_id=old.id) == "TheBloke"
    retired = names.retired_names()
    assert [(r.name, r.kind, r.account_id, r.reason) for r in retired] == [("TheBloke", "user", old.id, "account deleted")]
    # an admin releases it: registrable again
    assert names.release("THEBLOKE")
    assert not names.release("TheBloke")
    assert accounts.create_user("thebloke").name == "thebloke"


def test_cli_name_release_is_audited(tmp_path):
    env = {"AICOMMONS_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": ":".join(p for p in sys.path if p)}

    def cli(*args, check=True):
        return subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, capture_output=True,
                              text=True, check=check)

    cli("user", "create", "gone-user")
    cli("user", "delete", "gone-user")  # the account goes, its name is retired
    assert "gone-user\tuser\t" in cli("name", "list").stdout
    refused = cli("user", "create", "Gone-User", check=False)
    assert refused.returncode == 1 and "not available" in refused.stderr
    refused = cli("org", "create", "GONE-USER", check=False)
    assert refused.returncode == 1 and "not available" in refused.stderr
    refused = cli("user", "create", "join", check=False)  # a route of the app
    assert refused.returncode == 1 and "reserved" in refused.stderr
    assert cli("name", "release", "gone-user").stdout.startswith("released gone-user")
    assert cli("name", "release", "gone-user", check=False).returncode == 1
    assert "cli name release" in cli("audit", "--target", "gone-user").stdout


def test_cli_invites_and_approval(tmp_path):
    env = {"AICOMMONS_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "AICOMMONS_SIGNUP": "approval",
           "AICOMMONS_PUBLIC_URL": "https://hub.example.org", "PYTHONPATH": ":".join(p for p in sys.path if p)}

    def cli(*args, check=True):
        return subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, capture_output=True,
                              text=True, check=check)

    out = cli("invite", "create", "--email", "ann@example.org", "--expires", "2h").stdout
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://hub.example.org/join?invite=")
    mailed = [p.read_text() for p in (tmp_path / "data" / "outbox").glob("*.eml")]
    assert len(mailed) == 1 and link in mailed[0] and "To: ann@example.org" in mailed[0]
    bad = cli("invite", "create", "--expires", "forever", check=False)
    assert bad.returncode == 2 and "invalid duration" in bad.stderr
    assert "cli invite create --email" in cli("audit").stdout

    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    hub = Hub(Settings.from_env(data_dir=str(tmp_path / "data"), signup="approval"))
    try:
        assert hub.signup.join("waiting", "w@example.org", "a long passphrase").status == "pending"
    finally:
        hub.close()
    assert "waiting\t (awaiting approval) (e-mail not verified)" in cli("user", "list").stdout
    assert cli("user", "approve", "waiting").stdout.startswith("approved waiting; mailed w@example.org")
    assert cli("user", "approve", "waiting", check=False).returncode == 1


# --- self-service organisations (the Hub's /organizations/new) -----------------------------------


def test_a_user_creates_an_organisation_and_becomes_its_only_admin(accounts):
    alice = accounts.create_user("alice")
    org = accounts.create_own_org(accounts.principal_for_account(alice), " acme-labs ", "Acme Labs")
    assert (org.name, org.kind, org.fullname) == ("acme-labs", "org", "Acme Labs")
    assert accounts.store.member_role(org.id, alice.id) == "admin"
    assert [(o.name, role) for o, role in accounts.store.orgs_of(alice.id)] == [("acme-labs", "admin")]


@pytest.mark.parametrize("name, error", [
    ("Alice", Conflict), ("ACME", Conflict),  # a user's or an org's, in any case
    ("organizations", BadRequest), ("settings", BadRequest), ("new", BadRequest), ("api", BadRequest),  # routes
    ("gone", Conflict),  # retired
    ("a_b", BadRequest), ("x", BadRequest), ("-ab", BadRequest), ("a--b", BadRequest), ("", BadRequest),
])
def test_an_organisation_name_is_checked_like_a_new_user_name(accounts, names, name, error):
    alice = accounts.create_user("alice")
    accounts.create_org("acme")
    accounts.create_user("gone")
    names.retire_name("gone", "account deleted")
    with pytest.raises(error):
        accounts.create_own_org(accounts.principal_for_account(alice), name)
    assert accounts.store.orgs_of(alice.id) == []


def test_who_may_create_an_organisation(accounts):
    from aicommons.errors import Forbidden, Unauthorized
    from aicommons.hub.access import anonymous

    unverified = accounts.create_user("newbie", email="n@example.org", email_verified=False)
    with pytest.raises(Forbidden, match="Verify your e-mail address to create organizations"):
        accounts.create_own_org(accounts.principal_for_account(unverified), "newbie-org")
    with pytest.raises(Unauthorized):
        accounts.create_own_org(anonymous("203.0.113.9"), "anon-org")
    accounts.org_self_service = False  # AICOMMONS_ORG_SELF_SERVICE=0: site administrators only
    bob = accounts.create_user("bob")
    with pytest.raises(Forbidden, match="only a site administrator"):
        accounts.create_own_org(accounts.principal_for_account(bob), "bob-org")
    root = accounts.create_user("root", is_admin=True)
    assert accounts.create_own_org(accounts.principal_for_account(root), "root-org").kind == "org"
    assert accounts.find("bob-org") is None and accounts.find("newbie-org") is None
