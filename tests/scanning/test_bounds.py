"""Hostile inputs cost the scanner bounded memory and time (issue 9 findings 6, 16 and 17): an
opcode flood, memo floods, metadata-heavy archives, lying zip directories, huge headers, and
compressed streams read from their first byte exactly once."""

from __future__ import annotations

import bz2
import gzip
import io
import pickle
import struct
import tarfile
import tracemalloc
import zlib

import pytest

from aicommons.scanning import ScanLimits

from .samples import RunsAShell, gguf_bytes, kinds, scan, zip_bytes


def peak_mib(fn) -> tuple[object, float]:
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# ---- finding 6: a pickle opcode flood keeps one record per distinct import -------------------------


def test_an_opcode_flood_is_judged_in_constant_memory():
    flood = b"\x80\x02" + b"cos\nsystem\n" * 200_000 + b"."  # 2.2 MB of one GLOBAL repeated
    result, peak = peak_mib(lambda: scan("flood.pkl", flood))
    assert result.status == "unsafe"
    assert [f.message for f in result.findings if f.kind == "pickle-import"] == [
        "imports os.system: os can run code or reach files, processes or the network"]
    assert peak < 12, f"{peak:.1f} MiB"  # a record per opcode took ~55 MiB here


def test_a_memo_flood_stays_bounded():
    # One string memoized, then fetched and memoized again 300,000 times: the memo and the stack
    # stay bounded, and the pickle is still read through (POP keeps the stack small).
    body = b"\x8c\x02os\x94" + b"h\x000\x94" * 300_000  # BINGET 0, POP, MEMOIZE
    flood = b"\x80\x04" + body + b"\x8c\x06system\x93N."
    result, peak = peak_mib(lambda: scan("memo.pkl", flood))
    assert result.status == "unsafe", result.to_json()
    assert peak < 12, f"{peak:.1f} MiB"  # ~20 MiB when every memo entry was kept


def test_a_stack_flood_ends_as_an_error_not_a_huge_stack():
    flood = b"\x80\x02" + b"N" * 1_200_000 + b"."  # NONE pushed 1.2 M times
    result = scan("stack.pkl", flood)
    assert result.status == "error"
    assert any("stack deeper than" in f.message for f in result.findings), result.to_json()


# ---- finding 17: compressed streams parsed from their first byte, exactly once --------------------


def padded_payload() -> bytes:
    # A harmless list padded past 512 bytes, then a payload: a loader runs it all.
    return pickle.dumps(["x" * 600], protocol=2)[:-1] + b"0" + pickle.dumps(RunsAShell(), protocol=2)[2:]


def test_a_payload_padded_past_the_first_512_bytes_of_a_gzip_is_found():
    data = padded_payload()
    assert scan("model.pkl", data).status == "unsafe"
    assert scan("model.pkl.gz", gzip.compress(data)).status == "unsafe"
    assert scan("model.pkl.bz2", bz2.compress(data)).status == "unsafe"
    assert scan("bundle.zip", zip_bytes([("inner/model.pkl.gz", gzip.compress(data))])).status == "unsafe"


def test_a_benign_pickle_over_512_bytes_in_a_gzip_is_safe_not_garbled():
    data = pickle.dumps({"weights": list(range(2000))}, protocol=4)
    assert len(data) > 512
    result = scan("state.pkl.gz", gzip.compress(data))
    assert result.status == "safe", result.to_json()


@pytest.mark.parametrize("name", ["model.pkl.z", "model.z", "weights.dat", "model"])
def test_raw_zlib_streams_are_scanned_whatever_their_name(name):
    # joblib.dump(obj, "model.pkl.z") writes a raw zlib stream, and joblib.load opens it by content.
    assert scan(name, zlib.compress(padded_payload())).status == "unsafe"
    assert scan(name, zlib.compress(pickle.dumps([1, 2, 3]))).status in ("safe", "skipped")


def test_text_starting_like_a_zlib_header_is_still_text():
    assert scan("notes.txt", b"x is a letter, and so on\n").status == "safe"


def test_gguf_and_npy_inside_gzip_are_read_intact():
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}, RunsAShell()], dtype=object), allow_pickle=True)
    assert scan("arr.npy.gz", gzip.compress(buffer.getvalue())).status == "unsafe"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(1000, dtype=np.float32))
    assert scan("arr.npy.gz", gzip.compress(buffer.getvalue())).status == "safe"
    template = "{{ ''.__class__.__mro__[1].__subclasses__() }}" + " " * 600
    model = gguf_bytes([("general.architecture", 8, "llama"), ("tokenizer.chat_template", 8, template)])
    result = scan("model.gguf.gz", gzip.compress(model))
    assert result.status == "unsafe", result.to_json()
    assert scan("model.gguf.gz", gzip.compress(gguf_bytes([("general.architecture", 8, "llama")]))).status == "safe"


