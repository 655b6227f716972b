"""``scan_file``: which checks a file gets, from its first bytes and its name.

Content decides first (a pickle renamed ``.txt`` is still a pickle, a zip named ``.bin`` is
still opened); the name then adds what content cannot say (``.safetensors`` has no magic, a
``.pkl`` that does not parse is an error rather than "not a pickle", ``tokenizer_config.json``
carries chat templates). Archive members come back here through ``ScanContext.scan_member`` and
are routed the same way, except that only what can carry code is opened inside archives (pickles,
``.npy``, archives, GGUF): searching every text member of a dataset zip for secrets would cost
the whole archive.

Any failure — malformed input, a limit, a bug — becomes an ``error`` finding: ``scan_file``
never raises, and never calls a file it could not read through safe.
"""

from __future__ import annotations

import io
import posixpath
import sys
from collections.abc import Callable
from typing import BinaryIO

from .bounded_io import BoundedReader, LimitExceeded, PrefixedStream, read_head, spooled_copy
from .chat_templates import check_chat_template
from .compressed import DECOMPRESSION_ERRORS, MeteredStream, inner_name, open_decompressed, zlib_sniff
from .gguf import scan_gguf
from .limits import DEFAULT_LIMITS, ScanLimits
from .model_configs import TEMPLATE_CONFIGS, check_model_config, is_model_config
from .numpy_files import NpyError, read_npy_header
from .pickles import MAYBE_PICKLE_SUFFIXES, PICKLE_MEMBER_NAMES, PICKLE_SUFFIXES, named_like_pickle, scan_pickle
from .results import MEMORY_ERROR, FileScan, Finding
from .safetensors_header import scan_safetensors
from .scan_context import Outcome, ScanContext
from .secret_patterns import find_secrets
from .sniffing import (
    COMPRESSED_KINDS,
    HEAD_BYTES,
    UNOPENABLE_KINDS,
    could_be_pickle,
    is_tar,
    looks_like_safetensors,
    sniff,
)
from .tar_archives import scan_tar
from .zip_archives import scan_zip

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".nemo")
UNOPENABLE_SUFFIXES = (".7z", ".rar", ".zst", ".lz4")
TEMPLATE_SUFFIXES = (".jinja", ".jinja2", ".j2")
TEXT_SUFFIXES = (".txt", ".md", ".json", ".jsonl", ".yaml", ".yml", ".py", ".cfg", ".ini", ".env", ".toml", ".sh",
                 ".bash", ".zsh", ".ipynb", ".js", ".ts", ".conf", ".properties", ".ps1", ".bat", ".html", ".xml",
                 ".csv", ".tsv") + TEMPLATE_SUFFIXES
TEXT_NAMES = frozenset({".env", "dockerfile", "makefile", ".netrc", ".npmrc", ".pypirc", "credentials",
                        ".git-credentials"})
_UNKNOWN_SIZE = sys.maxsize  # a decompressed stream's size (every reader is still bounded)


def scan_file(path_in_repo: str, open_stream: Callable[[], BinaryIO], size: int, *,
              limits: ScanLimits = DEFAULT_LIMITS) -> FileScan:
    """Scan one file of a repo. ``open_stream`` is called once; ``size`` is the file's size."""
    ctx = ScanContext(limits, scan_member=_scan_member)
    try:
        with open_stream() as stream:
            head = read_head(stream, HEAD_BYTES)
            outcome = _route(_basename(path_in_repo), head, stream, size, ctx, member=False)
    except LimitExceeded as exc:
        outcome = Outcome("none", [Finding("limit", "error", str(exc))])
    except MemoryError:  # under the worker's RLIMIT_AS (scanning/worker.py)
        outcome = Outcome("none", [Finding("limit", "error", MEMORY_ERROR)])
    except Exception as exc:  # noqa: BLE001 - whatever breaks, the file is not called safe
        outcome = Outcome("none", [Finding("scanner", "error", f"the scan failed: {type(exc).__name__}: {exc}")])
    return FileScan.from_findings(path_in_repo, outcome.scanner, outcome.findings, skipped=outcome.skipped)


def _basename(path: str) -> str:
    return posixpath.basename(path.replace("\\", "/")).lower()


