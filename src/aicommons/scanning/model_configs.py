"""transformers' JSON configs: the chat templates they carry, and the custom code they point to.

- ``chat_template`` in ``tokenizer_config.json`` (also ``chat_template.json`` and processor
  configs) is a string, a list of ``{"name", "template"}``, or a name-to-template object; each one
  is checked (``chat_templates``). A config that should carry templates but does not parse is an
  ``error`` (its templates could not be checked).
- ``auto_map`` (in ``config.json``, ``tokenizer_config.json``...) names Python classes that
  transformers imports from the repo's ``*.py`` files — or from *another* repo
  (``"other/repo--module.Class"``) — when the user passes ``trust_remote_code=True``. That code
  is not analysed: the finding is ``info``, saying which code loading would run.
"""

from __future__ import annotations

import json

from .chat_templates import check_chat_template
from .limits import ScanLimits
from .results import Finding

TEMPLATE_CONFIGS = frozenset({"tokenizer_config.json", "chat_template.json", "processor_config.json",
                              "preprocessor_config.json"})


def is_model_config(name: str) -> bool:
    return name in TEMPLATE_CONFIGS or name == "config.json" or name.endswith("_config.json")


def check_model_config(name: str, data: bytes, limits: ScanLimits) -> list[Finding]:
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if name in TEMPLATE_CONFIGS:
            return [Finding("config", "error", f"not valid JSON ({type(exc).__name__}): its chat templates "
                                               "could not be checked")]
        return []  # transformers could not load it either; nothing in it would run
    if not isinstance(config, dict):
        return []
    return _templates(config.get("chat_template"), limits) + _custom_code(config.get("auto_map"))


def _templates(value: object, limits: ScanLimits) -> list[Finding]:
    if value is None:
        return []
    if isinstance(value, str):
        return check_chat_template(value, "chat_template", limits)
    named: list[tuple[object, object]] = []
    if isinstance(value, list):
        named = [(item.get("name"), item.get("template")) if isinstance(item, dict) else (None, item)
                 for item in value]
    elif isinstance(value, dict):
        named = list(value.items())
    else:
        return [Finding("chat-template", "error", "chat_template is neither a string, a list nor an object")]
    findings = []
    for name, template in named:
        if not isinstance(template, str):
            findings.append(Finding("chat-template", "error", f"chat template {name!r:.100} is not a string"))
            continue
        findings += check_chat_template(template, f"chat template {name!r:.100}", limits)
    return findings


def _custom_code(auto_map: object) -> list[Finding]:
    if not isinstance(auto_map, dict) or not auto_map:
        return []
    references: list[str] = []
    for value in auto_map.values():
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str):
                references.append(ref)
    other_repos = sorted({ref.split("--", 1)[0] for ref in references if "--" in ref})
    message = "auto_map: loading with trust_remote_code=True runs Python code from " + (
        "this repo" if not other_repos else "other repos (" + ", ".join(other_repos)[:300] + ")")
    return [Finding("custom-code", "info", message, {"autoMap": references[:50], "otherRepos": other_repos[:50]})]
