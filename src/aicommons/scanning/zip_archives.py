"""Zip archives, which is also what PyTorch checkpoints (``<name>/data.pkl`` plus raw storages),
``.npz`` files (``.npy`` members) and Keras 3 files are.

The archive's own structure is checked first (member count and central directory size before
zipfile reads it, escaping names, links, bombs, members that overlap), then every member is handed
back to the dispatcher, which sniffs it and scans what can carry code: pickles, ``.npy`` files with
objects, archives inside the archive. Raw tensor storages of a PyTorch checkpoint are skipped
(``torch.load`` reads them as bytes, never unpickles them, and random float bytes sometimes look
like a pickle's first bytes).
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from typing import BinaryIO

from .archive_rules import check_member_name, expansion_problem, in_member, shown
from .bounded_io import LimitExceeded
from .pickles import named_like_pickle
from .results import Finding
from .scan_context import Outcome, ScanContext

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_LOCAL_HEADER_SIZE = 30
_CD_SIGNATURE = b"PK\x01\x02"
_CD_HEADER_SIZE = 46
_READABLE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError,
                ValueError, zlib.error, struct.error)


def directory_summary(stream: BinaryIO) -> tuple[int, int, int] | None:
    """(entries, central directory bytes, where the directory starts) from the end-of-central-
    directory record, read before ``zipfile`` loads the whole directory into memory. None if no
    record is found. The entry count is what the record claims: ``count_entries`` counts them."""
    stream.seek(0, 2)
    size = stream.tell()
    tail_len = min(size, 22 + 65535)  # the record, and a comment of at most 64 KiB
    stream.seek(size - tail_len)
    tail = stream.read(tail_len)
    pos = tail.rfind(_EOCD)
    if pos < 0 or len(tail) - pos < 22:
        return None
    _, _, _, _, entries, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[pos:pos + 22])
    record_at = size - tail_len + pos
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        locator = tail[pos - 20:pos] if pos >= 20 else b""
        if locator[:4] == _EOCD64_LOCATOR:
            (record_offset,) = struct.unpack("<Q", locator[8:16])
            if record_offset < size:
                stream.seek(record_offset)
                record = stream.read(56)
                if len(record) == 56 and record[:4] == _EOCD64:
                    entries, cd_size = struct.unpack("<QQ", record[32:48])
                    record_at = record_offset
    # As zipfile finds it: right before the end record (data prepended to the archive shifts it).
    return entries, cd_size, record_at - cd_size


def count_entries(stream: BinaryIO, start: int, cd_size: int, limit: int) -> int:
    """The central directory's real entries, counted up to ``limit + 1`` by walking their headers
    (constant memory): the end record's count is a claim, and zipfile trusts the directory's size
    instead (an end record claiming one entry in front of 2.1 M used to pass the member limit)."""
    if start < 0:
        return 0  # zipfile will refuse it
    stream.seek(start)
    count = position = 0
    while position + _CD_HEADER_SIZE <= cd_size and count <= limit:
        header = stream.read(_CD_HEADER_SIZE)
        if len(header) < _CD_HEADER_SIZE or header[:4] != _CD_SIGNATURE:
            break
        name_len, extra_len, comment_len = struct.unpack("<3H", header[28:34])
        count += 1
        position += _CD_HEADER_SIZE + name_len + extra_len + comment_len
        stream.seek(start + position)
    return count


def scan_zip(stream: BinaryIO, ctx: ScanContext) -> Outcome:
    """``stream`` must be seekable (a file, or a spooled copy of an archive member)."""
    limits = ctx.limits
    findings: list[Finding] = []
    roots: set[str] = set()
    try:
        summary = directory_summary(stream)
        if summary is not None:
            entries, cd_size, cd_start = summary
            if entries > limits.max_archive_members:
                return _error(f"{entries} members, more than the {limits.max_archive_members} this scanner lists")
            if cd_size > limits.max_header_bytes:
                return _error(f"a {cd_size}-byte central directory, over the {limits.max_header_bytes}-byte limit")
            if count_entries(stream, cd_start, cd_size, limits.max_archive_members) > limits.max_archive_members:
                return _error(f"more than the {limits.max_archive_members} members this scanner lists in its "
                              f"central directory (the end record claims {entries})")
        stream.seek(0, 2)
        archive_size = stream.tell()
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_archive_members:
                return _error(f"{len(infos)} members, more than the {limits.max_archive_members} this scanner lists")
            structure, skip = _check_structure(archive, infos, archive_size, ctx)
            findings += structure
            roots = _pytorch_roots(infos)
            findings += _torchscript(infos, roots)
            _scan_members(archive, infos, skip, roots, ctx, findings)
    except LimitExceeded as exc:
        findings.append(Finding("archive", "error", str(exc)))
    except _READ_ERRORS as exc:
        findings.append(Finding("archive", "error", f"unreadable zip archive: {type(exc).__name__}: {exc}"))
    return Outcome("pickle" if roots else "zip", findings)


def _error(message: str) -> Outcome:
    return Outcome("zip", [Finding("archive", "error", message)])


def _check_structure(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], archive_size: int,
                     ctx: ScanContext) -> tuple[list[Finding], set[int]]:
    """Names, links, bombs, overlaps and duplicates; returns the findings and the members (by
    index) not to open."""
    limits = ctx.limits
    findings: list[Finding] = []
    skip: set[int] = set()
    names: set[str] = set()
    for index, info in enumerate(infos):
        findings += check_member_name(info.filename)
        if info.filename in names:
            # zipfile.open(name) takes the last one, other readers the first: both are scanned here
            # (members are opened by entry), but the loader and a reviewer may see different files.
            findings.append(Finding("archive", "suspicious", f"member {shown(info.filename)} appears twice"))
        names.add(info.filename)
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            findings.append(Finding("archive-link", "unsafe", f"member {shown(info.filename)} is a symbolic link",
                                    {"member": info.filename[:200]}))
            skip.add(index)
        bomb = expansion_problem(info.compress_size, info.file_size, limits)
        if bomb:
            findings.append(Finding("zip-bomb", "unsafe", f"member {shown(info.filename)} {bomb}",
                                    {"member": info.filename[:200]}))
            skip.add(index)
    total = sum(info.file_size for info in infos)
    bomb = expansion_problem(archive_size, total, limits)
    if bomb and not any(f.kind == "zip-bomb" for f in findings):
        findings.append(Finding("zip-bomb", "unsafe", f"the archive {bomb}"))
    findings += _overlaps(archive, infos)
    return findings, skip


def _overlaps(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[Finding]:
    """Entries whose data overlap (the "better zip bomb" reuses one compressed run for thousands of
    members, and overlapping entries are how two parsers are made to read different bytes)."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    ends = []
    for info in ordered:
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        try:
            name_len = len(info.orig_filename.encode(encoding))
        except UnicodeEncodeError:
            name_len = len(info.orig_filename.encode("utf-8"))
        # A lower bound of the entry's end (its local extra field is not counted).
        ends.append(info.header_offset + _LOCAL_HEADER_SIZE + name_len + info.compress_size)
    for info, end, following in zip(ordered, ends, ordered[1:]):
        if end > following.header_offset:
            return [Finding("zip-bomb", "unsafe", f"members {shown(info.filename)} and {shown(following.filename)} "
                                                  "overlap in the archive")]
    if ordered and ends[-1] > archive.start_dir:
        return [Finding("zip-bomb", "unsafe", f"member {shown(ordered[-1].filename)} overlaps the central directory")]
    return []


