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
# for inference, ``/v1`` for the OpenAI API...) cannot be user or organisation names. The app adds
# every top-level path of its route table to these (hub/account_names.py); this list is the floor,
# with names of the Hub's that we do not route yet.
RESERVED_NAMESPACES = frozenset({
    "api", "datasets", "spaces", "models", "v1", "lfs-transfer", "xet-cas", "docs", "login", "logout",
    "settings", "new", "static", "metrics", "health", "organizations", "users", "search", "admin",
    "openapi.json", "oauth", "datasets-server", "join", "setup", "password", "verify",
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
# Characters that make a name display as something it is not: bidirectional overrides, embeddings
# and isolates (``evil\u202etxt.exe`` shows as ``evilexe.txt``) and the invisible direction marks.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(BIDI_CONTROLS)) + "]")


def _describe(c: str) -> str:
    if c == "\x00":
        return "NUL character"
    if "\ud800" <= c <= "\udfff":
        return f"lone surrogate {c!r}"
    if c in BIDI_CONTROLS:
        return f"bidirectional control {c!r}"
    return f"control character {c!r}"


def unstorable_char(text: str) -> str | None:
    """A description of the first character no backend can store, or None: NUL (PostgreSQL text
    cannot hold it) and lone surrogates (not encodable as UTF-8; JSON's ``"\\ud800"`` makes one)."""
    found = _UNSTORABLE.search(text)
    return _describe(found.group()) if found else None


def unsafe_char(text: str) -> str | None:
    """A description of the first character no name (path, branch, tag) may hold, or None:
    C0/C1 controls (headers cannot carry them), lone surrogates and bidi controls."""
    found = _UNSAFE.search(text)
    return _describe(found.group()) if found else None


def check_file_path(path: str) -> str:
    """A path inside a repo: relative, '/'-separated, no '.'/'..' segments, no control characters.

    A backslash is an ordinary character in a git path, as on the Hub, but clients on Windows read
    it as a separator, so a path is also checked as if split on backslashes: ``dir\\..\\config.json``
    (which lands on ``config.json`` on a Windows disk), ``..\\x``, ``\\x`` and ``C:x`` are refused like
    ``../x``. No segment may be ``.git`` in any case (git and Windows/macOS disks fold case).
    """
    if not isinstance(path, str) or not path:
        raise InvalidPath("Invalid file path: it is empty")
    bad = unsafe_char(path)
    if bad:
        raise InvalidPath(f"Invalid file path {path!r}: {bad} is not allowed")
    if path.startswith("/") or _WINDOWS_ESCAPE.match(path):
        raise InvalidPath(f"Invalid file path {path!r}: it must be relative to the repo root")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidPath(f"Invalid file path: longer than {MAX_PATH_BYTES} bytes")
    for seg in path.split("/"):
        if seg == "":
            raise InvalidPath(f"Invalid file path {path!r}: empty, '.' and '..' segments are not allowed")
        if len(seg.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"Invalid file path {path!r}: a segment is longer than {MAX_SEGMENT_BYTES} bytes")
    for seg in re.split(r"[\\/]", path):
        if seg in (".", ".."):
            raise InvalidPath(f"Invalid file path {path!r}: empty, '.' and '..' segments are not allowed")
        if seg.lower().rstrip(". ") == ".git" or seg.lower() == "git~1":
            raise InvalidPath(f"Invalid file path {path!r}: '.git' is reserved")
    return path


# Names git gives a meaning of its own: a branch or tag called ``HEAD`` makes ``HEAD`` ambiguous.
RESERVED_REF_NAMES = frozenset({"HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD"})


MAX_REF_NAME_BYTES = 255  # one file name on disk (loose refs); libgit2 raises on ~1 KiB names


def _ref_name_ok(name: object, prefix: str) -> bool:
    return isinstance(name, str) and bool(name) and len(name.encode("utf-8", "replace")) <= MAX_REF_NAME_BYTES \
        and not name.startswith("refs/") and name not in RESERVED_REF_NAMES and unsafe_char(name) is None \
        and pygit2.reference_is_valid_name(f"{prefix}{name}") and not _looks_like_sha(name)


def check_branch_name(name: str) -> str:
    if not _ref_name_ok(name, "refs/heads/"):
        raise BadRequest("Invalid reference for a branch")
    return name


def check_tag_name(name: str) -> str:
    if not _ref_name_ok(name, "refs/tags/") or " " in name:
        raise BadRequest(f"Invalid tag name {name!r}")
    return name


def check_revision(revision: str) -> str:
    """A revision named in a URL (branch, tag, ``refs/pr/N``, sha): refuse what no ref can be, so
    that it never reaches git, the database or an error header."""
    if not isinstance(revision, str) or not revision or len(revision.encode("utf-8", "replace")) > MAX_PATH_BYTES:
        raise BadRequest("Invalid revision: empty or too long")
    bad = unsafe_char(revision)
    if bad:
        raise BadRequest(f"Invalid revision {revision!r}: {bad} is not allowed")
    return revision


def _looks_like_sha(name: str) -> bool:
    return len(name) == 40 and all(c in "0123456789abcdef" for c in name)


_PR_REF = re.compile(r"refs/pr/([1-9][0-9]{0,8})")


def pr_number(ref: str) -> int | None:
    """N for ``refs/pr/N`` (a positive number that fits every backend's integer column), else None."""
    found = _PR_REF.fullmatch(ref)
    return int(found.group(1)) if found else None
