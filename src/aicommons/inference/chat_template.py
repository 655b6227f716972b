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
            content = _parts(content, i, role)
        if not isinstance(content, (str, list)):
            raise InvalidRequest(f"messages[{i}].content must be a string or an array of content parts",
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


def _parts(content: list, i: int, role: str) -> str | list[dict]:
    """OpenAI content parts -> the text (text parts only), or, with images, the parts in the form
    vision-language chat templates iterate over: {"type": "text", "text"} and {"type": "image",
    "url"} (``image_urls`` collects the urls; the template sees only the placeholder)."""
    where = f"messages[{i}].content"
    parts: list[dict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and role == "user":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise InvalidRequest(f"{where}: an image_url part needs image_url.url", param=where)
            parts.append({"type": "image", "url": url})
        else:
            raise InvalidRequest(f"{where}: only text parts (and image_url parts in user messages) are supported",
                                 param=where)
    if any(p["type"] == "image" for p in parts):
        return parts
    return "".join(p["text"] for p in parts)


def image_urls(messages: list[dict]) -> list[str]:
    """The image urls of normalised messages, in the order their placeholders appear."""
    return [p["url"] for m in messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image"]


def as_parts(messages: list[dict]) -> list[dict]:
    """For a vision-language template: every content as a parts list (their templates iterate over
    it), image urls left out (the processor gets the images themselves)."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}] if content else []
        else:
            content = [{"type": "image"} if p["type"] == "image" else p for p in content]
        out.append({**m, "content": content})
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
