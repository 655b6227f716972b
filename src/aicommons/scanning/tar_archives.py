"""Tar archives (plain, or inside gzip/bz2/xz: the dispatcher decompresses and hands the tar
stream here). Member rules are the zip ones; regular members are handed back to the dispatcher
(a pre-2017 PyTorch checkpoint is a tar whose ``pickle`` member ``torch.load`` unpickles).

A plain tar on a seekable stream is walked by seeking past member data; a decompressed one must be
read through to reach each header, so the declared sizes are checked against
``max_tar_expanded_bytes`` and against the compressed size (a bomb) before that happens."""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from .archive_rules import check_member_name, expansion_problem, in_member, shown
from .bounded_io import LimitExceeded
from .results import Finding
from .scan_context import Outcome, ScanContext

_READ_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError)


def scan_tar(stream: BinaryIO, ctx: ScanContext, *, seekable: bool, compressed_size: int | None) -> Outcome:
    """``compressed_size``: the size of the compressed file the tar stream comes out of, or None
    for a plain tar."""
    limits = ctx.limits
    findings: list[Finding] = []
    inner = ctx.inside_archive()
    expanded = 0
    try:
        with tarfile.open(fileobj=stream, mode="r:" if seekable else "r|") as archive:
            for count, info in enumerate(archive):
                if count >= limits.max_archive_members:
                    findings.append(_error(f"more than the {limits.max_archive_members} members this scanner lists"))
                    break
                findings += _check_member(info)
                expanded += 512 + info.size
                if compressed_size is not None:
                    bomb = expansion_problem(compressed_size, expanded, limits)
                    if bomb:
                        findings.append(Finding("zip-bomb", "unsafe", f"the archive {bomb}"))
                        break
                    if expanded > limits.max_tar_expanded_bytes:
                        findings.append(_error(f"expands past the {limits.max_tar_expanded_bytes}-byte limit "
                                               "this scanner decompresses"))
                        break
                if not info.isreg() or info.size == 0:
                    continue
                if inner.depth > limits.max_archive_depth:
                    findings.append(_error(f"archives nested more than {limits.max_archive_depth} deep"))
                    break
                member = archive.extractfile(info)
                if member is None:
                    continue
                with member:
                    outcome = ctx.scan_member(info.name, member, info.size, inner)
                findings += [in_member(f, info.name) for f in outcome.findings]
                if inner.budget is not None and inner.budget.remaining == 0:
                    findings.append(_error(f"{inner.budget.what}: more than the {inner.budget.limit}-byte limit"))
                    break
    except LimitExceeded as exc:
        findings.append(_error(str(exc)))
    except _READ_ERRORS as exc:
        findings.append(_error(f"unreadable tar archive: {type(exc).__name__}: {exc}"))
    return Outcome("tar", findings)


def _error(message: str) -> Finding:
    return Finding("archive", "error", message)


def _check_member(info: tarfile.TarInfo) -> list[Finding]:
    findings = check_member_name(info.name)
    if info.issym() or info.islnk():
        kind = "symbolic" if info.issym() else "hard"
        findings.append(Finding("archive-link", "unsafe", f"member {shown(info.name)} is a {kind} link to "
                                                          f"{shown(info.linkname)}", {"member": info.name[:200]}))
    elif info.isdev():
        findings.append(Finding("archive-device", "unsafe", f"member {shown(info.name)} is a device file or FIFO",
                                {"member": info.name[:200]}))
    return findings
