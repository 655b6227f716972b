"""Inference fixtures: tiny random-weight models built once per session, served by a live server.

Most tests use our routes + ``DirectoryModelSource`` + a middleware that only names the caller, in a
thread (fast, and the service can be inspected): they test serving, not access. ``test_hub_e2e.py``
uploads the same models to the real hub (``live_hub``) and goes through its auth middleware and
``HubModelSource``: the access rules (private, gated, administrators) are tested there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aicommons.inference.settings import InferenceSettings

from .directory_source import DirectoryModelSource
from .server import LiveServer

LLAMA = "acme/tiny-llama"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CLASSIFIER = "acme/tiny-classifier"
NER = "acme/tiny-ner"
FILL_MASK = "acme/tiny-fill-mask"


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("torch")
    from aicommons.inference import devmodels

    root = tmp_path_factory.mktemp("models")
    return {
        "llama": devmodels.build_llama(root / "llama"),
        "llama_v2": devmodels.build_llama(root / "llama-v2", seed=1, license=None),
        "minilm": devmodels.copy_minilm(root / "minilm"),
        "classifier": devmodels.build_bert(root / "classifier", "text-classification"),
        "ner": devmodels.build_bert(root / "ner", "token-classification"),
        "fill_mask": devmodels.build_bert(root / "fill-mask", "fill-mask"),
    }


@pytest.fixture(scope="session")
def source(model_dirs) -> DirectoryModelSource:
    src = DirectoryModelSource()
    src.add(LLAMA, model_dirs["llama"])
    src.add(LLAMA, model_dirs["llama_v2"], revision="v2")
    src.add(MINILM, model_dirs["minilm"])
    src.add(CLASSIFIER, model_dirs["classifier"])
    src.add(NER, model_dirs["ner"])
    src.add(FILL_MASK, model_dirs["fill_mask"])
    return src


@pytest.fixture(scope="session")
def server(source):
    # In-process engines here (tests inspect them); the hub end-to-end tests run worker processes.
    settings = InferenceSettings.from_env({}, device="cpu", dtype="float32", engine="transformers", isolation="thread",
                                          threads=2, kv_cache_bytes=16 * 1024 * 1024, max_loaded_models=6,
                                          anon_max_concurrent=16, max_concurrent_per_user=16,
                                          keep_alive_seconds=-1, batch_wait_ms=2)
    live = LiveServer(source, settings).start()
    yield live
    live.stop()


@pytest.fixture
def openai_client(server):
    from openai import OpenAI

    with OpenAI(base_url=server.url + "/v1", api_key="alice", max_retries=0, timeout=60) as client:
        yield client
