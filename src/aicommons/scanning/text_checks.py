"""Text files: leaked credentials, and chat templates that reach for Python internals.

Chat templates are Jinja run by inference servers; the SSTI payloads behind CVE-2024-34359 walk
from any object to ``__class__``/``__globals__``/``__subclasses__``. The hub only ever renders
templates sandboxed, but other software may not, so a template touching dunder attributes, or the
globals such payloads start from, is flagged. Templates are parsed, never rendered.
"""

from __future__ import annotations

import json
import re

from .results import Finding

SECRET_PATTERNS = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    "OpenAI API key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----"),
}
_TEMPLATE_GLOBALS = {"self", "lipsum", "cycler", "joiner", "namespace", "config", "request", "url_for", "range"}
_ALLOWED_GLOBALS = {"range", "namespace"}  # common in real chat templates, harmless in a sandbox


def mask(secret: str) -> str:
    """Enough to recognise it, not enough to use it: scan results are shown to other users."""
    return secret[:4] + "…" + secret[-2:] if len(secret) > 8 else "…"


def find_secrets(text: str) -> list[Finding]:
    findings = []
    for label, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            shown = "" if label == "private key" else f" ({mask(match.group(0))})"
            findings.append(Finding("secret", "suspicious", f"line {line}: what looks like a {label}{shown}",
                                    {"type": label, "line": line}))
    return findings


def check_template(source: str, where: str = "chat template") -> list[Finding]:
    from jinja2 import TemplateSyntaxError, nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        tree = ImmutableSandboxedEnvironment().parse(source)
    except TemplateSyntaxError as exc:
        return [Finding("chat-template", "error", f"{where}: not valid Jinja ({exc.message})")]
    findings = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem):
            name = node.arg.value if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) else ""
        else:
            name = node.name if node.name in _TEMPLATE_GLOBALS - _ALLOWED_GLOBALS else ""
        if name.startswith("__") or (isinstance(node, nodes.Name) and name):
            findings.append(Finding("chat-template", "unsafe", f"{where}: reaches for {name!r}, a template-"
                                                               "injection primitive", {"name": name}))
    return list({f.message: f for f in findings}.values())


def check_tokenizer_config(text: str) -> list[Finding]:
    try:
        config = json.loads(text)
    except ValueError:
        return []  # not JSON: nothing to say about templates
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, str):
        return check_template(template)
    if isinstance(template, list):
        found = []
        for item in template:
            if isinstance(item, dict) and isinstance(item.get("template"), str):
                found += check_template(item["template"], f"chat template {item.get('name')!r}")
        return found
    return []
