"""transformers 5, datasets 5 and the ``hf`` CLI against a live hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ALICE_TOKEN, unique_name


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT with a locally trained WordPiece tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(out)
    config = BertConfig(vocab_size=fast.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64)
    BertForMaskedLM(config).save_pretrained(out)
    return out


def test_transformers_from_pretrained_and_revisions(api, tiny_bert, live_hub):
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    repo = f"alice/{unique_name('bert')}"
    api.create_repo(repo)
    api.upload_folder(folder_path=tiny_bert, repo_id=repo)
    api.create_tag(repo, tag="v1")
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n# card", path_in_repo="README.md", repo_id=repo)
    config = AutoConfig.from_pretrained(repo, token=ALICE_TOKEN)
    assert config.hidden_size == 32
    tokenizer = AutoTokenizer.from_pretrained(repo, revision="v1", token=ALICE_TOKEN)
    model = AutoModelForMaskedLM.from_pretrained(repo, revision="v1", token=ALICE_TOKEN)
    local = AutoModelForMaskedLM.from_pretrained(tiny_bert)
    inputs = tokenizer("the quick fox", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, local(**inputs).logits)


def test_a_gated_model_in_transformers_says_where_to_ask(api, tiny_bert, live_hub, http, tmp_path):
    """transformers words a gated refusal "Make sure to have access to it at https://huggingface.co/<id>"
    (its own text), then ours, which said only "Visit the repository page": a user of this hub was
    sent to huggingface.co. Ours now names this hub's page of the repo, as the Hub names its own."""
    from transformers import AutoModelForMaskedLM

    from tests.conftest import BOB_TOKEN, auth

    repo = f"alice/{unique_name('gated-bert')}"
    api.create_repo(repo)
    api.upload_folder(folder_path=tiny_bert, repo_id=repo)
    api.update_repo_settings(repo, gated="manual")
    for token, status in ((BOB_TOKEN, "403"), (False, "401")):
        with pytest.raises(OSError) as refused:
            AutoModelForMaskedLM.from_pretrained(repo, token=token, cache_dir=tmp_path)
        assert "gated repo" in str(refused.value) and status in str(refused.value)
        assert f"Visit {live_hub.url}/{repo} to ask for access" in str(refused.value), str(refused.value)
    assert http.post(f"/api/models/{repo}/ask-access", headers=auth(BOB_TOKEN)).status_code == 200
    api.accept_access_request(repo, "bob")
    assert AutoModelForMaskedLM.from_pretrained(repo, token=BOB_TOKEN, cache_dir=tmp_path).config.hidden_size == 32


def test_transformers_push_to_hub(api, tiny_bert):
    from transformers import AutoModelForMaskedLM

    repo = f"alice/{unique_name('pushed')}"
    model = AutoModelForMaskedLM.from_pretrained(tiny_bert)
    model.push_to_hub(repo, token=ALICE_TOKEN)
    files = set(api.list_repo_files(repo))
    assert {"config.json", "model.safetensors"} <= files
    again = AutoModelForMaskedLM.from_pretrained(repo, token=ALICE_TOKEN)
    assert again.config.hidden_size == 32
    # The card push_to_hub writes names no task: the files give it, as on the Hub.
    info = api.model_info(repo)
    assert info.card_data is None or not info.card_data.get("pipeline_tag")
    assert info.pipeline_tag == "fill-mask" and info.library_name == "transformers"
    assert {"transformers", "safetensors", "bert", "fill-mask"} <= set(info.tags)
    assert repo in {m.id for m in api.list_models(pipeline_tag="fill-mask", filter="bert", author="alice",
                                                  search=repo.split("/")[1])}


