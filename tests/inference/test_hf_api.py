"""``huggingface_hub.InferenceClient`` against the live server: every HF task, TGI routes, chat."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest

from .conftest import CLASSIFIER, FILL_MASK, LLAMA, MINILM, NER

pytestmark = pytest.mark.inference
HEX40 = re.compile(r"^[0-9a-f]{40}$")


_clients: list = []


@pytest.fixture(autouse=True)
def _close_clients():
    """InferenceClient keeps each streamed response open until the client is closed."""
    yield
    while _clients:
        _clients.pop().close()


def client_for(server, repo_id, token="alice"):
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=f"{server.url}/models/{repo_id}", token=token, timeout=60)
    _clients.append(client)
    return client


def test_feature_extraction_and_similarity(server, model_dirs):
    from sentence_transformers import SentenceTransformer

    client = client_for(server, MINILM)
    vecs = client.feature_extraction("the quick brown fox")
    assert vecs.shape == (1, 384)
    expected = SentenceTransformer(str(model_dirs["minilm"]), device="cpu").encode(["the quick brown fox"])
    np.testing.assert_allclose(vecs, expected, atol=1e-4)
    scores = client.sentence_similarity("a fox", other_sentences=["a fox", "stock markets fell"])
    assert len(scores) == 2 and scores[0] == pytest.approx(1.0, abs=1e-4) and scores[1] < scores[0]


def test_text_classification(server):
    result = client_for(server, CLASSIFIER).text_classification("good day")
    assert {r.label for r in result} == {"NEGATIVE", "POSITIVE"}
    assert sum(r.score for r in result) == pytest.approx(1.0, abs=1e-4)
    top = client_for(server, CLASSIFIER).text_classification("good day", top_k=1)
    assert len(top) == 1


def test_fill_mask(server):
    result = client_for(server, FILL_MASK).fill_mask("the quick [MASK] fox", top_k=3)
    assert len(result) == 3
    assert all(r.sequence and r.token_str is not None and 0 <= r.score <= 1 for r in result)


def test_fill_mask_without_the_mask_token_is_a_400_naming_it(server):
    """feature_extraction() or a plain text sent to a fill-mask model: the pipeline raised
    (PipelineException, a 500 "in the engine") and failed every input batched with it."""
    from huggingface_hub.errors import BadRequestError

    client = client_for(server, FILL_MASK)
    with pytest.raises(BadRequestError, match=re.escape("No mask_token ([MASK]) found on the input")):
        client.fill_mask("the quick brown fox")
    r = httpx.post(f"{server.url}/models/{FILL_MASK}", json={"inputs": ["a [MASK] fox", "no mask here"]},
                   headers={"Authorization": "Bearer alice"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"] == "No mask_token ([MASK]) found on the input 1", r.text
    assert len(client.fill_mask("the quick [MASK] fox", top_k=2)) == 2  # the model still answers


def test_sentence_similarity_on_another_task_names_the_models_task(server):
    from huggingface_hub.errors import BadRequestError

    with pytest.raises(BadRequestError, match=f"{CLASSIFIER} is a text-classification model: it does not compare"):
        client_for(server, CLASSIFIER).sentence_similarity("a fox", other_sentences=["a dog"])


def test_token_classification(server):
    result = client_for(server, NER).token_classification("alice lives in paris")
    assert isinstance(result, list)
    for entity in result:
        assert entity.start is not None and entity.end is not None and entity.score >= 0


def test_text_generation_plain_details_and_stream(server):
    client = client_for(server, LLAMA)
    text = client.text_generation("the quick fox", max_new_tokens=6)
    assert isinstance(text, str)
    detailed = client.text_generation("the quick fox", max_new_tokens=6, details=True)
    assert detailed.generated_text == text
    assert detailed.details.generated_tokens == len(detailed.details.tokens) <= 6
    assert detailed.details.finish_reason in ("length", "eos_token")
    streamed = list(client.text_generation("the quick fox", max_new_tokens=6, stream=True))
    assert "".join(streamed) == text
    events = list(client.text_generation("the quick fox", max_new_tokens=6, stream=True, details=True))
    assert events[-1].generated_text == text and events[-1].details.generated_tokens == len(events)


def test_chat_completion_through_model_url(server):
    client = client_for(server, LLAMA)
    reply = client.chat_completion([{"role": "user", "content": "hello"}], max_tokens=5, temperature=0)
    assert HEX40.match(reply.system_fingerprint)
    assert reply.choices[0].message.role == "assistant"
    chunks = list(client.chat_completion([{"role": "user", "content": "hello"}], max_tokens=5, temperature=0,
                                         stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.choices[0].message.content


def test_tgi_generate_routes_and_info(server):
    base = f"{server.url}/models/{LLAMA}"
    r = httpx.post(base + "/generate", json={"inputs": "the fox", "parameters": {"max_new_tokens": 4,
                                                                                 "details": True}}, timeout=60)
    assert r.status_code == 200 and HEX40.match(r.headers["x-model-revision"])
    body = r.json()
    assert set(body) == {"generated_text", "details"} and body["details"]["generated_tokens"] <= 4
    with httpx.stream("POST", base + "/generate_stream", json={"inputs": "the fox",
                                                               "parameters": {"max_new_tokens": 4}}, timeout=60) as s:
        lines = [line for line in s.iter_lines() if line.startswith("data:")]
    assert lines and '"generated_text":null' in lines[0] and '"details":{' in lines[-1]
    info = httpx.get(base + "/info", timeout=30).json()
    assert info["model_id"] == LLAMA and HEX40.match(info["model_sha"])
    assert info["model_pipeline_tag"] == "text-generation" and info["license"] == "apache-2.0"
    assert (info["model_device_type"], info["model_dtype"]) == ("cpu", "float32")  # the loaded model's


def test_tgi_info_names_a_real_dtype_where_the_setting_is_auto(server):
    """``/info`` answered ``"model_dtype": "auto"`` (the setting) where TGI clients read the dtype the
    model runs in: under ``auto`` it is the loaded model's own, and before a load the one it would
    load with (float32 on CPU, bfloat16 on CUDA)."""
    import dataclasses

    settings = server.service.settings
    server.service.settings = dataclasses.replace(settings, dtype="auto", device="auto")
    try:
        for model in (LLAMA, NER):
            info = httpx.get(f"{server.url}/models/{model}/info", timeout=30).json()
            assert info["model_dtype"] in ("float32", "bfloat16") and info["model_device_type"] in ("cpu", "cuda")
            assert info["model_dtype"] == ("bfloat16" if info["model_device_type"] == "cuda" else "float32")
    finally:
        server.service.settings = settings


def test_task_errors_use_tgi_shape(server):
    from huggingface_hub.errors import ValidationError

    r = httpx.post(f"{server.url}/models/{MINILM}", json={"inputs": 42}, timeout=30)
    assert r.status_code == 400 and set(r.json()) == {"error", "error_type"}
    r = httpx.post(f"{server.url}/models/nobody/nothing", json={"inputs": "x"}, timeout=30)
    assert r.status_code == 404 and r.json()["error_type"] == "not_found"
    r = httpx.post(f"{server.url}/models/{MINILM}/generate", json={"inputs": "x"}, timeout=30)
    assert r.status_code == 400 and "cannot serve text-generation" in r.json()["error"]
    with pytest.raises(ValidationError):  # TGI error_type "validation" -> the client's own class
        client_for(server, LLAMA).text_generation("hello", max_new_tokens=100000)


def test_keep_alive_in_a_request_decides_when_its_model_unloads(server):
    def loaded():
        return {e.resolved.repo_id for e in server.service.list_loaded()}

    url = f"{server.url}/models/{CLASSIFIER}"
    auth = {"Authorization": "Bearer alice"}
    r = httpx.post(url, json={"inputs": "good day", "keep_alive": 0}, headers=auth, timeout=60)
    assert r.status_code == 200 and CLASSIFIER not in loaded()  # unloaded once answered
    r = httpx.post(url, json={"inputs": "good day", "keep_alive": "-1"}, headers=auth, timeout=60)
    assert r.status_code == 200 and CLASSIFIER in loaded()
    bad = httpx.post(url, json={"inputs": "good day", "keep_alive": "soon"}, headers=auth, timeout=60)
    assert bad.status_code == 400 and "keep_alive" in bad.json()["error"]


def test_text_generation_truncate_keeps_the_prompts_last_tokens(server):
    """TGI's ``truncate`` (``text_generation(..., truncate=N)``) keeps the prompt's last N tokens; it
    was ignored, so a prompt longer than the context was refused whatever ``truncate`` said."""
    from huggingface_hub.errors import ValidationError

    client = client_for(server, LLAMA)
    long = "the quick brown fox jumps over the lazy dog " * 300  # thousands of tokens; the context is 1024
    with pytest.raises(ValidationError):
        client.text_generation(long, max_new_tokens=3)
    assert isinstance(client.text_generation(long, max_new_tokens=3, truncate=16), str)
    r = httpx.post(f"{server.url}/models/{LLAMA}/generate", json={"inputs": long, "parameters": {
        "max_new_tokens": 3, "truncate": 16}}, timeout=60)
    assert r.status_code == 200 and r.headers["x-prompt-tokens"] == "16"
    bad = httpx.post(f"{server.url}/models/{LLAMA}/generate", json={"inputs": "x", "parameters": {"truncate": 0}},
                     timeout=60)
    assert bad.status_code == 400 and "truncate" in bad.json()["error"]


def test_decoder_input_details_gives_the_prompts_prefill(server, model_dirs):
    """TGI's ``decoder_input_details=True`` answers ``details.prefill``: one entry per prompt token
    (id, text, logprob under the model; the first token's logprob null). The list came back empty."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    client = client_for(server, LLAMA)
    prompt = "the quick brown fox"
    plain = client.text_generation(prompt, max_new_tokens=4, details=True)
    out = client.text_generation(prompt, max_new_tokens=4, details=True, decoder_input_details=True)
    assert out.generated_text == plain.generated_text and plain.details.prefill == []
    tokenizer = AutoTokenizer.from_pretrained(model_dirs["llama"])
    ids = tokenizer(prompt)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(model_dirs["llama"], dtype=torch.float32).eval()
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].float()
    expected = torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0].tolist()
    prefill = out.details.prefill
    assert [t.id for t in prefill] == ids
    assert [t.text for t in prefill] == [tokenizer.decode([i]) for i in ids]
    assert prefill[0].logprob is None
    np.testing.assert_allclose([t.logprob for t in prefill[1:]], expected, atol=1e-3)
    # TGI refuses it on a stream (its details carry no prefill); so do we, rather than drop it silently.
    r = httpx.post(f"{server.url}/models/{LLAMA}/generate_stream", timeout=60, json={
        "inputs": prompt, "parameters": {"max_new_tokens": 2, "details": True, "decoder_input_details": True}})
    assert r.status_code == 400 and "decoder_input_details" in r.json()["error"]


