"""GGUF serving (issue 17): a repo of GGUF files answers the OpenAI routes, the quantisation chosen
by ``model=ns/name:Q8_0`` as Ollama names it, the chat template taken from the file's metadata and
checked by the hub's scanner before the file is loaded. Files are written here from a tiny random
Llama (``devmodels.export_gguf``, llama.cpp's layout) and uploaded to the live hub.

What serves them: llama.cpp (llama-cpp-python, in the model's worker process) when it is installed,
as it is in CI, else transformers' GGUF loader (``AICOMMONS_INFERENCE_GGUF_ENGINE``). Answers are
checked against the engine's own library run directly: llama-cpp-python's ``generate``, or
transformers' GGUF loader and greedy ``generate``. Both engines are also tested side by side on
one file (``test_both_gguf_engines``)."""

from __future__ import annotations

import importlib.util
import time

import httpx
import openai
import pytest

from tests.conftest import ALICE_TOKEN, unique_name

LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None

pytestmark = pytest.mark.inference

# What the scanner must refuse (the CVE-2024-34359 payload shape): never loaded, never rendered.
EVIL_TEMPLATE = "{{ self.__init__.__globals__.__builtins__ }}{% for m in messages %}{{ m['content'] }}{% endfor %}"


@pytest.fixture(scope="module")
def repos(live_hub, tmp_path_factory):
    from huggingface_hub import HfApi

    from aicommons.inference import devmodels

    root = tmp_path_factory.mktemp("gguf")
    hf = devmodels.build_llama(root / "hf")
    folder, evil = root / "repo", root / "evil"
    folder.mkdir()
    evil.mkdir()
    card = "---\npipeline_tag: text-generation\nlibrary_name: gguf\nlicense: apache-2.0\n---\n"
    for q in ("F16", "Q8_0"):
        devmodels.export_gguf(hf, folder / f"tiny-llama-{q}.gguf", q)
    devmodels.export_gguf(hf, evil / "tiny-llama-Q8_0.gguf", "Q8_0", chat_template=EVIL_TEMPLATE)
    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    ids = {}
    for key, path in (("good", folder), ("evil", evil)):
        (path / "README.md").write_text(card)
        ids[key] = f"alice/{unique_name('gguf-' + key)}"
        api.create_repo(ids[key])
        api.upload_folder(repo_id=ids[key], folder_path=str(path))
    return ids, folder


@pytest.fixture(scope="module")
def client(live_hub):
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=120) as c:
        yield c


def _chat(client, model: str, **kwargs):
    return client.chat.completions.with_raw_response.create(
        model=model, temperature=0, max_tokens=8, messages=[{"role": "user", "content": "the quick fox"}], **kwargs)


