"""Leaked credentials in small text files: tokens and keys of common services, private keys.

Findings are ``suspicious``: a warning for the uploader (as the Hub's TruffleHog scan, which does
not block either; nothing here checks that a key works). Scan results are stored and shown to
every visitor of the repo, so a finding never carries the secret: all but its first 4 and last 2
characters are masked. Obvious placeholders (``hf_xxxx...``, AWS's documented ``...EXAMPLE``
keys) are not reported.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .results import Finding


@dataclass(frozen=True)
class SecretPattern:
    label: str
    regex: re.Pattern
    group: int = 0  # the part of the match that is the secret
    masked: bool = True  # False: the match is only a marker (a private key's BEGIN line)


PATTERNS = (
    SecretPattern("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    SecretPattern("AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b")),
    SecretPattern("AWS secret access key",
                  re.compile(r"(?i)aws_?secret_?(?:access_?)?key\W{0,5}([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"), 1),
    SecretPattern("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b")),
    SecretPattern("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{50,}\b")),
    SecretPattern("OpenAI-style API key (sk-)", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{32,}")),
    SecretPattern("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    SecretPattern("Slack webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")),
    SecretPattern("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    SecretPattern("private key", re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY"
                                            r"(?: BLOCK)?-----"), masked=False),
)


def mask(secret: str) -> str:
    """Enough to recognise it, not enough to use it: the first 4 and last 2 characters."""
    if len(secret) <= 12:
        return "*" * len(secret)
    return secret[:4] + "*" * (len(secret) - 6) + secret[-2:]


def _placeholder(secret: str) -> bool:
    return "EXAMPLE" in secret.upper() or len(set(secret)) < 8


def find_secrets(text: str) -> list[Finding]:
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    findings = []
    for pattern in PATTERNS:
        for match in pattern.regex.finditer(text):
            secret = match.group(pattern.group)
            if pattern.masked and _placeholder(secret):
                continue
            line = bisect.bisect_right(line_starts, match.start())
            shown = mask(secret) if pattern.masked else secret
            findings.append(Finding("secret", "suspicious", f"line {line}: looks like a {pattern.label} ({shown})",
                                    {"type": pattern.label, "line": line, "masked": shown}))
    return findings
