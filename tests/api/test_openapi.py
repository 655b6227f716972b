"""``/openapi.json``: generated from the route table, so it cannot drift from the hub's routes."""

from __future__ import annotations

import schemathesis

from aicommons.api.openapi import OPERATIONS, route_operations
from aicommons.api.routes import hub_routes


def test_every_hub_route_is_in_the_document(http):
    r = http.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    expected = route_operations(hub_routes())
    assert len(expected) > 80
    missing = [(path, method) for path, method in expected if method not in doc["paths"].get(path, {})]
    assert missing == []


def test_hand_written_operations_exist_and_carry_schemas(http):
    doc = http.get("/openapi.json").json()
    for (path, method), spec in OPERATIONS.items():
        op = doc["paths"][path][method]  # a hand-written entry for a route that no longer exists fails here
        for status in spec.get("responses", {}):
            assert "schema" in op["responses"][status]["content"]["application/json"]
    commit = doc["paths"]["/api/{types}/{ns}/{name}/commit/{rev}"]["post"]
    assert "application/x-ndjson" in commit["requestBody"]["content"]
    listing = {p["name"] for p in doc["paths"]["/api/models"]["get"]["parameters"]}
    assert {"search", "author", "limit", "cursor"} <= listing


def test_the_document_is_valid_openapi(http):
    schema = schemathesis.openapi.from_dict(http.get("/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]  # .ok() raises on an invalid one
    assert len(operations) == len(route_operations(hub_routes())) - _shadowed()


def _shadowed() -> int:
    seen, dupes = set(), 0
    for key in route_operations(hub_routes()):
        dupes += key in seen
        seen.add(key)
    return dupes
