"""safetensors: the header is checked without loading a tensor (security spec A4). The format is
8 bytes of little-endian header length N, N bytes of JSON, then the data; every tensor names a
known dtype, a shape, and ``data_offsets`` into the data, which must tile it exactly."""

from __future__ import annotations

import json
import math
import struct
from typing import BinaryIO

from .limits import ScanLimits
from .results import Finding

DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}


def scan_safetensors(stream: BinaryIO, size: int, limits: ScanLimits) -> list[Finding]:
    def bad(message: str) -> list[Finding]:
        return [Finding("safetensors-header", "error", message)]

    head = stream.read(8)
    if len(head) < 8:
        return bad("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", head)
    if n > limits.max_safetensors_header or n > size - 8:
        return bad(f"header length {n} is larger than the file or the {limits.max_safetensors_header}-byte limit")
    try:
        header = json.loads(stream.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return bad("header is not UTF-8 JSON")
    if not isinstance(header, dict):
        return bad("header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        return bad("__metadata__ must map strings to strings")
    spans = []
    for name, spec in header.items():
        if not isinstance(spec, dict):
            return bad(f"tensor {name!r}: not an object")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if dtype not in DTYPE_BYTES:
            return bad(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            return bad(f"tensor {name!r}: shape must be a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and o >= 0
                                                                        for o in offsets)
                and offsets[0] <= offsets[1]):
            return bad(f"tensor {name!r}: data_offsets must be [begin, end] with begin <= end")
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
            return bad(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape} of {dtype}")
        spans.append((offsets[0], offsets[1], name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            return bad(f"tensor {name!r}: data does not follow the previous tensor's (gap or overlap at {begin})")
        position = end
    if position != size - 8 - n:
        return bad(f"the tensors cover {position} bytes of data but the file holds {size - 8 - n}")
    return []
