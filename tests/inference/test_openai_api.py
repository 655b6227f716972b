"""The real ``openai`` client against a live server: chat, completions, embeddings, models."""

from __future__ import annotations

import re

import numpy as np
import openai
import pytest

from .conftest import LLAMA, MINILM

pytestmark = pytest.mark.inference
HEX40 = re.compile(r"^[0-9a-f]{40}$")


def test_embeddings_float_and_base64_match_sentence_transformers(openai_client, model_dirs):
    from sentence_transformers import SentenceTransformer

    texts = ["the quick brown fox", "a lazy dog sleeps"]
    as_b64 = openai_client.embeddings.create(model=MINILM, input=texts)  # the client asks for base64
    as_float = openai_client.embeddings.create(model=MINILM, input=texts, encoding_format="float")
    expected = SentenceTransformer(str(model_dirs["minilm"]), device="cpu").encode(texts)
    for got in (as_b64, as_float):
        assert [d.index for d in got.data] == [0, 1]
        np.testing.assert_allclose(np.array([d.embedding for d in got.data]), expected, atol=1e-4)
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens > 4


def test_embeddings_dimensions_and_revision_header(openai_client):
    raw = openai_client.embeddings.with_raw_response.create(model=MINILM, input="hello", dimensions=64,
                                                            encoding_format="float")
    assert HEX40.match(raw.headers["x-model-revision"])
    assert raw.headers["x-model-license"] == "apache-2.0"
    vec = np.array(raw.parse().data[0].embedding)
    assert vec.shape == (64,) and abs(np.linalg.norm(vec) - 1) < 1e-4


def test_chat_completion_json(openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model=LLAMA, messages=[{"role": "user", "content": "hello there"}], max_tokens=8, temperature=0)
    reply = raw.parse()
    assert reply.object == "chat.completion"
    assert HEX40.match(reply.system_fingerprint)
    assert raw.headers["x-model-revision"] == reply.system_fingerprint
    assert raw.headers["x-model-license"] == "apache-2.0"
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 8 and reply.usage.prompt_tokens > 3
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_greedy_is_deterministic_and_stream_matches_json(openai_client):
    kwargs = dict(model=LLAMA, messages=[{"role": "user", "content": "paris london"}], max_tokens=12,
                  temperature=0, extra_body={"ignore_eos": True})
    first = openai_client.chat.completions.create(**kwargs).choices[0].message.content
    second = openai_client.chat.completions.create(**kwargs).choices[0].message.content
    assert first == second
    chunks = list(openai_client.chat.completions.create(stream=True, stream_options={"include_usage": True},
                                                        **kwargs))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == first
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])
    assert all(HEX40.match(c.system_fingerprint) for c in chunks)


def test_stream_ends_with_done(server):
    import httpx

    body = {"model": LLAMA, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]"


def test_seed_reproducible_and_n_choices(openai_client):
    kwargs = dict(model=LLAMA, messages=[{"role": "user", "content": "blue river"}], max_tokens=10,
                  temperature=1.0, top_p=0.9, seed=1234, extra_body={"ignore_eos": True})
    a = openai_client.chat.completions.create(**kwargs).choices[0].message.content
    b = openai_client.chat.completions.create(**kwargs).choices[0].message.content
    assert a == b
    many = openai_client.chat.completions.create(n=3, **kwargs)
    assert sorted(c.index for c in many.choices) == [0, 1, 2]
    assert many.choices[0].message.content == a  # sample j uses seed + j
    assert many.usage.completion_tokens == 30


def test_stop_sequence_cuts_output(openai_client):
    base = dict(model=LLAMA, messages=[{"role": "user", "content": "one two"}], max_tokens=24, temperature=0,
                extra_body={"ignore_eos": True})
    full = openai_client.chat.completions.create(**base).choices[0].message.content
    assert len(full) > 6
    stop = full[3:6]
    cut = openai_client.chat.completions.create(stop=[stop], **base).choices[0]
    assert cut.message.content == full[: full.index(stop)]
    assert cut.finish_reason == "stop"
    streamed = openai_client.chat.completions.create(stop=stop, stream=True, **base)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == full[: full.index(stop)]


