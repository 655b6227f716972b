"""The encoder engine's event-loop side must not disturb its forward thread."""

from __future__ import annotations

import pytest

from aicommons.inference import tasks as T
from aicommons.inference.settings import InferenceSettings
from aicommons.inference.source import ResolvedModel


@pytest.fixture(scope="module")
def minilm_engine(model_dirs):
    from aicommons.inference.engines.transformers_encoder import TransformersEncoder

    settings = InferenceSettings.from_env({}, device="cpu", dtype="float32", threads=2)
    resolved = ResolvedModel("sentence-transformers/all-MiniLM-L6-v2", "0" * 40, model_dirs["minilm"])
    engine = TransformersEncoder.load(resolved, T.EMBEDDING, settings)
    yield engine
    engine.close()


def test_counting_tokens_leaves_the_batch_tokenizer_alone(minilm_engine):
    # A fast tokenizer's __call__ sets padding/truncation on the shared Rust tokenizer; a count on
    # the event loop in the middle of a batch's tokenisation used to switch that batch's padding off.
    backend = minilm_engine.tokenizer.backend_tokenizer
    backend.enable_padding(pad_id=0, pad_token="[PAD]")  # as while the forward thread pads a batch
    try:
        minilm_engine.count_tokens(["a fox", "a dog runs"])
        assert backend.padding is not None
    finally:
        backend.no_padding()


def test_token_counts_match_the_tokenizer_and_are_not_truncated(minilm_engine):
    texts = ["the quick fox", "word " * 600]
    expected = [len(ids) for ids in minilm_engine.tokenizer(texts, add_special_tokens=True)["input_ids"]]
    assert minilm_engine.count_tokens(texts) == expected
    assert expected[1] > minilm_engine.max_input_tokens  # so over-long inputs are still refused


def test_attention_kernel_follows_the_batch_length_and_answers_do_not_change(minilm_engine, model_dirs):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    short, long_ = ["a quick fox", "the lazy dog"], ["word " * 100, "river " * 90]
    reference = SentenceTransformer(str(model_dirs["minilm"]), device="cpu")  # SDPA throughout
    key = (T.EMBEDDING, "{}")
    config = minilm_engine.model.config  # all-MiniLM-L6-v2 loads natively (st_native)
    got_short = np.asarray(minilm_engine._run_batch(key, short))
    assert config._attn_implementation == "eager"  # 5 tokens: eager attention is faster
    got_long = np.asarray(minilm_engine._run_batch(key, long_))
    assert config._attn_implementation == "sdpa"  # 100 tokens: SDPA's kernel wins
    np.testing.assert_allclose(got_short, reference.encode(short), atol=1e-5)
    np.testing.assert_allclose(got_long, reference.encode(long_), atol=1e-5)
