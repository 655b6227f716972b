"""Live-server behaviour: rate limits, cancellation, bad input, privacy. (Access rules and /metrics are
tested on the real hub, tests/inference/test_hub_e2e.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import openai
import pytest

from aicommons.inference.engine import EngineStep
from aicommons.inference.settings import InferenceSettings

from .conftest import LLAMA, MINILM
from .server import LiveServer

pytestmark = pytest.mark.inference
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


def post(server, path, body, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(server.url + path, json=body, headers=headers, timeout=60, **kw)


def wait_idle(live, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and live.service.admission.running:
        time.sleep(0.02)
    assert live.service.admission.running == 0


def test_rate_limits_answer_429_with_headers(source):
    settings = InferenceSettings.from_env({}, device="cpu", engine="transformers", threads=2,
                                          kv_cache_bytes=8 * 1024 * 1024, anon_max_concurrent=1,
                                          anon_tokens_per_minute=5000, keep_alive_seconds=-1)
    live = LiveServer(source, settings).start()
    try:
        ok = post(live, "/v1/embeddings", {"model": MINILM, "input": "hello"})
        assert ok.status_code == 200
        assert int(ok.headers["ratelimit-limit"]) == 5000 and int(ok.headers["ratelimit-remaining"]) < 5000
        # Concurrency: a second request while a stream is open is refused at once. The engine is
        # stalled on purpose so the stream stays open however the threads get scheduled.
        assert post(live, "/v1/chat/completions", {"model": LLAMA, **CHAT}).status_code == 200
        engine = next(e.engine for e in live.service.list_loaded() if e.resolved.repo_id == LLAMA)

        async def stalled(prompt_ids, params):
            yield EngineStep([5])
            await asyncio.sleep(60)

        engine.generate = stalled
        with httpx.stream("POST", live.url + "/v1/chat/completions", timeout=60,
                          json={"model": LLAMA, **CHAT, "stream": True}) as held:
            chunks = held.iter_raw()  # keep a reference: a dropped iterator closes the connection
            next(chunks)
            busy = post(live, "/v1/embeddings", {"model": MINILM, "input": "x"})
            assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        del engine.generate
        wait_idle(live)  # the abandoned stream was cancelled and its unused tokens refunded
        # Tokens per minute: 16 inputs of ~200 tokens fit once, not twice.
        big = {"model": MINILM, "input": ["word " * 200] * 16}
        assert post(live, "/v1/embeddings", big).status_code == 200
        second = post(live, "/v1/embeddings", big)
        assert second.status_code == 429
        assert int(second.headers["retry-after"]) >= 1 and "ratelimit-reset" in second.headers
        assert second.json()["error"]["type"] == "rate_limit_exceeded"
        with openai.OpenAI(base_url=live.url + "/v1", api_key="EMPTY", max_retries=0) as client, \
                pytest.raises(openai.RateLimitError):
            client.embeddings.create(**big)
        # A signed-in principal has its own, larger budget.
        assert post(live, "/v1/embeddings", big, token="alice").status_code == 200
    finally:
        live.stop()


def test_client_disconnect_cancels_generation(server):
    service = server.service
    body = {"model": LLAMA, "messages": [{"role": "user", "content": "go"}], "max_tokens": 900,
            "stream": True, "ignore_eos": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as r:
        lines = r.iter_lines()
        for _ in range(5):
            next(lines)
        assert service.admission.running == 1
    deadline = time.time() + 10
    while time.time() < deadline and service.admission.running:
        time.sleep(0.05)
    assert service.admission.running == 0
    assert all(e.refs == 0 for e in service.list_loaded())
    engine = next(e.engine for e in service.list_loaded() if e.resolved.repo_id == LLAMA)
    time.sleep(0.3)
    assert not engine.manager.batch_processor.scheduler.active_requests  # KV blocks given back
    assert post(server, "/v1/chat/completions", {"model": LLAMA, **CHAT}).status_code == 200


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", b"{not json"),
    ("/v1/chat/completions", b"[1, 2]"),
    ("/v1/chat/completions", {"model": LLAMA}),
    ("/v1/chat/completions", {"model": 42, **CHAT}),
    ("/v1/chat/completions", {"model": "../../etc/passwd", **CHAT}),
    ("/v1/chat/completions", {"model": LLAMA, **CHAT, "temperature": "hot"}),
    ("/v1/chat/completions", {"model": LLAMA, **CHAT, "max_tokens": -1}),
    ("/v1/chat/completions", {"model": LLAMA, "messages": [{"role": "user", "content": {"a": 1}}]}),
    ("/v1/completions", {"model": LLAMA, "prompt": [10 ** 9]}),
    ("/v1/completions", {"model": LLAMA, "prompt": "word " * 2000}),
    ("/v1/embeddings", {"model": MINILM, "input": []}),
    ("/v1/embeddings", {"model": MINILM, "input": "word " * 1000}),
    ("/v1/embeddings", {"model": MINILM, "input": "x", "encoding_format": "hex"}),
    (f"/models/{MINILM}", {"inputs": {"source_sentence": "x"}}),
    (f"/models/{LLAMA}", {"inputs": "x", "parameters": {"max_new_tokens": "ten"}}),
    (f"/models/{LLAMA}/generate", {"inputs": ""}),
    (f"/models/{LLAMA}/pipeline/text-to-image", {"inputs": "x"}),
])
def test_bad_input_is_a_clear_4xx_and_server_keeps_serving(server, path, body):
    if isinstance(body, bytes):
        r = httpx.post(server.url + path, content=body, headers={"Content-Type": "application/json"}, timeout=60)
    else:
        r = post(server, path, body)
    assert 400 <= r.status_code < 500, r.text
    payload = r.json()
    message = payload["error"]["message"] if path.startswith("/v1") else payload["error"]
    assert isinstance(message, str) and message
    assert post(server, "/v1/embeddings", {"model": MINILM, "input": "still alive"}).status_code == 200


def test_prompts_and_outputs_are_never_logged(server, caplog):
    secret = "zebra-secret-7f3a"
    with caplog.at_level(logging.DEBUG):
        r = post(server, "/v1/chat/completions", {"model": LLAMA, "messages": [{"role": "user", "content": secret}],
                                                  "max_tokens": 24})
        post(server, "/v1/embeddings", {"model": MINILM, "input": secret})
        post(server, "/v1/chat/completions", {"model": LLAMA, "messages": [{"role": "wizard", "content": secret}]})
    output = r.json()["choices"][0]["message"]["content"]
    assert secret not in caplog.text
    # A random model's four tokens may be a few letters that any log line contains ("del" in
    # "x-model-id"): only an output long enough to be told apart from ordinary text is checked.
    assert len(output.strip()) < 8 or output not in caplog.text


def test_streamed_error_mid_stream_is_in_band(server, monkeypatch):
    from aicommons.inference.errors import GenerationFailed

    engine = next(e.engine for e in server.service.list_loaded() if e.resolved.repo_id == LLAMA)

    async def broken(prompt_ids, params):
        yield type("Step", (), {"new_token_ids": [5], "finished": False, "finish_reason": None})()
        raise GenerationFailed("engine fell over")

    monkeypatch.setattr(engine, "generate", broken)
    with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=60,
                      json={"model": LLAMA, **CHAT, "stream": True}) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["code"] == "generation_failed"
    monkeypatch.undo()
    assert post(server, "/v1/chat/completions", {"model": LLAMA, **CHAT}).status_code == 200
    assert server.service.admission.running == 0


def test_chat_templates_render_off_the_event_loop(server):
    """Issue 9: a repo's chat template (its own Jinja) ran on the event loop, so one slow template
    stalled every request of the process. Rendered on a worker thread, it stalls only its own."""
    from concurrent.futures import ThreadPoolExecutor

    assert post(server, "/v1/chat/completions", {"model": LLAMA, **CHAT}).status_code == 200  # loaded
    engine = next(e.engine for e in server.service.list_loaded() if e.resolved.repo_id == LLAMA)
    original = engine.render_chat

    def slow_template(messages):
        time.sleep(2.0)
        return original(messages)

    engine.render_chat = slow_template
    try:
        with ThreadPoolExecutor(1) as pool:
            chat = pool.submit(post, server, "/v1/chat/completions", {"model": LLAMA, **CHAT})
            time.sleep(0.4)  # the template is rendering now
            started = time.monotonic()
            other = httpx.get(server.url + "/v1/models", timeout=30)
            assert other.status_code == 200 and time.monotonic() - started < 1.0
            assert chat.result().status_code == 200
    finally:
        del engine.render_chat
