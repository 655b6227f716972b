"""Secrets in text files: found, reported as suspicious, never shown in full."""

from __future__ import annotations

import json
import string

import pytest

from aicommons.scanning import ScanLimits

from .samples import scan

# Fake secrets, assembled at run time (so that this file holds none), random-looking enough not to
# be taken for placeholders.
_ALNUM = string.ascii_letters + string.digits


def fake(prefix: str, length: int, alphabet: str = _ALNUM) -> str:
    return prefix + "".join(alphabet[(i * 7 + 3) % len(alphabet)] for i in range(length))


HF = fake("hf_", 34)
AWS_ID = fake("AKIA", 16, string.ascii_uppercase + string.digits)
AWS_SECRET = fake("", 40, _ALNUM + "/+")
GITHUB = fake("ghp_", 36)
GITHUB_PAT = fake("github_pat_", 82)
OPENAI = fake("sk-proj-", 48)
SLACK = fake("xoxb-", 40, string.digits)[:12] + "-" + fake("", 24)
GOOGLE = fake("AIza", 35)

CASES = [("Hugging Face token", HF), ("AWS access key id", AWS_ID), ("GitHub token", GITHUB),
         ("GitHub fine-grained token", GITHUB_PAT), ("OpenAI-style API key (sk-)", OPENAI),
         ("Slack token", SLACK), ("Google API key", GOOGLE)]


@pytest.mark.parametrize("label, secret", CASES)
def test_each_kind_of_secret_is_found_and_masked(label, secret):
    result = scan("notes.md", f"# setup\n\nuse `{secret}` to log in\n".encode())
    assert result.status == "suspicious"
    (finding,) = result.findings
    assert finding.kind == "secret" and finding.severity == "suspicious"
    assert finding.detail["type"] == label and finding.detail["line"] == 3
    shown = json.dumps(result.to_json())
    assert secret not in shown
    masked = finding.detail["masked"]
    assert masked == secret[:4] + "*" * (len(secret) - 6) + secret[-2:]
    assert masked in finding.message


def test_an_env_file_with_several_secrets_and_a_private_key():
    text = (f"HF_TOKEN={HF}\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    result = scan(".env", text.encode())
    assert result.status == "suspicious"
    assert [f.detail["type"] for f in result.findings] == [
        "Hugging Face token", "AWS access key id", "AWS secret access key", "private key"]
    shown = json.dumps(result.to_json())
    for secret in (HF, AWS_ID, AWS_SECRET, "b3BlbnNzaC1rZXktdjEAAAAA"):
        assert secret not in shown
    assert result.findings[2].detail["line"] == 3


@pytest.mark.parametrize("name", ["config.yaml", "train.py", "settings.toml", ".env.local", "run.sh", "params.json"])
def test_text_files_by_name(name):
    assert scan(name, f"token: {HF}\n".encode()).status == "suspicious"


def test_placeholders_and_short_lookalikes_are_not_secrets():
    text = ("HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
            "see hf_short and sk-123\n")
    result = scan("README.md", text.encode())
    assert result.status == "safe" and result.findings == []


def test_large_and_binary_files_are_not_searched():
    big = (f"{HF}\n" + "x" * 2000).encode()
    result = scan("notes.txt", big, ScanLimits(max_text_bytes=1000))
    assert result.status == "safe"
    assert result.findings[0].severity == "info" and "not searched" in result.findings[0].message
    assert scan("weights.dat", f"{HF}".encode()).status == "safe"  # not a text file
    assert scan("notes.txt", b"\x00\x01" + HF.encode()).status == "safe"  # binary content
