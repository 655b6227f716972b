""".npy files (alone or inside .npz): a header, then raw array bytes — or, for arrays with an
object dtype, a pickle, which ``np.load(..., allow_pickle=True)`` unpickles."""

from __future__ import annotations

import ast
import struct
from dataclasses import dataclass

from .bounded_io import BoundedReader
from .sniffing import NPY_MAGIC


class NpyError(ValueError):
    pass


@dataclass(frozen=True)
class NpyHeader:
    version: tuple[int, int]
    descr: object
    has_objects: bool


def read_npy_header(reader: BoundedReader, max_header_bytes: int) -> NpyHeader:
    """Read the header; ``reader`` is left at the first byte of the array data."""
    start = reader.read(8)
    if len(start) < 8 or not start.startswith(NPY_MAGIC):
        raise NpyError("not a .npy file")
    version = (start[6], start[7])
    if version[0] == 1:
        size_bytes, fmt, encoding = 2, "<H", "latin-1"
    elif version[0] in (2, 3):
        size_bytes, fmt, encoding = 4, "<I", "latin-1" if version[0] == 2 else "utf-8"
    else:
        raise NpyError(f"unknown .npy format version {version}")
    raw_len = reader.read(size_bytes)
    if len(raw_len) < size_bytes:
        raise NpyError("truncated .npy header")
    (header_len,) = struct.unpack(fmt, raw_len)
    if header_len > max_header_bytes:
        raise NpyError(f".npy header of {header_len} bytes, over the {max_header_bytes}-byte limit")
    raw = reader.read(header_len)
    if len(raw) < header_len:
        raise NpyError("truncated .npy header")
    try:
        # A Python literal, as numpy writes and reads it (numpy also uses ast.literal_eval).
        header = ast.literal_eval(raw.decode(encoding))
    except (ValueError, SyntaxError, UnicodeDecodeError, RecursionError, MemoryError, TypeError) as exc:
        raise NpyError(f".npy header is not a Python literal: {type(exc).__name__}") from None
    if not isinstance(header, dict) or "descr" not in header:
        raise NpyError(".npy header has no 'descr'")
    return NpyHeader(version, header["descr"], dtype_has_objects(header["descr"]))


def dtype_has_objects(descr: object, depth: int = 0) -> bool:
    """Does a .npy ``descr`` contain an object field (stored as a pickle)? Structured dtypes are
    lists of (name, descr[, shape]) and may nest; anything unreadable is an error."""
    if depth > 32:
        raise NpyError("dtype nested too deeply")
    if isinstance(descr, str):
        code = descr.lstrip("<>|=!")
        return code.startswith("O") or code.lower().startswith("object")
    if isinstance(descr, list):
        for field in descr:
            if not (isinstance(field, tuple) and len(field) in (2, 3)):
                raise NpyError(f"unreadable structured dtype field {field!r:.80}")
            if dtype_has_objects(field[1], depth + 1):
                return True
        return False
    raise NpyError(f"unreadable dtype {descr!r:.80}")