def test_completions_json_stream_and_echo(openai_client):
    reply = openai_client.completions.create(model=LLAMA, prompt=["the fox", "a dog"], max_tokens=5, temperature=0)
    assert reply.object == "text_completion" and sorted(c.index for c in reply.choices) == [0, 1]
    assert HEX40.match(reply.system_fingerprint)
    echoed = openai_client.completions.create(model=LLAMA, prompt="the fox", max_tokens=5, temperature=0, echo=True)
    assert echoed.choices[0].text.startswith("the fox")
    pieces = list(openai_client.completions.create(model=LLAMA, prompt="the fox", max_tokens=5, temperature=0,
                                                   stream=True))
    assert "".join(p.choices[0].text for p in pieces if p.choices) == \
        openai_client.completions.create(model=LLAMA, prompt="the fox", max_tokens=5, temperature=0).choices[0].text


def test_pinned_revision_answers_from_its_commit(openai_client, source):
    main = openai_client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "x"}],
                                                 max_tokens=2, temperature=0)
    v2 = openai_client.chat.completions.create(model=LLAMA + "@v2", messages=[{"role": "user", "content": "x"}],
                                               max_tokens=2, temperature=0)
    assert main.system_fingerprint != v2.system_fingerprint
    commit = source.repos[LLAMA].revisions["v2"][0]
    assert v2.system_fingerprint == commit
    pinned = openai_client.chat.completions.create(model=f"{LLAMA}@{commit}",
                                                   messages=[{"role": "user", "content": "x"}], max_tokens=2)
    assert pinned.system_fingerprint == commit


def test_models_list(openai_client):
    ids = {m.id for m in openai_client.models.list()}
    assert {LLAMA, MINILM} <= ids  # (who sees private models: test_hub_e2e.py, on the real hub)


def test_errors_use_openai_shape(openai_client):
    with pytest.raises(openai.NotFoundError) as err:
        openai_client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "x"}])
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.chat.completions.create(model=MINILM, messages=[{"role": "user", "content": "x"}])
    assert err.value.body["code"] == "model_not_supported"
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.chat.completions.create(model=LLAMA, messages=[{"role": "wizard", "content": "x"}])
    assert err.value.body["param"] == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "x"}],
                                              max_tokens=100000)
    assert err.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        openai_client.embeddings.create(model=LLAMA, input="x")


def _generated_ids(server, parameters: dict) -> list[int]:
    import httpx

    r = httpx.post(f"{server.url}/models/{LLAMA}/generate", timeout=60, json={
        "inputs": "the quick fox", "parameters": {"max_new_tokens": 40, "details": True, **parameters}})
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["details"]["tokens"]]


def test_presence_and_frequency_penalties_are_applied(openai_client, server):
    """``presence_penalty``/``frequency_penalty`` (OpenAI) and TGI's ``frequency_penalty`` and
    ``repetition_penalty`` were accepted and silently ignored: the same greedy text came back whatever they said. The random
    model's logits are nearly flat, so a penalty of 2 keeps any token from coming back."""
    plain = _generated_ids(server, {})
    assert len(set(plain)) < len(plain)  # greedy decoding of this model repeats itself
    penalised = _generated_ids(server, {"frequency_penalty": 2.0})
    assert len(set(penalised)) == len(penalised) and penalised[0] == plain[0]

    def text(**kw):
        return openai_client.completions.create(model=LLAMA, prompt="the quick fox", max_tokens=40, temperature=0,
                                                **kw).choices[0].text
    assert text(presence_penalty=2.0) != text() == text(presence_penalty=0)
    assert text(frequency_penalty=2.0) != text()
    streamed = openai_client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "hi"}],
                                                     max_tokens=20, temperature=0, presence_penalty=1.0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == \
        openai_client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "hi"}],
                                              max_tokens=20, temperature=0, presence_penalty=1.0).choices[0].message.content
    with pytest.raises(openai.BadRequestError):
        text(presence_penalty=3.0)
    # TGI's repetition_penalty (also a vLLM extension of the OpenAI body) was ignored as well.
    repeated = _generated_ids(server, {"repetition_penalty": 50.0})
    assert len(set(repeated)) == len(repeated)
    assert text(extra_body={"repetition_penalty": 50.0}) != text()
    import httpx

    refused = httpx.post(f"{server.url}/models/{LLAMA}/generate", timeout=60,
                         json={"inputs": "x", "parameters": {"repetition_penalty": 0}})
    assert refused.status_code == 400 and "repetition_penalty" in refused.json()["error"]


