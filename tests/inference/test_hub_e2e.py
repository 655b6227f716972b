"""End to end on the real hub: models uploaded with huggingface_hub, served through HubModelSource
(``aicommons serve`` from the shared ``live_hub`` fixture), used with the real clients.

The access rules of inference (private, gated, administrators only) are tested here, through the
hub's own auth middleware, tokens and model source; the in-thread server of the other inference
tests only names callers for its fairness tests."""

from __future__ import annotations

import re

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, unique_name

pytestmark = pytest.mark.inference
HEX40 = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def hub_models(live_hub, model_dirs):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    ids = {"llama": f"alice/{unique_name('tiny-llama')}", "minilm": f"alice/{unique_name('minilm')}",
           "private": f"alice/{unique_name('private-llama')}", "gated": f"alice/{unique_name('gated-llama')}"}
    commits = {}
    for key, folder, private in (("llama", model_dirs["llama"], False), ("minilm", model_dirs["minilm"], False),
                                 ("private", model_dirs["llama"], True), ("gated", model_dirs["llama"], False)):
        api.create_repo(ids[key], private=private)
        commits[key] = api.upload_folder(repo_id=ids[key], folder_path=str(folder)).oid
    api.update_repo_settings(ids["gated"], gated="manual")
    return ids, commits


@pytest.fixture(scope="module")
def admin(live_hub) -> tuple[str, dict[str, str]]:
    """A hub administrator (a real account and token): its name and Authorization headers."""
    name = unique_name("root")
    live_hub.cli("user", "create", name, "--admin")
    return name, {"Authorization": "Bearer " + live_hub.cli("token", "create", name).stdout.splitlines()[-1]}


# A request that loads its model waits for the load: seconds on a quiet box, minutes while the rest of
# the suite loads CI's two cores (a full run saw one pass 120 s). The slow tests get 20 minutes.
FIRST_ANSWER_S = 300
SLOW = pytest.mark.timeout(1200)

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


@SLOW
def test_private_and_gated_models_need_access(live_hub, hub_models):
    ids, _commits = hub_models
    alice, bob = {"Authorization": f"Bearer {ALICE_TOKEN}"}, {"Authorization": f"Bearer {BOB_TOKEN}"}
    with httpx.Client(base_url=live_hub.url, timeout=FIRST_ANSWER_S) as http:
        private = {"model": ids["private"], **CHAT}
        anonymous = http.post("/v1/chat/completions", json=private)
        assert anonymous.status_code == 401  # invisible: answered like a missing repo to anonymous callers
        assert ids["private"] not in anonymous.text
        assert http.post("/v1/chat/completions", json=private, headers=bob).status_code == 404
        tgi = http.post(f"/models/{ids['private']}/generate", json={"inputs": "x"}, headers=bob)
        assert tgi.status_code == 404 and tgi.headers["x-error-code"] == "RepoNotFound"
        assert http.post("/v1/chat/completions", json=private, headers=alice).status_code == 200
        for headers in ({}, bob):
            listed = http.get("/v1/models", headers=headers).json()["data"]
            assert ids["private"] not in {m["id"] for m in listed} and ids["llama"] in {m["id"] for m in listed}
        assert ids["private"] in {m["id"] for m in http.get("/v1/models", headers=alice).json()["data"]}

        gated = {"model": ids["gated"], **CHAT}
        refused = http.post("/v1/chat/completions", json=gated, headers=bob)
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
        assert http.post("/v1/chat/completions", json=gated, headers=alice).status_code == 200  # the owner
        assert http.post(f"/api/models/{ids['gated']}/ask-access", json={"reason": "eval"},
                         headers=bob).json()["status"] == "pending"
        assert http.post("/v1/chat/completions", json=gated, headers=bob).status_code == 403  # not yet accepted
        from huggingface_hub import HfApi

        HfApi(endpoint=live_hub.url, token=ALICE_TOKEN).accept_access_request(ids["gated"], "bob")
        assert http.post("/v1/chat/completions", json=gated, headers=bob).status_code == 200


