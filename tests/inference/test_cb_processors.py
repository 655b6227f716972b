"""The lazy top-k/top-p processors must give exactly what transformers' own give."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def processors():
    from transformers.generation.continuous_batching import cb_logits_processors as cb
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    from aicommons.inference.engines.cb_processors import install

    assert install()
    vocab = 50
    lazy_k = cb.CLASSIC_TO_CB_PROCESSORS_MAP[TopKLogitsWarper](TopKLogitsWarper(top_k=vocab))
    lazy_p = cb.CLASSIC_TO_CB_PROCESSORS_MAP[TopPLogitsWarper](TopPLogitsWarper(top_p=0.9))
    full_k = cb.ContinuousBatchingTopKLogitsWarper(TopKLogitsWarper(top_k=vocab))
    full_p = cb.ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(top_p=0.9))
    assert type(lazy_k) is not type(full_k) and type(lazy_p) is not type(full_p)
    return vocab, (lazy_k, full_k), (lazy_p, full_p)


def top_k_arg(values):
    return torch.tensor(values, dtype=torch.int32)


def top_p_arg(values):
    return torch.tensor(values, dtype=torch.float32).view(dtype=torch.int32)


def test_lazy_processors_match_transformers_when_unused_and_when_used():
    vocab, (lazy_k, full_k), (lazy_p, full_p) = processors()
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(3, vocab, generator=gen) / 1e-5  # as a greedy request's scaled logits
    for arg in (top_k_arg([vocab, vocab, vocab]), top_k_arg([vocab, 5, vocab]), top_k_arg([1, 2, 3])):
        assert torch.equal(lazy_k(scores.clone(), arg), full_k(scores.clone(), arg))
    for arg in (top_p_arg([0.5, 0.9, 0.99]), top_p_arg([1.0, 0.3, 1.0])):
        assert torch.equal(lazy_p(scores.clone(), arg), full_p(scores.clone(), arg))
    # top_p = 1.0 everywhere: untouched; transformers only masks tokens of probability exactly 0,
    # which sampling can never pick either.
    arg = top_p_arg([1.0, 1.0, 1.0])
    kept = lazy_p(scores.clone(), arg)
    assert torch.equal(kept, scores)
    assert torch.equal(torch.softmax(kept, -1), torch.softmax(full_p(scores.clone(), arg), -1))
