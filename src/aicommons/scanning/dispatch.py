"""``scan_file``: which checks a file gets, from its name and its first bytes (a pickle renamed
``.txt`` is still a pickle; a zip named ``.bin`` is still opened)."""

from __future__ import annotations

import posixpath
from typing import BinaryIO, Callable

from .archives import scan_tar, scan_zip
from .gguf import scan_gguf
from .limits import DEFAULT_LIMITS, ScanLimits
from .pickles import looks_like_pickle, scan_pickle
from .results import FileScan, Finding
from .safetensors_header import scan_safetensors
from .text_checks import check_template, check_tokenizer_config, find_secrets

PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt", ".joblib", ".dat", ".npy")
TEXT_SUFFIXES = (".txt", ".md", ".json", ".yaml", ".yml", ".py", ".cfg", ".ini", ".env", ".toml", ".sh", ".ipynb",
                 ".jinja", ".j2", ".csv", ".tsv", ".js", ".ts", ".html", ".xml", ".conf")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def scan_file(path: str, open_stream: Callable[[], BinaryIO], size: int,
              limits: ScanLimits = DEFAULT_LIMITS) -> FileScan:
    name = posixpath.basename(path).lower()
    try:
        with open_stream() as stream:
            head = stream.read(16)
            stream.seek(0)
            if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
                return FileScan(path, "zip", scan_zip(stream, limits))
            if head.startswith(b"GGUF"):
                return FileScan(path, "gguf", scan_gguf(stream))
            if name.endswith(".safetensors"):
                return FileScan(path, "safetensors", scan_safetensors(stream, size, limits))
            if name.endswith(".npy") and head.startswith(b"\x93NUMPY"):
                return FileScan(path, "pickle", _scan_npy(stream, limits))
            if (head[:1] == b"\x80" and looks_like_pickle(head)) or \
                    (name.endswith(PICKLE_SUFFIXES) and looks_like_pickle(head)):
                return FileScan(path, "pickle", _scan_raw_pickle(stream, limits))
            if name.endswith(TAR_SUFFIXES):
                return FileScan(path, "tar", scan_tar(stream, limits))
            if name.endswith((".7z", ".rar")):
                return FileScan(path, "none", [Finding("archive", "info", "7z/rar archives are not opened")])
            if name.endswith(TEXT_SUFFIXES) or name in (".env", "dockerfile", "makefile"):
                return FileScan(path, "text", _scan_text(name, stream, size, limits))
            return FileScan(path, "none")
    except OSError as exc:
        return FileScan(path, "none", [Finding("read", "error", f"could not read the file: {exc}")])


def _scan_raw_pickle(stream: BinaryIO, limits: ScanLimits) -> list[Finding]:
    data = stream.read(limits.max_pickle_bytes + 1)
    if len(data) > limits.max_pickle_bytes:
        return [Finding("pickle", "error", f"larger than the {limits.max_pickle_bytes}-byte pickle limit")]
    return scan_pickle(data)


def _scan_npy(stream: BinaryIO, limits: ScanLimits) -> list[Finding]:
    head = stream.read(512)
    if b"'O'" not in head and b"'|O'" not in head:
        return []  # plain numbers: no pickle inside
    stream.seek(head.find(b"\n") + 1)
    return _scan_raw_pickle(stream, limits)


def _scan_text(name: str, stream: BinaryIO, size: int, limits: ScanLimits) -> list[Finding]:
    if size > limits.max_text_bytes:
        return []  # large text (datasets) is not searched for secrets
    text = stream.read(limits.max_text_bytes).decode("utf-8", "replace")
    findings = find_secrets(text)
    if name == "tokenizer_config.json":
        findings += check_tokenizer_config(text)
    elif name.endswith((".jinja", ".j2")):
        findings += check_template(text)
    return findings
