"""The engine's sampling on continuous batching (``cb_processors``): the lazy processors must give
what transformers' own give, the sampler must draw from softmax(scores) (argmax when every row is
greedy), and a real server's greedy output must be the model's argmax token by token, alone and
in steps shared with sampled requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import LLAMA

torch = pytest.importorskip("torch")


def processors():
    from transformers.generation.continuous_batching import cb_logits_processors as cb
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from aicommons.inference.engines.cb_processors import install

    assert install()
    vocab = 50
    lazy_t = cb.CLASSIC_TO_CB_PROCESSORS_MAP[TemperatureLogitsWarper](TemperatureLogitsWarper(0.7))
    lazy_k = cb.CLASSIC_TO_CB_PROCESSORS_MAP[TopKLogitsWarper](TopKLogitsWarper(top_k=vocab))
    lazy_p = cb.CLASSIC_TO_CB_PROCESSORS_MAP[TopPLogitsWarper](TopPLogitsWarper(top_p=0.9))
    full_t = cb.ContinuousBatchingTemperatureLogitsWarper(TemperatureLogitsWarper(0.7))
    full_k = cb.ContinuousBatchingTopKLogitsWarper(TopKLogitsWarper(top_k=vocab))
    full_p = cb.ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(top_p=0.9))
    assert type(lazy_k) is not type(full_k) and type(lazy_p) is not type(full_p) and type(lazy_t) is not type(full_t)
    return vocab, (lazy_t, full_t), (lazy_k, full_k), (lazy_p, full_p)


def top_k_arg(values):
    return torch.tensor(values, dtype=torch.int32)


def float_arg(values):
    return torch.tensor(values, dtype=torch.float32).view(dtype=torch.int32)


def test_lazy_processors_match_transformers_when_unused_and_when_used():
    vocab, _, (lazy_k, full_k), (lazy_p, full_p) = processors()
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(3, vocab, generator=gen) / 1e-5  # as a greedy request's scaled logits
    for arg in (top_k_arg([vocab, vocab, vocab]), top_k_arg([vocab, 5, vocab]), top_k_arg([1, 2, 3])):
        assert torch.equal(lazy_k(scores.clone(), arg), full_k(scores.clone(), arg))
    for arg in (float_arg([0.5, 0.9, 0.99]), float_arg([1.0, 0.3, 1.0])):
        assert torch.equal(lazy_p(scores.clone(), arg), full_p(scores.clone(), arg))
    # top_p = 1.0 everywhere: untouched; transformers only masks tokens of probability exactly 0,
    # which sampling can never pick either.
    arg = float_arg([1.0, 1.0, 1.0])
    kept = lazy_p(scores.clone(), arg)
    assert torch.equal(kept, scores)
    assert torch.equal(torch.softmax(kept, -1), torch.softmax(full_p(scores.clone(), arg), -1))


def test_an_all_greedy_step_skips_the_chain_only_with_the_argmax_sampler_attached():
    from aicommons.inference.engines.cb_processors import GREEDY_TEMPERATURE, StepState

    vocab, (lazy_t, full_t), (lazy_k, _), (lazy_p, _) = processors()
    scores = torch.randn(3, vocab, generator=torch.Generator().manual_seed(1))
    greedy = float_arg([GREEDY_TEMPERATURE] * 3)
    mixed = float_arg([GREEDY_TEMPERATURE, 0.8, GREEDY_TEMPERATURE])
    # Not attached (no sampler that takes the argmax): transformers' division, whatever the rows.
    for arg in (greedy, mixed):
        assert torch.equal(lazy_t(scores.clone(), arg), full_t(scores.clone(), arg))
    step = StepState()
    lazy_t.step = lazy_k.step = lazy_p.step = step
    assert lazy_t(scores, greedy) is scores and step.greedy
    assert lazy_k(scores, top_k_arg([1, 1, 1])) is scores and lazy_p(scores, float_arg([0.1] * 3)) is scores
    assert torch.equal(lazy_t(scores.clone(), mixed), full_t(scores.clone(), mixed)) and not step.greedy
    assert torch.equal(lazy_k(scores.clone(), top_k_arg([2, 2, 2])), torch.where(
        scores >= scores.topk(2, -1).values[:, -1:], scores, torch.tensor(float("-inf"))))


def test_the_sampler_draws_from_the_softmax_and_never_a_masked_token():
    from aicommons.inference.engines.cb_processors import sample_rows

    torch.manual_seed(0)
    logits = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4, 1.0]))
    logits[4] = float("-inf")  # masked (top-k/top-p, a grammar)
    rows = 40_000
    drawn = sample_rows(logits.expand(rows, -1).clone(), greedy=False)
    counts = torch.bincount(drawn, minlength=5).double() / rows
    assert counts[4] == 0
    # 40,000 draws: standard error <= 0.0025 per token.
    assert torch.allclose(counts[:4], torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64), atol=0.012)
    scores = torch.randn(6, 100, generator=torch.Generator().manual_seed(2))
    assert torch.equal(sample_rows(scores, greedy=True), scores.argmax(-1))
    # A greedy row among sampled ones (logits / 1e-5) is still its argmax.
    assert torch.equal(sample_rows(scores / 1e-5, greedy=False), scores.argmax(-1))


def _argmax_continuation(model_dir, prompt: str, n: int) -> list[int]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = tokenizer(prompt, add_special_tokens=True, return_tensors="pt")["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(n):
            token = int(model(ids).logits[0, -1].argmax())
            out.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


def test_greedy_output_is_the_models_argmax_alone_and_beside_sampled_requests(openai_client, server, model_dirs):
    prompts = ["the fox", "a dog runs over", "paris city"]
    expected = {p: _argmax_continuation(model_dirs["llama"], p, 10) for p in prompts}

    def greedy(prompt):
        reply = openai_client.completions.create(model=LLAMA, prompt=prompt, max_tokens=10, temperature=0,
                                                 logprobs=1, extra_body={"ignore_eos": True})
        return reply.choices[0]

    def sampled(i):
        return openai_client.completions.create(model=LLAMA, prompt="blue river", max_tokens=10, temperature=1.0,
                                                top_p=0.9, extra_body={"ignore_eos": True}).choices[0].text

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dirs["llama"])
    alone = greedy(prompts[0])
    assert alone.text == tokenizer.decode(expected[prompts[0]], skip_special_tokens=True)
    engine = next(e.engine for e in server.service.list_loaded() if e.resolved.repo_id == LLAMA)
    from aicommons.inference.engines._transformers_private import cb_logit_processors

    assert [type(p).__name__ for p in cb_logit_processors(engine.manager)][1:] == \
        ["LazyTemperature", "LazyTopK", "LazyTopP"]
    assert all(p.step is not None for p in cb_logit_processors(engine.manager)[1:])  # the fast sampler is on
    with ThreadPoolExecutor(8) as pool:  # greedy and sampled requests share steps
        noise = [pool.submit(sampled, i) for i in range(5)]
        together = {p: pool.submit(greedy, p) for p in prompts}
        assert all(isinstance(f.result(), str) for f in noise)
    for prompt, future in together.items():
        assert future.result().text == tokenizer.decode(expected[prompt], skip_special_tokens=True), prompt


def test_attach_leaves_a_manager_alone_unless_it_samples_without_cb_logprobs(model_dirs):
    """The greedy shortcut skips the temperature division, which is right only when our sampler
    (argmax) follows: a manager whose own sampler would run on those logits is not touched."""
    from transformers import AutoModelForCausalLM, ContinuousBatchingConfig, GenerationConfig

    from aicommons.inference.engines.cb_processors import attach, install

    assert install()
    model = AutoModelForCausalLM.from_pretrained(model_dirs["llama"], dtype=torch.float32).eval()

    def manager(do_sample: bool, logprobs: bool):
        config = GenerationConfig(do_sample=do_sample, temperature=0.7, top_p=0.9, top_k=50, max_new_tokens=4)
        return model.init_continuous_batching(generation_config=config, continuous_batching_config=ContinuousBatchingConfig(
            per_request_processors=True, page_size=16, num_blocks=8, max_batch_tokens=64, return_logprobs=logprobs))

    assert attach(manager(True, False))
    assert not attach(manager(False, False)) and not attach(manager(True, True))
