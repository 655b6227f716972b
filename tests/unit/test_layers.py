"""The layers hold because tools check them: import-linter's contracts (pyproject), with no
exceptions, and no door (api, web, cli) reaching a database store through the hub object either."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "aicommons"
DOORS = ("api", "web", "cli", "http_common.py")
# Attributes that are a database store or its engine (``hub.repo_store``, ``hub.accounts.store``,
# ``hub.discussions.store``, ``hub.engine``): the doors call hub services instead.
STORE_ATTRIBUTES = {"repo_store", "store", "engine"}


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_contracts_have_no_exceptions():
    assert [c["name"] for c in _contracts() if c.get("ignore_imports")] == []


def test_the_contracts_name_the_layers_of_the_architecture():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    assert layers[:5] == ["aicommons.cli", "aicommons.app", "aicommons.api | aicommons.web",
                          "aicommons.http_common", "aicommons.hub"]
    below = {name.strip() for layer in layers[5:] for name in layer.split("|")}
    assert below == {"aicommons.db", "aicommons.storage", "aicommons.gitrepo", "aicommons.xet", "aicommons.scanning"}
    strict = [c for c in _contracts() if c["type"] == "forbidden" and not c.get("allow_indirect_imports")]
    assert {"aicommons.inference"} in [set(c["source_modules"]) for c in strict]  # not even through config
    assert any("aicommons.inference" in c["forbidden_modules"] and "aicommons.hub" in c["source_modules"]
               for c in strict)
    no_http_no_sql = [c for c in _contracts() if "aicommons.hub" in c.get("source_modules", ())
                      and {"starlette", "sqlalchemy"} <= set(c.get("forbidden_modules", ()))]
    assert no_http_no_sql, "the hub speaks neither HTTP nor SQL"


def test_import_linter_keeps_every_contract():
    linter = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([str(linter), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _store_uses(source: str, name: str) -> list[str]:
    return [f"{name}:{node.lineno} .{node.attr}" for node in ast.walk(ast.parse(source, name))
            if isinstance(node, ast.Attribute) and node.attr in STORE_ATTRIBUTES]


def test_no_door_reaches_a_store_through_the_hub():
    found = []
    for door in DOORS:
        target = SRC / door
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            found += _store_uses(path.read_text(), str(path.relative_to(SRC)))
    assert found == []


def test_the_check_sees_a_store_call():
    sample = "def handler(hub):\n    hub.repo_store.count_download(1)\n    return hub.accounts.store.get('x')\n"
    assert _store_uses(sample, "door.py") == ["door.py:2 .repo_store", "door.py:3 .store"]
