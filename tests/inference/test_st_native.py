"""Sentence-transformers models run with transformers alone (``engines.st_native``): the same
embeddings as sentence-transformers, without importing it in the worker, and a fallback to it for
whatever the native path does not reproduce exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aicommons.inference import tasks as T
from aicommons.inference.engines import st_native
from aicommons.inference.settings import InferenceSettings
from aicommons.inference.source import ResolvedModel

TEXTS = ["hi", "A somewhat longer sentence about the weather in Paris today.", "river " * 300]


def _settings():
    return InferenceSettings.from_env({}, device="cpu", dtype="float32", threads=2)


def _load(folder: Path, task: str = T.EMBEDDING):
    from aicommons.inference.engines.transformers_encoder import TransformersEncoder

    return TransformersEncoder.load(ResolvedModel("a/st", "0" * 40, folder), task, _settings())


def _reference(folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


def test_minilm_embeddings_equal_sentence_transformers_batched_and_single(model_dirs):
    import numpy as np

    engine = _load(model_dirs["minilm"])
    try:
        assert engine.st_model is None and engine.sentence is not None
        assert engine.max_input_tokens == 256  # sentence_bert_config.json's max_seq_length
        reference = _reference(model_dirs["minilm"])
        expected = reference.encode(TEXTS)
        key = (T.EMBEDDING, "{}")
        batched = np.asarray(engine._run_batch(key, TEXTS))
        singles = np.asarray([engine._run_batch(key, [text])[0] for text in TEXTS])
        assert np.abs(batched - expected).max() < 1e-5
        assert np.abs(singles - expected).max() < 1e-5
        # token ids as sent to /v1/embeddings: the tokenizer's own ids, so the same vectors
        ids = [engine.tokenizer(text)["input_ids"] for text in TEXTS[:2]]
        by_ids = np.asarray(engine._run_batch((T.EMBEDDING, json.dumps({"token_ids": True})), ids))
        assert np.abs(by_ids - expected[:2]).max() < 1e-5
        assert engine.encoder_info["prompts"] == reference.prompts
    finally:
        engine.close()


_NO_ST = """
import sys
from pathlib import Path
from aicommons.inference import tasks as T
from aicommons.inference.engines.transformers_encoder import TransformersEncoder
from aicommons.inference.settings import InferenceSettings
from aicommons.inference.source import ResolvedModel
settings = InferenceSettings.from_env({}, device="cpu", dtype="float32", threads=2)
engine = TransformersEncoder.load(ResolvedModel("a/st", "0" * 40, Path(sys.argv[1])), T.SIMILARITY, settings)
assert engine.sentence is not None
print("sentence_transformers" in sys.modules, sorted(m for m in sys.modules if m.startswith("sentence_transformers"))[:3])
"""


def test_the_worker_loads_minilm_without_importing_sentence_transformers(model_dirs):
    # As the worker process loads it: a fresh interpreter, nothing imported beforehand.
    out = subprocess.run([sys.executable, "-c", _NO_ST, str(model_dirs["minilm"])], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False []"


def _variant(src: Path, dst: Path, *, pooling: dict | None = None, normalize: bool = True,
             prompts: dict | None = None, transformer: dict | None = None, extra_module: dict | None = None) -> Path:
    shutil.copytree(src, dst)
    modules = json.loads((dst / "modules.json").read_text())
    if not normalize:
        modules = modules[:2]
    if extra_module is not None:
        modules.insert(2, extra_module)
    (dst / "modules.json").write_text(json.dumps(modules))
    if pooling is not None:
        (dst / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 384, **pooling}))
    if prompts is not None:
        config = json.loads((dst / "config_sentence_transformers.json").read_text())
        (dst / "config_sentence_transformers.json").write_text(json.dumps({**config, "prompts": prompts}))
    if transformer is not None:
        (dst / "sentence_bert_config.json").write_text(json.dumps(transformer))
    return dst


@pytest.mark.parametrize("pooling, normalize", [
    ({"pooling_mode": "cls"}, True),
    ({"pooling_mode": "max"}, False),
    ({"pooling_mode": "lasttoken"}, True),
    ({"pooling_mode": "weightedmean"}, False),
    ({"pooling_mode": "mean_sqrt_len_tokens"}, False),
    ({"pooling_mode": ["cls", "mean"]}, True),
    ({"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True, "word_embedding_dimension": 384}, False),
])
def test_other_poolings_equal_sentence_transformers(model_dirs, tmp_path, pooling, normalize):
    import numpy as np

    folder = _variant(model_dirs["minilm"], tmp_path / "m", pooling=pooling, normalize=normalize,
                      transformer={"max_seq_length": 64, "do_lower_case": False})
    engine = _load(folder)
    try:
        assert engine.sentence is not None and engine.max_input_tokens == 64
        got = np.asarray(engine._run_batch((T.EMBEDDING, "{}"), TEXTS))
        expected = _reference(folder).encode(TEXTS)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-5
    finally:
        engine.close()


def test_prompts_come_from_the_config_as_sentence_transformers_reads_them(model_dirs, tmp_path):
    folder = _variant(model_dirs["minilm"], tmp_path / "m", prompts={"query": "query: ", "passage": "passage: "})
    plan = st_native.plan(folder)
    assert plan is not None
    assert plan.prompts == _reference(folder).prompts == {"query": "query: ", "document": "", "passage": "passage: "}


def _add_dense(folder: Path, *, out_features: int, activation, residual: bool = False) -> None:
    """A Dense module saved by sentence-transformers itself, put before the Normalize."""
    import torch
    from sentence_transformers.base.modules import Dense

    torch.manual_seed(0)
    (folder / "2_Dense").mkdir()
    Dense(384, out_features, activation_function=activation, use_residual=residual).save(str(folder / "2_Dense"))
    modules = json.loads((folder / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "dense", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))


@pytest.mark.parametrize("activation, normalize", [("tanh", True), ("identity", False)])
def test_dense_layers_equal_sentence_transformers(model_dirs, tmp_path, activation, normalize):
    import numpy as np
    import torch

    folder = _variant(model_dirs["minilm"], tmp_path / "m", normalize=normalize)
    _add_dense(folder, out_features=128, activation=torch.nn.Tanh() if activation == "tanh" else torch.nn.Identity())
    plan = st_native.plan(folder)
    assert plan is not None and [d.activation for d in plan.dense] == [activation]
    engine = _load(folder)
    try:
        got = np.asarray(engine._run_batch((T.EMBEDDING, "{}"), TEXTS))
        expected = _reference(folder).encode(TEXTS)
        assert got.shape == expected.shape == (3, 128)
        assert np.abs(got - expected).max() < 1e-5
    finally:
        engine.close()


_LAYER_NORM = {"idx": 2, "name": "2", "path": "2_LayerNorm", "type": "sentence_transformers.models.LayerNorm"}


def test_a_dense_layer_with_a_residual_falls_back(model_dirs, tmp_path):
    import torch

    folder = _variant(model_dirs["minilm"], tmp_path / "m")
    _add_dense(folder, out_features=384, activation=torch.nn.GELU(), residual=True)
    assert st_native.plan(folder) is None


@pytest.mark.parametrize("change", [
    {"extra_module": _LAYER_NORM},  # a module the native path does not run
    {"transformer": {"max_seq_length": 128, "do_lower_case": True}},
    {"transformer": {"max_seq_length": 128, "model_args": {"attn_implementation": "eager"}}},
    {"pooling": {"pooling_mode": "mean", "something_new": 1}},
    {"pooling": {"pooling_mode": "median"}},
])
def test_anything_else_falls_back_to_sentence_transformers(model_dirs, tmp_path, change):
    assert st_native.plan(_variant(model_dirs["minilm"], tmp_path / "m", **change)) is None


def test_a_fallback_model_still_loads_through_sentence_transformers(model_dirs, tmp_path):
    import numpy as np

    folder = _variant(model_dirs["minilm"], tmp_path / "m", transformer={"max_seq_length": 32, "do_lower_case": True})
    engine = _load(folder)
    try:
        assert engine.st_model is not None and engine.sentence is None
        got = np.asarray(engine._run_batch((T.EMBEDDING, "{}"), ["Hello THERE"]))
        assert np.abs(got - _reference(folder).encode(["Hello THERE"])).max() < 1e-5
    finally:
        engine.close()
