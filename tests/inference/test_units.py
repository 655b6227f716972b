"""Pure pieces: stop sequences, sandboxed chat templates, request parsing, task detection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aicommons.inference.chat_template import TemplateError, normalize_messages, render_chat
from aicommons.inference.errors import ContextLengthExceeded, InvalidRequest, UnsupportedTask
from aicommons.inference.generation import StopMatcher
from aicommons.inference.params import fit_to_context, openai_sampling, tgi_sampling
from aicommons.inference.settings import SETTINGS, InferenceSettings
from aicommons.inference.source import ResolvedModel
from aicommons.inference.tasks import detect_task

S = InferenceSettings.from_env({})


def feed_all(matcher, pieces):
    out = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


def test_stop_matcher_across_token_boundaries():
    assert feed_all(StopMatcher(("END",)), ["hel", "lo E", "N", "D more"]) == ("hello ", True)
    assert feed_all(StopMatcher(("END",)), ["hello E", "NTRY"]) == ("hello ENTRY", False)
    assert feed_all(StopMatcher(()), ["a", "b"]) == ("ab", False)
    m = StopMatcher(("xyz",))
    assert m.feed("abx") == ("ab", False)  # "x" held back: it may start the stop sequence


def test_chat_template_renders_and_is_sandboxed():
    tpl = "{% for m in messages %}{{ m['role'] }}={{ m['content'] }};{% endfor %}"
    assert render_chat(tpl, [{"role": "user", "content": "hi"}]) == "user=hi;"
    with pytest.raises(TemplateError):  # reaching into Python internals is refused
        render_chat("{{ messages.__class__.__mro__ }}", [])
    with pytest.raises(TemplateError):  # the immutable sandbox forbids mutating inputs
        render_chat("{% set _ = messages.append(1) %}", [])
    with pytest.raises(TemplateError):
        render_chat("{{ raise_exception('no system role') }}", [])
    with pytest.raises(TemplateError):
        render_chat("{% for %}", [])


def test_normalize_messages():
    assert normalize_messages([{"role": "developer", "content": [{"type": "text", "text": "a"},
                                                                   {"type": "text", "text": "b"}]}]) == \
        [{"role": "system", "content": "ab"}]
    for bad in (None, [], ["x"], [{"role": "user"}], [{"role": "user", "content": 3}],
                [{"role": "user", "content": [{"type": "image_url"}]}]):
        with pytest.raises(InvalidRequest):
            normalize_messages(bad)


def test_openai_sampling_validation():
    params, n, extra = openai_sampling({"max_tokens": 5, "temperature": 0, "stop": "x", "n": 2, "stream": True,
                                        "stream_options": {"include_usage": True}}, S, default_max_tokens=None)
    assert (params.max_new_tokens, params.greedy, params.stop, n) == (5, True, ("x",), 2)
    assert extra == {"stream": True, "include_usage": True}
    for bad in ({"max_tokens": "5"}, {"max_tokens": 0}, {"temperature": 3}, {"n": 100}, {"stop": [1]},
                {"logprobs": "yes"}, {"top_logprobs": 3}, {"logprobs": True, "top_logprobs": 21},
                {"seed": 1.5}, {"stream": "yes"}, {"functions": [{"name": "f"}]},
                {"response_format": {"type": "xml"}}, {"response_format": {"type": "json_schema"}},
                {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}},
                {"logit_bias": {"a": 1}}, {"logit_bias": {"1": 101}}, {"stop": ["a"] * 20}):
        with pytest.raises(InvalidRequest):
            openai_sampling(bad, S, default_max_tokens=None)
    guided, _, _ = openai_sampling({"response_format": {"type": "json_object"}, "logprobs": True, "top_logprobs": 2,
                                    "logit_bias": {"7": -100}}, S, default_max_tokens=None)
    assert guided.grammar and guided.logprobs == 2 and guided.logit_bias == ((7, -100.0),)
    legacy, _, _ = openai_sampling({"logprobs": 0}, S, default_max_tokens=None, chat=False)
    assert legacy.logprobs == 0 and not openai_sampling({}, S, default_max_tokens=None)[0].guided


def test_tool_specs_and_call_parsing():
    from aicommons.inference.tools import CallStreamer, parse_calls, parse_tools

    fn = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    for bad in ({"tools": [{"type": "function"}]}, {"tools": [fn, fn]}, {"tool_choice": "required"},
                {"tools": [fn], "tool_choice": {"type": "function", "function": {"name": "g"}}},
                {"tools": [fn], "tool_choice": "always"}, {"tools": [fn], "parallel_tool_calls": "no"}):
        with pytest.raises(InvalidRequest):
            parse_tools(bad)
    spec = parse_tools({"tools": [fn], "tool_choice": "auto"})
    content, calls = parse_calls('hi <tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>', "hermes", spec)
    assert content == "hi" and calls[0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert parse_calls('[{"name": "g", "arguments": {}}]', "json", spec) == ('[{"name": "g", "arguments": {}}]', [])
    streamer = CallStreamer(spec, "json")
    pieces = ['[{"na', 'me": "f", "arguments": {}}', ', {"name": "f", "arguments": {"x": [1]}}]']
    got = [streamer.feed(p) for p in pieces]
    assert got[0] == ("", []) and len(got[1][1]) == 1 and got[2][1][0]["function"]["arguments"] == '{"x": [1]}'
    text = CallStreamer(spec, "hermes")
    assert text.feed("<tool") == ("", []) and text.feed("bar is here", final=True) == ("<toolbar is here", [])


def test_tgi_sampling_defaults_to_greedy():
    params, extras = tgi_sampling({"max_new_tokens": 4, "details": True}, S)
    assert params.greedy and params.max_new_tokens == 4 and extras["details"]
    sampled, _ = tgi_sampling({"do_sample": True, "temperature": 0.5}, S)
    assert not sampled.greedy and sampled.temperature == 0.5
    assert tgi_sampling({"grammar": {"type": "json", "value": {"type": "object"}}}, S)[0].grammar
    for bad in ({"type": "xml"}, {"type": "regex", "value": "[a-"}, {"type": "json", "value": "not json"}):
        with pytest.raises(InvalidRequest):
            tgi_sampling({"grammar": bad}, S)


def test_fit_to_context():
    params, _, _ = openai_sampling({}, S, default_max_tokens=None)
    assert fit_to_context(params, 10, 100, default=256).max_new_tokens == 90
    with pytest.raises(ContextLengthExceeded):
        fit_to_context(params, 100, 100, default=256)
    big, _, _ = openai_sampling({"max_tokens": 95}, S, default_max_tokens=None)
    with pytest.raises(ContextLengthExceeded):
        fit_to_context(big, 10, 100, default=256)


def test_task_detection(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    assert detect_task(ResolvedModel("a/b", "0" * 40, tmp_path)) == "text-generation"
    assert detect_task(ResolvedModel("a/b", "0" * 40, tmp_path, pipeline_tag="fill-mask")) == "fill-mask"
    # a GPT-2 pushed without a card: served as the causal LM it is, not as an embedding encoder
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}))
    assert detect_task(ResolvedModel("a/b", "0" * 40, tmp_path)) == "text-generation"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["T5WithLMHeadModel"], "is_encoder_decoder": True}))
    assert detect_task(ResolvedModel("a/b", "0" * 40, tmp_path)) != "text-generation"
    with pytest.raises(UnsupportedTask):
        detect_task(ResolvedModel("a/b", "0" * 40, tmp_path, pipeline_tag="text-to-image"))
    (tmp_path / "modules.json").write_text("[]")
    assert detect_task(ResolvedModel("a/b", "0" * 40, tmp_path, library_name="sentence-transformers")) == \
        "feature-extraction"


def test_every_setting_is_documented():
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    missing = [s.name for s in SETTINGS if f"AICOMMONS_INFERENCE_{s.name}" not in doc]
    assert not missing, f"regenerate docs/configuration.md (aicommons settings-doc): {missing}"
    env = {"AICOMMONS_INFERENCE_MAX_RUNNING": "7", "AICOMMONS_INFERENCE_ANON_ALLOWED": "false"}
    parsed = InferenceSettings.from_env(env)
    assert parsed.max_running == 7 and parsed.anon_allowed is False


def test_importing_inference_does_not_import_torch():
    code = ("import sys, aicommons.inference, aicommons.inference.routes, aicommons.inference.service;"
            "print('torch' in sys.modules or 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("value, seconds", [
    (None, None), (10, 10.0), (2.5, 2.5), ("30", 30.0), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0),
    ("0", 0.0), (0, 0.0), (-1, -1.0), ("-5m", -1.0),
])
def test_keep_alive_values(value, seconds):
    from aicommons.inference.params import parse_keep_alive

    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", "", True, [1], {"s": 1}, float("nan"), "1d"])
def test_keep_alive_nonsense_is_refused(value):
    from aicommons.inference.errors import InvalidRequest
    from aicommons.inference.params import parse_keep_alive

    with pytest.raises(InvalidRequest):
        parse_keep_alive(value)


def test_gguf_engine_setting_chooses_and_names_itself(tmp_path):
    """``GGUF_ENGINE``: a bad value names its variable; llama.cpp is chosen only for a GGUF file,
    and under ``auto`` only where llama-cpp-python is importable."""
    import importlib.util

    from aicommons.config import SettingsError
    from aicommons.inference.engines.llama_cpp import use_llama_cpp
    from aicommons.inference.settings import InferenceSettings
    from aicommons.inference.source import ResolvedModel

    with pytest.raises(SettingsError, match="AICOMMONS_INFERENCE_GGUF_ENGINE"):
        InferenceSettings.from_env({"AICOMMONS_INFERENCE_GGUF_ENGINE": "ollama"})
    plain = ResolvedModel("a/b", "0" * 40, tmp_path)
    gguf_file = ResolvedModel("a/b", "0" * 40, tmp_path, variant="b-Q8_0.gguf")
    settings = {v: InferenceSettings.from_env({"AICOMMONS_INFERENCE_GGUF_ENGINE": v})
                for v in ("auto", "llama.cpp", "transformers")}
    assert not any(use_llama_cpp(plain, s) for s in settings.values())
    assert use_llama_cpp(gguf_file, settings["llama.cpp"]) and not use_llama_cpp(gguf_file, settings["transformers"])
    assert use_llama_cpp(gguf_file, settings["auto"]) == (importlib.util.find_spec("llama_cpp") is not None)


def test_the_kv_cache_is_sized_so_the_attention_mask_stays_within_its_budget():
    """transformers' CB allocates an attention mask of step tokens x cache tokens: the dev Llama's
    512-byte KV rows made 256 MiB of KV half a million tokens, and the worker's mask 4 GiB."""
    from aicommons.inference.engines.transformers_lm import _PAGE_SIZE, cache_blocks
    from aicommons.inference.settings import InferenceSettings

    settings = InferenceSettings(kv_cache_bytes=256 * 1024 ** 2)
    tiny = cache_blocks(settings, "cpu", kv_bytes_per_token=512, dtype_bytes=4)
    assert 2048 * tiny * _PAGE_SIZE * 4 <= settings.kv_cache_bytes  # the mask: step tokens x cache tokens
    assert tiny * _PAGE_SIZE == 32768
    # A model with real KV rows (an 8B Llama in bf16: 128 KiB a token) keeps what the budget holds.
    assert cache_blocks(settings, "cpu", kv_bytes_per_token=128 * 1024, dtype_bytes=2) * _PAGE_SIZE == 2048
    # A small budget still leaves 16k tokens to the cache (its KV permitting).
    small = InferenceSettings(kv_cache_bytes=16 * 1024 ** 2)
    assert cache_blocks(small, "cpu", kv_bytes_per_token=512, dtype_bytes=4) * _PAGE_SIZE == 16384
