"""Requests' output constraints into llguidance grammars (pure; llguidance is imported on use).

- OpenAI ``response_format``: ``text`` (none), ``json_object`` (any JSON object), ``json_schema``
  (``{"name", "schema", "strict"}``; strict schemas must compile exactly, others may use keywords
  llguidance does not implement, which are then ignored); TGI's ``{"type": "json_object", "value":
  schema}`` (what ``InferenceClient.chat_completion`` sends for a ``json_schema``) as a lenient schema.
- TGI ``grammar``: ``{"type": "json" | "json_schema", "value": schema}`` or ``{"type": "regex"}``.
- ``logit_bias`` (token id -> bias in [-100, 100]) and ``logprobs``/``top_logprobs`` checks.

JSON is generated compactly with the separators ``json.dumps`` uses (", " and ": ") and no free
whitespace, so a model cannot spend its token budget on blank space inside an object.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .errors import InvalidRequest

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions

def json_options(lenient: bool) -> JsonCompileOptions:
    """Compact JSON as ``json.dumps`` writes it; ``lenient`` ignores unimplemented keywords."""
    return {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": ", "lenient": lenient}


MAX_SCHEMA_CHARS = 64 * 1024
MAX_TOP_LOGPROBS = 20


def _check(grammar: str, param: str) -> str:
    import llguidance

    error = llguidance.LLMatcher.validate_grammar(grammar, None)
    if error and not error.startswith("WARNING"):
        raise InvalidRequest(f"the output grammar is invalid: {error.strip()[:300]}", param=param)
    return grammar


def json_schema_grammar(schema, *, strict: bool = True, param: str = "response_format") -> str:
    import llguidance

    if not isinstance(schema, dict):
        raise InvalidRequest("the JSON schema must be an object", param=param)
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise InvalidRequest(f"the JSON schema is longer than {MAX_SCHEMA_CHARS} characters", param=param)
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=json_options(not strict))
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"the JSON schema is invalid: {exc}", param=param) from None
    return _check(grammar, param)


def response_format_grammar(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("'response_format' must be an object", param="response_format")
    kind = value.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        if value.get("value") is not None:  # TGI's chat form, what InferenceClient turns json_schema into
            schema = value["value"]
            if isinstance(schema, str):
                try:
                    schema = json.loads(schema)
                except ValueError:
                    raise InvalidRequest("'response_format.value' must be a JSON schema",
                                         param="response_format.value") from None
            return json_schema_grammar(schema, strict=False, param="response_format.value")
        return json_schema_grammar({"type": "object"})
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name", ""), str):
            raise InvalidRequest("'response_format.json_schema' must be an object with a 'schema'",
                                 param="response_format.json_schema")
        schema = spec.get("schema", {"type": "object"})
        return json_schema_grammar(schema, strict=spec.get("strict") is True,
                                   param="response_format.json_schema.schema")
    raise InvalidRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'",
                         param="response_format.type")


def tgi_grammar(value, param: str = "parameters.grammar") -> str | None:
    import llguidance

    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in ("json", "json_schema", "json_object", "regex"):
        raise InvalidRequest("'grammar' must be {'type': 'json' | 'regex', 'value': ...}", param=param)
    spec = value.get("value")
    if value["type"] == "regex":
        if not isinstance(spec, str) or not spec or len(spec) > MAX_SCHEMA_CHARS:
            raise InvalidRequest("a regex grammar's 'value' must be a non-empty string", param=param)
        return _check(llguidance.LLMatcher.grammar_from_regex(spec), param)
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            raise InvalidRequest("a JSON grammar's 'value' must be a JSON schema", param=param) from None
    if value["type"] == "json_schema" and isinstance(spec, dict) and "schema" in spec:
        spec = spec["schema"]  # TGI's chat route nests it like OpenAI's response_format
    return json_schema_grammar(spec if spec is not None else {"type": "object"}, param=param)


def logit_bias(value) -> tuple[tuple[int, float], ...]:
    if value in (None, {}):
        return ()
    if not isinstance(value, dict) or len(value) > 300:
        raise InvalidRequest("'logit_bias' must be an object of at most 300 token ids", param="logit_bias")
    out = []
    for key, bias in value.items():
        try:
            token = int(key)
        except (TypeError, ValueError):
            raise InvalidRequest("'logit_bias' keys must be token ids", param="logit_bias") from None
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
            raise InvalidRequest("'logit_bias' values must be numbers in [-100, 100]", param="logit_bias")
        out.append((token, float(bias)))
    return tuple(out)


def chat_logprobs(body: dict) -> int | None:
    wanted = body.get("logprobs")
    top = body.get("top_logprobs")
    if wanted not in (None, True, False):
        raise InvalidRequest("'logprobs' must be a boolean", param="logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise InvalidRequest(f"'top_logprobs' must be an integer in [0, {MAX_TOP_LOGPROBS}]",
                                 param="top_logprobs")
        if wanted is not True:
            raise InvalidRequest("'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    return (top or 0) if wanted is True else None


def completion_logprobs(body: dict) -> int | None:
    value = body.get("logprobs")
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise InvalidRequest("'logprobs' must be an integer in [0, 5]", param="logprobs")
    return value