def test_a_compressed_pickle_bomb_is_stopped_as_unsafe():
    bomb = gzip.compress(b"\x80\x02" + b"N0" * (10 << 20) + b"N.")  # 20 MiB of NONE, POP from ~20 KB
    # The real bytes coming out are counted (a pickle has no declared size), checked from 64 KiB here.
    result = scan("model.pkl.gz", bomb, ScanLimits(compression_check_min_bytes=64 << 10, max_compression_ratio=10))
    assert result.status == "unsafe" and "zip-bomb" in kinds(result), result.to_json()


# ---- finding 16: archive metadata and real directory entries count ---------------------------------


def long_name_tar(members: int, name_bytes: int, mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.PAX_FORMAT) as archive:
        for i in range(members):
            info = tarfile.TarInfo(f"{i:06d}" + "n" * name_bytes)  # a pax header carries the long name
            archive.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


def test_tar_long_names_are_not_all_kept_in_memory():
    data = long_name_tar(120, 256 * 1024)  # 30 MiB of names in a ~100 KB tar.gz
    assert len(data) < 1 << 20
    result, peak = peak_mib(lambda: scan("names.tar.gz", data, ScanLimits(compression_check_min_bytes=1 << 40)))
    assert result.status == "safe", result.to_json()
    assert peak < 12, f"{peak:.1f} MiB"  # tarfile kept every member: ~30 MiB


def test_tar_metadata_past_the_limit_is_an_error():
    data = long_name_tar(40, 256 * 1024)
    limits = ScanLimits(max_archive_metadata_bytes=4 << 20, compression_check_min_bytes=1 << 40)
    for name, payload in [("names.tar.gz", data), ("names.tar", gzip.decompress(data))]:
        result = scan(name, payload, limits)
        assert result.status == "error", result.to_json()
        assert any("tar metadata" in f.message for f in result.findings), result.to_json()


def test_metadata_bytes_count_against_the_decompression_bomb_ratio():
    # The same names, default limits: what comes out of the gzip is metadata, and it is counted.
    result = scan("names.tar.gz", long_name_tar(120, 256 * 1024))
    assert result.status == "unsafe" and "zip-bomb" in kinds(result), result.to_json()


def lying_zip(entries: int) -> bytes:
    """One real member, a central directory of ``entries`` entries, an end record claiming 1."""
    name, crc = b"a.txt", zlib.crc32(b"x")
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, 1, 1, len(name), 0) + name + b"x"
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, 1, 1, len(name), 0, 0, 0, 0, 0, 0)
    directory = (central + name) * entries
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(local), 0)
    return local + directory + end


def test_a_zip_end_record_lying_about_its_entries_is_stopped_before_zipfile_reads_them():
    data = lying_zip(60_000)
    limits = ScanLimits(max_archive_members=1000)
    result, peak = peak_mib(lambda: scan("lying.zip", data, limits))
    assert result.status == "error", result.to_json()
    assert any("the end record claims 1" in f.message for f in result.findings), result.to_json()
    assert peak < 8, f"{peak:.1f} MiB"  # zipfile built 60,000 ZipInfo first: 30+ MiB
    assert scan("honest.zip", lying_zip(1)).status == "safe"


def safetensors_with_header(body: bytes) -> bytes:
    return struct.pack("<Q", len(body)) + body + b"\x00"


def test_a_huge_safetensors_header_of_tiny_values_is_refused_before_parsing():
    # 40 MB of one-element shapes: parsed, a Python object per byte pair (~1 GB at 99 MB).
    body = b'{"t":{"dtype":"U8","shape":[' + b"1," * 20_000_000 + b'1],"data_offsets":[0,1]}}'
    result, peak = peak_mib(lambda: scan("model.safetensors", safetensors_with_header(body)))
    assert result.status == "error", result.to_json()
    assert "JSON values" in result.findings[0].message
    assert peak < 100, f"{peak:.1f} MiB"  # the header itself is read (40 MB); parsing it took 200+ MiB more


def test_a_large_real_safetensors_header_is_still_checked():
    entries = b",".join(b'"layer.%06d.weight":{"dtype":"F16","shape":[1,1],"data_offsets":[%d,%d]}' % (i, 2 * i, 2 * i + 2)
                        for i in range(100_000))  # 100,000 tensors: a 7 MB header
    data = safetensors_with_header(b"{" + entries + b"}")[:-1] + b"\x00\x00" * 100_000
    result = scan("model.safetensors", data)
    assert result.status == "safe", result.to_json()["findings"][:2]


def test_deep_nesting_ends_as_an_error_not_a_crash():
    marks = scan("marks.pkl", b"\x80\x02" + b"(" * 1_100_000 + b".")  # MARK 1.1 M times
    assert marks.status == "error" and "stack deeper than" in marks.findings[0].message
    template = b'{"chat_template": "{{' + b"(" * 50_000 + b"1" + b")" * 50_000 + b'}}"}'
    assert scan("tokenizer_config.json", template).status == "error"