def test_embeddings_accept_token_ids_of_the_models_own_tokenizer(openai_client, model_dirs):
    """OpenAI's ``input`` may be token ids ([int] or [[int]]); LangChain's ``OpenAIEmbeddings`` sends
    them by default. They were refused with a 400. As TEI and vLLM do, they are the model's own
    tokenizer ids, used as given: the ids a text tokenizes to embed exactly like the text."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dirs["minilm"]), device="cpu")
    texts = ["the quick brown fox", "hello"]
    ids = [st.tokenizer(t)["input_ids"] for t in texts]  # [CLS] ... [SEP], as the text path adds them
    raw = openai_client.embeddings.with_raw_response.create(model=MINILM, input=ids, encoding_format="float")
    assert HEX40.match(raw.headers["x-model-revision"])
    got = raw.parse()
    np.testing.assert_allclose(np.array([d.embedding for d in got.data]), st.encode(texts), atol=1e-4)
    assert got.usage.prompt_tokens == sum(len(i) for i in ids)
    one = openai_client.embeddings.create(model=MINILM, input=ids[1])  # one input as [int], base64 answer
    assert len(one.data) == 1
    np.testing.assert_allclose(one.data[0].embedding, st.encode(texts[1]), atol=1e-4)
    # Ids without [CLS]/[SEP] are used as they are, not re-tokenized: a different vector.
    bare = openai_client.embeddings.create(model=MINILM, input=[ids[0][1:-1]], encoding_format="float")
    assert not np.allclose(bare.data[0].embedding, got.data[0].embedding, atol=1e-3)

    vocab = len(st.tokenizer)
    for bad, words in (([[1, vocab]], f"input[0][1] = {vocab}"), ([[1, -1]], "input[0][1] = -1"),
                       ([[]], "input[0]"), ([[1, 2], "text"], "input"), ([[1, True]], "input"),
                       ([list(range(1000, 1000 + st.max_seq_length + 1))], "at most")):
        with pytest.raises(openai.BadRequestError) as err:
            openai_client.embeddings.create(model=MINILM, input=bad)
        assert err.value.status_code == 400 and err.value.body["param"] == "input", bad
        assert words in err.value.body["message"], (bad, err.value.body["message"])


def test_a_model_that_cannot_serve_the_api_is_named_in_the_refusal(server, source):
    """A request the named model cannot serve (embeddings of a chat model, TGI on an encoder) was a
    400 without X-Model-Revision: the one answer about a resolved model that did not name it."""
    import httpx

    commit = source.repos[LLAMA].revisions["main"][0]
    r = httpx.post(server.url + "/v1/embeddings", json={"model": LLAMA, "input": "x"}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_supported"
    assert r.headers["x-model-revision"] == commit and r.headers["x-model-id"] == LLAMA
    r = httpx.post(f"{server.url}/models/{MINILM}/generate", json={"inputs": "x"}, timeout=60)
    assert r.status_code == 400 and r.headers["x-model-revision"] == source.repos[MINILM].revisions["main"][0]


def test_completions_echo_with_logprobs_scores_the_prompt(openai_client, model_dirs):
    """Legacy completions with ``echo=True`` and ``logprobs`` answer the prompt's tokens too (the
    first one's logprob null), as OpenAI and vLLM do: that is how lm-evaluation-harness scores a
    continuation (``max_tokens=1``, then ``token_logprobs[ctxlen:-1]`` and their ``top_logprobs``).
    Only the generated tokens came back."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt = "the quick brown fox"
    tokenizer = AutoTokenizer.from_pretrained(model_dirs["llama"])
    ids = tokenizer(prompt)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(model_dirs["llama"], dtype=torch.float32).eval()
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    expected = logprobs[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0].tolist()
    for stream in (False, True):
        kwargs = dict(model=LLAMA, prompt=prompt, echo=True, logprobs=2, max_tokens=1, temperature=0)
        if stream:
            chunks = [c for c in openai_client.completions.create(stream=True, **kwargs) if c.choices]
            lp = chunks[0].choices[0].logprobs  # the echoed prompt's chunk
            assert chunks[0].choices[0].text == prompt
        else:
            choice = openai_client.completions.create(**kwargs).choices[0]
            assert choice.text.startswith(prompt)
            lp = choice.logprobs
        n = len(ids)
        assert lp.tokens[:n] == [tokenizer.decode([i]) for i in ids]
        assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
        np.testing.assert_allclose(lp.token_logprobs[1:n], expected, atol=1e-3)
        for row, top in zip(logprobs[:-1], lp.top_logprobs[1:n]):
            best = row.topk(2)
            assert sorted(top.values(), reverse=True) == pytest.approx(best.values.tolist(), abs=1e-3)
        assert lp.text_offset[:n] == [sum(len(tokenizer.decode([i])) for i in ids[:k]) for k in range(n)]
        if not stream:
            assert len(lp.tokens) == n + 1  # then the generated token
    as_ids = openai_client.completions.create(model=LLAMA, prompt=ids, echo=True, logprobs=0, max_tokens=1,
                                              temperature=0).choices[0]
    assert as_ids.text.startswith(tokenizer.decode(ids)) and as_ids.logprobs.tokens[:len(ids)] == lp.tokens[:len(ids)]


