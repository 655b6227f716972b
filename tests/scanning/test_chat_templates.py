"""Chat templates (parsed, never rendered) and the configs that carry them; auto_map."""

from __future__ import annotations

import json

import pytest

from .samples import LLAMA_TEMPLATE, SSTI, kinds, scan


def tokenizer_config(template) -> bytes:
    return json.dumps({"chat_template": template, "eos_token": "</s>", "model_max_length": 4096}).encode()


def test_a_benign_llama_style_template_is_safe():
    # namespace(), {% break %}/{% continue %} and {% generation %} all parse, as in transformers
    result = scan("tokenizer_config.json", tokenizer_config(LLAMA_TEMPLATE))
    assert result.status == "safe", result.to_json()
    assert result.scanner == "config"


@pytest.mark.parametrize("payload", [
    SSTI,
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ self._TemplateReference__context.cycler }}",
    "{{ lipsum['__glo' ~ 'bals__'] }}",  # the name assembled from pieces
    "{{ ''|attr('__class__') }}",
    "{{ messages|map(attribute='__class__')|list }}",
    "{{ '{0.__class__}'.format(messages) }}",
    "{{ '\\x5f\\x5fclass\\x5f\\x5f' }}",  # escapes are decoded by the Jinja lexer
    "{{ request.application }}",
    "{{ config.items() }}",
    "{% for m in messages %}{{ m.__init__.__globals__ }}{% endfor %}",
    "{{ (messages|first).func_globals }}",
])
def test_ssti_payloads_are_unsafe(payload):
    result = scan("tokenizer_config.json", tokenizer_config(payload))
    assert result.status == "unsafe", payload
    assert "chat-template" in kinds(result)


@pytest.mark.parametrize("template", [
    "{{ messages[0]._private }}",
    "{{ messages|attr(name) }}",
    "{% include 'other.jinja' %}",
    "{% import 'macros.jinja' as m %}",
    "{{ 9**9**9 }}",
])
def test_odd_but_not_payload_constructs_are_suspicious(template):
    assert scan("tokenizer_config.json", tokenizer_config(template)).status == "suspicious", template


def test_a_name_the_template_assigns_itself_is_not_a_global():
    assert scan("tokenizer_config.json", tokenizer_config("{% set config = {'a': 1} %}{{ config.a }}")).status == "safe"
    macro = "{% macro show(request) %}{{ request }}{% endmacro %}{{ show('x') }}"
    assert scan("tokenizer_config.json", tokenizer_config(macro)).status == "safe"


def test_list_and_object_forms_of_chat_template():
    listed = [{"name": "default", "template": LLAMA_TEMPLATE},
              {"name": "tool_use", "template": "{{ self._TemplateReference__context }}"}]
    result = scan("tokenizer_config.json", tokenizer_config(listed))
    assert result.status == "unsafe"
    assert all("'tool_use'" in f.message for f in result.findings)
    as_object = {"default": LLAMA_TEMPLATE, "rag": SSTI}
    assert scan("chat_template.json", json.dumps({"chat_template": as_object}).encode()).status == "unsafe"
    assert scan("tokenizer_config.json", tokenizer_config([{"name": "x", "template": 3}])).status == "error"


def test_broken_templates_and_configs_are_errors():
    assert scan("tokenizer_config.json", tokenizer_config("{% for %}")).status == "error"
    assert scan("tokenizer_config.json", tokenizer_config("{{ " + "(" * 5000 + ")" * 5000 + " }}")).status == "error"
    assert scan("tokenizer_config.json", b'{"chat_template": ').status == "error"
    # a plain config that does not parse carries no template: nothing to say
    assert scan("config.json", b"{not json").status == "safe"


def test_standalone_jinja_files():
    assert scan("chat_template.jinja", LLAMA_TEMPLATE.encode()).status == "safe"
    result = scan("templates/chat_template.jinja", SSTI.encode())
    assert result.status == "unsafe" and result.scanner == "chat-template"
    assert scan("chat_template.jinja", b"{% if %}").status == "error"


def test_auto_map_is_reported_as_custom_code():
    local = json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}).encode()
    result = scan("config.json", local)
    assert result.status == "safe"
    (finding,) = result.findings
    assert finding.kind == "custom-code" and finding.severity == "info" and "this repo" in finding.message
    remote = json.dumps({"auto_map": {"AutoTokenizer": ["other/repo--tokenization_x.XTokenizer", None]}}).encode()
    (finding,) = scan("tokenizer_config.json", remote).findings
    assert finding.detail["otherRepos"] == ["other/repo"] and "other/repo" in finding.message
