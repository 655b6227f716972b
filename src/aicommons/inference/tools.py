"""Tool calling on the OpenAI chat route: validate ``tools``/``tool_choice``, write the calls in the
model's own format, constrain them with a grammar, and read them back (pure).

The format comes from the model's chat template: a template that writes ``<tool_call>`` blocks
(Hermes, Qwen 2.5/3 and the many models trained on that format) gets its calls as
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``; any other template gets a JSON
array ``[{"name": ..., "arguments": {...}}]``. The tools are handed to the template as ``tools``
(the transformers convention); a template that never mentions tools gets them described in a
system message instead, so the model still learns what it may call.

``tool_choice``: ``none`` generates text; ``auto`` generates freely and reads calls back if the
output is in the model's call format; ``required`` and a named function constrain the output to
calls (of that function), with each call's arguments matching its JSON schema.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from .constraints import _check, json_options
from .errors import InvalidRequest

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"


@dataclass(frozen=True)
class ToolSpec:
    functions: tuple[dict, ...]  # {"name", "description", "parameters"}
    choice: str  # "none" | "auto" | "required" | "named"
    named: str | None
    parallel: bool

    @property
    def constrained(self) -> bool:
        return self.choice in ("required", "named")

    def openai_tools(self) -> list[dict]:
        return [{"type": "function", "function": f} for f in self.functions]


def parse_tools(body: dict) -> ToolSpec | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools in (None, []):
        if choice not in (None, "none", "auto"):
            raise InvalidRequest("'tool_choice' needs 'tools'", param="tool_choice")
        return None
    if not isinstance(tools, list) or len(tools) > 128:
        raise InvalidRequest("'tools' must be an array of at most 128 tools", param="tools")
    functions = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not _NAME.match(fn["name"]):
            raise InvalidRequest(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}} with a "
                                 "name of letters, digits, '_', '.' or '-'", param=f"tools[{i}]")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise InvalidRequest(f"tools[{i}].function.parameters must be a JSON schema object",
                                 param=f"tools[{i}].function.parameters")
        entry = {"name": fn["name"], "parameters": params}
        if isinstance(fn.get("description"), str):
            entry["description"] = fn["description"]
        functions.append(entry)
    names = [f["name"] for f in functions]
    if len(set(names)) != len(names):
        raise InvalidRequest("tool names must be unique", param="tools")
    named = None
    if choice is None:
        choice = "auto"
    elif isinstance(choice, dict):
        fn = choice.get("function") if choice.get("type") == "function" else None
        named = fn.get("name") if isinstance(fn, dict) else None
        if named not in names:
            raise InvalidRequest("'tool_choice' names a function that is not in 'tools'", param="tool_choice")
        choice = "named"
    elif choice not in ("none", "auto", "required"):
        raise InvalidRequest("'tool_choice' must be 'none', 'auto', 'required' or a named function",
                             param="tool_choice")
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise InvalidRequest("'parallel_tool_calls' must be a boolean", param="parallel_tool_calls")
    return ToolSpec(tuple(functions), choice, named, parallel and choice != "named")


def call_format(template: str | None) -> str:
    return "hermes" if template and HERMES_OPEN in template else "json"


def template_knows_tools(template: str | None) -> bool:
    return template is not None and "tools" in template


def describe_tools(spec: ToolSpec, fmt: str) -> str:
    """A system message for templates that cannot show tools themselves."""
    listing = "\n".join(json.dumps(f, ensure_ascii=False) for f in spec.functions)
    how = (f"{HERMES_OPEN}\n{{\"name\": <name>, \"arguments\": <object>}}\n{HERMES_CLOSE}" if fmt == "hermes"
           else '[{"name": <name>, "arguments": <object>}]')
    return f"You can call these functions:\n{listing}\nTo call functions, answer only with {how}."


def grammar_for(spec: ToolSpec, fmt: str) -> str:
    import llguidance

    functions = [f for f in spec.functions if spec.named is None or f["name"] == spec.named]
    one_call = {"anyOf": [{"type": "object", "properties": {"name": {"const": f["name"]},
                                                             "arguments": f["parameters"]},
                           "required": ["name", "arguments"], "additionalProperties": False}
                          for f in functions]}
    if fmt == "hermes":
        schema = {**one_call, "x-guidance": json_options(True)}
        repeat = "+" if spec.parallel else ""
        lark = (f"start: call{repeat}\n"
                f'call: "{HERMES_OPEN}\\n" %json {json.dumps(schema)} "\\n{HERMES_CLOSE}\\n"\n')
        grammar = llguidance.LLMatcher.grammar_from_lark(lark)
    else:
        array = {"type": "array", "items": one_call, "minItems": 1}
        if not spec.parallel:
            array["maxItems"] = 1
        grammar = llguidance.LLMatcher.grammar_from_json_schema(array, overrides=json_options(True))
    return _check(grammar, "tools")


def _call(obj, names: set[str]) -> dict | None:
    if not isinstance(obj, dict) or obj.get("name") not in names:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    return {"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
            "function": {"name": obj["name"], "arguments": json.dumps(args, ensure_ascii=False)}}


def parse_calls(text: str, fmt: str, spec: ToolSpec) -> tuple[str | None, list[dict]]:
    """-> (content left over or None, calls). Output not in the call format is all content."""
    names = {f["name"] for f in spec.functions}
    calls: list[dict] = []
    if fmt == "hermes":
        rest = []
        pos = 0
        for m in re.finditer(re.escape(HERMES_OPEN) + r"\s*(.*?)\s*" + re.escape(HERMES_CLOSE), text, re.S):
            try:
                call = _call(json.loads(m.group(1)), names)
            except ValueError:
                call = None
            if call is None:
                continue
            rest.append(text[pos:m.start()])
            pos = m.end()
            calls.append(call)
        rest.append(text[pos:])
        content = "".join(rest).strip()
        return (content or None) if calls else text, calls
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            value = json.loads(stripped)
        except ValueError:
            return text, []
        items = value if isinstance(value, list) else [value]
        parsed = [c for c in (_call(v, names) for v in items) if c is not None]
        if items and len(parsed) == len(items):
            return None, parsed
    return text, []


class CallStreamer:
    """Turns streamed text into content deltas and tool-call deltas, one per completed call.

    Constrained choices: all output is calls. ``auto``: text is held back while it could still be
    the start of a call, then either released as content or read as calls."""

    def __init__(self, spec: ToolSpec, fmt: str):
        self.spec = spec
        self.fmt = fmt
        self.buf = ""
        self.mode = "calls" if spec.constrained else "undecided"
        self.emitted = 0  # calls sent so far

    def _opener(self) -> str:
        return HERMES_OPEN if self.fmt == "hermes" else "["

    def feed(self, text: str, final: bool = False) -> tuple[str, list[dict]]:
        """-> (content to send now, new calls to send now)."""
        self.buf += text
        if self.mode == "undecided":
            head = self.buf.lstrip()
            opener = self._opener()
            if head and not (opener.startswith(head) or head.startswith(opener)
                             or (self.fmt == "json" and head[:1] == "{")):
                self.mode = "content"
            elif head.startswith(opener) or (self.fmt == "json" and head[:1] == "{"):
                self.mode = "calls"
            elif final:
                self.mode = "content"
        if self.mode == "content":
            out, self.buf = self.buf, ""
            return out, []
        if self.mode == "undecided":
            return "", []
        calls = self._complete_calls(final)
        if final and not calls and self.emitted == 0:
            out, self.buf = self.buf, ""  # never became a call: it was text after all
            return out, []
        return "", calls

    def _complete_calls(self, final: bool) -> list[dict]:
        names = {f["name"] for f in self.spec.functions}
        found: list[dict] = []
        if self.fmt == "hermes":
            while True:
                start = self.buf.find(HERMES_OPEN)
                end = self.buf.find(HERMES_CLOSE, start + 1) if start >= 0 else -1
                if start < 0 or end < 0:
                    break
                body = self.buf[start + len(HERMES_OPEN):end].strip()
                self.buf = self.buf[end + len(HERMES_CLOSE):]
                try:
                    call = _call(json.loads(body), names)
                except ValueError:
                    call = None
                if call:
                    found.append(call)
        else:
            decoder = json.JSONDecoder()
            while True:
                head = self.buf.lstrip().lstrip("[,").lstrip()
                if not head.startswith("{"):
                    break
                try:
                    value, end = decoder.raw_decode(head)
                except ValueError:
                    break
                self.buf = head[end:]
                call = _call(value, names)
                if call:
                    found.append(call)
        self.emitted += len(found)
        return found