def test_another_tasks_call_is_refused_not_answered_in_the_wrong_shape(server):
    """``InferenceClient(model=URL)`` sends no task: the hub answers the model's own task. A call of
    another task's method got that answer, which the client then parsed as its own (a classifier
    "answered" zero-shot image classification; a generator's JSON reached PIL as an "image"). A
    parameter the model's task does not take, or an ``Accept`` the task cannot answer, is now a
    clear 4xx naming the model's task."""
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as err:  # candidate_labels: the classifier's task has none
        client_for(server, CLASSIFIER).zero_shot_classification("a fox", ["animal", "car"])
    assert err.value.response.status_code == 400
    assert "candidate_labels" in str(err.value) and "text-classification" in str(err.value)
    with pytest.raises(HfHubHTTPError) as err:  # Accept: image/png
        client_for(server, LLAMA).text_to_image("a cat")
    assert err.value.response.status_code == 406 and "text-generation" in str(err.value)
    with pytest.raises(HfHubHTTPError) as err:  # not a TGI parameter
        client_for(server, LLAMA).text_classification("good day", function_to_apply="softmax")
    assert err.value.response.status_code == 400 and "function_to_apply" in str(err.value)
    r = httpx.post(f"{server.url}/models/{FILL_MASK}", json={"inputs": "the [MASK]", "parameters": {"nope": 1}},
                   timeout=60)
    assert r.status_code == 400 and "nope" in r.json()["error"] and r.headers["x-model-revision"]
    # With the task in the URL, the hub checks it whatever the call sends.
    for task in ("token-classification", "object-detection"):
        with pytest.raises(HfHubHTTPError) as err:
            client_for(server, f"{CLASSIFIER}/pipeline/{task}").text_classification("good day")
        assert err.value.response.status_code == 400 and task in str(err.value)
    # What each claimed task's own client method sends still works (None values are dropped).
    assert client_for(server, NER).token_classification("alice lives in paris", stride=4) is not None
    assert len(client_for(server, CLASSIFIER).text_classification("good day", top_k=1,
                                                                  function_to_apply="sigmoid")) == 1
    assert client_for(server, LLAMA).text_generation("the fox", max_new_tokens=2, typical_p=0.9, watermark=False)


