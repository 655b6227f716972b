"""The Hub's Space runtime API with huggingface_hub's own methods against the live hub
(spec/wave2-apis.md §6.1): shapes the client parses, who may do what, secrets never returned."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi, SpaceHardware, SpaceRuntime, SpaceStage
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import new_org_of_alice, unique_name


@pytest.fixture
def space_id(api) -> str:
    rid = f"alice/{unique_name()}"
    api.create_repo(rid, repo_type="space", space_sdk="gradio")
    return rid


def test_runtime_and_settings_have_the_hubs_shapes(api, space_id):
    runtime = api.get_space_runtime(space_id)
    assert isinstance(runtime, SpaceRuntime)
    assert runtime.stage == SpaceStage.NO_APP_FILE  # a new gradio space has only its card
    assert runtime.requested_hardware == SpaceHardware.CPU_BASIC
    assert [h.name for h in api.list_spaces_hardware()] == ["cpu-basic"]
    with pytest.warns(UserWarning, match="cpu-basic"):  # the client's own note about free hardware
        runtime = api.set_space_sleep_time(space_id, sleep_time=3600)
    assert runtime.sleep_time == 3600
    runtime = api.request_space_hardware(space_id, SpaceHardware.CPU_BASIC)
    assert runtime.requested_hardware == SpaceHardware.CPU_BASIC
    with pytest.raises(HfHubHTTPError) as refused:
        api.request_space_hardware(space_id, SpaceHardware.A100_LARGE)  # not offered by this hub
    assert refused.value.response.status_code == 400
    assert api.pause_space(space_id).stage == SpaceStage.PAUSED
    assert api.get_space_runtime(space_id).stage == SpaceStage.PAUSED
    assert api.restart_space(space_id).stage != SpaceStage.PAUSED
    info = api.space_info(space_id)
    assert info.host and info.host.endswith(f"/spaces-apps/{space_id}/")
    assert info.runtime.stage == api.get_space_runtime(space_id).stage


def test_secrets_are_never_returned_and_variables_are(api, bob_api, space_id, live_hub):
    api.add_space_secret(space_id, "API_KEY", "s3cr3t-value-123", description="the key")
    secrets = httpx.get(f"{live_hub.url}/api/spaces/{space_id}/secrets",
                        headers={"Authorization": f"Bearer {api.token}"}).json()
    assert set(secrets) == {"API_KEY"} and secrets["API_KEY"]["description"] == "the key"
    assert "s3cr3t" not in str(secrets)
    api.add_space_variable(space_id, "MODEL", "alice/tiny", description="which model")
    variables = api.get_space_variables(space_id)
    assert variables["MODEL"].value == "alice/tiny" and variables["MODEL"].description == "which model"
    api.delete_space_variable(space_id, "MODEL")
    assert api.get_space_variables(space_id) == {}
    api.delete_space_secret(space_id, "API_KEY")
    assert api.get_space_secrets(space_id) == {}
    # The secret is stored encrypted: its value is nowhere in the database file.
    api.add_space_secret(space_id, "TOKEN2", "plain-text-marker-xyz")
    assert b"plain-text-marker-xyz" not in (live_hub.data_dir / "hub.db").read_bytes()
    with pytest.raises(HfHubHTTPError) as bad:
        api.add_space_secret(space_id, "HF_ENDPOINT", "http://elsewhere")
    assert bad.value.response.status_code == 400
    # Others: bob may see the public space's runtime but not its secrets, nor change anything.
    assert bob_api.get_space_runtime(space_id).stage
    for call in (lambda: bob_api.get_space_variables(space_id), lambda: bob_api.add_space_secret(space_id, "X", "y"),
                 lambda: bob_api.pause_space(space_id), lambda: bob_api.restart_space(space_id)):
        with pytest.raises(HfHubHTTPError) as refused:
            call()
        assert refused.value.response.status_code == 403


def test_anonymous_settings_of_a_public_space_ask_to_sign_in(api, live_hub):
    """Anonymous ``get_space_secrets`` on a public space answered 401 "Repository not found" for a
    space anyone can open. huggingface.co answers a 401 that the client raises as
    RepositoryNotFoundError carrying the server's reason; ours now keeps status and code and says
    why: sign in. A private space still answers exactly like a missing one."""
    space_id = f"alice/{unique_name()}"
    api.create_repo(space_id, repo_type="space", space_sdk="static")
    with pytest.raises(RepositoryNotFoundError) as refused:
        HfApi(endpoint=live_hub.url, token=False).get_space_secrets(space_id)
    assert refused.value.response.status_code == 401
    assert "signed in" in refused.value.response.headers["X-Error-Message"]
    assert "Repository not found" not in str(refused.value)
    private, missing = f"alice/{unique_name()}", f"alice/{unique_name()}"
    api.create_repo(private, repo_type="space", space_sdk="static", private=True)
    answers = [httpx.get(f"{live_hub.url}/api/spaces/{rid}/secrets") for rid in (private, missing)]
    assert [(r.status_code, r.headers["X-Error-Message"]) for r in answers] == [(401, "Repository not found")] * 2


def test_private_space_runtime_answers_like_a_missing_one(api, bob_api):
    rid = f"alice/{unique_name()}"
    api.create_repo(rid, repo_type="space", space_sdk="static", private=True)
    assert api.get_space_runtime(rid).stage
    with pytest.raises(RepositoryNotFoundError):
        bob_api.get_space_runtime(rid)
    with pytest.raises(RepositoryNotFoundError):
        bob_api.get_space_runtime(f"alice/{unique_name()}")


def test_duplicate_space_copies_files_not_secrets(api, space_id):
    api.upload_file(path_or_fileobj=b"print('hi')\n", path_in_repo="app.py", repo_id=space_id, repo_type="space")
    api.add_space_secret(space_id, "SOURCE_ONLY", "x")
    target = f"alice/{unique_name()}"
    url = api.duplicate_repo(space_id, target, repo_type="space", private=True,
                             space_secrets=[{"key": "NEW", "value": "v"}],
                             space_variables=[{"key": "V", "value": "1"}])
    assert url.repo_id == target
    files = api.list_repo_files(target, repo_type="space")
    assert "app.py" in files and "README.md" in files
    assert api.space_info(target).private
    assert set(httpx.get(f"{api.endpoint}/api/spaces/{target}/secrets",
                         headers={"Authorization": f"Bearer {api.token}"}).json()) == {"NEW"}
    assert api.get_space_variables(target)["V"].value == "1"
    # Again, as gradio does (exist_ok): the 409 still names the url.
    again = api.duplicate_repo(space_id, target, repo_type="space", exist_ok=True)
    assert again.repo_id == target


def test_runtime_of_a_model_is_not_found(api, repo_id, live_hub):
    answer = httpx.get(f"{live_hub.url}/api/models/{repo_id}/runtime", headers={"Authorization": f"Bearer {api.token}"})
    assert answer.status_code == 404


def test_create_repo_sets_the_spaces_secrets_variables_and_settings(api, live_hub):
    """`create_repo(space_secrets=..., space_variables=..., space_sleep_time=...,
    space_hardware=...)`, as the Hub's Spaces guide shows: they are set on the new space (they
    were silently dropped: no secret, no variable, the default sleep time). Settings it could not
    take are a 400 before anything is created."""
    rid = f"alice/{unique_name()}"
    with pytest.warns(UserWarning, match="cpu-basic"):  # the client's own note about free hardware
        api.create_repo(rid, repo_type="space", space_sdk="gradio", space_hardware=SpaceHardware.CPU_BASIC,
                        space_sleep_time=3600, space_secrets=[{"key": "API_KEY", "value": "created-s3cr3t"}],
                        space_variables=[{"key": "MODEL", "value": "alice/tiny", "description": "which"}])
    assert set(api.get_space_secrets(rid)) == {"API_KEY"}
    variables = api.get_space_variables(rid)
    assert variables["MODEL"].value == "alice/tiny" and variables["MODEL"].description == "which"
    assert api.get_space_runtime(rid).sleep_time == 3600
    assert "created-s3cr3t" not in httpx.get(f"{live_hub.url}/api/spaces/{rid}/secrets",
                                             headers={"Authorization": f"Bearer {api.token}"}).text
    # An organisation's write member may create a space there with its first settings (not
    # administer it later): this was a 403 after the space had been created.
    member, org = unique_name("member"), new_org_of_alice(live_hub, api)  # once the server sees alice in it
    live_hub.cli("user", "create", member)
    token = live_hub.cli("token", "create", member, "--role", "write").stdout.strip().splitlines()[-1]
    live_hub.cli("org", "add-member", org, member, "--role", "write")
    member_api = HfApi(endpoint=live_hub.url, token=token)
    member_api.create_repo(f"{org}/app", repo_type="space", space_sdk="static",
                           space_variables=[{"key": "MODE", "value": "demo"}])
    assert api.get_space_variables(f"{org}/app")["MODE"].value == "demo"  # alice administers the org
    with pytest.raises(HfHubHTTPError) as not_admin:
        member_api.add_space_variable(f"{org}/app", "OTHER", "x")
    assert not_admin.value.response.status_code == 403
    refused = f"alice/{unique_name()}"
    for bad in ({"space_secrets": [{"key": "not a name", "value": "x"}]},
                {"space_variables": [{"key": "HF_ENDPOINT", "value": "x"}]},
                {"space_hardware": "a100-large"}):
        with pytest.raises(HfHubHTTPError) as error:
            api.create_repo(refused, repo_type="space", space_sdk="gradio", **bad)
        assert error.value.response.status_code == 400
        with pytest.raises(RepositoryNotFoundError):
            api.space_info(refused)  # nothing was created


def test_list_spaces_expands_runtime_and_subdomain(api, space_id):
    """`list_spaces(expand=["runtime"])` gives each space's runtime, as `space_info` does (it was
    accepted and left out: `runtime` None)."""
    api.pause_space(space_id)
    listed = {s.id: s for s in api.list_spaces(author="alice", expand=["runtime", "subdomain", "sdk"])}
    assert listed[space_id].runtime is not None and listed[space_id].runtime.stage == "PAUSED"
    assert listed[space_id].subdomain == api.space_info(space_id).subdomain and listed[space_id].sdk == "gradio"
    plain = {s.id: s for s in api.list_spaces(author="alice", expand=["sdk"])}
    assert plain[space_id].runtime is None  # only what was asked for
