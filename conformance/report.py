"""Results of a conformance run: read the junit report, group failures, write docs/compatibility.md.

The document holds one block per run kind (``lfs``, ``xet``) between ``<!-- BEGIN run:KIND -->`` and
``<!-- END run:KIND -->``; a run rewrites the header and its own block and keeps the other one.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

OUTCOMES = ("passed", "failed", "error", "skipped")
RUN_TITLES = {"lfs": "LFS path (`HF_HUB_DISABLE_XET=1`)", "xet": "Xet path (`--xet`)"}
XET_PLACEHOLDER = (
    "Not run yet. `conformance/run.py --xet` runs the same selection with Xet enabled and the "
    "`xet`-marked tests selected too. It is expected to fail until the server speaks the whole Xet "
    "protocol (a later issue); its results will replace this paragraph."
)


# --------------------------------------------------------------------------------------------------
# Reading results
# --------------------------------------------------------------------------------------------------


def _nodeid(classname: str, name: str) -> tuple[str, str, str]:
    parts = classname.split(".")
    cut = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
    module = "/".join(parts[: cut + 1]) + ".py"
    cls = "::".join(parts[cut + 1:])
    nodeid = "::".join(x for x in (module, cls, name) if x)
    return nodeid, module, cls


def _outcome(case: ET.Element) -> tuple[str, str, str]:
    """(outcome, message, where): ``where`` is the last line of the upstream tests in the traceback."""
    children = {child.tag: child for child in case}
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        el = children.get(tag)
        if el is not None:
            text = el.text or ""
            text_lines = text.strip().splitlines()
            where = re.findall(r"^(tests/test_\w+\.py:\d+)", text, re.M)
            return outcome, el.get("message") or (text_lines[-1] if text_lines else ""), (where[-1] if where else "")
    return "passed", "", ""


def _properties(case: ET.Element) -> dict[str, str]:
    props = {}
    for prop in case.iter("property"):
        props[prop.get("name")] = prop.get("value")
    return props


def load_results(junit: Path, out_dir: Path, deselected_path: Path, run: str) -> dict:
    tests: dict[str, dict] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        nodeid, module, cls = _nodeid(case.get("classname", ""), case.get("name", ""))
        outcome, message, where = _outcome(case)
        props = _properties(case)
        tests[nodeid] = {
            "nodeid": nodeid, "module": module, "cls": cls, "outcome": outcome,
            "message": " ".join(message.split())[:600],
            "where": where,
            "server_requests": int(props.get("server_requests", 0) or 0),
            "external_hosts": props.get("external_hosts", ""),
            "time": float(case.get("time") or 0),
        }
    collection = _collection(out_dir)
    patterns = parse_deselected(deselected_path, run)
    results = {
        "tests": sorted(tests.values(), key=lambda t: t["nodeid"]),
        "collection": collection,
        "deselected_patterns": patterns,
        "ignored_modules": _ignored_modules(patterns),
    }
    _mark_hub_facing(results["tests"])
    results["totals"] = totals(results["tests"])
    results["hub_totals"] = totals([t for t in results["tests"] if t["hub"]])
    return results


def _mark_hub_facing(tests: list[dict]) -> None:
    """A test is hub-facing when it, or any test of its class, sent a request to our server.

    Per class because class-scoped fixtures (a shared repo) send their requests during the first test's
    setup; the other tests of the class still depend on them.
    """
    classes = {(t["module"], t["cls"]) for t in tests if t["cls"] and t["server_requests"] > 0}
    for t in tests:
        t["hub"] = t["server_requests"] > 0 or (bool(t["cls"]) and (t["module"], t["cls"]) in classes)


def _collection(out_dir: Path) -> dict:
    records = sorted(out_dir.glob("collection-*.json"))
    return json.loads(records[0].read_text()) if records else {}


def parse_deselected(path: Path, run: str) -> list[dict]:
    entries = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, _, reason = line.partition("#")
        pattern = pattern.strip()
        if pattern.startswith("["):
            scope, _, pattern = pattern[1:].partition("]")
            if scope.strip() != run:
                continue
            pattern = pattern.strip()
            reason = f"({scope.strip()} run only) {reason.strip()}"
        entries.append({"pattern": pattern, "reason": reason.strip()})
    return entries


def _ignored_modules(patterns: list[dict]) -> list[dict]:
    """Whole-module entries are never imported (some cannot be); their test functions are counted later."""
    return [{"module": e["pattern"], "reason": e["reason"], "functions": None}
            for e in patterns if "::" not in e["pattern"] and e["pattern"].endswith(".py")]


def count_test_functions(path: Path) -> int:
    tree = ast.parse(path.read_text())
    return sum(1 for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test"))


def totals(tests: list[dict]) -> dict:
    c = Counter(t["outcome"] for t in tests)
    ran = c["passed"] + c["failed"] + c["error"]
    return {"passed": c["passed"], "failed": c["failed"], "error": c["error"], "skipped": c["skipped"],
            "total": len(tests), "ran": ran, "pass_rate": (c["passed"] / ran) if ran else 0.0}


def summary_line(results: dict) -> str:
    t, h = results["totals"], results["hub_totals"]
    return (f"conformance ({results['run']}{', fast' if results['fast'] else ''}): {t['passed']} passed, "
            f"{t['failed']} failed, {t['error']} errors, {t['skipped']} skipped; pass rate {t['pass_rate']:.1%} "
            f"(hub-facing tests: {h['passed']}/{h['ran']} = {h['pass_rate']:.1%})")


# --------------------------------------------------------------------------------------------------
# Failure triage
# --------------------------------------------------------------------------------------------------


def load_causes(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return tomllib.loads(path.read_text()).get("cause", [])


def _signature(message: str) -> str:
    sig = re.sub(r"\(?Request ID: [^)\s]+\)?", "", message)
    sig = re.sub(r"https?://\S+", "<url>", sig)
    sig = re.sub(r"(repo|space|dataset|model|org|pr-card|push-card)-[0-9a-f]{6}-\d+", "<repo>", sig)
    sig = re.sub(r"\b[0-9a-f]{7,64}\b", "<hex>", sig)
    sig = re.sub(r"\d+", "<n>", sig)
    return sig[:160]


def triage(results: dict, causes: list[dict]) -> list[dict]:
    groups: dict[str, dict] = {}
    for t in results["tests"]:
        if t["outcome"] not in ("failed", "error"):
            continue
        cause = next((c for c in causes if _cause_matches(c, t)), None)
        key = cause["title"] if cause else "untriaged: " + _signature(t["message"])
        group = groups.setdefault(key, {"title": key, "owner": (cause or {}).get("owner", ""),
                                        "note": (cause or {}).get("note", ""), "tests": [],
                                        "triaged": cause is not None})
        group["tests"].append(t)
    return sorted(groups.values(), key=lambda g: (not g["triaged"], -len(g["tests"]), g["title"]))


def _cause_matches(cause: dict, test: dict) -> bool:
    if any(fnmatch.fnmatchcase(test["nodeid"], p) or test["nodeid"] == p for p in cause.get("tests", [])):
        return True
    return any(re.search(rx, test["message"]) for rx in cause.get("errors", []))


# --------------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _row(name: str, c: dict) -> str:
    return (f"| {name} | {c['passed']} | {c['failed']} | {c['error']} | {c['skipped']} | {c['total']} | "
            f"{_pct(c['pass_rate']) if c['ran'] else '–'} |")


HEAD = "| {} | passed | failed | errors | skipped | total | pass rate |\n|---|---:|---:|---:|---:|---:|---:|"


def render_block(results: dict, here: Path) -> str:
    t, h = results["totals"], results["hub_totals"]
    lines = [f"## Run: {RUN_TITLES[results['run']]}", ""]
    lines += [
        f"Command: `{results['command']}` (huggingface_hub {results['hfh_version']}, "
        f"{results['elapsed_s'] // 60} min {results['elapsed_s'] % 60} s, pytest exit {results['pytest_exit']}).",
        "",
        "| selection | passed | failed | errors | skipped | total | pass rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
        _row("all selected tests", t),
        _row("hub-facing tests (sent requests to our server)", h),
        _row("client-only tests (no request to our server)", totals([x for x in results["tests"] if not x["hub"]])),
        "",
        "Pass rate = passed / (passed + failed + errors); skipped tests (upstream `skip`/`skipif`: platform, "
        "git-lfs, ...) are excluded. *Hub-facing* is measured by the harness: the test, or another test of "
        "its class (class-scoped fixtures), sent HTTP requests to the server under test.",
        "",
    ]
    by_module: dict[str, list] = defaultdict(list)
    by_class: dict[tuple, list] = defaultdict(list)
    for x in results["tests"]:
        by_module[x["module"]].append(x)
        by_class[(x["module"], x["cls"] or "(module-level functions)")].append(x)
    lines += ["### Per module", "", HEAD.format("module")]
    lines += [_row(f"`{m}`", totals(v)) for m, v in sorted(by_module.items())]
    lines += ["", "### Per class", "", HEAD.format("module · class")]
    lines += [_row(f"`{m.split('/')[-1]}` · `{c}`", totals(v)) for (m, c), v in sorted(by_class.items())]

    groups = triage(results, load_causes(here / "triage.toml"))
    lines += ["", "### Failures by root cause", ""]
    if not groups:
        lines.append("No failures.")
    else:
        lines += ["Grouped with `conformance/triage.toml` (root causes written by hand; anything it does not "
                  "match is grouped by error text as *untriaged*). Owner: `server` = src/aicommons, "
                  "`environment` = the machine the run used. One representative test and its error each.",
                  "", "| root cause | owner | tests | representative test | error |", "|---|---|---:|---|---|"]
        for g in groups:
            rep = g["tests"][0]
            err = _cell(rep["message"], 220) + (f" (at `{rep['where']}`)" if rep.get("where") else "")
            lines.append(f"| {_cell(g['title'], 260)} | {g['owner'] or '?'} | {len(g['tests'])} | "
                         f"`{rep['nodeid']}` | {err} |")
        lines += ["", "<details><summary>Every failing test, by root cause</summary>", ""]
        for g in groups:
            lines.append(f"- **{_cell(g['title'], 200)}** ({len(g['tests'])})")
            if g["note"]:
                lines.append(f"  - note: {g['note']}")
            for x in g["tests"]:
                at = f" (at `{x['where']}`)" if x.get("where") else ""
                lines.append(f"  - `{x['nodeid']}` — {x['outcome']}{at}: {_cell(x['message'], 160)}")
        lines += ["", "</details>"]

    skipped = [x for x in results["tests"] if x["outcome"] == "skipped"]
    if skipped:
        reasons = Counter(_cell(x["message"], 140) for x in skipped)
        lines += ["", "### Skipped at run time (upstream conditions)", "", "| reason | tests |", "|---|---:|"]
        lines += [f"| {r} | {n} |" for r, n in reasons.most_common()]
    lines += ["", _deselection_section(results)]
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str, limit: int) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _deselection_section(results: dict) -> str:
    coll = results.get("collection") or {}
    by_marker = coll.get("deselected_by_marker", {})
    by_pattern = coll.get("deselected_by_pattern", {})
    lines = ["### Deselected", ""]
    marker_counts = Counter("production" if "production" in m else "xet" if "xet" in m else "other"
                            for m in by_marker.values())
    lines += [
        f"Collected {coll.get('collected', '?')} tests in the modules that were imported; "
        f"`-m` removed {len(by_marker)} ({marker_counts['production']} `production`: they need huggingface.co "
        f"itself; {marker_counts['xet']} `xet`: Xet only{'' if not marker_counts['other'] else ', ' + str(marker_counts['other']) + ' other'}); "
        f"`conformance/deselected.txt` removed {sum(len(v) for v in by_pattern.values())} more, and "
        f"{len(results['ignored_modules'])} whole modules are not collected at all.",
        "",
        "| entry in `conformance/deselected.txt` | tests | reason |",
        "|---|---:|---|",
    ]
    for entry in results["deselected_patterns"]:
        p = entry["pattern"]
        whole = next((m for m in results["ignored_modules"] if m["module"] == p), None)
        n = f"module ({whole['functions']} test functions)" if whole and whole["functions"] is not None else (
            "module" if whole else str(len(by_pattern.get(p, []))))
        lines.append(f"| `{p}` | {n} | {_cell(entry['reason'], 200)} |")
    lines += ["", "<details><summary>Every deselected test with its reason</summary>", ""]
    reasons = {e["pattern"]: e["reason"] for e in results["deselected_patterns"]}
    for p, ids in sorted(by_pattern.items()):
        lines.append(f"- `{p}` — {reasons.get(p, '')}")
        lines += [f"  - `{i}`" for i in sorted(ids)]
    for m in results["ignored_modules"]:
        lines.append(f"- `{m['module']}` (whole module, not collected) — {m['reason']}")
    grouped: dict[str, list] = defaultdict(list)
    for nodeid, marks in by_marker.items():
        grouped["production" if "production" in marks else "xet" if "xet" in marks else "other"].append(nodeid)
    for mark, ids in sorted(grouped.items()):
        why = {"production": "marked `production`: runs against huggingface.co and its fixture repos",
               "xet": "marked `xet`: needs the Xet protocol (the `--xet` run)"}.get(mark, "deselected by `-m`")
        lines.append(f"- `-m` / {mark} — {why}")
        lines += [f"  - `{i}`" for i in sorted(ids)]
    lines += ["", "</details>"]
    return "\n".join(lines)


HEADER = """# Compatibility with huggingface_hub's own test suite

