"""The Grafana dashboard and the Prometheus alert rules shipped in deploy/ query only series that the
hub's /metrics really exports, with labels it really sets (issue 22); the rules pass promtool's own
checks and its unit tests (deploy/prometheus/alerts_test.yml)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALICE_TOKEN, auth, unique_name

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS_OWN = {"up": {"job", "instance"}}  # recorded by Prometheus for every target
SELECTOR = re.compile(r"\b(hub_[a-z0-9_]+|up)\b(\{[^}]*\})?")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",), "summary": ("", "_count", "_sum"), "untyped": ("",)}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "aicommons.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    return exprs


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 8
    return exprs


@pytest.fixture(scope="module")
def exported(live_hub) -> dict[str, set[str]]:
    """Every series name /metrics exports -> the label names it carries."""
    name = unique_name("ops")
    live_hub.cli("user", "create", name, "--admin")
    token = live_hub.cli("token", "create", name).stdout.splitlines()[-1]
    import httpx

    with httpx.Client(base_url=live_hub.url, timeout=30) as http:
        http.get("/api/models")  # at least one request of each status class the rules look at
        http.get("/api/models/nobody/nothing", headers=auth(ALICE_TOKEN))
        text = http.get("/metrics", headers=auth(token)).text
    labels: dict[str, set[str]] = {}
    declared = _declared_labels()
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES[family.type]:
            labels.setdefault(family.name + suffix, set()).update(declared.get(family.name, set()))
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def _declared_labels() -> dict[str, set[str]]:
    """Label names of the labelled series that have no sample before their first event (inference
    requests, say): read from the metric objects themselves."""
    from prometheus_client.metrics import MetricWrapperBase

    from aicommons.inference.metrics import InferenceMetrics

    found = {}
    for metric in vars(InferenceMetrics()).values():
        if isinstance(metric, MetricWrapperBase):
            extra = {"le"} if metric._type == "histogram" else set()
            found[metric._name] = set(metric._labelnames) | extra
    return found


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_queried_series_is_exported(exported, source):
    exprs = dashboard_exprs() if source == "dashboard" else alert_exprs()
    known = {**exported, **PROMETHEUS_OWN}
    problems = []
    for expr in exprs:
        used_labels: set[str] = set()
        names = []
        for name, matchers in SELECTOR.findall(expr):
            names.append(name)
            if name not in known:
                problems.append(f"{name} (in {expr!r}) is not exported by /metrics")
                continue
            for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
                if label not in known[name]:
                    problems.append(f"{name} has no label {label!r} (in {expr!r})")
        for group in GROUPING.findall(expr):
            used_labels |= {g.strip() for g in group.split(",") if g.strip()}
        available = set().union(*(known.get(n, set()) for n in names)) if names else set()
        for label in used_labels - available - {"instance", "job"}:
            problems.append(f"grouping by {label!r}, which none of {names} carries (in {expr!r})")
        assert names, f"no series in {expr!r}"
    assert not problems, "\n".join(problems)


def test_the_http_series_count_requests_by_route_template(exported, live_hub):
    assert {"method", "route", "status"} <= exported["hub_http_requests_total"]
    assert "le" in exported["hub_http_request_duration_seconds_bucket"]


def test_requests_are_labelled_with_their_route_template(live_hub):
    import httpx

    name = unique_name("ops")
    live_hub.cli("user", "create", name, "--admin")
    token = live_hub.cli("token", "create", name).stdout.splitlines()[-1]
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:
        http.get("/api/models/nobody/nothing")
        text = http.get("/metrics", headers=auth(token)).text
    routes = {s.labels["route"] for f in text_string_to_metric_families(text) if f.name == "hub_http_requests"
              for s in f.samples if s.name.endswith("_total")}
    assert "/api/{types}/{ns}/{name}" in routes, routes


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_the_alert_rules_pass_promtool():
    check = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=DEPLOY / "prometheus",
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=DEPLOY / "prometheus",
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