def test_metrics_named_after_vllm(live_hub, hub_models, admin):
    ids, _commits = hub_models
    _name, admin = admin
    alice = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    with httpx.Client(base_url=live_hub.url, timeout=FIRST_ANSWER_S) as http:
        assert http.post("/v1/chat/completions", json={"model": ids["llama"], **CHAT}, headers=alice).status_code == 200
        assert http.post("/v1/embeddings", json={"model": ids["minilm"], "input": ["a", "b"]},
                         headers=alice).status_code == 200
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers=alice).status_code == 403
        text = http.get("/metrics", headers=admin).text
    for name in ("hub_time_to_first_token_seconds_bucket", "hub_inter_token_latency_seconds_bucket",
                 "hub_e2e_request_latency_seconds_bucket", "hub_request_queue_time_seconds_bucket",
                 "hub_prompt_tokens_total", "hub_generation_tokens_total", "hub_num_requests_running",
                 "hub_num_requests_waiting", "hub_models_loaded", "hub_model_loads_total",
                 "hub_embedding_batch_size_bucket", "hub_model_requests_in_flight", "hub_requests_total"):
        assert name in text, name
    assert f'model="{ids["llama"]}"' in text and "token:" not in text and "user:" not in text  # never by user


def test_openai_client_on_uploaded_models(live_hub, hub_models):
    ids, commits = hub_models
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=FIRST_ANSWER_S) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=ids["llama"], messages=[{"role": "user", "content": "hello"}], max_tokens=5, temperature=0)
        reply = raw.parse()
        assert reply.system_fingerprint == commits["llama"] == raw.headers["x-model-revision"]
        assert raw.headers["x-model-license"] == "apache-2.0"
        chunks = list(client.chat.completions.create(model=ids["llama"], messages=[{"role": "user", "content": "hello"}],
                                                     max_tokens=5, temperature=0, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.choices[0].message.content
        emb = client.embeddings.create(model=ids["minilm"], input=["a fox", "a dog"])
        assert np.array([d.embedding for d in emb.data]).shape == (2, 384)
        assert {ids["llama"], ids["minilm"]} <= {m.id for m in client.models.list()}


def test_token_id_embeddings_and_prefill_through_worker_processes(live_hub, hub_models, model_dirs):
    """Both answers need the model in its worker process: token-id embeddings (the worker pads ids,
    the hub bounds them by the worker's vocabulary) and TGI's prefill (a ``Run`` message to the
    generator's worker)."""
    from huggingface_hub import InferenceClient
    from transformers import AutoTokenizer

    ids, commits = hub_models
    tokenizer = AutoTokenizer.from_pretrained(model_dirs["minilm"])
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=FIRST_ANSWER_S) as client:
        raw = client.embeddings.with_raw_response.create(model=ids["minilm"], input=[tokenizer("a fox")["input_ids"]])
        as_text = client.embeddings.create(model=ids["minilm"], input="a fox")
        assert raw.headers["x-model-revision"] == commits["minilm"]
        np.testing.assert_allclose(raw.parse().data[0].embedding, as_text.data[0].embedding, atol=1e-4)
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model=ids["minilm"], input=[[len(tokenizer)]])
    with InferenceClient(model=f"{live_hub.url}/models/{ids['llama']}", token=ALICE_TOKEN, timeout=FIRST_ANSWER_S) as hf:
        out = hf.text_generation("the fox", max_new_tokens=2, details=True, decoder_input_details=True)
    prefill = out.details.prefill
    assert len(prefill) >= 2 and prefill[0].logprob is None and all(t.logprob < 0 for t in prefill[1:])
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=FIRST_ANSWER_S) as client:
        echoed = client.completions.create(model=ids["llama"], prompt="the fox", echo=True, logprobs=2, max_tokens=1)
    lp = echoed.choices[0].logprobs
    assert lp.token_logprobs[: len(prefill)] == pytest.approx([None] + [t.logprob for t in prefill[1:]], abs=1e-4)
    assert all(len(top) == 2 for top in lp.top_logprobs[1:])


