"""The parts of an OpenAI choice that depend on what the request asked for: logprobs in the chat
and the legacy completion shapes, and tool calls read from the generated text (openai 3.x types:
``ChatCompletionTokenLogprob``, ``Logprobs``, ``ChatCompletionMessageToolCall`` and the streamed
``ChoiceDeltaToolCall``)."""

from __future__ import annotations

from . import tools as T


def _token(engine, token_id: int) -> str:
    return engine.token_text(token_id)[0]


def chat_logprob_entry(engine, token_id: int, lp) -> dict:
    logprob, top = lp if lp else (0.0, [])
    text = _token(engine, token_id)
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()),
            "top_logprobs": [{"token": (t := _token(engine, i)), "logprob": v, "bytes": list(t.encode())}
                             for i, v in top]}


def chat_logprobs(engine, token_ids: list[int], logprobs: list | None) -> dict:
    rows = logprobs if logprobs is not None else [None] * len(token_ids)
    return {"content": [chat_logprob_entry(engine, i, lp) for i, lp in zip(token_ids, rows)], "refusal": None}


def echo_logprobs(engine, prompt_ids: list[int], rows: list) -> dict:
    """The echoed prompt's part of legacy ``logprobs`` (``engine.prompt_logprobs`` rows): the first
    token has no logprob and no alternatives, as OpenAI and vLLM answer."""
    tokens, values, tops, offsets = [], [], [], []
    offset = 0
    for token_id, row in zip(prompt_ids, rows):
        text = _token(engine, token_id)
        tokens.append(text)
        values.append(row[0] if row else None)
        tops.append({_token(engine, i): v for i, v in row[1]} if row and row[1] else None)
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def joined_logprobs(first: dict | None, then: dict) -> dict:
    return then if first is None else {k: first[k] + then[k] for k in then}


def completion_logprobs(engine, token_ids: list[int], logprobs: list | None, offset: int = 0) -> dict:
    tokens, values, tops, offsets = [], [], [], []
    for token_id, lp in zip(token_ids, logprobs if logprobs is not None else [None] * len(token_ids)):
        logprob, top = lp if lp else (0.0, [])
        text = _token(engine, token_id)
        tokens.append(text)
        values.append(logprob)
        tops.append({_token(engine, i): v for i, v in top} if top else None)
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


class ToolsInUse:
    """A chat request's tools as they apply to one model (its call format)."""

    def __init__(self, spec: T.ToolSpec, template: str | None):
        self.spec = spec
        self.format = T.call_format(template)
        self.in_template = T.template_knows_tools(template)

    def messages_for_template(self, messages: list[dict]) -> list[dict]:
        if self.in_template:
            return messages
        note = T.describe_tools(self.spec, self.format)
        if messages and messages[0]["role"] == "system":
            return [{**messages[0], "content": messages[0]["content"] + "\n\n" + note}, *messages[1:]]
        return [{"role": "system", "content": note}, *messages]

    def template_tools(self) -> list[dict] | None:
        return self.spec.openai_tools() if self.in_template else None

    def grammar(self) -> str | None:
        return T.grammar_for(self.spec, self.format) if self.spec.constrained else None

    def message(self, text: str, reason: str) -> tuple[dict, str]:
        """The non-streamed assistant message and finish reason for one generated text."""
        if self.spec.choice == "none":
            return {"role": "assistant", "content": text, "tool_calls": None}, reason
        content, calls = T.parse_calls(text, self.format, self.spec)
        if calls:
            return {"role": "assistant", "content": content, "tool_calls": calls}, \
                ("tool_calls" if reason == "stop" else reason)
        return {"role": "assistant", "content": text, "tool_calls": None}, reason

    def streamer(self) -> T.CallStreamer | None:
        return None if self.spec.choice == "none" else T.CallStreamer(self.spec, self.format)


def tool_call_deltas(calls: list[dict], first_index: int) -> list[dict]:
    """Two deltas per call, as OpenAI streams them: id, type and name first, then the arguments."""
    out = []
    for k, call in enumerate(calls, start=first_index):
        fn = call["function"]
        out.append({"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                                    "function": {"name": fn["name"], "arguments": ""}}]})
        out.append({"tool_calls": [{"index": k, "function": {"arguments": fn["arguments"]}}]})
    return out
