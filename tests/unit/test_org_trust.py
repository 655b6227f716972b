"""An org admin's CI trust policy cannot turn the hub into a fetcher of private addresses: its issuer
must be https:// and its keys are read through aicommons.outbound, which refuses loopback and private
addresses unless the operator allows them (the operator's own policies may name private issuers)."""

from __future__ import annotations

import base64
import json

import pytest

from aicommons.errors import BadRequest, Forbidden
from aicommons.hub.device_login import OAuthError


@pytest.fixture
def hub(isolated_hub):
    h = isolated_hub()
    h.accounts.create_user("owner")
    h.accounts.create_org("team")
    h.accounts.store.add_member(h.accounts.require("team").id, h.accounts.require("owner").id, "admin")
    return h


def _admin(hub):
    return hub.accounts.principal_for_token(hub.accounts.create_token("owner"))


def test_an_org_issuer_must_be_https_and_name_something(hub):
    admin = _admin(hub)
    with pytest.raises(BadRequest, match="https://"):
        hub.org_trust.add_trust_policy(admin, "team", "http://127.0.0.1:9/", "repo:team/x:*", [], ["repo.content.read"])
    with pytest.raises(BadRequest, match="names something"):
        hub.org_trust.add_trust_policy(admin, "team", "https://ci.example", "**", [], ["repo.content.read"])
    with pytest.raises(BadRequest, match="Permissions"):
        hub.org_trust.add_trust_policy(admin, "team", "https://ci.example", "repo:team/x:*", [], ["org.write"])
    hub.org_trust.add_trust_policy(admin, "team", "https://ci.example/", "repo:team/x:*", [], ["repo.content.read"])
    [policy] = [p for p in hub.org_trust.trust_policies() if p.org == "team"]
    assert policy.issuer == "https://ci.example" and policy.repos == ("team/*",) and not policy.allow_private


def test_keys_of_an_org_issuer_at_a_private_address_are_not_fetched(hub):
    admin = _admin(hub)
    # "localhost.localdomain"-style names resolve to loopback: https, yet private.
    hub.org_trust.add_trust_policy(admin, "team", "https://localhost", "repo:team/x:*", [], ["repo.content.read"])
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': 'RS256'})}.{part({'iss': 'https://localhost', 'sub': 'repo:team/x:main'})}.sig"
    with pytest.raises(OAuthError, match="private, loopback"):
        hub.workload_identity.exchange({"subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                                        "subject_token": token, "resource": "team/x"}, "http://hub.example")


def test_only_the_org_admin_manages_it(hub):
    hub.accounts.create_user("member")
    hub.accounts.store.add_member(hub.accounts.require("team").id, hub.accounts.require("member").id, "write")
    member = hub.accounts.principal_for_token(hub.accounts.create_token("member"))
    with pytest.raises(Forbidden):
        hub.org_trust.add_group_role(member, "team", "staff", "admin")
    with pytest.raises(Forbidden):
        hub.org_trust.org_trust_policies(member, "team")
    hub.org_trust.add_group_role(_admin(hub), "team", "staff", "write")
    assert ("staff", "team", "write") in hub.org_trust.group_roles()
