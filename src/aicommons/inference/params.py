"""Parse generation requests (OpenAI and TGI dialects) into ``SamplingParams`` (pure)."""

from __future__ import annotations

import re

from . import constraints
from .engine import SamplingParams
from .errors import ContextLengthExceeded, InvalidRequest
from .http_util import get_bool, get_number, get_stop

# Fields we accept but which change nothing here; anything else unknown is ignored too (clients
# send many optional fields), but features we would silently get wrong are refused below.
_REFUSED_OPENAI = {"functions": "function calling (use 'tools')", "best_of": "best_of > 1", "suffix": "suffix"}


def openai_sampling(body: dict, settings, *, default_max_tokens: int | None,
                    chat: bool = True) -> tuple[SamplingParams, int, dict]:
    """-> (params with max_new_tokens possibly 0 = 'fill up to the context', n, extras).
    Tools are read by the chat route (their grammar depends on the model's template)."""
    for field, what in _REFUSED_OPENAI.items():
        value = body.get(field)
        unset: tuple = (None, 1) if field == "best_of" else (None, [], {}, "")
        if value not in unset:
            raise InvalidRequest(f"{what} is not supported by this server", param=field)
    if not chat and body.get("tools"):
        raise InvalidRequest("tools are only supported on /v1/chat/completions", param="tools")
    grammar = constraints.response_format_grammar(body.get("response_format"))
    logprobs = constraints.chat_logprobs(body) if chat else constraints.completion_logprobs(body)
    max_tokens = get_number(body, "max_completion_tokens", None, kind=int, low=1)
    if max_tokens is None:
        max_tokens = get_number(body, "max_tokens", None, kind=int, low=1)
    if max_tokens is None:
        max_tokens = default_max_tokens or 0
    n = get_number(body, "n", 1, kind=int, low=1, high=settings.max_n)
    params = SamplingParams(
        max_new_tokens=max_tokens,
        temperature=get_number(body, "temperature", 1.0, low=0.0, high=2.0),
        top_p=get_number(body, "top_p", 1.0, low=0.0, high=1.0) or 1e-6,
        top_k=max(0, get_number(body, "top_k", 0, kind=int, low=-1)),  # vLLM extension; -1 = off
        seed=get_number(body, "seed", None, kind=int),
        stop=get_stop(body, "stop", settings.max_stop_sequences),
        ignore_eos=get_bool(body, "ignore_eos", False),
        grammar=grammar,
        logit_bias=constraints.logit_bias(body.get("logit_bias")),
        logprobs=logprobs,
        presence_penalty=get_number(body, "presence_penalty", 0.0, low=-2.0, high=2.0) or 0.0,
        frequency_penalty=get_number(body, "frequency_penalty", 0.0, low=-2.0, high=2.0) or 0.0,
        repetition_penalty=_repetition_penalty(body, ""),  # a vLLM extension
    )
    stream = get_bool(body, "stream", False)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    include_usage = bool(options and get_bool(options, "include_usage", False, "stream_options."))
    return params, n, {"stream": stream, "include_usage": include_usage}


# TGI's GenerateParameters (what InferenceClient.text_generation sends); ``typical_p`` and
# ``watermark`` are accepted without effect; ``adapter_id`` (a LoRA adapter) is not one of them, so it
# is refused like any unknown parameter.
_TGI_PARAMETERS = {"best_of", "decoder_input_details", "details", "do_sample", "frequency_penalty", "grammar",
                   "max_new_tokens", "repetition_penalty", "return_full_text", "seed", "stop", "temperature",
                   "top_k", "top_n_tokens", "top_p", "truncate", "typical_p", "watermark"}


