"""Samples the scanner tests build for themselves (no downloads, nothing unpickled)."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile

from aicommons.scanning import FileScan, ScanLimits, scan_file


def scan(name: str, data: bytes, limits: ScanLimits | None = None) -> FileScan:
    kwargs = {"limits": limits} if limits else {}
    return scan_file(name, lambda: io.BytesIO(data), len(data), **kwargs)


def kinds(result: FileScan) -> set[str]:
    return {f.kind for f in result.findings}


def imports(result: FileScan) -> dict[str, str]:
    """module.name -> severity of every pickle import finding."""
    return {f"{f.detail['module']}.{f.detail['name']}": f.severity
            for f in result.findings if f.kind == "pickle-import"}


class RunsAShell:
    """Pickles as os.system("echo owned"): pickled here, never unpickled."""

    def __reduce__(self):
        return os.system, ("echo owned",)


class Evals:
    def __reduce__(self):
        return eval, ("1+1",)


def zip_bytes(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


# ---- GGUF, written by hand (ggml docs/gguf.md) -----------------------------------------------------

GGUF_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


def gguf_string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("<Q", len(raw)) + raw


def gguf_value(kind: int, value) -> bytes:
    if kind in GGUF_FORMATS:
        return struct.pack(GGUF_FORMATS[kind], value)
    if kind == STRING:
        return gguf_string(value)
    item_kind, items = value
    return struct.pack("<IQ", item_kind, len(items)) + b"".join(gguf_value(item_kind, v) for v in items)


def gguf_bytes(kv: list[tuple[str, int, object]], tensors: list[tuple[str, list[int], int, int]] = (),
               *, version: int = 3, kv_count: int | None = None, tensor_count: int | None = None,
               data: bytes = b"") -> bytes:
    body = b"".join(gguf_string(key) + struct.pack("<I", kind) + gguf_value(kind, value) for key, kind, value in kv)
    for name, dims, ggml_type, offset in tensors:
        body += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        body += struct.pack("<IQ", ggml_type, offset)
    header = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if tensor_count is None else tensor_count,
                                   len(kv) if kv_count is None else kv_count) + body
    padding = -len(header) % 32
    return header + b"\0" * padding + data


SSTI = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
LLAMA_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system='') %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set ns.system = message['content'] %}{% continue %}{% endif %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{% if loop.index0 > 1000 %}{% break %}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{% generation %}<|start_header_id|>assistant<|end_header_id|>\\n\\n"
    "{% endgeneration %}{% endif %}"
    "{% if messages|length == 0 %}{{ raise_exception('no messages') }}{% endif %}"
)
