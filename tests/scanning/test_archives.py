"""Zip and tar archives: escaping names, links, bombs, members that carry code, bounds."""

from __future__ import annotations

import gzip
import io
import pickle
import stat
import struct
import tarfile
import zipfile

import pytest
import torch

from aicommons.scanning import ScanLimits

from .samples import RunsAShell, imports, kinds, scan, tar_bytes, tar_entry, zip_bytes

EVIL = pickle.dumps(RunsAShell(), protocol=4)


# ---- zip -----------------------------------------------------------------------------------------------


def test_a_plain_zip_is_safe():
    result = scan("data.zip", zip_bytes([("data/a.txt", b"hello"), ("data/b.json", b"{}")]))
    assert result.status == "safe" and result.scanner == "zip"


@pytest.mark.parametrize("name, severity", [
    ("../../etc/cron.d/x", "unsafe"),
    ("ok/../../escape", "unsafe"),
    ("/etc/passwd", "unsafe"),
    ("C:/Windows/evil.dll", "unsafe"),
    ("..\\..\\evil", "unsafe"),
    ("folder\\file.txt", "suspicious"),  # a folder only on Windows
])
def test_zip_slip_names(name, severity):
    result = scan("a.zip", zip_bytes([(name, b"x")]))
    assert result.status == severity
    assert "zip-slip" in kinds(result)


def test_a_symlink_member_is_unsafe():
    link = zipfile.ZipInfo("weights.bin")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    result = scan("a.zip", zip_bytes([(link, b"/etc/passwd")]))
    assert result.status == "unsafe" and "archive-link" in kinds(result)


def test_zip_bombs_by_member_and_by_archive():
    member = scan("a.zip", zip_bytes([("zeros", b"\0" * (20 << 20))], zipfile.ZIP_DEFLATED))
    assert member.status == "unsafe" and "zip-bomb" in kinds(member)
    # many members each under the per-member threshold: the archive as a whole expands too much
    many = scan("a.zip", zip_bytes([(f"z{i}", b"\0" * (6 << 20)) for i in range(3)], zipfile.ZIP_DEFLATED))
    assert many.status == "unsafe" and "zip-bomb" in kinds(many)
    # the same data stored, or under the threshold, is fine
    assert scan("a.zip", zip_bytes([("zeros", b"\0" * (1 << 20))], zipfile.ZIP_DEFLATED)).status == "safe"


def test_overlapping_entries_are_unsafe():
    data = bytearray(zip_bytes([("a.txt", b"first"), ("b.txt", b"second")]))
    second = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, second + 42, 0)  # b.txt's central entry points at a.txt's data
    result = scan("a.zip", bytes(data))
    assert result.status == "unsafe" and "zip-bomb" in kinds(result)


def test_a_duplicate_member_name_is_suspicious_and_both_copies_are_scanned():
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = zip_bytes([("model.pkl", pickle.dumps([1])), ("model.pkl", EVIL)])
    result = scan("a.zip", data)
    assert result.status == "unsafe"
    assert any(f.severity == "suspicious" and "twice" in f.message for f in result.findings)


def test_pickles_inside_zips_by_name_and_by_content():
    assert scan("a.zip", zip_bytes([("stuff/model.pkl", EVIL)])).status == "unsafe"
    assert scan("a.zip", zip_bytes([("stuff/blob", EVIL)])).status == "unsafe"  # no extension: sniffed
    assert scan("a.zip", zip_bytes([("stuff/model.pkl", pickle.dumps({"a": 1}))])).status == "safe"
    assert scan("a.zip", zip_bytes([("stuff/model.pkl", b"\x80\x04garbage")])).status == "error"


def test_archives_inside_archives():
    inner = zip_bytes([("inner/model.pkl", EVIL)])
    middle = zip_bytes([("inner.zip", inner)], zipfile.ZIP_DEFLATED)
    result = scan("outer.zip", zip_bytes([("middle.zip", middle)]))
    assert result.status == "unsafe"
    (finding,) = [f for f in result.findings if f.kind == "pickle-import"]
    assert finding.detail["member"] == "middle.zip/inner.zip/inner/model.pkl"
    tgz = tar_bytes([(tar_entry("evil.pkl"), EVIL)], mode="w:gz")
    assert scan("bundle.zip", zip_bytes([("nested.tar.gz", tgz)])).status == "unsafe"


def test_nesting_deeper_than_the_limit_is_an_error():
    data = zip_bytes([("model.pkl", pickle.dumps([1]))])
    for level in range(4):
        data = zip_bytes([(f"level{level}.zip", data)])
    assert scan("deep.zip", data).status == "error"
    assert scan("deep.zip", data, ScanLimits(max_archive_depth=6)).status == "safe"


def test_zip_limits():
    members = [(f"f{i}.txt", b"x") for i in range(10)]
    assert scan("a.zip", zip_bytes(members), ScanLimits(max_archive_members=5)).status == "error"
    assert scan("a.zip", zip_bytes(members), ScanLimits(max_header_bytes=100)).status == "error"
    pickles = zip_bytes([(f"p{i}.pkl", pickle.dumps(list(range(2000)))) for i in range(5)])
    result = scan("a.zip", pickles, ScanLimits(max_archive_inspected_bytes=10_000))
    assert result.status == "error"
    assert scan("a.zip", pickles).status == "safe"


