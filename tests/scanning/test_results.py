"""The result model, and scan_file's promise: it never raises and never calls unreadable safe."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys

import pytest

from aicommons.scanning import FileScan, Finding, scan_file
from aicommons.scanning.bounded_io import BoundedReader, LimitExceeded
from aicommons.scanning.results import cap_findings

from .samples import RunsAShell


def test_the_status_is_the_worst_finding_and_error_counts_as_an_issue():
    info = Finding("x", "info", "fyi")
    cases = [([], "safe"), ([info], "safe"), ([info, Finding("x", "suspicious", "s")], "suspicious"),
             ([Finding("x", "suspicious", "s"), Finding("x", "error", "e")], "error"),
             ([Finding("x", "error", "e"), Finding("x", "unsafe", "u")], "unsafe")]
    for findings, status in cases:
        scan = FileScan.from_findings("f", "test", findings)
        assert scan.status == status
        assert scan.is_issue == (status in ("suspicious", "error", "unsafe"))
    assert FileScan.from_findings("f", "7z", [info], skipped=True).status == "skipped"
    assert FileScan.from_findings("f", "7z", [Finding("x", "error", "e")], skipped=True).status == "error"


def test_a_status_that_contradicts_the_findings_is_refused():
    with pytest.raises(ValueError):
        FileScan("f", "safe", [Finding("x", "unsafe", "u")], "pickle")
    with pytest.raises(ValueError):
        Finding("x", "bad-severity", "m")


def test_to_json_has_the_stored_shape():
    scan = FileScan.from_findings("model.pkl", "pickle", [
        Finding("pickle-import", "unsafe", "imports posix.system", {"module": "posix", "name": "system"}),
        Finding("note", "info", "plain")])
    assert scan.to_json() == {"status": "unsafe", "scanner": "pickle", "findings": [
        {"kind": "pickle-import", "severity": "unsafe", "message": "imports posix.system",
         "detail": {"module": "posix", "name": "system"}},
        {"kind": "note", "severity": "info", "message": "plain"}]}


def test_findings_are_capped_per_kind_without_changing_the_status():
    findings = [Finding("zip-slip", "unsafe", f"m{i}") for i in range(100)] + [Finding("secret", "suspicious", "s")]
    capped = cap_findings(findings, per_kind=20)
    assert len(capped) == 22
    assert capped[-1].detail == {"omitted": 80} and capped[-1].severity == "unsafe"


def test_scan_file_never_raises():
    def broken_open():
        raise OSError("storage is down")

    result = scan_file("model.pkl", broken_open, 10)
    assert result.status == "error" and "storage is down" in result.findings[0].message

    class FailsMidway(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise OSError("connection reset")
            return super().read(n)

    data = pickle.dumps(RunsAShell(), protocol=4)
    assert scan_file("model.pkl", lambda: FailsMidway(data + b"\0" * 1000), len(data) + 1000).status == "error"


def test_the_bounded_reader_never_reads_past_its_limit():
    reader = BoundedReader(io.BytesIO(b"a" * 100), 10, "test")
    assert reader.read(4) == b"aaaa"
    with pytest.raises(LimitExceeded):
        reader.read(1 << 40)  # refused in bounded chunks, not allocated
    short = BoundedReader(io.BytesIO(b"abc"), 10, "test")
    assert short.read(1 << 40) == b""  # the stream ends first: the caller sees a truncation
    lines = BoundedReader(io.BytesIO(b"x" * 50 + b"\n"), 10, "test")
    with pytest.raises(LimitExceeded):
        lines.readline()


def test_the_scan_command(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(RunsAShell(), protocol=2))
    (tmp_path / "ok.json").write_text("{}")
    run = subprocess.run([sys.executable, "-m", "aicommons.cli.main", "scan", str(tmp_path / "ok.json"),
                          str(tmp_path / "evil.pkl")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert f"safe\t{tmp_path / 'ok.json'}" in run.stdout and "unsafe: imports posix.system" in run.stdout