def test_tiny_gpt2_push_to_hub_then_pipeline_by_revision(api, live_hub, tmp_path):
    """A causal LM the way people make a tiny one: GPT-2 (``GPT2LMHeadModel``) with a locally trained
    BPE tokenizer, pushed with ``push_to_hub``, loaded by tag, full and short commit id into a fresh
    cache, run through ``pipeline``; ``model_info`` and the page name the Auto class that loads it
    (they used to say ``AutoModel``/``feature-extraction``: only ``...ForCausalLM`` was known)."""
    import httpx
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["hello world, the quick brown fox"] * 20,
                            trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    config = GPT2Config(vocab_size=fast.vocab_size, n_positions=32, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=1, eos_token_id=2)
    repo = f"alice/{unique_name('gpt2')}"
    first = GPT2LMHeadModel(config)
    first.push_to_hub(repo, token=ALICE_TOKEN)
    fast.push_to_hub(repo, token=ALICE_TOKEN)
    api.create_tag(repo, tag="v1")
    tagged = api.model_info(repo).sha
    GPT2LMHeadModel(config).push_to_hub(repo, token=ALICE_TOKEN, commit_message="second weights")

    info = api.model_info(repo)
    assert info.transformers_info.auto_model == "AutoModelForCausalLM"
    assert info.transformers_info.pipeline_tag == "text-generation"
    assert info.transformers_info.processor == "AutoTokenizer"
    assert "AutoModelForCausalLM" in httpx.get(f"{live_hub.url}/{repo}").text

    script = f"""
import sys, torch
from transformers import AutoModelForCausalLM, pipeline
repo, local = sys.argv[1], sys.argv[2]
want = torch.load(local)
for rev in ("v1", "{tagged}", "{tagged[:7]}"):
    model = AutoModelForCausalLM.from_pretrained(repo, revision=rev)
    assert torch.equal(model.transformer.wte.weight, want), rev
out = pipeline("text-generation", model=repo, revision="v1")("hello", max_new_tokens=3, do_sample=False)
assert out[0]["generated_text"].startswith("hello"), out
print("ok")
"""
    import torch

    torch.save(first.transformer.wte.weight.detach(), tmp_path / "wte.pt")
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_TOKEN": ALICE_TOKEN, "HF_HOME": str(tmp_path / "fresh-home")}
    done = subprocess.run([sys.executable, "-c", script, repo, str(tmp_path / "wte.pt")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


CUSTOM_CONFIG = """
from transformers import PretrainedConfig
class TinyConfig(PretrainedConfig):
    model_type = "tinycustom"
    def __init__(self, hidden=4, **kwargs):
        self.hidden = hidden
        super().__init__(**kwargs)
"""
CUSTOM_MODEL = """
import torch
from transformers import PreTrainedModel
from .configuration_tiny import TinyConfig
class TinyModel(PreTrainedModel):
    config_class = TinyConfig
    def __init__(self, config):
        super().__init__(config)
        self.lin = torch.nn.Linear(config.hidden, config.hidden)
        self.post_init()
    def forward(self, x):
        return self.lin(x)
"""


def test_custom_code_sentence_transformers_and_offline_after_download(api, live_hub, tiny_bert, tmp_path):
    """A user's round trip: a custom-code model pushed with its code (tagged ``custom_code``; loading
    it needs ``trust_remote_code=True``), a SentenceTransformer pushed and loaded by its id, then both
    loaded again with HF_HUB_OFFLINE=1 from what the first loads cached."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    package = tmp_path / "tinypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "configuration_tiny.py").write_text(CUSTOM_CONFIG)
    (package / "modeling_tiny.py").write_text(CUSTOM_MODEL)
    custom, sentence = f"alice/{unique_name('custom')}", f"alice/{unique_name('st')}"
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from tinypkg.configuration_tiny import TinyConfig
from tinypkg.modeling_tiny import TinyModel
TinyConfig.register_for_auto_class()
TinyModel.register_for_auto_class("AutoModel")
TinyModel(TinyConfig()).push_to_hub({custom!r})
"""
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_TOKEN": ALICE_TOKEN, "HF_HOME": str(tmp_path / "home")}
    pushed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert {"configuration_tiny.py", "modeling_tiny.py", "config.json"} <= set(api.list_repo_files(custom))
    assert "custom_code" in api.model_info(custom).tags
    module = Transformer(str(tiny_bert))
    SentenceTransformer(modules=[module, Pooling(module.get_embedding_dimension())]).push_to_hub(
        sentence, token=ALICE_TOKEN)
    info = api.model_info(sentence)
    assert info.library_name == "sentence-transformers" and info.pipeline_tag == "sentence-similarity"

    load = f"""
from transformers import AutoModel
from sentence_transformers import SentenceTransformer
try:
    AutoModel.from_pretrained({custom!r})
    raise SystemExit("custom code ran without trust_remote_code")
except ValueError as refused:
    assert "trust_remote_code" in str(refused), refused
assert type(AutoModel.from_pretrained({custom!r}, trust_remote_code=True)).__name__ == "TinyModel"
assert SentenceTransformer({sentence!r}).encode(["the fox"]).shape == (1, 32)
print("ok")
"""
    for extra in ({}, {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}):  # then: nothing to reach
        done = subprocess.run([sys.executable, "-c", load], env={**env, **extra}, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (extra, done.stderr[-2000:])


def test_datasets_load_csv_json_parquet_and_stream(api, tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = f"alice/{unique_name('ds')}"
    api.create_repo(repo, repo_type="dataset")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("text,label\nhello,1\nworld,0\n")
    (tmp_path / "data" / "test.csv").write_text("text,label\nfoo,1\n")
    api.upload_folder(folder_path=tmp_path, repo_id=repo, repo_type="dataset")
    ds = datasets.load_dataset(repo, token=ALICE_TOKEN)
    assert ds["train"]["text"] == ["hello", "world"] and ds["test"].num_rows == 1
    streamed = datasets.load_dataset(repo, split="train", streaming=True, token=ALICE_TOKEN)
    assert [row["text"] for row in streamed] == ["hello", "world"]

    jrepo = f"alice/{unique_name('json')}"
    api.create_repo(jrepo, repo_type="dataset")
    rows = "\n".join(json.dumps({"a": i}) for i in range(5))
    api.upload_file(path_or_fileobj=rows.encode(), path_in_repo="rows.jsonl", repo_id=jrepo, repo_type="dataset")
    assert datasets.load_dataset(jrepo, split="train", token=ALICE_TOKEN)["a"] == list(range(5))

    prepo = f"alice/{unique_name('parquet')}"
    api.create_repo(prepo, repo_type="dataset")
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "t.parquet")
    api.upload_file(path_or_fileobj=str(tmp_path / "t.parquet"), path_in_repo="data/train-00000.parquet",
                    repo_id=prepo, repo_type="dataset")
    assert datasets.load_dataset(prepo, split="train", token=ALICE_TOKEN)["x"] == [1, 2, 3]


def test_datasets_push_to_hub(api):
    import datasets

    repo = f"alice/{unique_name('pushed-ds')}"
    datasets.Dataset.from_dict({"q": ["a", "b"], "n": [1, 2]}).push_to_hub(repo, token=ALICE_TOKEN)
    back = datasets.load_dataset(repo, split="train", token=ALICE_TOKEN)
    assert back["q"] == ["a", "b"]


def _hf(live_hub, *args, token=ALICE_TOKEN, cwd=None):
    env = {**os.environ, "HF_ENDPOINT": live_hub.url, "HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1"}
    exe = os.path.join(os.path.dirname(sys.executable), "hf")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_hf_cli_whoami_repo_create_upload_download(live_hub, api, tmp_path):
    who = _hf(live_hub, "auth", "whoami")
    assert who.returncode == 0 and "alice" in who.stdout
    name = f"alice/{unique_name('cli')}"
    created = _hf(live_hub, "repos", "create", name)
    assert created.returncode == 0, created.stderr
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "a.txt").write_text("from the cli")
    (tmp_path / "up" / "w.bin").write_bytes(os.urandom(4096))
    uploaded = _hf(live_hub, "upload", name, str(tmp_path / "up"), ".")
    assert uploaded.returncode == 0, uploaded.stderr
    assert {"a.txt", "w.bin"} <= set(api.list_repo_files(name))
    dest = tmp_path / "down"
    downloaded = _hf(live_hub, "download", name, "--local-dir", str(dest))
    assert downloaded.returncode == 0, downloaded.stderr
    assert (dest / "a.txt").read_text() == "from the cli"
    assert (dest / "w.bin").read_bytes() == (tmp_path / "up" / "w.bin").read_bytes()


def test_a_model_whose_card_names_no_task_is_served_by_its_files_task(api, live_hub, tmp_path):
    """model_info and /v1/models took a model's task from its card only: a Llama pushed with a card
    that names no pipeline_tag had none and was left out of the model list. Its config.json's
    LlamaForCausalLM now says text-generation, as on the Hub, and InferenceClient's task API serves it."""
    pytest.importorskip("torch")
    import httpx
    from huggingface_hub import InferenceClient

    from aicommons.inference import devmodels

    folder = devmodels.build_llama(tmp_path / "llama")
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# A Llama whose card names no task\n")
    repo = f"alice/{unique_name('untasked')}"
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(folder))
    info = api.model_info(repo)
    assert info.card_data.get("pipeline_tag") is None
    assert info.pipeline_tag == "text-generation" and info.library_name == "transformers"
    assert {"llama", "conversational"} <= set(info.tags)
    with InferenceClient(model=f"{live_hub.url}/models/{repo}", token=ALICE_TOKEN, timeout=120) as hf:
        assert isinstance(hf.text_generation("the fox", max_new_tokens=3), str)
    listed = httpx.get(f"{live_hub.url}/v1/models", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}, timeout=60)
    assert repo in {m["id"] for m in listed.json()["data"]}
    page = httpx.get(f"{live_hub.url}/{repo}", timeout=60).text  # the side panel's task, and "Try it"
    assert "<dt>Task</dt><dd>text-generation</dd>" in page and 'id="try"' in page
