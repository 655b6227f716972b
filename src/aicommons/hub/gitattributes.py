"""LFS pointers and the ``.gitattributes`` rules that decide which paths are stored with LFS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pathspec

LFS_SPEC_URL = "https://git-lfs.github.com/spec/v1"
_POINTER_RE = re.compile(
    rb"^version https://git-lfs\.github\.com/spec/v1\n(?:[a-z0-9.\-]+ .*\n)*?oid sha256:([0-9a-f]{64})\n"
    rb"(?:[a-z0-9.\-]+ .*\n)*?size ([0-9]+)\n(?:[a-z0-9.\-]+ .*\n)*$")
MAX_POINTER_SIZE = 1024

# The attributes a new repo starts with: the common binary formats go to LFS, as on the Hub.
LFS_EXTENSIONS = [
    "7z", "arrow", "bin", "bz2", "ckpt", "ftz", "gz", "h5", "joblib", "lfs.*", "mlmodel", "model",
    "msgpack", "npy", "npz", "onnx", "ot", "parquet", "pb", "pickle", "pkl", "pt", "pth", "rar",
    "safetensors", "tar.*", "tar", "tflite", "tgz", "wasm", "xz", "zip", "zst", "gguf",
]
DEFAULT_GITATTRIBUTES = "".join(
    [f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in LFS_EXTENSIONS]
    + ["saved_model/**/* filter=lfs diff=lfs merge=lfs -text\n", "*tfevents* filter=lfs diff=lfs merge=lfs -text\n"]
)


@dataclass(frozen=True)
class LfsPointer:
    oid: str
    size: int
    pointer_size: int


def format_pointer(oid: str, size: int) -> bytes:
    return f"version {LFS_SPEC_URL}\noid sha256:{oid}\nsize {size}\n".encode()


def parse_pointer(data: bytes) -> LfsPointer | None:
    if len(data) > MAX_POINTER_SIZE or not data.startswith(b"version "):
        return None
    match = _POINTER_RE.match(data)
    if match is None:
        return None
    return LfsPointer(match.group(1).decode(), int(match.group(2)), len(data))


class LfsRules:
    """Paths marked ``filter=lfs`` in a ``.gitattributes`` file."""

    def __init__(self, gitattributes: str | None):
        patterns = []
        for line in (gitattributes or "").splitlines():
            parts = line.strip().split()
            if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
                patterns.append(parts[0])
        self._spec = pathspec.PathSpec.from_lines("gitwildmatch", patterns)

    def matches(self, path: str) -> bool:
        return self._spec.match_file(path)


def looks_binary(sample: bytes) -> bool:
    """Whether the first bytes of a file (the preupload's 512-byte sample) say it is binary: a NUL,
    or bytes that are not UTF-8 (a multi-byte character cut at the end of the sample is fine)."""
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 4
    return False


def ignore_rules(gitignore: str | None) -> pathspec.PathSpec[Any]:
    return pathspec.PathSpec.from_lines("gitwildmatch", (gitignore or "").splitlines())