def test_embeddings_take_as_many_inputs_as_openai_does(openai_client):
    """OpenAI takes up to 2,048 inputs per embeddings request, and LangChain's OpenAIEmbeddings sends
    up to 1,000 (its chunk_size): more than 256 was a 400. They now run as several forward passes."""
    texts = [f"document number {i}" for i in range(300)]
    many = openai_client.embeddings.create(model=MINILM, input=texts, encoding_format="float")
    assert [d.index for d in many.data] == list(range(300))
    few = openai_client.embeddings.create(model=MINILM, input=[texts[0], texts[299]], encoding_format="float")
    np.testing.assert_allclose([many.data[0].embedding, many.data[299].embedding], [d.embedding for d in few.data],
                               atol=1e-4)
    with pytest.raises(openai.BadRequestError):
        openai_client.embeddings.create(model=MINILM, input=["x"] * 2049)


def test_token_id_embeddings_of_a_bare_encoder(openai_client, source, tmp_path):
    """A model without sentence-transformers files is mean-pooled by the hub: its token-id inputs
    (padded to the longest of the batch) embed like the texts they come from."""
    from transformers import AutoTokenizer

    from aicommons.inference import devmodels

    folder = devmodels.build_bert(tmp_path / "bare", "feature-extraction")
    source.add("acme/bare-encoder", folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = ["the quick brown fox jumps", "a dog"]
    as_ids = openai_client.embeddings.create(model="acme/bare-encoder", input=[tokenizer(t)["input_ids"] for t in texts],
                                             encoding_format="float")
    as_text = openai_client.embeddings.create(model="acme/bare-encoder", input=texts, encoding_format="float")
    np.testing.assert_allclose([d.embedding for d in as_ids.data], [d.embedding for d in as_text.data], atol=1e-4)
    with pytest.raises(openai.BadRequestError):
        openai_client.embeddings.create(model="acme/bare-encoder", input=[[len(tokenizer)]])
