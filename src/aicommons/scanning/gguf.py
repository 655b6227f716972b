"""GGUF (llama.cpp; ggml ``docs/gguf.md``): the header — metadata key/values and tensor infos — is
parsed with every count and length bounded by the bytes left in the file and by ``ScanLimits``
before anything is read (the class of bugs llama.cpp fixed in "gguf: prevent integer overflows").
Tensor data is not read.

Layout (little-endian): ``GGUF``, u32 version (2 or 3), u64 tensor count, u64 key/value count;
each key/value is a string key (u64 length + bytes), a u32 value type and the value (types 0-12;
arrays are a u32 element type + u64 count + elements); then each tensor's name, u32 dimension
count, u64 dimensions, u32 ggml type and u64 offset into the aligned data section.

What the file would do when loaded, beyond memory safety, is its chat template: every
``tokenizer.chat_template`` (and named ``tokenizer.chat_template.<name>``) string is checked
(``chat_templates``). Refused, as llama.cpp refuses them: duplicate keys or tensor names, nested
arrays, tensor names of 64 bytes or more, more than 4 dimensions, misaligned offsets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from .bounded_io import BoundedReader, ByteBudget, LimitExceeded
from .chat_templates import check_chat_template
from .limits import ScanLimits
from .results import Finding
from .scan_context import Outcome

_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> bytes
_UINT32, _STRING, _ARRAY, _UINT64 = 4, 8, 9, 10
_MAX_KEY_BYTES = 65535
_MAX_NAME_BYTES = 64  # GGML_MAX_NAME, the terminating NUL included
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_GGML_TYPE = 127  # ggml has ~40 types; a number past this is garbage, not a new type
_MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, smallest value
_MIN_TENSOR_BYTES = 8 + 4 + 4 + 8  # name length, dimension count, type, offset
_TEMPLATE_KEY = "tokenizer.chat_template"


class GgufHeaderError(ValueError):
    """The header is malformed or over a limit."""


class _Malformed(GgufHeaderError):
    pass


@dataclass
class GgufHeader:
    """What the header says that a hub shows (the repo page, ``model_info(expand=["gguf"])``)."""

    version: int
    tensor_count: int
    kv_count: int
    architecture: str | None = None
    templates: list[tuple[str, str]] = field(default_factory=list)  # (key, chat template)
    numbers: dict[str, int] = field(default_factory=dict)  # the integer values of ``*.context_length``
    total_elements: int = 0  # parameters: the tensors' elements summed


def read_gguf_header(stream: BinaryIO, size: int, limits: ScanLimits) -> GgufHeader:
    """The header of a GGUF file, parsed with the scanner's bounds; GgufHeaderError if malformed."""
    try:
        return _parse(_Cursor(stream, size, limits, None), limits)
    except (UnicodeDecodeError, LimitExceeded) as exc:
        raise GgufHeaderError(str(exc)) from None


class _Cursor:
    """Reads the header, refusing any length larger than what is left of the file."""

    def __init__(self, stream: BinaryIO, size: int, limits: ScanLimits, budget: ByteBudget | None):
        self.reader = BoundedReader(stream, limits.max_gguf_metadata_bytes, "GGUF header", budget)
        self.size = size
        self.limits = limits

    @property
    def left(self) -> int:
        return self.size - self.reader.consumed

    def take(self, n: int) -> bytes:
        if n > self.left:
            raise _Malformed(f"needs {n} bytes at offset {self.reader.consumed}, only {self.left} left")
        data = self.reader.read(n)
        if len(data) < n:
            raise _Malformed(f"truncated at offset {self.reader.consumed}")
        return data

    def skip(self, n: int) -> None:
        if n > self.left:
            raise _Malformed(f"needs {n} bytes at offset {self.reader.consumed}, only {self.left} left")
        while n > 0:
            n -= len(self.take(min(n, 1 << 20)))

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self, max_bytes: int, what: str) -> bytes:
        n = self.u64()
        if n > max_bytes:
            raise _Malformed(f"{what} of {n} bytes, over the {max_bytes}-byte limit")
        return self.take(n)

    def skip_string(self) -> None:
        n = self.u64()
        if n > self.limits.max_gguf_string_bytes:
            raise _Malformed(f"a string of {n} bytes, over the {self.limits.max_gguf_string_bytes}-byte limit")
        self.skip(n)

    def skip_value(self, kind: int) -> None:
        if kind in _FIXED_SIZES:
            self.skip(_FIXED_SIZES[kind])
        elif kind == _STRING:
            self.skip_string()
        elif kind == _ARRAY:
            item_kind, count = self.u32(), self.u64()
            if count > self.limits.max_gguf_array_length:
                raise _Malformed(f"an array of {count} items, over the {self.limits.max_gguf_array_length} limit")
            if item_kind in _FIXED_SIZES:
                self.skip(_FIXED_SIZES[item_kind] * count)
            elif item_kind == _STRING:
                if count * 8 > self.left:
                    raise _Malformed(f"an array of {count} strings, more than the file can hold")
                for _ in range(count):
                    self.skip_string()
            elif item_kind == _ARRAY:
                raise _Malformed("an array of arrays (llama.cpp refuses them)")
            else:
                raise _Malformed(f"an array of unknown value type {item_kind}")
        else:
            raise _Malformed(f"unknown value type {kind}")


