"""Users and organisations with the real ``HfApi``: overviews, members, followers in the Hub's
JSON; org roles (read, contributor, write, admin); invitations by link and by e-mail, join
requests, removals and role changes through the API."""

from __future__ import annotations

import uuid

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


@pytest.fixture(scope="module")
def team(live_hub):
    s = uuid.uuid4().hex[:8]
    names = {k: f"{k}{s}" for k in ("boss", "dev", "newbie", "viewer")}
    org = f"team{s}"
    for key, name in names.items():
        live_hub.cli("user", "create", name, "--fullname", key.title(), "--email", f"{name}@example.org")
    live_hub.cli("org", "create", org, "--fullname", "The Team", "--member", names["boss"])
    # Memberships made before any token is used (a server caches a token's roles for a few seconds).
    for key, role in (("dev", "write"), ("viewer", "read"), ("newbie", "contributor")):
        live_hub.cli("org", "add-member", org, names[key], "--role", role)
    tokens = {}
    for key, name in names.items():
        tokens[key] = f"hf_team_{key}_{s}"
        live_hub.cli("token", "create", name, "--value", tokens[key])
    return {"org": org, "names": names, "tokens": tokens}


def client(live_hub, team, who):
    return httpx.Client(base_url=live_hub.url, timeout=30,
                        headers={"Authorization": f"Bearer {team['tokens'][who]}"})


def api(live_hub, team, who) -> HfApi:
    return HfApi(endpoint=live_hub.url, token=team["tokens"][who])


def test_overviews_members_and_followers(live_hub, team):
    org, names = team["org"], team["names"]
    with client(live_hub, team, "dev") as dev:
        assert dev.post(f"/api/organizations/{org}/follow").status_code == 200
        assert dev.post(f"/api/users/{names['boss']}/follow").status_code == 200
        assert dev.post(f"/api/users/{names['dev']}/follow").status_code == 400  # not oneself
    hf = api(live_hub, team, "viewer")
    user = hf.get_user_overview(names["boss"])
    assert user.username == names["boss"] and user.fullname == "Boss" and user.user_type == "user"
    assert user.num_followers == 1 and user.num_following == 0 and user.avatar_url.startswith("http")
    assert [o.name for o in user.orgs] == [org]
    overview = hf.get_organization_overview(org)
    assert overview.name == org and overview.fullname == "The Team" and overview.num_users == 4
    assert overview.num_followers == 1 and overview.avatar_url.startswith("http://")
    members = {m.username: m for m in hf.list_organization_members(org)}
    assert set(members) == set(names.values()) and members[names["dev"]].fullname == "Dev"
    assert [u.username for u in hf.list_organization_followers(org)] == [names["dev"]]
    assert [u.username for u in hf.list_user_followers(names["boss"])] == [names["dev"]]
    assert {u.username for u in hf.list_user_following(names["dev"])} == {names["boss"], org}
    with pytest.raises(HfHubHTTPError) as missing:
        hf.get_organization_overview("no-such-org-" + uuid.uuid4().hex[:6])
    assert missing.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError):
        hf.get_user_overview(org)  # an org is not a user
    with client(live_hub, team, "dev") as dev:
        assert dev.delete(f"/api/organizations/{org}/follow").status_code == 200
    assert list(hf.list_organization_followers(org)) == []


def test_roles_read_contributor_write_admin(live_hub, team):
    org, names = team["org"], team["names"]
    boss = api(live_hub, team, "boss")
    existing = f"{org}/existing-{uuid.uuid4().hex[:6]}"
    boss.create_repo(existing, private=True)
    # read: sees private repos, writes nothing
    viewer = api(live_hub, team, "viewer")
    assert viewer.model_info(existing).private
    with pytest.raises(HfHubHTTPError) as refused:
        viewer.create_repo(f"{org}/by-viewer-{uuid.uuid4().hex[:6]}")
    assert refused.value.response.status_code == 403
    # contributor: creates repos and writes to those, not to others
    contributor = api(live_hub, team, "newbie")
    own = f"{org}/by-contributor-{uuid.uuid4().hex[:6]}"
    contributor.create_repo(own)
    contributor.upload_file(path_or_fileobj=b"mine", path_in_repo="a.txt", repo_id=own)
    with pytest.raises(HfHubHTTPError) as refused:
        contributor.upload_file(path_or_fileobj=b"not mine", path_in_repo="a.txt", repo_id=existing)
    assert refused.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError):  # settings are the admins'
        contributor.update_repo_settings(own, private=True)
    # write: writes everywhere in the org; admin: settings too
    api(live_hub, team, "dev").upload_file(path_or_fileobj=b"w", path_in_repo="w.txt", repo_id=existing)
    boss.update_repo_settings(own, private=True)
    # A role change takes effect at once (no stale cached role).
    with client(live_hub, team, "boss") as http:
        assert http.put(f"/api/organizations/{org}/members/{names['newbie']}", json={"role": "read"}).status_code == 200
        assert http.put(f"/api/organizations/{org}/members/{names['newbie']}", json={"role": "owner"}).status_code == 400
    with pytest.raises(HfHubHTTPError):
        contributor.upload_file(path_or_fileobj=b"again", path_in_repo="b.txt", repo_id=own)
    # Only admins manage members.
    with client(live_hub, team, "dev") as dev:
        assert dev.put(f"/api/organizations/{org}/members/{names['viewer']}", json={"role": "admin"}).status_code == 403
        assert dev.delete(f"/api/organizations/{org}/members/{names['viewer']}").status_code == 403
        assert dev.get(f"/api/organizations/{org}/invitations").status_code == 403


