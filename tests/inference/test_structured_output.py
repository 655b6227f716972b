"""Structured output, tools, logprobs and logit_bias with the unmodified ``openai`` client against
tiny random-weight models uploaded to the live hub. Random weights make free text garbage; the
point is that the constraint holds anyway."""

from __future__ import annotations

import json
import math
from typing import Literal

import openai
import pytest
from pydantic import BaseModel, Field

from tests.conftest import ALICE_TOKEN, unique_name

pytestmark = pytest.mark.inference

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8},
                                                    "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "integer"}},
                                       "required": ["zone"], "additionalProperties": False}}}


class Person(BaseModel):
    name: str = Field(max_length=10)
    age: int = Field(ge=0, le=150)
    colour: Literal["red", "green", "blue"]
    member: bool


@pytest.fixture(scope="module")
def models(live_hub, model_dirs, tmp_path_factory):
    from huggingface_hub import HfApi

    from aicommons.inference import devmodels

    tool_dir = devmodels.build_llama(tmp_path_factory.mktemp("tool-llama"), seed=3,
                                     chat_template=devmodels.TOOL_CHAT_TEMPLATE)
    api = HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)
    ids = {"plain": f"alice/{unique_name('tiny-llama')}", "tools": f"alice/{unique_name('tool-llama')}"}
    for key, folder in (("plain", model_dirs["llama"]), ("tools", tool_dir)):
        api.create_repo(ids[key])
        api.upload_folder(repo_id=ids[key], folder_path=str(folder))
    return ids


@pytest.fixture(scope="module")
def client(live_hub):
    with openai.OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0, timeout=120) as c:
        yield c


def _check_weather(args: str) -> None:
    value = json.loads(args)
    assert set(value) == {"city", "unit"} and value["unit"] in ("c", "f") and len(value["city"]) <= 8


def test_parse_returns_a_valid_pydantic_object(client, models):
    for model in models.values():
        for temperature in (0, 1.0):
            reply = client.chat.completions.parse(
                model=model, messages=[{"role": "user", "content": "who are you?"}], response_format=Person,
                max_tokens=200, temperature=temperature)
            person = reply.choices[0].message.parsed
            assert isinstance(person, Person), reply.choices[0].message.content
            assert reply.choices[0].finish_reason == "stop"


def test_json_object_and_streamed_json_schema(client, models, model_dirs):
    from transformers import AutoTokenizer

    # Any object is allowed, and random weights would write one forever: a bias towards "}" (which
    # the grammar only lets through where an object may close) ends it.
    close = AutoTokenizer.from_pretrained(model_dirs["llama"]).convert_tokens_to_ids("}")
    reply = client.chat.completions.create(
        model=models["plain"], messages=[{"role": "user", "content": "json please"}], max_tokens=300,
        response_format={"type": "json_object"}, temperature=0, logit_bias={str(close): 30})
    assert reply.choices[0].finish_reason == "stop", reply.choices[0].message.content
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}},
              "required": ["n"], "additionalProperties": False}
    chunks = list(client.chat.completions.create(
        model=models["plain"], messages=[{"role": "user", "content": "a number"}], max_tokens=60, stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema, "strict": True}}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert 0 <= json.loads(text)["n"] <= 99
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_bad_schema_is_a_400(client, models):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=models["plain"], messages=[{"role": "user", "content": "x"}], max_tokens=5,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"},
                                                                     "strict": True}})
    assert info.value.body["param"].startswith("response_format")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=models["plain"], messages=[{"role": "user", "content": "x"}],
                                       max_tokens=5, tools=[WEATHER], tool_choice={"type": "function",
                                                                                   "function": {"name": "nope"}})


def test_tool_call_round_trip_with_required_choice(client, models):
    messages = [{"role": "user", "content": "weather in paris?"}]
    for model in models.values():  # the <tool_call> template and the plain one (JSON array format)
        reply = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER, TIME],
                                               tool_choice="required", max_tokens=200, temperature=0,
                                               parallel_tool_calls=False)
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls", choice.message
        (call,) = choice.message.tool_calls
        assert call.type == "function" and call.function.name in ("get_weather", "get_time")
        if call.function.name == "get_weather":
            _check_weather(call.function.arguments)
        else:
            assert isinstance(json.loads(call.function.arguments)["zone"], int)
        # The tool's answer goes back; the model's own template renders the call and the result.
        follow = client.chat.completions.create(
            model=model, max_tokens=5, tools=[WEATHER, TIME], tool_choice="none",
            messages=[*messages, choice.message.model_dump(exclude_none=True),
                      {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}])
        assert follow.choices[0].message.tool_calls is None
        assert isinstance(follow.choices[0].message.content, str)


def test_named_tool_choice_and_parallel_calls(client, models):
    named = client.chat.completions.create(
        model=models["tools"], messages=[{"role": "user", "content": "go"}], tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, max_tokens=200, temperature=1.0)
    calls = named.choices[0].message.tool_calls
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    _check_weather(calls[0].function.arguments)
    parallel = client.chat.completions.create(
        model=models["tools"], messages=[{"role": "user", "content": "go"}], tools=[WEATHER, TIME],
        tool_choice="required", max_tokens=400, temperature=1.0, seed=7)
    calls = parallel.choices[0].message.tool_calls
    assert calls and len({c.id for c in calls}) == len(calls)
    for c in calls:
        assert c.function.name in ("get_weather", "get_time")
        json.loads(c.function.arguments)


