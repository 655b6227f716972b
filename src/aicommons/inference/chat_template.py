"""Chat templates, rendered only in Jinja's immutable sandbox.

A chat template is code shipped inside a model repo by whoever pushed it; rendering it with
transformers' own ``apply_chat_template`` would be fine for trusted models, but a hub serves
untrusted ones, so we render it ourselves in ``ImmutableSandboxedEnvironment`` (no attribute access
to internals, no mutation of passed-in objects) with the few helpers templates in the wild expect.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from .errors import InvalidRequest

_ROLES = {"system", "developer", "user", "assistant", "tool"}


class TemplateError(InvalidRequest):
    code = "chat_template_error"


def _raise(message: str):
    raise TemplateError(f"chat template refused the conversation: {message}")


def _tojson(value, indent=None, ensure_ascii=False, sort_keys=False, separators=None):
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys,
                      separators=separators)


@lru_cache(maxsize=64)
def _compile(source: str):
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"the model's chat template does not compile: {exc.message}") from None


def normalize_messages(messages) -> list[dict]:
    """Validate OpenAI ``messages`` and flatten content parts to text (only text is supported)."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}",
                                 param=f"messages[{i}].role")
        content = message.get("content")
        if content is None and role == "assistant":
            content = ""
        if isinstance(content, list):
            texts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise InvalidRequest(f"messages[{i}].content: only text parts are supported",
                                         param=f"messages[{i}].content")
                texts.append(part["text"])
            content = "".join(texts)
        if not isinstance(content, str):
            raise InvalidRequest(f"messages[{i}].content must be a string or an array of text parts",
                                 param=f"messages[{i}].content")
        # "developer" is OpenAI's newer name for "system"; open models' templates only know the latter.
        entry = {"role": "system" if role == "developer" else role, "content": content}
        if role == "assistant" and message.get("tool_calls"):
            entry["tool_calls"] = _tool_calls(message["tool_calls"], i)
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise InvalidRequest(f"messages[{i}].tool_call_id must be a string",
                                     param=f"messages[{i}].tool_call_id")
            entry["tool_call_id"] = call_id
        if isinstance(message.get("name"), str):
            entry["name"] = message["name"]
        out.append(entry)
    return out


def _tool_calls(calls, i: int) -> list[dict]:
    """An assistant turn's earlier calls, with arguments as objects (what templates expect)."""
    if not isinstance(calls, list):
        raise InvalidRequest(f"messages[{i}].tool_calls must be an array", param=f"messages[{i}].tool_calls")
    out = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidRequest(f"messages[{i}].tool_calls entries need function.name",
                                 param=f"messages[{i}].tool_calls")
        args = fn.get("arguments", "{}")
        if isinstance(args, str):
            try:
                args = json.loads(args or "{}")
            except ValueError:
                raise InvalidRequest(f"messages[{i}].tool_calls arguments must be JSON",
                                     param=f"messages[{i}].tool_calls") from None
        out.append({"id": call.get("id"), "type": "function", "function": {"name": fn["name"], "arguments": args}})
    return out


def render_chat(template: str, messages: list[dict], *, bos_token: str = "", eos_token: str = "",
                add_generation_prompt: bool = True, tools: list[dict] | None = None) -> str:
    compiled = _compile(template)
    try:
        return compiled.render(messages=messages, bos_token=bos_token or "", eos_token=eos_token or "",
                               add_generation_prompt=add_generation_prompt, tools=tools or None, documents=None)
    except TemplateError:
        raise
    except Exception as exc:  # SecurityError, UndefinedError, TypeError from a broken template
        raise TemplateError(f"the model's chat template failed: {type(exc).__name__}") from None
