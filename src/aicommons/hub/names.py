"""Validation of the names users choose: repo ids, file paths, branch and tag names.

Pure functions; each raises BadRequest with a message that says what is wrong.
"""

from __future__ import annotations

import re

import pygit2

from aicommons.errors import BadRequest, InvalidPath

REPO_TYPES = ("model", "dataset", "space")
REPO_TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
REPO_TYPE_PLURAL = {"model": "models", "dataset": "datasets", "space": "spaces"}
PLURAL_TO_TYPE = {v: k for k, v in REPO_TYPE_PLURAL.items()}

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,96}$")
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255


# Names that would collide with top-level URL paths (``/api``, ``/datasets/...``, ``/models/...``
# for inference, ``/v1`` for the OpenAI API...) cannot be user or organisation names.
RESERVED_NAMESPACES = frozenset({
    "api", "datasets", "spaces", "models", "v1", "lfs-transfer", "xet-cas", "docs", "login", "logout",
    "settings", "new", "static", "metrics", "health", "organizations", "users", "search", "admin",
})


def check_namespace(name: str, what: str) -> str:
    check_repo_name(name, what)
    if name.lower() in RESERVED_NAMESPACES:
        raise BadRequest(f"Invalid {what} {name!r}: this name is reserved")
    return name


def check_repo_type(value: str | None) -> str:
    value = value or "model"
    if value not in REPO_TYPES:
        raise BadRequest(f"Invalid repo type {value!r}: must be one of {', '.join(REPO_TYPES)}")
    return value


def check_repo_name(part: str, what: str = "repo name") -> str:
    if not isinstance(part, str) or not _NAME_RE.match(part) or "--" in part or ".." in part \
            or part[0] in "-." or part[-1] in "-." or part.endswith(".git"):
        raise BadRequest(
            f"Invalid {what} {part!r}: use 1-96 letters, digits, '-', '_' or '.', not starting or ending "
            "with '-' or '.', without '--', '..' or a '.git' suffix")
    return part


_WINDOWS_ESCAPE = re.compile(r"^(\.\.([\\/]|$)|[\\/]|[A-Za-z]:)")


def check_file_path(path: str) -> str:
    """A path inside a repo: relative, '/'-separated, no '.'/'..' segments, no control characters.

    A backslash is an ordinary character in a git path, as on the Hub (clients guard their own
    disks when they write files), but a path that would start outside the repo when read with
    Windows separators (``..\\x``, ``\\x``, ``C:x``) is refused like ``../x``.
    """
    if not isinstance(path, str) or not path:
        raise InvalidPath("Invalid file path: it is empty")
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        raise InvalidPath(f"Invalid file path {path!r}: control characters are not allowed")
    if path.startswith("/") or _WINDOWS_ESCAPE.match(path):
        raise InvalidPath(f"Invalid file path {path!r}: it must be relative to the repo root")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidPath(f"Invalid file path: longer than {MAX_PATH_BYTES} bytes")
    segments = path.split("/")
    for seg in segments:
        if seg in ("", ".", ".."):
            raise InvalidPath(f"Invalid file path {path!r}: empty, '.' and '..' segments are not allowed")
        if len(seg.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"Invalid file path {path!r}: a segment is longer than {MAX_SEGMENT_BYTES} bytes")
    if segments[0] == ".git":
        raise InvalidPath(f"Invalid file path {path!r}: '.git' is reserved")
    return path


def check_branch_name(name: str) -> str:
    if not isinstance(name, str) or not name or name.startswith("refs/") \
            or not pygit2.reference_is_valid_name(f"refs/heads/{name}") or _looks_like_sha(name):
        raise BadRequest("Invalid reference for a branch")
    return name


def check_tag_name(name: str) -> str:
    if not isinstance(name, str) or not name or name.startswith("refs/") or " " in name \
            or not pygit2.reference_is_valid_name(f"refs/tags/{name}") or _looks_like_sha(name):
        raise BadRequest(f"Invalid tag name {name!r}")
    return name


def _looks_like_sha(name: str) -> bool:
    return len(name) == 40 and all(c in "0123456789abcdef" for c in name)