def test_an_unsafe_member_is_kept_when_a_later_limit_stops_the_scan():
    data = zip_bytes([("a/evil.pkl", EVIL)] + [(f"p{i}.pkl", pickle.dumps(list(range(2000)))) for i in range(5)])
    result = scan("a.zip", data, ScanLimits(max_archive_inspected_bytes=10_000))
    assert result.status == "unsafe"
    assert "archive" in kinds(result)  # the limit, as an error finding


def test_members_that_cannot_be_decompressed():
    def deflate64(name: str) -> bytes:
        data = bytearray(zip_bytes([(name, b"payload"), ("readme.txt", b"hi")]))
        struct.pack_into("<H", data, 8, 9)  # local header: compression method 9 (deflate64)
        struct.pack_into("<H", data, data.find(b"PK\x01\x02") + 10, 9)  # and its central entry
        return bytes(data)

    listed = scan("a.zip", deflate64("image.png"))
    assert listed.status == "safe" and "could not be inspected" in listed.findings[0].message
    assert scan("a.zip", deflate64("model.pkl")).status == "error"


def test_a_broken_zip_is_an_error():
    assert scan("a.zip", b"PK\x03\x04 not really a zip").status == "error"
    truncated = zip_bytes([("model.pkl", EVIL)])[:-30]
    assert scan("a.zip", truncated).status == "error"


def test_torchscript_archives_are_flagged():
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buffer)
    result = scan("model.pt", buffer.getvalue())
    assert "torchscript" in kinds(result)
    assert result.status in ("suspicious", "unsafe")


# ---- tar ---------------------------------------------------------------------------------------------


def test_tar_escapes_links_and_devices():
    data = tar_bytes([
        (tar_entry("../escape"), b""),
        (tar_entry("/abs/path"), b"x"),
        (tar_entry("link", tarfile.SYMTYPE, "/etc/passwd"), None),
        (tar_entry("hard", tarfile.LNKTYPE, "../../outside"), None),
        (tar_entry("dev", tarfile.CHRTYPE), None),
    ])
    result = scan("data.tar", data)
    assert result.status == "unsafe"
    assert {"zip-slip", "archive-link", "archive-device"} <= kinds(result)
    assert len([f for f in result.findings if f.kind == "archive-link"]) == 2


def test_pickles_in_tars_plain_and_compressed():
    plain = tar_bytes([(tar_entry("model/weights.pkl"), EVIL), (tar_entry("README.md"), b"hi")])
    assert scan("model.tar", plain).status == "unsafe"
    assert scan("model.tar.gz", tar_bytes([(tar_entry("weights.pkl"), EVIL)], mode="w:gz")).status == "unsafe"
    assert scan("model.tar.xz", tar_bytes([(tar_entry("weights.pkl"), EVIL)], mode="w:xz")).status == "unsafe"
    assert scan("model.tgz", tar_bytes([(tar_entry("ok.pkl"), pickle.dumps([1]))], mode="w:bz2")).status == "safe"


def test_a_legacy_torch_tar_pickle_member():
    # torch.load of a pre-2017 checkpoint unpickles the tar member named "pickle"
    data = tar_bytes([(tar_entry("sys_info"), pickle.dumps({"protocol_version": 1000})), (tar_entry("pickle"), EVIL)])
    result = scan("old.pt", data)
    assert result.status == "unsafe"
    assert imports(result) == {"posix.system": "unsafe"}


def test_a_tar_gz_bomb_is_stopped_before_it_is_decompressed():
    bomb = tar_bytes([(tar_entry("zeros"), b"\0" * (20 << 20))], mode="w:gz")
    result = scan("data.tar.gz", bomb)
    assert result.status == "unsafe" and "zip-bomb" in kinds(result)
    walk_limit = ScanLimits(max_tar_expanded_bytes=1 << 20, max_compression_ratio=10_000)
    assert scan("data.tar.gz", bomb, walk_limit).status == "error"


def test_a_gzip_that_is_not_gzip_is_an_error():
    assert scan("weights.pkl.gz", b"\x1f\x8b" + b"\x00" * 40).status == "error"
    assert scan("data.tar", b"definitely not a tar archive" * 40).status == "error"


# ---- formats that cannot be opened -----------------------------------------------------------------------


@pytest.mark.parametrize("name, data", [
    ("model.7z", b"7z\xbc\xaf\x27\x1c" + b"\0" * 100),
    ("weights.bin", b"7z\xbc\xaf\x27\x1c" + b"\0" * 100),  # content decides
    ("model.rar", b"Rar!\x1a\x07\x01\x00" + b"\0" * 100),
    ("model.7z", b"no magic at all"),
    ("data.tar.zst", b"\x28\xb5\x2f\xfd" + b"\0" * 100),
])
def test_7z_and_rar_are_skipped_not_called_safe(name, data):
    result = scan(name, data)
    assert result.status == "skipped"
    assert result.findings[0].severity == "info" and "not inspected" in result.findings[0].message


def test_a_compressed_single_file_that_is_not_a_pickle_is_safe():
    assert scan("notes.txt.gz", gzip.compress(b"just some text\n")).status == "safe"
