"""Tar archives (plain, or inside gzip/bz2/xz: the dispatcher decompresses and hands the tar
stream here). Member rules are the zip ones; regular members are handed back to the dispatcher
(a pre-2017 PyTorch checkpoint is a tar whose ``pickle`` member ``torch.load`` unpickles).

A plain tar on a seekable stream is walked by seeking past member data; a decompressed one must be
read through to reach each header, so the declared sizes are checked against
``max_tar_expanded_bytes`` and against the compressed size (a bomb) before that happens (and the
bytes really decompressed are metered by the dispatcher).

Metadata counts too: ``tarfile`` reads a pax or GNU long-name header whole and keeps every member
it has seen. Each such header is charged, before it is read, against ``max_archive_metadata_bytes``
(with member names and link targets), and members are not kept once scanned — a 1.2 MB tar.gz of
long names used to take the server to 1.3 GB."""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from .archive_rules import check_member_name, expansion_problem, in_member, shown
from .bounded_io import LimitExceeded
from .results import Finding
from .scan_context import Outcome, ScanContext

_READ_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError)


_METADATA_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                   tarfile.SOLARIS_XHDTYPE)


class _MetadataMeter:
    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def charge(self, n: int, what: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise LimitExceeded(f"tar metadata ({what}): more than the {self.limit}-byte limit")


def _bounded_tarinfo(meter: _MetadataMeter) -> type[tarfile.TarInfo]:
    class BoundedTarInfo(tarfile.TarInfo):
        def _proc_member(self, archive):
            if self.type in _METADATA_TYPES:  # read whole by tarfile: charged before it is read
                meter.charge(self.size, "pax and long-name headers")
            return super()._proc_member(archive)

    return BoundedTarInfo


def scan_tar(stream: BinaryIO, ctx: ScanContext, *, seekable: bool, compressed_size: int | None) -> Outcome:
    """``compressed_size``: the size of the compressed file the tar stream comes out of, or None
    for a plain tar."""
    limits = ctx.limits
    findings: list[Finding] = []
    inner = ctx.inside_archive()
    expanded = 0
    meter = _MetadataMeter(limits.max_archive_metadata_bytes)
    try:
        with tarfile.open(fileobj=stream, mode="r:" if seekable else "r|",
                          tarinfo=_bounded_tarinfo(meter)) as archive:
            count = -1
            while (info := archive.next()) is not None:
                archive.members.clear()  # tarfile keeps every member it read; a scan needs none back
                count += 1
                if count >= limits.max_archive_members:
                    findings.append(_error(f"more than the {limits.max_archive_members} members this scanner lists"))
                    break
                meter.charge(len(info.name) + len(info.linkname), "member names")
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