def _pytorch_roots(infos: list[zipfile.ZipInfo]) -> set[str]:
    """Folders holding a PyTorch checkpoint (``<root>data.pkl``, storages under ``<root>data/``)."""
    return {info.filename[: -len("data.pkl")] for info in infos if info.filename.rsplit("/", 1)[-1] == "data.pkl"}


def _torchscript(infos: list[zipfile.ZipInfo], roots: set[str]) -> list[Finding]:
    for root in roots:
        if any(info.filename.startswith(f"{root}code/") for info in infos):
            return [Finding("torchscript", "suspicious", "a TorchScript archive: torch.jit.load runs the "
                                                         "TorchScript code in its code/ folder, which is not analysed")]
    return []


def _scan_members(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], skip: set[int], roots: set[str],
                  ctx: ScanContext, findings: list[Finding]) -> None:
    """Scan each member that may carry code, adding to ``findings`` (kept if a limit stops us)."""
    inner = ctx.inside_archive()
    storages = tuple(f"{root}data/" for root in roots)
    unreadable = 0
    for index, info in enumerate(infos):
        if index in skip or info.is_dir() or info.file_size == 0:
            continue
        if storages and info.filename.startswith(storages):
            continue
        if info.flag_bits & 0x1 or info.compress_type not in _READABLE_COMPRESSION:
            # Encrypted, or compressed with a method zipfile lacks (deflate64, zstd...): unreadable
            # here, and by PyTorch's and NumPy's loaders too. Where the name says pickle, that is
            # an error; anything else is listed.
            basename = info.filename.rsplit("/", 1)[-1].lower()
            if named_like_pickle(basename, member=True):
                findings.append(Finding("archive", "error", f"member {shown(info.filename)} cannot be read "
                                                            "(encrypted or an unsupported compression method)"))
            else:
                unreadable += 1
            continue
        if inner.depth > ctx.limits.max_archive_depth:
            depth = ctx.limits.max_archive_depth
            findings.append(Finding("archive", "error", f"archives nested more than {depth} deep"))
            break
        try:
            with archive.open(info) as member:
                outcome = ctx.scan_member(info.filename, member, info.file_size, inner)
        except LimitExceeded:
            raise
        except _READ_ERRORS as exc:
            outcome = Outcome("zip", [Finding("archive", "error", f"unreadable member: {type(exc).__name__}: {exc}")])
        findings += [in_member(f, info.filename) for f in outcome.findings]
        if inner.budget is not None and inner.budget.remaining == 0:
            raise LimitExceeded(f"{inner.budget.what}: more than the {inner.budget.limit}-byte limit")
    if unreadable:
        findings.append(Finding("archive", "info", f"{unreadable} encrypted or unsupported-compression member(s) "
                                                   "could not be inspected"))