<!-- Generated by conformance/run.py from a live run; edit conformance/*.py, deselected.txt or
     triage.toml instead of this file. -->

AI Commons is checked with the end-to-end tests of the client it claims to be compatible with:
the `tests/` folder of the huggingface_hub **{version}** sdist, downloaded from the package index at run
time (never committed here), pointed at a fresh `aicommons serve` with an empty data dir.

How it works (details in `conformance/run.py` and `conformance/conftest.py`):

- Our harness replaces the conftest that upstream keeps out of the sdist (`conformance/conftest.py`:
  fixtures `api`, `repo_factory`, `new_repo_id`, the markers, a fresh HF home per test) and its pytest
  configuration (`conformance/pytest.ini`, used with `-c`, so the sdist's pytest-env settings that force
  `HUGGINGFACE_CO_STAGING=1` are not applied).
- `tests/testing_constants.py` is patched so that `ENDPOINT_STAGING` reads `HUB_TEST_ENDPOINT`; the
  literal staging URL in `test_hf_api.py::TestHfApiRepoFileExists::test_file_exists` is replaced by it.
- The server is seeded with the CLI: users `__DUMMY_HUB_USER__` ("Dummy User") and `DVUser` with the
  tokens from `testing_constants.py`, org `valid_org_hub` ("Dummy Hub Org") with the first user as member.
- pytest runs with `HF_ENDPOINT` and `HUB_TEST_ENDPOINT` set to the server, `HF_TOKEN` empty,
  `HUGGINGFACE_CO_STAGING` unset, `-m "not production and not xet"`, `HF_HUB_DISABLE_XET=1` (LFS path),
  two xdist workers (`--dist loadscope`), `NO_COLOR=1` (upstream's expected CLI output has no colours),
  no proxy variables, a private `HOME` (some tests change the global git config) and a 120 s limit per test.
- Deselections beyond `-m` are listed with reasons in `conformance/deselected.txt` and below. They are
  only for Hub products outside AI Commons' scope, tests that need huggingface.co itself, and tests
  whose data files the sdist does not ship. Server bugs are failures, grouped by root cause below
  (`conformance/triage.toml`).

Commands:

| what | command |
|---|---|
| full run, rewrites this file | `.venv/bin/python conformance/run.py` |
| CI subset, fails below `conformance/fast_threshold.json` | `.venv/bin/python conformance/run.py --fast` |
| Xet run: Xet enabled, `xet`-marked tests selected too (expected to fail until the server's Xet support is complete) | `.venv/bin/python conformance/run.py --xet` |
| one test, against a fresh server | `.venv/bin/python conformance/run.py --no-doc -- -k test_whoami` |

Test dependencies the upstream tests import: `pytest-mock`, `pytest-asyncio`, `Pillow`, `jedi` (plus
pytest, pytest-xdist, pytest-timeout). The modules needing `fastapi`/`gradio` (OAuth, webhooks server)
are out of scope and not collected.

**Target: at least 95% of the selected tests pass.**

{summary}
"""


def write_doc(doc: Path, results: dict, here: Path) -> None:
    blocks = {"lfs": None, "xet": None}
    if doc.exists():
        old = doc.read_text()
        for kind in blocks:
            m = re.search(rf"<!-- BEGIN run:{kind} -->\n(.*?)<!-- END run:{kind} -->", old, re.S)
            if m:
                blocks[kind] = m.group(1)
    _fill_module_counts(results, here)
    t, h = results["totals"], results["hub_totals"]
    stamp = json.dumps({"totals": t, "hub_totals": h})
    blocks[results["run"]] = f"<!-- totals: {stamp} -->\n" + render_block(results, here)
    rows = ["| run | passed | failed | errors | skipped | pass rate | pass rate of the hub-facing tests |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for kind in ("lfs", "xet"):
        m = re.search(r"<!-- totals: (.*?) -->", blocks[kind] or "")
        if not m:
            rows.append(f"| {RUN_TITLES[kind]} | – | – | – | – | not run yet | |")
            continue
        stamp = json.loads(m.group(1))
        t, h = stamp["totals"], stamp["hub_totals"]
        rows.append(f"| {RUN_TITLES[kind]} | {t['passed']} | {t['failed']} | {t['error']} | {t['skipped']} | "
                    f"**{_pct(t['pass_rate'])}** | {_pct(h['pass_rate'])} ({h['passed']}/{h['ran']}) |")
    parts = [HEADER.format(version=results["hfh_version"], summary="\n".join(rows))]
    for kind in ("lfs", "xet"):
        body = blocks[kind] or f"## Run: {RUN_TITLES[kind]}\n\n{XET_PLACEHOLDER if kind == 'xet' else 'Not run yet.'}\n"
        parts.append(f"<!-- BEGIN run:{kind} -->\n{body}<!-- END run:{kind} -->\n")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(parts))


def _fill_module_counts(results: dict, here: Path) -> None:
    root = here.parent / ".conformance"
    for m in results["ignored_modules"]:
        candidates = list(root.glob(f"huggingface_hub-*/{m['module']}"))
        if candidates:
            m["functions"] = count_test_functions(candidates[0])
