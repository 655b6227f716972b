"""What a file is, from its first bytes. The name is a hint, never proof: loaders look at content
(``torch.load`` checks for a zip header, ``np.load`` for the NumPy magic, then falls back to
unpickling), so a pickle renamed ``.txt`` is still checked as a pickle and a zip named ``.bin``
as a zip."""

from __future__ import annotations

import pickletools

HEAD_BYTES = 512  # enough for the tar magic at offset 257

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
GGUF_MAGIC = b"GGUF"
NPY_MAGIC = b"\x93NUMPY"
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
# Formats the standard library cannot open: reported as "skipped", never as safe.
_UNOPENABLE = {b"7z\xbc\xaf\x27\x1c": "7z", b"Rar!\x1a\x07": "rar", b"\x28\xb5\x2f\xfd": "zstd",
               b"\x04\x22\x4d\x18": "lz4"}

# Every byte that starts a pickle opcode: a stream starting with any other byte makes
# pickle.load fail before it does anything.
PICKLE_OPCODE_BYTES = frozenset(op.code.encode("latin-1")[0] for op in pickletools.opcodes)


def is_pickle_header(head: bytes) -> bool:
    """PROTO 2-5: how every pickle of protocol 2 and later starts (torch, numpy, joblib...)."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def could_be_pickle(head: bytes) -> bool:
    return bool(head) and head[0] in PICKLE_OPCODE_BYTES


def is_tar(head: bytes) -> bool:
    return head[257:262] == b"ustar"


def is_zlib(head: bytes) -> bool:
    """A raw zlib stream (joblib's ``compress=`` default): CMF 0x78 and a valid header checksum."""
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """An 8-byte little-endian header length that fits the file, then a JSON object."""
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def sniff(head: bytes) -> str | None:
    """The container kind the first bytes announce, or None."""
    if head.startswith(ZIP_MAGICS):
        return "zip"
    if head.startswith(GGUF_MAGIC):
        return "gguf"
    if head.startswith(NPY_MAGIC):
        return "npy"
    for magic, kind in _UNOPENABLE.items():
        if head.startswith(magic):
            return kind
    if is_tar(head):
        return "tar"
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            return kind
    if is_pickle_header(head):
        return "pickle"
    return None


UNOPENABLE_KINDS = frozenset(_UNOPENABLE.values())
COMPRESSED_KINDS = frozenset(_COMPRESSED.values())
