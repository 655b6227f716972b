"""safetensors headers: a file written by the safetensors library passes; every rule of spec A4
broken by hand is an error naming the tensor."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save

from aicommons.scanning import ScanLimits

from .samples import scan


def with_header(header: dict | str | bytes, data_len: int, *, n: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else (header if isinstance(header, str) else json.dumps(header)).encode()
    return struct.pack("<Q", len(raw) if n is None else n) + raw + b"\0" * data_len


def f32(shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}


def test_a_file_written_by_the_safetensors_library_is_safe_and_counted():
    data = save({"a": np.zeros((2, 3), dtype=np.float32), "b": np.ones(4, dtype=np.int64),
                 "c": np.zeros(0, dtype=np.float16)}, metadata={"format": "pt"})
    result = scan("model.safetensors", data)
    assert result.status == "safe" and result.scanner == "safetensors"
    (counted,) = result.findings
    assert counted.severity == "info"
    assert counted.detail == {"parameters": {"F32": 6, "I64": 4, "F16": 0}, "total": 10}


def test_safetensors_content_is_recognised_without_the_name():
    data = save({"a": np.zeros(3, dtype=np.float32)})
    assert scan("weights.bin", data).scanner == "safetensors"
    broken = bytearray(data)
    broken[-1:] = b""  # one byte short: the tensor runs past the buffer
    assert scan("weights.bin", bytes(broken)).status == "error"


def test_sub_byte_float_formats():
    packed = with_header({"q": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}, 2)
    assert scan("m.safetensors", packed).status == "safe"
    odd = with_header({"q": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, 2)
    assert scan("m.safetensors", odd).status == "error"


@pytest.mark.parametrize("label, data, tensor", [
    ("header length over the limit", struct.pack("<Q", 200_000_000) + b"{}" + b"\0" * 10, None),
    ("header length beyond the file", struct.pack("<Q", 10 ** 6) + b"{}", None),
    ("shorter than 8 bytes", b"\x02\x00\x00", None),
    ("not JSON", with_header("{x}", 0), None),
    ("not UTF-8", with_header(b"{\"\xff\": 1}", 0), None),
    ("not an object", with_header("[1, 2]", 0), None),
    ("does not start with {", with_header(' {"a": 1}', 0), None),
    ("duplicate keys", with_header('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                                   '"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 4), None),
    ("overlapping offsets", with_header({"a": f32([2], 0, 8), "b": f32([2], 4, 12)}, 12), "b"),
    ("wrong size for shape", with_header({"a": f32([3], 0, 8)}, 8), "a"),
    ("unknown dtype", with_header({"a": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, 8), "a"),
    ("trailing gap", with_header({"a": f32([2], 0, 8)}, 16), None),
    ("gap between tensors", with_header({"a": f32([2], 0, 8), "b": f32([2], 12, 20)}, 20), "b"),
    ("begin after end", with_header({"a": f32([0], 8, 4)}, 8), "a"),
    ("past the buffer", with_header({"a": f32([4], 0, 16)}, 8), "a"),
    ("negative shape", with_header({"a": f32([-2], 0, 8)}, 8), "a"),
    ("float offsets", with_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8.0]}}, 8), "a"),
    ("entry not an object", with_header({"a": [1, 2]}, 0), "a"),
    ("metadata not str to str", with_header({"__metadata__": {"k": 1}}, 0), None),
    ("deeply nested JSON", with_header("{\"a\": " + "[" * 100_000 + "]" * 100_000 + "}", 0), None),
])
def test_malformed_headers_are_errors(label, data, tensor):
    result = scan("model.safetensors", data)
    assert result.status == "error", label
    (finding,) = result.findings
    assert finding.kind == "safetensors-header"
    if tensor is not None:
        assert finding.detail == {"tensor": tensor} and repr(tensor) in finding.message


def test_the_header_limit_is_configurable():
    data = save({"a": np.zeros(3, dtype=np.float32)})
    assert scan("model.safetensors", data, ScanLimits(max_header_bytes=16)).status == "error"
