"""schemathesis against ``/openapi.json``: every operation of the hub API, with generated input
(valid by the schema and, for path and query parameters, hostile strings too), signed in and
anonymous. The properties: never a 5xx or a dropped connection, and every documented answer inside
its schema.

Bounded and deterministic: EXAMPLES cases per operation (``AICOMMONS_FUZZ_EXAMPLES`` overrides),
derandomized hypothesis, no example database; a dedicated hub (the fuzzer creates, moves, deletes
and commits), on SQLite or, with ``AICOMMONS_TEST_BACKEND=postgres-s3``, PostgreSQL + S3.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.backends import free_port
from tests.conftest import server_env, start_hub, stop_hub

EXAMPLES = int(os.environ.get("AICOMMONS_FUZZ_EXAMPLES", "6"))
TOKEN = "hf_fuzz_write_token_0000000000001"
REPO = ("fuzzer", "target")
HOSTILE = ["", "..", "%00", "\x00", "a\x00b", "\u202e", "HEAD", "refs/pr/abc", "refs/pr/" + "9" * 30,
           "9" * 40, ".git/config", "a/.GIT/x", "dir\\..\\x", "-1", "9" * 30, "x" * 2000, "😀", "%2e%2e"]


@pytest.fixture(scope="module")
def fuzz_hub(hub_backend_env):
    root = Path(tempfile.mkdtemp(prefix="aicommons-fuzz-"))
    data = root / "data"
    data.mkdir()
    port = free_port()
    extra = {**hub_backend_env, "AICOMMONS_API_REQUESTS_PER_MINUTE": "0", "AICOMMONS_ANON_API_REQUESTS_PER_MINUTE": "0",
             "AICOMMONS_RESOLVER_REQUESTS_PER_MINUTE": "0", "AICOMMONS_ANON_RESOLVER_REQUESTS_PER_MINUTE": "0"}
    env = server_env(data, port, **extra)
    for args in (["user", "create", REPO[0]], ["token", "create", REPO[0], "--value", TOKEN]):
        subprocess.run([sys.executable, "-m", "aicommons.cli.main", *args], env=env, check=True, capture_output=True)
    hub = start_hub(data, port, **extra)
    try:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=hub.url, token=TOKEN)
        api.create_repo("/".join(REPO))
        api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n# card\n", path_in_repo="README.md", repo_id="/".join(REPO))
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="dir/config.json", repo_id="/".join(REPO))
        api.create_discussion("/".join(REPO), title="first")
        yield hub
    finally:
        stop_hub(hub)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """The commit body is documented as the array of its lines."""
    lines = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(line) for line in lines).encode("utf-8", "surrogatepass")


schemathesis.serializer.alias("application/vnd.git-lfs+json", "application/json")


KNOWN = {"ns": [REPO[0]], "name": [REPO[1]], "rev": ["main", "refs/pr/1"], "branch": ["dev"], "tag": ["v1"],
         "path": ["README.md", "dir/config.json", "dir"], "num": ["1"], "user": [REPO[0]], "types": ["models"],
         "prefix": ["datasets"], "org": [REPO[0]], "oid": ["ab" * 32], "size": ["1"]}


def _steer(doc: dict) -> dict:
    """Point path parameters at the seeded repo half of the time, and mix hostile strings in."""
    doc = copy.deepcopy(doc)
    known = KNOWN
    for item in doc["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                name = param["name"]
                if param["in"] == "path" and name in known:
                    param["schema"] = {"anyOf": [{"enum": known[name]}, {"enum": known[name]}, param["schema"],
                                                 {"enum": [h for h in HOSTILE if h]}]}
                elif param["in"] == "query":
                    param["schema"] = {"anyOf": [param["schema"], {"enum": HOSTILE}]}
    return doc


def _operations(hub) -> list:
    doc = httpx.get(f"{hub.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(_steer(doc))
    return [result.ok() for result in schema.get_all_operations()]


def test_no_operation_answers_5xx_or_outside_its_schema(fuzz_hub):
    failures: list[str] = []
    session = httpx.Client(timeout=60)
    ops = _operations(fuzz_hub)
    assert len(ops) > 80

    for op in ops:
        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(), signed_in=st.sampled_from([True, True, False]))
        def run(case, signed_in):  # called at once, inside this iteration of op
            headers = {"Authorization": f"Bearer {TOKEN}"} if signed_in else {}
            try:
                response = case.call(base_url=fuzz_hub.url, headers=headers, timeout=60)
            except Exception as exc:  # a dropped connection, a reset: the server failed to answer
                failures.append(f"{op.label}: no answer ({type(exc).__name__}: {exc}) for {case.as_curl_command()}")  # noqa: B023
                return
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except Exception as exc:
                failures.append(f"{op.label}: {response.status_code} {str(exc)[:600]}\n  {case.as_curl_command()[:600]}")  # noqa: B023

        run()
    session.close()
    assert fuzz_hub.process.poll() is None, "the hub died under fuzzing"
    assert not failures, "\n".join(failures[:40])


def test_hostile_values_in_every_parameter(fuzz_hub):
    """Deterministic sweep: every path and query parameter of every operation gets each hostile
    value in turn (the others stay valid, pointing at the seeded repo), signed in."""
    doc = httpx.get(f"{fuzz_hub.url}/openapi.json", timeout=30).json()
    failures = []
    with httpx.Client(base_url=fuzz_hub.url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for template, item in doc["paths"].items():
            for method, op in item.items():
                params = op.get("parameters", [])
                good = {p["name"]: KNOWN.get(p["name"], ["x"])[0] for p in params if p["in"] == "path"}
                for target in params:
                    for value in SWEEP:
                        path_values = dict(good)
                        query = {}
                        if target["in"] == "path":
                            path_values[target["name"]] = value
                        else:
                            query[target["name"]] = value
                        url = template
                        for name, v in path_values.items():
                            url = url.replace("{" + name + "}", quote(v, safe="/" if name == "path" else ""))
                        try:
                            r = http.request(method.upper(), url, params=query)
                        except httpx.HTTPError as exc:
                            failures.append(f"{method.upper()} {url} {query}: no answer ({exc!r})")
                            continue
                        if r.status_code >= 500:
                            failures.append(f"{method.upper()} {url} {query}: {r.status_code} {r.text[:200]}")
    assert fuzz_hub.process.poll() is None, "the hub died under the sweep"
    assert not failures, "\n".join(failures[:40])


SWEEP = ["%00", "\x00", "\u202e", "HEAD", "refs/pr/abc", "refs/pr/" + "9" * 30, "9" * 30, "-1", "x" * 1100,
         ".git/config", "dir\\..\\x", "\n"]