def test_inference_client_and_access_rules(live_hub, hub_models):
    from huggingface_hub import InferenceClient

    ids, commits = hub_models
    with InferenceClient(model=f"{live_hub.url}/models/{ids['llama']}", token=ALICE_TOKEN, timeout=FIRST_ANSWER_S) as hf:
        assert "".join(hf.text_generation("the fox", max_new_tokens=4, stream=True)) == \
            hf.text_generation("the fox", max_new_tokens=4)
    body = {"model": ids["private"], "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    url = live_hub.url + "/v1/chat/completions"
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {BOB_TOKEN}"}, timeout=FIRST_ANSWER_S).status_code == 404
    # Anonymous: the hub answers 401 (as the HF Hub does without a token); either way, nothing leaks.
    assert httpx.post(url, json=body, timeout=FIRST_ANSWER_S).status_code in (401, 404)
    mine = httpx.post(url, json=body, headers={"Authorization": f"Bearer {ALICE_TOKEN}"}, timeout=FIRST_ANSWER_S)
    assert mine.status_code == 200 and mine.json()["system_fingerprint"] == commits["private"]


def test_models_retrieve_and_health_check_follow_the_access_rules(live_hub, hub_models, model_dirs):
    """``client.models.retrieve`` (``GET /v1/models/{id}``, spec 1.4) and TGI's ``/health`` under a
    model's URL (``InferenceClient.health_check``) were 404 for every model; the chat route under a
    model's URL answered with the client's placeholder ``"dummy"`` as the model."""
    from huggingface_hub import InferenceClient

    ids, commits = hub_models
    url = live_hub.url + "/v1"
    with openai.OpenAI(base_url=url, api_key=ALICE_TOKEN, max_retries=0, timeout=FIRST_ANSWER_S) as alice, \
            openai.OpenAI(base_url=url, api_key=BOB_TOKEN, max_retries=0, timeout=FIRST_ANSWER_S) as bob:
        model = alice.models.retrieve(ids["llama"])
        assert (model.id, model.object, model.owned_by) == (ids["llama"], "model", "alice") and model.created > 0
        assert model.task == "text-generation" and model.revision == commits["llama"]
        assert alice.models.retrieve(ids["minilm"] + "@main").revision == commits["minilm"]
        assert alice.models.retrieve(ids["private"]).revision == commits["private"]
        with pytest.raises(openai.NotFoundError):
            bob.models.retrieve(ids["private"])
        with pytest.raises(openai.NotFoundError):
            alice.models.retrieve("alice/" + unique_name("missing"))
    # A model without a card is served as its config.json says; retrieve names that task.
    from huggingface_hub import HfApi

    bare = f"alice/{unique_name('no-card')}"
    HfApi(endpoint=live_hub.url, token=ALICE_TOKEN).create_repo(bare)
    HfApi(endpoint=live_hub.url, token=ALICE_TOKEN).upload_folder(repo_id=bare, folder_path=str(model_dirs["llama"]),
                                                                  ignore_patterns=["README.md"])
    with openai.OpenAI(base_url=url, api_key=ALICE_TOKEN, max_retries=0, timeout=FIRST_ANSWER_S) as alice:
        assert alice.models.retrieve(bare).task == "text-generation"
    assert httpx.get(f"{url}/models/{ids['private']}", timeout=60).status_code == 401  # anonymous, as the Hub
    mine = InferenceClient(model=f"{live_hub.url}/models/{ids['llama']}", token=ALICE_TOKEN, provider="hf-inference")
    assert mine.health_check()
    assert not InferenceClient(model=f"{live_hub.url}/models/{ids['private']}", token=BOB_TOKEN,
                               provider="hf-inference").health_check()
    assert mine.chat_completion([{"role": "user", "content": "hi"}], max_tokens=2).model == ids["llama"]


def test_administrators_see_load_and_unload_models(live_hub, hub_models, admin):
    ids, commits = hub_models
    name, admin = admin
    with httpx.Client(base_url=live_hub.url, timeout=FIRST_ANSWER_S) as http:
        # Only administrators: the list names private models too.
        assert http.get("/models/loaded").status_code == 401
        assert http.get("/models/loaded", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}).status_code == 403
        assert http.post(f"/models/{ids['private']}/unload",
                         headers={"Authorization": f"Bearer {BOB_TOKEN}"}).status_code == 403

        loaded = http.post(f"/models/{ids['private']}/load", headers=admin)
        assert loaded.status_code == 200
        assert loaded.json() == {"model": ids["private"], "revision": commits["private"],
                                 "task": "text-generation", "engine": "transformers-cb"}
        listed = {m["model"]: m for m in http.get("/models/loaded", headers=admin).json()["models"]}
        assert listed[ids["private"]]["revision"] == commits["private"] and listed[ids["private"]]["bytes"] > 0

        assert http.post(f"/models/{ids['private']}/unload", headers=admin).json() == {"unloaded": 1, "busy": 0}
        assert ids["private"] not in {m["model"] for m in http.get("/models/loaded", headers=admin).json()["models"]}
        # /metrics names private models with their usage (issue 9 finding 5): administrators only.
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}).status_code == 403
        metrics = http.get("/metrics", headers=admin)
        assert metrics.status_code == 200 and f'model="{ids["private"]}"' in metrics.text
    actions = live_hub.cli("audit", "--actor", name).stdout
    assert f"POST /models/{ids['private']}/load -> 200" in actions  # operator actions are audited


