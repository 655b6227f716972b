"""safetensors: the header is validated without loading a tensor (security spec A4).

Format: 8 bytes of little-endian header length N, N bytes of UTF-8 JSON, then the data buffer.
The header maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
relative to the buffer) plus an optional ``"__metadata__"`` of string to string. The rules are the
reference implementation's (a file it would refuse is an ``error`` here): N within the limit and
the file, a JSON object starting with ``{``, a known dtype, a shape of non-negative integers,
``end - begin == prod(shape) * dtype size``, and tensors that tile the buffer exactly — no overlap,
no gap, nothing after the last one. Duplicate keys are refused too (two parsers could keep
different ones). A valid header also yields the parameter count per dtype (the Hub's
``safetensors`` expand), as an ``info`` finding.

Bounds: the header may be up to 100 MB (the format's own limit, ``max_header_bytes``), but it is
parsed only if it holds at most ``max_safetensors_header_values`` JSON values (4 M: ~500,000
tensors; real files hold thousands), so a parse costs at most a few hundred MB and seconds.
A header over either bound is an ``error`` (not checked), even where the reference
implementation would load it.
"""

from __future__ import annotations

import json
import math
import struct
from typing import BinaryIO

from .bounded_io import BoundedReader
from .limits import ScanLimits
from .results import Finding
from .scan_context import Outcome

# Element sizes in bits (the 4- and 6-bit float formats pack several elements per byte).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "I64": 64, "U64": 64, "F64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


class _Invalid(ValueError):
    def __init__(self, message: str, tensor: str | None = None):
        super().__init__(message)
        self.tensor = tensor


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"key {key!r:.100} appears twice in one object")
        out[key] = value
    return out


def scan_safetensors(stream: BinaryIO, size: int, limits: ScanLimits) -> Outcome:
    try:
        counts = _validate(stream, size, limits)
    except _Invalid as exc:
        detail = {"tensor": exc.tensor[:200]} if exc.tensor is not None else None
        return Outcome("safetensors", [Finding("safetensors-header", "error", str(exc), detail)])
    total = sum(counts.values())
    return Outcome("safetensors", [Finding("safetensors-parameters", "info", f"{total} parameters",
                                           {"parameters": counts, "total": total})])


def parameters_by_dtype(stream: BinaryIO, size: int, limits: ScanLimits) -> dict[str, int]:
    """The parameter count per dtype of a valid safetensors file; ValueError for an invalid one."""
    return _validate(stream, size, limits)


def _validate(stream: BinaryIO, size: int, limits: ScanLimits) -> dict[str, int]:
    reader = BoundedReader(stream, 8 + limits.max_header_bytes, "safetensors header")
    head = reader.read(8)
    if len(head) < 8:
        raise _Invalid("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", head)
    if n > limits.max_header_bytes:
        raise _Invalid(f"header length {n} is over the {limits.max_header_bytes}-byte limit")
    if n > size - 8:
        raise _Invalid(f"header length {n} is beyond the end of the {size}-byte file")
    raw = reader.read(n)
    if len(raw) < n:
        raise _Invalid(f"the file ends inside its {n}-byte header")
    if not raw.startswith(b"{"):
        raise _Invalid("the header does not start with '{'")
    # Parsing builds an object per JSON value: a 99 MB header of one-byte values cost 2.5 GB and
    # 25 s. Values are counted first (every one but the first follows a ',', '[' or '{'; a fast
    # byte count, over-counting punctuation inside strings), and past the bound it is not parsed.
    values = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if values > limits.max_safetensors_header_values:
        raise _Invalid(f"the header holds more than {limits.max_safetensors_header_values} JSON values "
                       f"(about {values}): not parsed")
    try:
        text = raw.decode("utf-8")
        del raw
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except _Invalid:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Invalid(f"the header is not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise _Invalid("the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _Invalid("__metadata__ must map strings to strings")
    data_size = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    counts: dict[str, int] = {}
    for name, entry in header.items():
        begin, end, dtype, elements = _check_entry(name, entry, data_size)
        spans.append((begin, end, name))
        counts[dtype] = counts.get(dtype, 0) + elements
    position = 0
    for begin, end, name in sorted(spans):
        if begin < position:
            raise _Invalid(f"tensor {name!r:.100}: its data overlaps the previous tensor's (at byte {begin})", name)
        if begin > position:
            raise _Invalid(f"tensor {name!r:.100}: a gap of {begin - position} bytes before its data", name)
        position = end
    if position != data_size:
        raise _Invalid(f"the tensors cover {position} bytes of data but the file holds {data_size} "
                       f"({data_size - position} bytes unaccounted for)")
    return counts


def _check_entry(name: str, entry: object, data_size: int) -> tuple[int, int, str, int]:
    def bad(message: str) -> _Invalid:
        return _Invalid(f"tensor {name!r:.100}: {message}", name)

    if not isinstance(entry, dict):
        raise bad("not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise bad(f"unknown dtype {dtype!r:.40}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise bad("shape must be a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
        raise bad("data_offsets must be [begin, end], non-negative integers")
    begin, end = offsets
    if begin > end:
        raise bad(f"data_offsets begin {begin} is after end {end}")
    if end > data_size:
        raise bad(f"data ends at byte {end} of a {data_size}-byte buffer")
    elements = math.prod(shape)
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8:
        raise bad(f"{elements} elements of {dtype} do not fill whole bytes")
    if end - begin != bits // 8:
        raise bad(f"{end - begin} bytes of data for shape {shape!s:.80} of {dtype} ({bits // 8} expected)")
    return begin, end, dtype, elements


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