def test_invitations_join_requests_and_removal(live_hub, team):
    org, names = team["org"], team["names"]
    outsider = f"out{uuid.uuid4().hex[:8]}"
    live_hub.cli("user", "create", outsider, "--email", f"{outsider}@example.org")
    out_token = f"hf_out_{uuid.uuid4().hex}"
    live_hub.cli("token", "create", outsider, "--value", out_token)
    out = httpx.Client(base_url=live_hub.url, timeout=30, headers={"Authorization": f"Bearer {out_token}"})
    with client(live_hub, team, "boss") as boss, out:
        # A join request, accepted with a role.
        assert out.post(f"/api/organizations/{org}/join-requests").status_code == 200
        listed = boss.get(f"/api/organizations/{org}/join-requests").json()
        assert [r["user"] for r in listed] == [outsider]
        assert out.get(f"/api/organizations/{org}/join-requests").status_code == 403
        assert boss.post(f"/api/organizations/{org}/join-requests/{outsider}",
                         json={"action": "accept", "role": "read"}).status_code == 200
        roles = {m["user"]: m["role"] for m in boss.get(f"/api/organizations/{org}/members").json()}
        assert roles[outsider] == "read"
        # Leaving on one's own, removal by an admin; the last admin can neither leave nor be demoted.
        assert out.delete(f"/api/organizations/{org}/members/{outsider}").status_code == 200
        assert out.post(f"/api/organizations/{org}/join-requests").status_code == 200
        assert boss.post(f"/api/organizations/{org}/join-requests/{outsider}",
                         json={"action": "decline"}).status_code == 200
        assert boss.get(f"/api/organizations/{org}/join-requests").json() == []
        assert out.post(f"/api/organizations/{org}/join-requests").status_code == 200
        assert boss.post(f"/api/organizations/{org}/join-requests/{outsider}",
                         json={"action": "accept", "role": "write"}).status_code == 200
        assert boss.delete(f"/api/organizations/{org}/members/{outsider}").status_code == 200
        assert outsider not in {m["user"] for m in boss.get(f"/api/organizations/{org}/members").json()}
        assert boss.delete(f"/api/organizations/{org}/members/{names['boss']}").status_code == 409
        assert boss.put(f"/api/organizations/{org}/members/{names['boss']}", json={"role": "read"}).status_code == 409
        # An e-mail invitation only works for that address; a link invitation for anyone signed in.
        for_someone_else = boss.post(f"/api/organizations/{org}/invitations",
                                     json={"role": "write", "email": "someone@example.org"}).json()
        for_outsider = boss.post(f"/api/organizations/{org}/invitations",
                                 json={"role": "contributor", "email": f"{outsider}@example.org"}).json()
        assert {i["email"] for i in boss.get(f"/api/organizations/{org}/invitations").json()} >= {
            "someone@example.org", f"{outsider}@example.org"}
        assert for_someone_else["url"].startswith(live_hub.url + "/invitations/")
        assert boss.post(f"/api/organizations/{org}/invitations", json={"role": "boss"}).status_code == 400
        assert boss.delete(f"/api/organizations/{org}/invitations/{for_someone_else['id']}").status_code == 200
        assert boss.delete(f"/api/organizations/{org}/invitations/{for_someone_else['id']}").status_code == 404
        assert out.get(f"/api/organizations/{org}/invitations").status_code == 403
        assert for_outsider["role"] == "contributor"  # accepting one is a browser step (tests/e2e)


def test_fine_grained_org_permissions(live_hub, team):
    import json

    org, names = team["org"], team["names"]
    value = f"hf_team_fg_{uuid.uuid4().hex}"
    live_hub.cli("token", "create", names["boss"], "--value", value, "--permissions",
                 json.dumps({"scoped": [{"entity": {"type": "org", "name": org}, "permissions": ["org.read"]}]}))
    with httpx.Client(base_url=live_hub.url, timeout=30, headers={"Authorization": f"Bearer {value}"}) as http:
        assert http.get(f"/api/organizations/{org}/invitations").status_code == 200
        refused = http.post(f"/api/organizations/{org}/invitations", json={"role": "read"})
        assert refused.status_code == 403 and "org.write" in refused.text
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=live_hub.url, token=value).model_info(f"{org}/nothing-here")
    # org.write implies org.read: a token that makes invitations also lists them (it was 403).
    manager = f"hf_team_fg_{uuid.uuid4().hex}"
    live_hub.cli("token", "create", names["boss"], "--value", manager, "--permissions",
                 json.dumps({"scoped": [{"entity": {"type": "org", "name": org}, "permissions": ["org.write"]}]}))
    with httpx.Client(base_url=live_hub.url, timeout=30, headers={"Authorization": f"Bearer {manager}"}) as http:
        made = http.post(f"/api/organizations/{org}/invitations", json={"role": "read"})
        assert made.status_code == 200
        listed = http.get(f"/api/organizations/{org}/invitations")
        assert listed.status_code == 200 and made.json()["id"] in {i["id"] for i in listed.json()}
        assert http.get(f"/api/organizations/{org}/join-requests").status_code == 200