def test_feature_extraction_prompt_name_and_truncation_direction(server, source, model_dirs, tmp_path):
    """``feature_extraction(prompt_name=...)`` (a sentence-transformers prompt such as E5's "query: ")
    and ``truncation_direction`` were accepted and ignored: the vector of the bare text came back."""
    import json
    import shutil

    from huggingface_hub.errors import HfHubHTTPError
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "prompted"
    shutil.copytree(model_dirs["minilm"], folder)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "passage": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    source.add("acme/prompted-minilm", folder)
    st = SentenceTransformer(str(folder), device="cpu")
    client = client_for(server, "acme/prompted-minilm")
    got = client.feature_extraction("a quick fox", prompt_name="query")
    np.testing.assert_allclose(got[0], st.encode("a quick fox", prompt_name="query"), atol=1e-4)
    assert not np.allclose(got[0], st.encode("a quick fox"), atol=1e-3)
    with pytest.raises(HfHubHTTPError) as err:  # a name the model has no prompt for
        client.feature_extraction("a quick fox", prompt_name="title")
    assert err.value.response.status_code == 400 and "'query'" in str(err.value) and "'passage'" in str(err.value)
    # (sentence-transformers gives every model empty "query" and "document" prompts, as here)
    plain = client_for(server, MINILM)
    np.testing.assert_allclose(plain.feature_extraction("a fox", prompt_name="query"), plain.feature_extraction("a fox"),
                               atol=1e-5)
    with pytest.raises(HfHubHTTPError) as err:
        plain.feature_extraction("a quick fox", prompt_name="passage")
    assert err.value.response.status_code == 400 and "prompt_name" in str(err.value)
    assert client.feature_extraction("a quick fox", truncate=True, truncation_direction="right").shape == (1, 384)
    with pytest.raises(HfHubHTTPError) as err:
        client.feature_extraction("a quick fox", truncate=True, truncation_direction="left")
    assert err.value.response.status_code == 400 and "truncation_direction" in str(err.value)


def test_prefill_of_a_prompt_longer_than_one_scoring_pass(server, model_dirs, monkeypatch):
    """A prompt is scored a chunk at a time with a KV cache (bounded logits memory); the chunks'
    logprobs equal one pass over the whole prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aicommons.inference.engines import transformers_lm

    monkeypatch.setattr(transformers_lm, "_SCORE_CHUNK", 3)
    prompt = "the quick brown fox jumps over the lazy dog by the river"
    out = client_for(server, LLAMA).text_generation(prompt, max_new_tokens=1, details=True, decoder_input_details=True)
    ids = AutoTokenizer.from_pretrained(model_dirs["llama"])(prompt)["input_ids"]
    assert len(ids) > 7
    model = AutoModelForCausalLM.from_pretrained(model_dirs["llama"], dtype=torch.float32).eval()
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0].float()
    expected = torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0].tolist()
    assert [t.id for t in out.details.prefill] == ids
    np.testing.assert_allclose([t.logprob for t in out.details.prefill[1:]], expected, atol=1e-3)
