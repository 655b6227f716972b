"""Prometheus metrics named after vLLM's (``vllm:x`` -> ``hub_x``), with vLLM's buckets (spec §2, §3.5).

Each service owns its own ``CollectorRegistry`` so several apps in one process (tests) never clash.
Labels are model/engine/task, never the user: per-user accounting belongs in logs, not in series.
"""

from __future__ import annotations

_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
         20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_ITL = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
        40.0, 80.0)
_E2E = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
        480.0, 960.0, 1920.0, 7680.0)
_QUEUE = (0.001, 0.005, 0.01, 0.05, 0.1) + _E2E
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class InferenceMetrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        m = ("model", "engine", "task")
        self.ttft = Histogram("hub_time_to_first_token_seconds", "Time to first generated token.", m,
                              buckets=_TTFT, registry=r)
        self.itl = Histogram("hub_inter_token_latency_seconds", "Time between generated tokens.", m,
                             buckets=_ITL, registry=r)
        self.tpot = Histogram("hub_request_time_per_output_token_seconds",
                              "Per request: (latency - TTFT) / (output tokens - 1).", m, buckets=_ITL, registry=r)
        self.e2e = Histogram("hub_e2e_request_latency_seconds", "Request latency, admission to last byte.", m,
                             buckets=_E2E, registry=r)
        self.queue_time = Histogram("hub_request_queue_time_seconds", "Time waiting for a running slot.",
                                    ("model", "task"), buckets=_QUEUE, registry=r)
        self.load_time = Histogram("hub_model_load_seconds", "Time to load a model.", ("model", "engine"),
                                   buckets=_E2E, registry=r)
        self.batch_size = Histogram("hub_embedding_batch_size", "Inputs per encoder forward pass.",
                                    ("model", "task"), buckets=_BATCH, registry=r)
        self.prompt_tokens = Counter("hub_prompt_tokens", "Prompt/input tokens processed.", m, registry=r)
        self.generation_tokens = Counter("hub_generation_tokens", "Tokens generated.", m, registry=r)
        self.requests = Counter("hub_requests", "Finished requests by HTTP status.", ("model", "task", "status"),
                                registry=r)
        self.rate_limited = Counter("hub_rate_limited", "Requests refused by admission.", ("reason",), registry=r)
        self.loads = Counter("hub_model_loads", "Models loaded.", ("model",), registry=r)
        self.unloads = Counter("hub_model_unloads", "Models unloaded, by reason (idle, evicted, shutdown).",
                               ("model", "reason"), registry=r)
        self.evictions = Counter("hub_model_evictions", "Models evicted to make room.", ("model",), registry=r)
        self.running = Gauge("hub_num_requests_running", "Requests holding a running slot.", registry=r)
        self.waiting = Gauge("hub_num_requests_waiting", "Requests waiting for a running slot.", registry=r)
        self.in_flight = Gauge("hub_model_requests_in_flight", "Requests using each loaded model.", ("model",),
                               registry=r)
        self.models_loaded = Gauge("hub_models_loaded", "Models currently loaded.", registry=r)
        self.resident_bytes = Gauge("hub_model_resident_bytes", "Estimated bytes of each loaded model.",
                                    ("model",), registry=r)

        self._children: dict = {}

    def child(self, metric, *labels: str):
        """``metric.labels(*labels)``, remembered: prometheus_client validates and locks on every
        ``labels()`` call, which the request path makes several times per request (and per token).
        Only for metrics whose series are never removed (not ``resident_bytes``)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
