"""Zip and tar archives (PyTorch checkpoints are zips with a ``data.pkl``; ``.npz`` holds ``.npy``
members): member names that would escape on extraction, links, bombs, and pickles inside."""

from __future__ import annotations

import tarfile
import zipfile
from typing import BinaryIO

from .limits import ScanLimits
from .pickles import looks_like_pickle, scan_pickle
from .results import Finding


def _bad_name(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "a '..' component"
    return None


def _npy_pickle(head: bytes) -> bool:
    """A .npy member whose header declares an object dtype stores its data as a pickle."""
    header = head[:512]
    return header.startswith(b"\x93NUMPY") and (b"'O'" in header or b"'|O'" in header)


def scan_zip(stream: BinaryIO, limits: ScanLimits) -> list[Finding]:
    findings: list[Finding] = []
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
            if len(members) > limits.max_archive_members:
                return [Finding("archive", "error", f"{len(members)} members, more than the "
                                                     f"{limits.max_archive_members} this scanner opens")]
            total = 0
            for info in members:
                problem = _bad_name(info.filename)
                if problem:
                    findings.append(Finding("zip-slip", "unsafe", f"member {info.filename!r} has {problem}"))
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    findings.append(Finding("archive-link", "unsafe", f"member {info.filename!r} is a symbolic link"))
                if info.compress_size and info.file_size / info.compress_size > limits.max_compression_ratio \
                        and info.file_size > 1 << 20:
                    findings.append(Finding("zip-bomb", "unsafe", f"member {info.filename!r} expands "
                                                                  f"{info.file_size // info.compress_size}x"))
                    continue
                name = info.filename.lower()
                if info.is_dir() or not (name.endswith((".pkl", ".pickle", ".npy")) or "data.pkl" in name):
                    continue
                total += info.file_size
                if total > limits.max_archive_bytes_read:
                    findings.append(Finding("archive", "error", "pickled members larger than the scan limit"))
                    break
                with archive.open(info) as member:
                    data = member.read(limits.max_pickle_bytes + 1)
                if len(data) > limits.max_pickle_bytes:
                    findings.append(Finding("pickle", "error", f"{info.filename}: larger than the "
                                                               f"{limits.max_pickle_bytes}-byte pickle limit"))
                elif name.endswith(".npy"):
                    if _npy_pickle(data[:512]):
                        end = data.find(b"\n", 10)
                        findings += scan_pickle(data[end + 1:], f"{info.filename}: ")
                elif looks_like_pickle(data[:2]):
                    findings += scan_pickle(data, f"{info.filename}: ")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        return [Finding("archive", "error", f"unreadable zip archive: {exc}")]
    return findings


def scan_tar(stream: BinaryIO, limits: ScanLimits) -> list[Finding]:
    findings: list[Finding] = []
    try:
        with tarfile.open(fileobj=stream, mode="r:*") as archive:
            for count, info in enumerate(archive):
                if count >= limits.max_archive_members:
                    return findings + [Finding("archive", "error", "more members than this scanner opens")]
                problem = _bad_name(info.name)
                if problem:
                    findings.append(Finding("zip-slip", "unsafe", f"member {info.name!r} has {problem}"))
                if info.issym() or info.islnk():
                    findings.append(Finding("archive-link", "unsafe", f"member {info.name!r} is a link"))
                if info.isdev():
                    findings.append(Finding("archive-device", "unsafe", f"member {info.name!r} is a device file"))
    except (tarfile.TarError, OSError, EOFError) as exc:
        return [Finding("archive", "error", f"unreadable tar archive: {exc}")]
    return findings
