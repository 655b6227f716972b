"""``GET /v1/models`` on the live hub: the app factory's adapter lists the hub's models
(``hub.snapshots.ModelSnapshots.list_models``) with the caller's own visibility."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, auth, unique_name

pytestmark = pytest.mark.inference
CARD = b"---\npipeline_tag: feature-extraction\n---\n\nlisted\n"


def _listed(live_hub, token: str | None) -> set[str]:
    response = httpx.get(f"{live_hub.url}/v1/models", headers=auth(token) if token else {}, timeout=30)
    assert response.status_code == 200
    return {row["id"] for row in response.json()["data"]}


def test_models_are_listed_as_far_as_the_caller_may_see_them(live_hub):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    public, private, untagged = (f"alice/{unique_name(n)}" for n in ("listed", "hidden", "untagged"))
    for repo_id in (public, private, untagged):
        api.create_repo(repo_id, private=repo_id == private)
    for repo_id in (public, private):
        api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=repo_id)
    mine, bobs, anonymous = _listed(live_hub, ALICE_TOKEN), _listed(live_hub, BOB_TOKEN), _listed(live_hub, None)
    assert {public, private} <= mine and untagged not in mine  # only models with a pipeline tag
    assert public in bobs and private not in bobs
    assert public in anonymous and private not in anonymous


def _task_models(live_hub, token: str | None, task: str) -> set[str]:
    response = httpx.get(f"{live_hub.url}/api/tasks", headers=auth(token) if token else {}, timeout=30)
    assert response.status_code == 200, response.text
    catalog = response.json()
    assert all(isinstance(entry["widgetModels"], list) for entry in catalog.values())  # what the client reads
    return {m["id"] for m in catalog[task]["models"]}


def test_api_tasks_lists_the_hosted_models_each_caller_may_use(live_hub):
    """``GET /api/tasks`` answered a JSON 404: the hosted models per task now, in the Hub's shape, as far
    as the caller may use them: a private model only to its owner's side, a gated one only to those
    with access (never recommended to someone whose call would be refused)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    card = b"---\npipeline_tag: text-classification\n---\n\nsentiment\n"
    public, private, gated = (f"alice/{unique_name(n)}" for n in ("cls", "cls-private", "cls-gated"))
    for repo_id in (public, private, gated):
        api.create_repo(repo_id, private=repo_id == private)
        api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=repo_id)
    settings = httpx.put(f"{live_hub.url}/api/models/{gated}/settings", json={"gated": "manual"},
                         headers=auth(ALICE_TOKEN), timeout=30)
    assert settings.status_code == 200, settings.text
    assert {public, private, gated} <= _task_models(live_hub, ALICE_TOKEN, "text-classification")
    bobs = _task_models(live_hub, BOB_TOKEN, "text-classification")
    assert public in bobs and private not in bobs and gated not in bobs
    anonymous = _task_models(live_hub, None, "text-classification")
    assert public in anonymous and private not in anonymous and gated not in anonymous
    assert public not in _task_models(live_hub, BOB_TOKEN, "feature-extraction")


def test_inference_client_without_a_model_names_the_task_and_sends_nothing_away(live_hub):
    """``InferenceClient()`` with ``HF_ENDPOINT`` set and no model reads ``/api/tasks`` and posts to
    ``widgetModels[0]`` on huggingface.co's router (its URL is fixed in the client), with the caller's
    token. It stopped at our 404; now it stops at the client's own "no recommended model" error naming
    the task, before any request leaves for a third party (this box has no route out: a request to the
    router would fail with a connection error instead)."""
    script = (
        "from huggingface_hub import InferenceClient\n"
        "client = InferenceClient()\n"
        "for call in (lambda: client.text_classification('good'), lambda: client.feature_extraction('x'),\n"
        "             lambda: client.chat_completion([{'role': 'user', 'content': 'hi'}])):\n"
        "    try:\n"
        "        call()\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_TOKEN": BOB_TOKEN, "HF_HUB_OFFLINE": "0"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout + out.stderr
    for line, task in zip(lines, ("text-classification", "feature-extraction", "conversational"), strict=True):
        assert line.startswith("ValueError Task " + task + " has no recommended model"), line


def test_openai_client_errors_name_the_cause(live_hub):
    """With the openai client: a wrong token was a bare "Error code: 401" (the auth middleware answered
    the Hub's flat ``{"error": "..."}``, which the client does not read a message from), a wrong model id
    "Repository not found" (the id is not echoed: the authz matrix wants private and missing answers
    byte for byte alike), and ``max_tokens: 0`` "must be between 1 and None"."""
    import openai

    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key="hf_not_a_token", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as refused:
            bad.models.list()
    assert refused.value.message == "Error code: 401 - Invalid credentials in Authorization header"
    assert refused.value.code == "invalid_api_key" and refused.value.type == "authentication_error"
    missing = f"alice/{unique_name('nope')}"
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=BOB_TOKEN, max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as not_found:
            client.chat.completions.create(model=missing, messages=[{"role": "user", "content": "hi"}])
        assert not_found.value.message.endswith(" - The model does not exist or you do not have access to it")
        assert not_found.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as bad_request:
            client.embeddings.create(model=missing, input="a", dimensions=0)
        assert bad_request.value.message.endswith(" - 'dimensions' must be at least 1") and bad_request.value.param == "dimensions"


def test_task_call_on_the_v1_base_url_says_what_to_do(live_hub):
    """``InferenceClient(base_url=f"{hub}/v1")`` (docs/inference.md's OpenAI form) then a task method,
    ``text_classification("good")``: the client posts to ``/v1`` itself, and got the web UI's 403 page,
    which it reported as "403 Forbidden: None. Cannot access content ... check your token"."""
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as refused:
        InferenceClient(base_url=f"{live_hub.url}/v1", token=BOB_TOKEN).text_classification("good")
    assert refused.value.response.status_code == 404 and "names no model" in str(refused.value)
    error = refused.value.response.json()["error"]
    assert error["param"] == "model" and f"InferenceClient(model='{live_hub.url}/models/NS/NAME')" in error["message"]


def test_an_openai_api_the_hub_does_not_serve_is_an_openai_404(live_hub):
    """``client.responses.create`` (the openai client's newer API) and the like got the web UI's
    plain-text 405, which the client shows as "Error code: 405" and nothing else."""
    import openai

    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=BOB_TOKEN, max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as refused:
            client.responses.create(model="alice/any", input="hi")
        assert "POST /v1/responses is not served by this hub" in refused.value.message
        assert "/v1/chat/completions" in refused.value.message
        with pytest.raises(openai.NotFoundError, match="GET /v1/files is not served"):
            client.files.list()
        assert client.models.list() is not None  # the served routes still answer
