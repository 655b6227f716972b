"""What a model's files say about it, read by the unmodified huggingface_hub: parameters per dtype from
the safetensors headers, the GGUF header, config and tokenizer, the Auto class, base models and
their children; list parameters this hub cannot answer are refused, never ignored."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import unique_name
from tests.scanning.samples import STRING, gguf_bytes


def _safetensors_file() -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({"embed.weight": np.zeros((4, 8), dtype=np.float32), "norm.weight": np.zeros(10, dtype=np.float16)})


def _gguf_file() -> bytes:
    kv = [("general.architecture", STRING, "llama"), ("llama.context_length", 4, 2048),
          ("tokenizer.chat_template", STRING, "{% for m in messages %}{{ m['content'] }}{% endfor %}")]
    return gguf_bytes(kv, [("token_embd.weight", [8, 4], 0, 0), ("output_norm.weight", [8], 0, 128)],
                      data=b"\0" * 160)


def test_model_info_reads_parameters_config_and_base_models(api, bob_api):
    base = f"alice/{unique_name('base')}"
    api.create_repo(base)
    tuned = f"alice/{unique_name('tuned')}"
    api.create_repo(tuned)
    card = f"---\nbase_model: {base}\nlicense: mit\n---\n# tuned\n"
    api.create_commit(tuned, commit_message="model", operations=[
        CommitOperationAdd("README.md", card.encode()),
        CommitOperationAdd("model.safetensors", _safetensors_file()),
        CommitOperationAdd("config.json", json.dumps({"architectures": ["LlamaForCausalLM"],
                                                      "model_type": "llama"}).encode()),
        CommitOperationAdd("tokenizer_config.json", json.dumps({"eos_token": {"content": "</s>"},
                                                                "chat_template": "{{ messages }}"}).encode()),
        CommitOperationAdd("tokenizer.json", b"{}"),
    ])
    info = api.model_info(tuned)
    assert info.safetensors.parameters == {"F32": 32, "F16": 10} and info.safetensors.total == 42
    assert info.config["architectures"] == ["LlamaForCausalLM"] and info.config["model_type"] == "llama"
    assert info.config["tokenizer_config"] == {"eos_token": "</s>", "chat_template": "{{ messages }}"}
    assert info.transformers_info.auto_model == "AutoModelForCausalLM"
    assert info.transformers_info.pipeline_tag == "text-generation"
    assert info.transformers_info.processor == "AutoTokenizer"
    assert info.base_models == {"relation": "finetune", "models": [{"id": base}]}

    # The repo page says the same, server-rendered.
    import httpx

    page = httpx.get(f"{api.endpoint}/{tuned}").text
    facts = page.split('id="model-facts"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>Parameters</dt><dd>42</dd>" in facts and "<dt>Tensor types</dt><dd>F16, F32</dd>" in facts
    assert f'<dt>Base model (finetune)</dt><dd><a href="/{base}">{base}</a></dd>' in facts
    assert "AutoModelForCausalLM" in facts

    # expand= gives exactly what was asked for, in a listing too.
    only = api.model_info(tuned, expand=["safetensors"])
    assert only.safetensors.total == 42 and only.config is None and only.base_models is None
    listed = {m.id: m for m in api.list_models(author="alice", expand=["safetensors", "baseModels"])}
    assert listed[tuned].safetensors.total == 42 and listed[tuned].base_models["models"] == [{"id": base}]

    # Children are the models that name it as their base, as the caller can see them.
    assert api.model_info(base, expand=["childrenModelCount"]).children_model_count == 1
    hidden = f"alice/{unique_name('hidden-child')}"
    api.create_repo(hidden, private=True)
    api.upload_file(path_or_fileobj=f"---\nbase_model: {base}\n---\n".encode(), path_in_repo="README.md",
                    repo_id=hidden)
    assert api.model_info(base, expand=["childrenModelCount"]).children_model_count == 2
    assert bob_api.model_info(base, expand=["childrenModelCount"]).children_model_count == 1
    # The page of a visitor who is not signed in counts only the public child.
    assert ">1 model</a>" in httpx.get(f"{api.endpoint}/{base}").text


def test_gguf_header_and_quantized_relation(api, repo_id):
    api.create_commit(repo_id, commit_message="gguf", operations=[
        CommitOperationAdd("README.md", b"---\nbase_model: someone/original\n---\n"),
        CommitOperationAdd("model-Q8_0.gguf", _gguf_file()),
    ])
    info = api.model_info(repo_id)
    assert info.gguf == {"total": 40, "architecture": "llama", "context_length": 2048,
                         "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}
    assert info.base_models == {"relation": "quantized", "models": [{"id": "someone/original"}]}
    assert info.safetensors is None and info.transformers_info is None


def test_the_files_give_library_task_and_tags_where_the_card_is_silent(api, repo_id):
    """As on the Hub: a ``config.json`` naming a causal LM, with no ``pipeline_tag`` in the card, gives
    ``pipeline_tag`` text-generation, ``library_name`` transformers and the tags clients filter by
    (library, weight format, model type, task, chat); ``list_models`` finds the repo by each."""
    name = repo_id.split("/")[1]
    api.create_commit(repo_id, commit_message="model", operations=[
        CommitOperationAdd("README.md", b"---\nlicense: mit\n---\n# a model\n"),
        CommitOperationAdd("model.safetensors", _safetensors_file()),
        CommitOperationAdd("config.json", json.dumps({"architectures": ["GPT2LMHeadModel"],
                                                      "model_type": "gpt2"}).encode()),
        CommitOperationAdd("tokenizer_config.json", json.dumps({"chat_template": "{{ messages }}"}).encode()),
    ])
    first = api.model_info(repo_id)
    assert first.pipeline_tag == "text-generation" and first.library_name == "transformers"
    assert {"transformers", "safetensors", "gpt2", "text-generation", "conversational", "license:mit"} <= set(first.tags)
    assert "pytorch" not in first.tags and "gguf" not in first.tags
    for kwargs in ({"pipeline_tag": "text-generation"}, {"filter": "transformers"}, {"filter": ["gpt2", "safetensors"]},
                   {"filter": "conversational"}):
        found = {m.id: m for m in api.list_models(author="alice", search=name, **kwargs)}
        assert repo_id in found, kwargs
        assert found[repo_id].pipeline_tag == "text-generation" and found[repo_id].library_name == "transformers"
    assert not list(api.list_models(author="alice", search=name, pipeline_tag="fill-mask"))

    # The card wins where it says something: its task, and the files' task is no tag of it.
    api.upload_file(path_or_fileobj=b"---\npipeline_tag: text-classification\n---\n", path_in_repo="README.md",
                    repo_id=repo_id)
    info = api.model_info(repo_id)
    assert info.pipeline_tag == "text-classification" and info.library_name == "transformers"
    assert "text-generation" not in info.tags and "conversational" not in info.tags and "gpt2" in info.tags
    assert info.transformers_info.pipeline_tag == "text-classification"
    assert repo_id in {m.id for m in api.list_models(author="alice", search=name, pipeline_tag="text-classification")}
    assert not list(api.list_models(author="alice", search=name, pipeline_tag="text-generation"))
    # An older commit says what its own files said.
    assert api.model_info(repo_id, revision=first.sha).pipeline_tag == "text-generation"


def test_refresh_metadata_gives_repos_stored_before_the_upgrade_what_their_files_say(api, live_hub, repo_id):
    """A repo whose row was stored before the hub read library and task from the files (simulated:
    its row is set back to the card's answer) gets them from ``aicommons refresh-metadata``, without
    a commit and with its last_modified unchanged."""
    import subprocess
    import sys

    name = repo_id.split("/")[1]
    api.create_commit(repo_id, commit_message="model", operations=[
        CommitOperationAdd("config.json", json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert"}).encode()),
        CommitOperationAdd("model.safetensors", _safetensors_file()),
    ])
    before = api.model_info(repo_id)
    script = ("import sys\nfrom aicommons.cli.ops import _hub\nstore = _hub().repos.store\n"
              "row = store.get('model', sys.argv[1])\n"
              "store.set_card(row.id, sha=row.sha, card_data=row.card_data, tags=[], library_name=None,"
              " pipeline_tag=None, now=None)\n")
    subprocess.run([sys.executable, "-c", script, repo_id], env=live_hub.env, check=True, capture_output=True)
    assert not list(api.list_models(author="alice", search=name, pipeline_tag="fill-mask"))
    done = live_hub.cli("refresh-metadata", "--json")
    assert json.loads(done.stdout.strip().splitlines()[-1])["refreshed"] >= 1
    [found] = api.list_models(author="alice", search=name, pipeline_tag="fill-mask", filter="bert")
    assert found.id == repo_id and found.library_name == "transformers"
    after = api.model_info(repo_id)
    assert after.sha == before.sha and after.last_modified == before.last_modified
    assert {"transformers", "safetensors", "bert", "fill-mask"} <= set(after.tags)


def test_gguf_and_other_libraries_tag_by_their_files(api, repo_id, bob_api):
    api.create_commit(repo_id, commit_message="gguf", operations=[
        CommitOperationAdd("model-Q8_0.gguf", _gguf_file()),
    ])
    info = api.model_info(repo_id)
    assert "gguf" in info.tags and info.library_name == "gguf" and info.pipeline_tag is None
    adapter = f"alice/{unique_name('adapter')}"
    api.create_repo(adapter)
    api.create_commit(adapter, commit_message="adapter", operations=[
        CommitOperationAdd("adapter_config.json", b'{"peft_type": "LORA"}'),
        CommitOperationAdd("adapter_model.safetensors", _safetensors_file()),
    ])
    info = api.model_info(adapter)
    assert info.library_name == "peft" and {"peft", "safetensors"} <= set(info.tags) and info.pipeline_tag is None
    # A config.json written to hurt: its model_type is no tag (tags are names, stored and indexed).
    hostile = f"alice/{unique_name('hostile')}"
    api.create_repo(hostile)
    api.upload_file(path_or_fileobj=json.dumps({"architectures": ["X" * 300 + "ForCausalLM"],
                                                "model_type": "y" * 5000}).encode(),
                    path_in_repo="config.json", repo_id=hostile)
    info = api.model_info(hostile)
    assert info.pipeline_tag == "text-generation" and all(len(t) < 100 for t in info.tags)
    # So is a card's over-long task, library or tag (the commit's card refresh failed on PostgreSQL: 500).
    card = (f"---\npipeline_tag: {'z' * 100}\nlibrary_name: {'l' * 300}\ntags:\n- {'t' * 400}\n- short\n"
            f"base_model: someone/{'b' * 250}\n---\n")
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=hostile)
    info = api.model_info(hostile)
    assert info.pipeline_tag == "text-generation" and info.library_name == "transformers"
    assert "short" in info.tags and all(len(t) <= 256 for t in info.tags)
    assert info.card_data["pipeline_tag"] == "z" * 100  # the card itself is kept as written


def test_a_file_that_only_looks_like_safetensors_says_nothing(api, repo_id):
    api.upload_file(path_or_fileobj=b"\xff" * 64, path_in_repo="broken.safetensors", repo_id=repo_id)
    assert api.model_info(repo_id).safetensors is None


@pytest.mark.parametrize("name,value", [("num_parameters", "min:1B"), ("inference", "warm"), ("apps", "ollama")])
def test_list_parameters_this_hub_cannot_answer_are_refused(api, name, value):
    with pytest.raises(HfHubHTTPError) as raised:
        list(api.list_models(**{name: value}, limit=5))
    assert raised.value.response.status_code == 400 and name in raised.value.response.text


def test_expand_spaces_names_the_spaces_whose_card_uses_the_model(api, bob_api, repo_id):
    """``expand=spaces``: the spaces whose card lists the model under ``models:``, as the caller
    can see them; a space that only mentions the name elsewhere in its card is not one."""
    def space(private: bool, card: str) -> str:
        sid = f"alice/{unique_name('space')}"
        api.create_repo(sid, repo_type="space", space_sdk="static", private=private)
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=sid, repo_type="space")
        return sid

    public = space(False, f"---\nsdk: static\nmodels:\n- {repo_id}\n- someone/else\n---\n")
    private = space(True, f"---\nsdk: static\nmodels: {repo_id}\n---\n")
    space(False, f"---\nsdk: static\ntitle: {repo_id}\nmodels:\n- {repo_id}-large\n---\n")
    assert sorted(api.model_info(repo_id, expand=["spaces"]).spaces) == sorted([public, private])
    assert bob_api.model_info(repo_id, expand=["spaces"]).spaces == [public]
    listed = {m.id: m for m in api.list_models(search=repo_id.split("/")[1], expand=["spaces", "likes"])}
    assert sorted(listed[repo_id].spaces) == sorted([public, private]) and listed[repo_id].likes == 0
    # The space says which models it uses, as the Hub's space info does.
    info = api.space_info(public)
    assert info.models == [repo_id, "someone/else"] and info.sdk == "static"


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_every_expand_value_huggingface_hub_knows_is_accepted_and_others_refused(api, repo_type):
    import typing

    from huggingface_hub import hf_api

    literal = {"model": hf_api.ExpandModelProperty_T, "dataset": hf_api.ExpandDatasetProperty_T,
               "space": hf_api.ExpandSpaceProperty_T}[repo_type]
    rid = f"alice/{unique_name(repo_type)}"
    api.create_repo(rid, repo_type=repo_type, **({"space_sdk": "static"} if repo_type == "space" else {}))
    values = list(typing.get_args(literal))
    info = getattr(api, f"{repo_type}_info")(rid, expand=values)  # every value at once: answered
    assert info.id == rid and info.private is False
    lister = {"model": api.list_models, "dataset": api.list_datasets, "space": api.list_spaces}[repo_type]
    assert [r.id for r in lister(search=rid.split("/")[1], expand=values)] == [rid]
    with pytest.raises(HfHubHTTPError) as raised:
        getattr(api, f"{repo_type}_info")(rid, expand=["author", "noSuchField"])
    assert raised.value.response.status_code == 400 and "noSuchField" in raised.value.response.text
    with pytest.raises(HfHubHTTPError) as raised:
        list(lister(search=rid.split("/")[1], expand=["spaces" if repo_type != "model" else "sdk"]))
    assert raised.value.response.status_code == 400