def test_inference_client_on_the_hubs_root_url(live_hub, hub_models):
    """``InferenceClient(base_url=<hub>)`` with no model: the task methods post to the root URL itself
    (``text_generation``: ``POST /`` with ``{"inputs", "parameters"}``) and got a plain-text 405; now a
    TGI-shaped JSON error the client shows, saying how to name a model. ``chat_completion`` without a
    model posts ``/v1/chat/completions`` with the client's placeholder ``"model": "dummy"``: a 400 with
    the same advice (it said only that 'model' must be a repo id). A chat body with ``messages`` and a real ``model`` posted to the root is answered."""
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError, ValidationError

    ids, commits = hub_models
    hub = InferenceClient(base_url=live_hub.url, token=ALICE_TOKEN, timeout=FIRST_ANSWER_S)
    # text_generation reads TGI's error_type: a ValidationError (from the HTTP error) with the message.
    with pytest.raises(ValidationError) as refused:
        hub.text_generation("hi", model=None)
    failures = [(refused.value.__cause__, str(refused.value))]
    for call in (lambda: hub.feature_extraction("hi"), lambda: hub.text_classification("hi")):
        with pytest.raises(HfHubHTTPError) as refused:
            call()
        failures.append((refused.value, str(refused.value)))
    for error, shown in failures:
        assert error.response.status_code == 404, error.response.text
        assert error.response.json()["error_type"] == "validation"
        assert shown.count("POST / names no model") == 1  # what the client shows
        assert f"InferenceClient(model='{live_hub.url}/models/NS/NAME')" in shown
        assert f"base_url='{live_hub.url}/v1'" in shown
    with pytest.raises(HfHubHTTPError) as refused:
        hub.chat_completion([{"role": "user", "content": "hi"}], max_tokens=2)
    assert refused.value.response.status_code == 400
    assert "the placeholder InferenceClient sends" in str(refused.value)
    assert f"base_url='{live_hub.url}/v1'" in str(refused.value)

    # A chat completion body posted to the root names its model: answered, not refused.
    chat = {"model": ids["llama"], "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    answered = httpx.post(live_hub.url + "/", json=chat, headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
                          timeout=FIRST_ANSWER_S)
    assert answered.status_code == 200, answered.text
    assert answered.json()["object"] == "chat.completion" and answered.json()["system_fingerprint"] == commits["llama"]
    # ... with the access rules of /v1/chat/completions: bob cannot reach alice's private model.
    private = {**chat, "model": ids["private"]}
    assert httpx.post(live_hub.url + "/", json=private, headers={"Authorization": f"Bearer {BOB_TOKEN}"},
                      timeout=FIRST_ANSWER_S).status_code == 404