def test_streamed_tool_call_deltas(client, models):
    stream = client.chat.completions.create(
        model=models["tools"], messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER],
        tool_choice="required", max_tokens=200, temperature=0, stream=True, parallel_tool_calls=False)
    chunks = list(stream)
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather" and deltas[0].index == 0
    _check_weather("".join(d.function.arguments or "" for d in deltas))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # The openai client's own stream helper accumulates the same deltas into a complete call.
    with client.chat.completions.stream(model=models["tools"], messages=[{"role": "user", "content": "weather?"}],
                                        tools=[openai.pydantic_function_tool(_Weather)], tool_choice="required",
                                        max_tokens=200, temperature=0, parallel_tool_calls=False) as s:
        final = s.get_final_completion()
    parsed = final.choices[0].message.tool_calls[0].function.parsed_arguments
    assert isinstance(parsed, _Weather)


class _Weather(BaseModel):
    city: str = Field(max_length=6)
    unit: Literal["c", "f"]


def test_logprobs_have_openai_shape(client, models):
    reply = client.chat.completions.create(model=models["plain"], messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=6, temperature=0, logprobs=True, top_logprobs=3,
                                           extra_body={"ignore_eos": True})
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == 6
    assert "".join(e.token for e in content) == reply.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[-1].logprob
        assert math.isclose(entry.logprob, entry.top_logprobs[0].logprob, abs_tol=1e-4)  # greedy takes the top
        assert entry.bytes == list(entry.token.encode())
    chunks = list(client.chat.completions.create(
        model=models["plain"], messages=[{"role": "user", "content": "hi"}], max_tokens=6, temperature=0,
        logprobs=True, top_logprobs=2, stream=True, extra_body={"ignore_eos": True}))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in content]
    assert [round(e.logprob, 4) for e in streamed] == [round(e.logprob, 4) for e in content]
    legacy = client.completions.create(model=models["plain"], prompt="the fox", max_tokens=4, temperature=0,
                                       logprobs=2, extra_body={"ignore_eos": True})
    lp = legacy.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 4
    assert all(len(t) <= 2 for t in lp.top_logprobs) and lp.text_offset[0] == 0


def test_logit_bias_forces_and_forbids_a_token(client, models, model_dirs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dirs["llama"])
    base = dict(model=models["plain"], messages=[{"role": "user", "content": "hi"}], max_tokens=5, temperature=0,
                extra_body={"ignore_eos": True}, logprobs=True)
    free = [e.token for e in client.chat.completions.create(**base).choices[0].logprobs.content]
    forced_id = tokenizer.convert_tokens_to_ids("Ġfox")
    forced = client.chat.completions.create(**base, logit_bias={str(forced_id): 100})
    assert [e.token for e in forced.choices[0].logprobs.content] == [" fox"] * 5
    (first_id,) = tokenizer.encode(free[0], add_special_tokens=False)
    banned = client.chat.completions.create(**base, logit_bias={str(first_id): -100})
    assert banned.choices[0].logprobs.content[0].token != free[0]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**{**base, "logit_bias": {"999999": 5}})
    assert info.value.body["param"] == "logit_bias"


def test_tgi_grammar_and_details_logprobs(live_hub, models):
    from huggingface_hub import InferenceClient

    hf = InferenceClient(model=f"{live_hub.url}/models/{models['plain']}", token=ALICE_TOKEN, timeout=120)
    out = hf.text_generation("a colour:", max_new_tokens=20, grammar={"type": "regex", "value": "(red|green|blue)!"},
                             details=True)
    assert out.generated_text in ("red!", "green!", "blue!")
    assert all(t.logprob is not None and t.logprob <= 0 for t in out.details.tokens)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    text = hf.text_generation("json:", max_new_tokens=30, grammar={"type": "json", "value": schema})
    assert isinstance(json.loads(text)["ok"], bool)


def test_inference_client_json_schema_is_enforced(live_hub, models):
    """``InferenceClient.chat_completion(response_format={"type": "json_schema", ...})`` sends TGI's
    ``{"type": "json_object", "value": schema}``: the schema was ignored (any object came back, ``{}``
    on a random model), now the output follows it, as with the openai client."""
    from huggingface_hub import InferenceClient

    schema = {"type": "object", "properties": {"colour": {"type": "string", "enum": ["red", "green"]},
                                               "ok": {"type": "boolean"}},
              "required": ["colour", "ok"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    for hf in (InferenceClient(model=f"{live_hub.url}/models/{models['plain']}", token=ALICE_TOKEN, timeout=120),
               InferenceClient(base_url=f"{live_hub.url}/v1", token=ALICE_TOKEN, timeout=120)):
        out = hf.chat_completion([{"role": "user", "content": "answer"}], model=models["plain"], max_tokens=40,
                                 response_format=fmt)
        value = json.loads(out.choices[0].message.content)
        assert value["colour"] in ("red", "green") and isinstance(value["ok"], bool) and set(value) == {"colour", "ok"}
    with pytest.raises(openai.BadRequestError) as bad:  # a value that is no schema: a 400 naming it
        openai.OpenAI(base_url=live_hub.url + "/v1", api_key=ALICE_TOKEN, max_retries=0).chat.completions.create(
            model=models["plain"], messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_object", "value": "not json"})  # type: ignore[arg-type]
    assert bad.value.body["param"] == "response_format.value"
