"""The dashboard's per-minute figures come from the process's own /metrics series
(api/metrics.py MetricsRecorder): what each counter gained since the last round, by status class
and per model, read from real prometheus_client objects."""

from __future__ import annotations

from aicommons.api.metrics import HubMetrics, MetricsRecorder
from aicommons.inference.metrics import InferenceMetrics


class Stats:
    def current(self):
        raise AssertionError("the recorder must not read the database-backed gauges")


class Board:
    def __init__(self):
        self.calls: list[dict] = []

    def add_minute(self, at, deltas):
        self.calls.append(deltas)


def test_the_recorder_adds_what_the_counters_gained_by_status_class_and_model():
    inference = InferenceMetrics()
    metrics = HubMetrics(Stats(), [inference.registry])
    metrics.observe("GET", "/api/models", 200, 0.01)  # before the recorder starts: not this round's
    board = Board()
    recorder = MetricsRecorder(metrics, board, interval=3600)
    recorder.start()
    try:
        for status in (200, 200, 404, 503):
            metrics.observe("GET", "/api/models", status, 0.01)
        inference.requests.labels("acme/tiny", "text-generation", "200").inc(3)
        inference.prompt_tokens.labels("acme/tiny", "transformers", "text-generation").inc(40)
        inference.generation_tokens.labels("acme/tiny", "transformers", "text-generation").inc(60)
        inference.queue_time.labels("acme/tiny", "text-generation").observe(0.5)
        recorder.record()
        assert board.calls[-1] == {("http_requests", "2xx"): 2, ("http_requests", "4xx"): 1,
                                   ("http_requests", "5xx"): 1, ("inference_requests", "acme/tiny"): 3,
                                   ("inference_tokens", "acme/tiny"): 100,
                                   ("inference_queue_seconds", "acme/tiny"): 0.5,
                                   ("inference_queue_count", "acme/tiny"): 1}
        metrics.observe("POST", "/api/repos/create", 200, 0.01)
        recorder.record()
        assert board.calls[-1] == {("http_requests", "2xx"): 1}  # only what is new
    finally:
        recorder.close()
    assert board.calls[-1] == {}  # the last round at shutdown: nothing more