def _once_scanned(call):
    """The scan runs in the background after the push: until then the model answers 503."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return call()
        except openai.InternalServerError as exc:
            if exc.status_code != 503 or "not scanned yet" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _prompt_ids(tok) -> list[int]:
    return tok.apply_chat_template([{"role": "user", "content": "the quick fox"}], add_generation_prompt=True,
                                   tokenize=True, return_dict=True)["input_ids"]


def _expected_llama_cpp(folder, name: str, max_tokens: int = 8) -> str:
    """llama-cpp-python's own greedy generation on the file, the prompt tokenized as the hub does."""
    import llama_cpp
    from transformers import AutoTokenizer

    from aicommons.inference.engines.llama_cpp import open_llama  # (plain CPU buffers, see there)

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    llm = open_llama(folder / name, n_ctx=256, n_threads=2)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    out: list[int] = []
    try:
        for token in llm.generate(_prompt_ids(tok), temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            out.append(int(token))
            if len(out) == max_tokens:
                break
    finally:
        llm.close()
    return tok.decode(out, skip_special_tokens=True)


def _expected_for_hub(folder, name: str) -> str:
    return _expected_llama_cpp(folder, name) if LLAMA_CPP else _expected(folder, name)


def _expected(folder, name: str) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    ids = tok.apply_chat_template([{"role": "user", "content": "the quick fox"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_gguf_chat_by_quantisation_tag(repos, client):
    ids, folder = repos
    raw = _once_scanned(lambda: _chat(client, ids["good"] + ":Q8_0"))
    assert raw.headers["x-model-file"] == "tiny-llama-Q8_0.gguf" and len(raw.headers["x-model-revision"]) == 40
    assert raw.parse().choices[0].message.content == _expected_for_hub(folder, "tiny-llama-Q8_0.gguf")
    f16 = _chat(client, ids["good"] + ":F16")
    assert f16.headers["x-model-file"] == "tiny-llama-F16.gguf"
    assert f16.parse().choices[0].message.content == _expected_for_hub(folder, "tiny-llama-F16.gguf")
    # Legacy completions and a pinned revision with a tag work too.
    pinned = f"{ids['good']}@{raw.headers['x-model-revision']}:Q8_0"
    text = client.completions.create(model=pinned, prompt="the quick", max_tokens=4, temperature=0)
    assert text.choices[0].finish_reason in ("stop", "length")


def test_ambiguous_or_unknown_tags_are_400s(repos, client):
    ids, _ = repos
    _once_scanned(lambda: _chat(client, ids["good"] + ":Q8_0"))
    # Two files and no Q4_K_M (Ollama's default): the caller names one; the error lists them.
    with pytest.raises(openai.BadRequestError, match="F16, Q8_0"):
        _chat(client, ids["good"])
    with pytest.raises(openai.BadRequestError, match="no GGUF file for 'Q4_K_M'"):
        _chat(client, ids["good"] + ":Q4_K_M")
    with pytest.raises(openai.BadRequestError, match="namespace/name:Q4_K_M"):
        _chat(client, ids["good"] + ":Q8 0")


def test_gguf_with_an_unsafe_chat_template_is_never_loaded(repos, client):
    ids, _ = repos
    with pytest.raises(openai.PermissionDeniedError, match="unsafe"):
        _once_scanned(lambda: _chat(client, ids["evil"] + ":Q8_0"))


def test_gguf_runs_on_llama_cpp_in_a_worker_process(live_hub, repos, client):
    """Where llama-cpp-python is installed (CI installs it), the hub serves GGUF through it, in the
    model's own worker process; the load is recorded under the engine's name. Streaming, stop
    sequences and a JSON-schema constraint work as on the transformers engine."""
    pytest.importorskip("llama_cpp")
    ids, folder = repos
    model = ids["good"] + ":Q8_0"
    _once_scanned(lambda: _chat(client, model))
    name = unique_name("root")
    live_hub.cli("user", "create", name, "--admin")
    token = live_hub.cli("token", "create", name).stdout.splitlines()[-1]
    metrics = httpx.get(live_hub.url + "/metrics", headers={"Authorization": f"Bearer {token}"}).text
    loads = [line for line in metrics.splitlines()
             if line.startswith("hub_model_load_seconds_count") and f'model="{ids["good"]}"' in line]
    assert loads and all('engine="llama.cpp"' in line for line in loads), loads

    expected = _expected_llama_cpp(folder, "tiny-llama-Q8_0.gguf")
    stream = client.chat.completions.create(model=model, temperature=0, max_tokens=8, stream=True,
                                            messages=[{"role": "user", "content": "the quick fox"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected
    if len(expected.strip()) > 2:  # a stop sequence cuts the answer where it first appears
        stop = expected.strip()[1:3]
        cut = _chat(client, model, stop=[stop]).parse().choices[0]
        assert cut.message.content == expected[: expected.index(stop)] and cut.finish_reason == "stop"
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    answer = client.chat.completions.create(
        model=model, max_tokens=40, temperature=0, messages=[{"role": "user", "content": "the quick fox"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})
    import json

    assert json.loads(answer.choices[0].message.content) in ({"ok": True}, {"ok": False})


def test_both_gguf_engines(repos):
    """``GGUF_ENGINE`` chooses: transformers' loader (dequantised) or llama.cpp, each answering as its
    own library does, here with both engines inside one server's process (``ISOLATION=thread``)."""
    pytest.importorskip("llama_cpp")
    from aicommons.inference.settings import InferenceSettings

    from .directory_source import DirectoryModelSource
    from .server import LiveServer

    _, folder = repos
    source = DirectoryModelSource()
    source.add("acme/gguf", folder)
    for engine, expected in (("transformers", _expected), ("llama.cpp", _expected_llama_cpp)):
        settings = InferenceSettings.from_env({}, device="cpu", dtype="float32", isolation="thread", threads=2,
                                              gguf_engine=engine, kv_cache_bytes=8 * 1024 * 1024)
        server = LiveServer(source, settings).start()
        try:
            body = {"model": "acme/gguf:Q8_0", "temperature": 0, "max_tokens": 8,
                    "messages": [{"role": "user", "content": "the quick fox"}]}
            answer = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == expected(folder, "tiny-llama-Q8_0.gguf")
            assert [e.engine.engine_name for e in server.service.list_loaded()] == \
                ["transformers-cb" if engine == "transformers" else "llama.cpp"]
        finally:
            server.stop()
