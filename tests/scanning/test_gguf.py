"""GGUF headers written by hand with struct: valid ones parse (every value type, arrays, tensor
infos), malformed ones are errors, and a chat template in the metadata is judged."""

from __future__ import annotations

import struct

import pytest

from aicommons.scanning import ScanLimits

from .samples import ARRAY, LLAMA_TEMPLATE, SSTI, STRING, gguf_bytes, gguf_string, kinds, scan

ALL_TYPES = [
    ("general.architecture", STRING, "llama"),
    ("general.name", STRING, "tiny"),
    ("t.u8", 0, 7), ("t.i8", 1, -7), ("t.u16", 2, 700), ("t.i16", 3, -700), ("t.u32", 4, 70_000),
    ("t.i32", 5, -70_000), ("t.f32", 6, 0.5), ("t.bool", 7, True), ("t.u64", 10, 1 << 40), ("t.i64", 11, -(1 << 40)),
    ("t.f64", 12, 0.25),
    ("tokenizer.ggml.tokens", ARRAY, (STRING, ["<s>", "</s>", "hello"])),
    ("tokenizer.ggml.scores", ARRAY, (6, [0.0, -1.0, -2.0])),
    ("general.alignment", 4, 32),
]
TENSORS = [("token_embd.weight", [4, 3], 0, 0), ("output.weight", [4], 0, 64)]


def test_a_valid_gguf_with_every_value_type_and_tensor_infos():
    data = gguf_bytes(ALL_TYPES, TENSORS, data=b"\0" * 96)
    result = scan("model.gguf", data)
    assert result.status == "safe", result.to_json()
    (summary,) = result.findings
    assert summary.detail == {"version": 3, "tensorCount": 2, "kvCount": len(ALL_TYPES), "architecture": "llama"}
    assert scan("model.gguf", gguf_bytes(ALL_TYPES, TENSORS, version=2, data=b"\0" * 96)).status == "safe"


def test_chat_templates_in_gguf_metadata():
    benign = gguf_bytes([("general.architecture", STRING, "llama"),
                         ("tokenizer.chat_template", STRING, LLAMA_TEMPLATE)])
    assert scan("m.gguf", benign).status == "safe"
    evil = scan("m.gguf", gguf_bytes([("tokenizer.chat_template", STRING, SSTI)]))
    assert evil.status == "unsafe" and "chat-template" in kinds(evil)
    assert any("GGUF tokenizer.chat_template" in f.message for f in evil.findings)
    tool_use = "{{ cycler.__init__.__globals__ }}"
    named = scan("m.gguf", gguf_bytes([("tokenizer.chat_template.tool_use", STRING, tool_use)]))
    assert named.status == "unsafe"
    renamed = scan("model.bin", gguf_bytes([("tokenizer.chat_template", STRING, SSTI)]))  # magic, not name
    assert renamed.status == "unsafe" and renamed.scanner == "gguf"


@pytest.mark.parametrize("label, data", [
    ("truncated in the header", gguf_bytes([("general.name", STRING, "tiny")])[:30]),
    ("truncated in the metadata", gguf_bytes(ALL_TYPES, TENSORS)[:200]),
    ("truncated in the tensor infos", gguf_bytes(ALL_TYPES, TENSORS).rstrip(b"\0")[:-12]),
    ("absurd KV count", b"GGUF" + struct.pack("<IQQ", 3, 0, 10 ** 12)),
    ("KV count the file cannot hold", b"GGUF" + struct.pack("<IQQ", 3, 0, 5000) + b"\0" * 100),
    ("absurd tensor count", b"GGUF" + struct.pack("<IQQ", 3, 10 ** 10, 0)),
    ("version 1", gguf_bytes([("a", STRING, "b")], version=1)),
    ("big-endian version", gguf_bytes([("a", STRING, "b")], version=3 << 24)),
    ("key over the length limit", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 50) + b"\0" * 64),
    ("string longer than the file", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_string("k")
     + struct.pack("<IQ", STRING, 1 << 20) + b"\0" * 64),
    ("array longer than the file", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_string("a")
     + struct.pack("<IIQ", ARRAY, 4, 1 << 20) + b"\0" * 64),
    ("array of arrays", gguf_bytes([("nested", ARRAY, (ARRAY, []))])),
    ("unknown value type", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_string("k") + struct.pack("<I", 99)
     + b"\0" * 32),
    ("duplicate key", gguf_bytes([("general.name", STRING, "a"), ("general.name", STRING, "b")])),
    ("non-UTF-8 key", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_string(b"\xff\xfe") + struct.pack("<I", STRING)
     + gguf_string("x")),
    ("chat template not a string", gguf_bytes([("tokenizer.chat_template", 4, 1)])),
    ("too many dimensions", gguf_bytes([], [("t", [1, 1, 1, 1, 1], 0, 0)], data=b"\0" * 32)),
    ("misaligned tensor offset", gguf_bytes([], [("t", [4], 0, 7)], data=b"\0" * 64)),
    ("duplicate tensor name", gguf_bytes([], [("t", [4], 0, 0), ("t", [4], 0, 32)], data=b"\0" * 64)),
    ("tensor name of 64 bytes", gguf_bytes([], [("x" * 64, [4], 0, 0)], data=b"\0" * 32)),
    ("tensor data past the end", gguf_bytes([], [("t", [4], 0, 1 << 20)])),
    ("alignment not a power of two", gguf_bytes([("general.alignment", 4, 24)])),
])
def test_malformed_gguf_is_an_error(label, data):
    result = scan("model.gguf", data)
    assert result.status == "error", label
    assert result.findings[0].kind == "gguf-header"


def test_gguf_limits():
    data = gguf_bytes(ALL_TYPES)
    assert scan("m.gguf", data, ScanLimits(max_gguf_kv_count=3)).status == "error"
    assert scan("m.gguf", data, ScanLimits(max_gguf_metadata_bytes=64)).status == "error"
    assert scan("m.gguf", data, ScanLimits(max_gguf_array_length=2)).status == "error"
    assert scan("m.gguf", data, ScanLimits(max_gguf_string_bytes=3)).status == "error"
    template = gguf_bytes([("tokenizer.chat_template", STRING, LLAMA_TEMPLATE)])
    assert scan("m.gguf", template, ScanLimits(max_template_bytes=100)).status == "error"


def test_a_gguf_name_without_the_magic_is_an_error():
    assert scan("model.gguf", b"not a gguf file at all").status == "error"