def tgi_sampling(parameters: dict, settings) -> tuple[SamplingParams, dict]:
    """TGI ``parameters`` -> params; extras carry details/return_full_text/decoder_input_details."""
    if not isinstance(parameters, dict):
        raise InvalidRequest("'parameters' must be an object", param="parameters")
    p = "parameters."
    unknown = sorted(k for k, v in parameters.items() if v is not None and k not in _TGI_PARAMETERS)
    if unknown:
        raise InvalidRequest(f"'{unknown[0]}' is not a text-generation parameter (TGI's: "
                             f"{', '.join(sorted(_TGI_PARAMETERS))})", param=p + unknown[0])
    if parameters.get("best_of") not in (None, 1):
        raise InvalidRequest("best_of > 1 is not supported", param=p + "best_of")
    do_sample = get_bool(parameters, "do_sample", False, p)
    temperature = get_number(parameters, "temperature", None, low=0.0, high=100.0, param_prefix=p)
    top_p = get_number(parameters, "top_p", None, low=0.0, high=1.0, param_prefix=p)
    top_k = get_number(parameters, "top_k", None, kind=int, low=0, param_prefix=p)
    sampling = do_sample or any(v is not None for v in (temperature, top_p, top_k))
    params = SamplingParams(
        max_new_tokens=get_number(parameters, "max_new_tokens", settings.default_max_tokens, kind=int, low=1,
                                  param_prefix=p),
        temperature=(temperature if temperature is not None else 1.0) if sampling else 0.0,
        top_p=(top_p or 1.0) if sampling else 1.0,
        top_k=top_k or 0,
        seed=get_number(parameters, "seed", None, kind=int, param_prefix=p),
        stop=get_stop(parameters, "stop", settings.max_stop_sequences, p),
        grammar=constraints.tgi_grammar(parameters.get("grammar"), p + "grammar"),
        logprobs=_tgi_logprobs(parameters, p),
        frequency_penalty=get_number(parameters, "frequency_penalty", 0.0, low=-2.0, high=2.0, param_prefix=p) or 0.0,
        repetition_penalty=_repetition_penalty(parameters, p),
    )
    extras = {"details": get_bool(parameters, "details", False, p),
              "return_full_text": get_bool(parameters, "return_full_text", False, p),
              "decoder_input_details": get_bool(parameters, "decoder_input_details", False, p),
              # TGI: keep only the prompt's last ``truncate`` tokens (left truncation, as TGI's router).
              "truncate": get_number(parameters, "truncate", None, kind=int, low=1, param_prefix=p)}
    return params, extras


def _repetition_penalty(parameters: dict, p: str) -> float:
    """TGI's ``repetition_penalty`` (> 0; 1 = off), as transformers' RepetitionPenaltyLogitsProcessor."""
    value = get_number(parameters, "repetition_penalty", 1.0, param_prefix=p)
    if not value > 0:
        raise InvalidRequest("'repetition_penalty' must be greater than 0", param=p + "repetition_penalty")
    return value


def _tgi_logprobs(parameters: dict, p: str) -> int | None:
    """TGI reports each token's logprob in ``details``, and ``top_n_tokens`` alternatives."""
    top = get_number(parameters, "top_n_tokens", None, kind=int, low=0, high=constraints.MAX_TOP_LOGPROBS,
                     param_prefix=p)
    details = get_bool(parameters, "details", False, p) or get_bool(parameters, "decoder_input_details", False, p)
    if top is None and not details:
        return None
    return top or 0


def fit_to_context(params: SamplingParams, prompt_len: int, context: int, *, default: int) -> SamplingParams:
    """Fill in an unset max_new_tokens and refuse requests that cannot fit the context window."""
    if prompt_len >= context:
        raise ContextLengthExceeded(f"this model's maximum context length is {context} tokens, but the prompt "
                                    f"has {prompt_len} tokens", param="messages")
    wanted = params.max_new_tokens or min(default, context - prompt_len)
    if prompt_len + wanted > context:
        raise ContextLengthExceeded(
            f"this model's maximum context length is {context} tokens; you requested {prompt_len + wanted} "
            f"tokens ({prompt_len} in the prompt, {wanted} for the completion)", param="max_tokens")
    if wanted == params.max_new_tokens:
        return params
    from dataclasses import replace

    return replace(params, max_new_tokens=wanted)


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_keep_alive(value) -> float | None:
    """A request's ``keep_alive``, with Ollama's meaning: how long the model stays loaded once this
    request is done. Seconds as a number, or a duration like ``"30s"``, ``"5m"``, ``"1h30m"``; a
    negative value keeps it loaded until an operator unloads it; 0 unloads it after the answer.
    None: the server's ``KEEP_ALIVE_SECONDS``."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        negative = text.startswith("-")
        text = text.lstrip("-")
        match = _DURATION.match(text)
        if text.replace(".", "", 1).isdigit():
            seconds = float(text)
        elif match and any(match.groups()):
            h, m, s = (float(g) if g else 0.0 for g in match.groups())
            seconds = h * 3600 + m * 60 + s
        else:
            raise InvalidRequest("'keep_alive' must be seconds or a duration like '5m'", param="keep_alive")
        seconds = -seconds if negative else seconds
    else:
        raise InvalidRequest("'keep_alive' must be seconds or a duration like '5m'", param="keep_alive")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise InvalidRequest("'keep_alive' must be finite", param="keep_alive")
    return -1.0 if seconds < 0 else seconds