def scan_gguf(stream: BinaryIO, size: int, limits: ScanLimits, budget: ByteBudget | None = None) -> Outcome:
    """``budget``: the archive's, when the GGUF is an archive member."""
    try:
        return Outcome("gguf", _scan(_Cursor(stream, size, limits, budget), limits))
    except (_Malformed, UnicodeDecodeError, LimitExceeded) as exc:
        return Outcome("gguf", [Finding("gguf-header", "error", f"malformed GGUF header: {exc}")])


def _scan(cursor: _Cursor, limits: ScanLimits) -> list[Finding]:
    header = _parse(cursor, limits)
    findings = [Finding("gguf", "info", f"GGUF v{header.version}: {header.tensor_count} tensors, "
                        f"{header.kv_count} metadata entries"
                        + (f", architecture {header.architecture}" if header.architecture else ""),
                        {"version": header.version, "tensorCount": header.tensor_count, "kvCount": header.kv_count,
                         "architecture": header.architecture})]
    for key, template in header.templates:
        findings += check_chat_template(template, f"GGUF {key}", limits)
    return findings


def _parse(cursor: _Cursor, limits: ScanLimits) -> GgufHeader:
    magic, version = cursor.take(4), cursor.u32()
    if magic != b"GGUF":
        raise _Malformed("no GGUF magic")
    if version not in (2, 3):
        # 1 had 32-bit counts; a big-endian file reads as 0x03000000 here
        raise _Malformed(f"version {version} (only 2 and 3 are read)")
    tensor_count, kv_count = cursor.u64(), cursor.u64()
    if kv_count > limits.max_gguf_kv_count:
        raise _Malformed(f"{kv_count} metadata entries, over the {limits.max_gguf_kv_count} limit")
    if tensor_count > limits.max_gguf_tensor_count:
        raise _Malformed(f"{tensor_count} tensors, over the {limits.max_gguf_tensor_count} limit")
    if kv_count * _MIN_KV_BYTES + tensor_count * _MIN_TENSOR_BYTES > cursor.left:
        raise _Malformed(f"{kv_count} metadata entries and {tensor_count} tensors cannot fit in the file")

    header = GgufHeader(version, tensor_count, kv_count)
    keys: set[str] = set()
    alignment = 32
    for _ in range(kv_count):
        key = cursor.string(_MAX_KEY_BYTES, "a key").decode("utf-8")
        if key in keys:
            raise _Malformed(f"key {key!r:.100} appears twice")
        keys.add(key)
        kind = cursor.u32()
        if key == _TEMPLATE_KEY or key.startswith(_TEMPLATE_KEY + "."):
            if kind != _STRING:
                raise _Malformed(f"{key!r:.100} is not a string")
            template = cursor.string(limits.max_template_bytes, f"chat template {key!r:.100}")
            header.templates.append((key, template.decode("utf-8")))
        elif key == "general.alignment":
            if kind != _UINT32:
                raise _Malformed("general.alignment is not a u32")
            alignment = cursor.u32()
            if alignment == 0 or alignment & (alignment - 1):
                raise _Malformed(f"general.alignment {alignment} is not a power of two")
        elif key == "general.architecture" and kind == _STRING:
            header.architecture = cursor.string(256, "general.architecture").decode("utf-8")
        elif key.endswith(".context_length") and kind in (_UINT32, _UINT64):
            header.numbers[key] = cursor.u32() if kind == _UINT32 else cursor.u64()
        else:
            cursor.skip_value(kind)

    offsets, header.total_elements = _tensor_offsets(cursor, tensor_count, alignment)
    data_start = -(-cursor.reader.consumed // alignment) * alignment
    if offsets and data_start + max(offsets) > cursor.size:
        raise _Malformed("a tensor's data starts past the end of the file")
    return header


def _tensor_offsets(cursor: _Cursor, tensor_count: int, alignment: int) -> tuple[list[int], int]:
    """The tensors' data offsets, and their elements summed."""
    names: set[bytes] = set()
    offsets = []
    total = 0
    for _ in range(tensor_count):
        name = cursor.string(_MAX_NAME_BYTES - 1, "a tensor name")
        if name in names:
            raise _Malformed(f"tensor {name!r:.100} appears twice")
        names.add(name)
        n_dims = cursor.u32()
        if n_dims > _MAX_DIMS:
            raise _Malformed(f"tensor {name!r:.100} has {n_dims} dimensions (at most {_MAX_DIMS})")
        elements = 1
        for _ in range(n_dims):
            elements *= cursor.u64()
        if elements >= 1 << 63:
            raise _Malformed(f"tensor {name!r:.100} has more elements than an int64 counts")
        ggml_type, offset = cursor.u32(), cursor.u64()
        if ggml_type > _MAX_GGML_TYPE:
            raise _Malformed(f"tensor {name!r:.100} has unknown type {ggml_type}")
        if offset % alignment:
            raise _Malformed(f"tensor {name!r:.100} data offset {offset} is not aligned to {alignment}")
        offsets.append(offset)
        total += elements
    return offsets, total