def _scan_member(name: str, stream: BinaryIO, size: int, ctx: ScanContext) -> Outcome:
    """An archive member, ``stream`` at its start. The archive-wide budget's LimitExceeded goes
    up to the archive; anything else is this member's error."""
    try:
        head = read_head(stream, HEAD_BYTES)
        if ctx.budget is not None:
            ctx.budget.charge(len(head))
        return _route(_basename(name), head, stream, size, ctx, member=True)
    except (LimitExceeded, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001
        return Outcome("none", [Finding("scanner", "error", f"the scan failed: {type(exc).__name__}: {exc}")])


def _rewound(stream: BinaryIO, head: bytes, member: bool):
    """The stream from its first byte again."""
    if not member and _can_seek(stream):
        stream.seek(0)
        return stream
    return PrefixedStream(head, stream)


def _can_seek(stream) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def _route(name: str, head: bytes, stream: BinaryIO, size: int, ctx: ScanContext, *, member: bool) -> Outcome:
    limits = ctx.limits
    kind = sniff(head)
    if kind == "zip":
        if not member and _can_seek(stream):
            stream.seek(0)
            return scan_zip(stream, ctx)
        budget = ctx.inside_archive().budget
        with spooled_copy(PrefixedStream(head, stream), budget, "a zip archive inside an archive") as copy:
            return scan_zip(copy, ctx)
    if kind == "gguf":
        return scan_gguf(_rewound(stream, head, member), size, limits, ctx.budget)
    if kind == "npy":
        return _scan_npy(_rewound(stream, head, member), ctx)
    if kind in UNOPENABLE_KINDS:
        return _skipped(kind)
    if kind == "tar":
        seekable = not member and _can_seek(stream)
        return scan_tar(_rewound(stream, head, member), ctx, seekable=seekable, compressed_size=None)
    if kind in COMPRESSED_KINDS or (kind is None and not name.endswith(TEXT_SUFFIXES) and zlib_sniff(head)):
        # joblib.load opens zlib streams by their first bytes, whatever the name (``.z``, ``.pkl``...)
        return _scan_compressed(kind or "zlib", name, _rewound(stream, head, member), size, ctx)
    if kind == "pickle":
        # Starts like a pickle. Named like one too: a parse failure is an error. Named otherwise
        # (a .txt, a PNG...), the first bytes may be chance: it counts as a pickle if it parses,
        # or if it imports something before it breaks.
        outcome = _scan_pickle(_rewound(stream, head, member), ctx, strict=named_like_pickle(name, member=member))
        if outcome is not None:
            return outcome
        if member or not _can_seek(stream):
            return Outcome("none")
    if not member and (name.endswith(".safetensors") or looks_like_safetensors(head, size)):
        return scan_safetensors(_rewound(stream, head, member), size, limits)
    if name.endswith(".gguf"):
        return Outcome("gguf", [Finding("gguf-header", "error", "named .gguf but does not start with the GGUF magic")])
    if name.endswith(PICKLE_SUFFIXES) or (member and name in PICKLE_MEMBER_NAMES):
        return _scan_pickle(_rewound(stream, head, member), ctx, strict=True)
    if name.endswith(MAYBE_PICKLE_SUFFIXES):
        outcome = _scan_pickle(_rewound(stream, head, member), ctx, strict=False)
        if outcome is not None:
            return outcome
        return Outcome("none", [] if member else [
            Finding("pickle", "info", "not a pickle: unpickling it fails before anything is imported")])
    if name.endswith(TAR_SUFFIXES):
        seekable = not member and _can_seek(stream)
        return scan_tar(_rewound(stream, head, member), ctx, seekable=seekable, compressed_size=None)
    if name.endswith(UNOPENABLE_SUFFIXES):
        return _skipped(name.rsplit(".", 1)[-1])
    if member:
        return Outcome("none")
    return _scan_text(name, _rewound(stream, head, member), head, size, ctx)


def _skipped(kind: str) -> Outcome:
    return Outcome(kind, [Finding("archive", "info", f"{kind} content cannot be opened by this scanner: "
                                                     "not inspected")], skipped=True)


def _scan_pickle(stream, ctx: ScanContext, *, strict: bool) -> Outcome | None:
    reader = BoundedReader(stream, ctx.limits.max_pickle_bytes, "pickle", ctx.budget)
    findings = scan_pickle(reader, ctx.limits, strict=strict)
    return None if findings is None else Outcome("pickle", findings)


def _scan_npy(stream, ctx: ScanContext) -> Outcome:
    limits = ctx.limits
    try:
        header = read_npy_header(BoundedReader(stream, 12 + limits.max_npy_header_bytes, ".npy header", ctx.budget),
                                 limits.max_npy_header_bytes)
    except NpyError as exc:
        return Outcome("numpy", [Finding("numpy-header", "error", str(exc))])
    if not header.has_objects:
        return Outcome("numpy")  # numbers only: np.load reads them as bytes
    # Object arrays are pickled after the header; np.load(allow_pickle=True) unpickles them.
    outcome = _scan_pickle(stream, ctx, strict=True)
    return outcome or Outcome("pickle")


def _scan_compressed(kind: str, name: str, stream, size: int, ctx: ScanContext) -> Outcome:
    inner = ctx.inside_archive()
    name = inner_name(name)
    plain = None
    try:
        with open_decompressed(kind, stream) as decompressed:
            plain = MeteredStream(decompressed, size, ctx.limits)
            head = read_head(plain, HEAD_BYTES)
            if is_tar(head) or name.endswith(".tar"):
                outcome = scan_tar(PrefixedStream(head, plain), ctx, seekable=False, compressed_size=size)
            elif inner.depth > ctx.limits.max_archive_depth:
                return Outcome(kind, [Finding("archive", "error", f"compressed more than "
                                                                  f"{ctx.limits.max_archive_depth} times over")])
            else:
                # ``plain`` is past ``head``: _route reads on from there, ``head`` in hand (it was
                # wrapped in a PrefixedStream here once, and _route prefixed it again: the first
                # 512 bytes were parsed twice and a payload padded past them never was).
                outcome = _route(name, head, plain, _UNKNOWN_SIZE, inner, member=True)
    except LimitExceeded as exc:
        if plain is None or not plain.stopped:
            raise  # an archive-wide budget: the archive reports it
        outcome = Outcome(kind, [Finding("limit", "error", str(exc))])
    except DECOMPRESSION_ERRORS as exc:
        outcome = Outcome(kind, [Finding("archive", "error", f"unreadable {kind} stream: {type(exc).__name__}: {exc}")])
    findings = outcome.findings
    if plain is not None and plain.bomb and not any(f.kind == "zip-bomb" for f in findings):
        findings = findings + [Finding("zip-bomb", "unsafe", f"the {kind} stream {plain.bomb}")]
    return Outcome(kind if outcome.scanner == "none" else outcome.scanner, findings, outcome.skipped)


def _scan_text(name: str, stream, head: bytes, size: int, ctx: ScanContext) -> Outcome:
    """Files no binary format claimed: templates, configs, secrets, and protocol 0 pickles (text
    themselves) whatever their name."""
    limits = ctx.limits
    is_template = name.endswith(TEMPLATE_SUFFIXES)
    is_config = name.endswith(".json") and is_model_config(name)
    is_text = name.endswith(TEXT_SUFFIXES) or name in TEXT_NAMES or name.startswith(".env.")
    maybe_pickle = could_be_pickle(head) and size <= limits.max_text_bytes
    if not (is_template or is_config or is_text or maybe_pickle):
        return Outcome("none")
    cap = max(limits.max_text_bytes, limits.max_config_bytes if is_config else 0,
              limits.max_template_bytes if is_template else 0)
    data = read_head(stream, cap + 1)
    scanner, findings = "none", []
    if is_template:
        scanner = "chat-template"
        try:
            findings += check_chat_template(data.decode("utf-8"), "template", limits)
        except UnicodeDecodeError:
            findings.append(Finding("chat-template", "error", "the template is not UTF-8 text"))
    if is_config:
        scanner = "config"
        if len(data) > limits.max_config_bytes:
            severity = "error" if name in TEMPLATE_CONFIGS else "info"
            findings.append(Finding("config", severity, f"over the {limits.max_config_bytes}-byte limit: not checked"))
        else:
            findings += check_model_config(name, data, limits)
    if is_text:
        scanner = "text" if scanner == "none" else scanner
        if len(data) > limits.max_text_bytes:
            findings.append(Finding("secret", "info", f"over {limits.max_text_bytes} bytes: not searched for secrets"))
        elif b"\x00" not in data:
            findings += find_secrets(data.decode("utf-8", "replace"))
    if maybe_pickle and len(data) <= limits.max_text_bytes:
        reader = BoundedReader(io.BytesIO(data), limits.max_text_bytes, "pickle")
        found = scan_pickle(reader, limits, strict=False, require_complete=True)
        if found is not None:
            scanner, findings = "pickle", findings + found
    return Outcome(scanner, findings)
