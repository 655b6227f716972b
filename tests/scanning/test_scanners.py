"""The upload scanner on samples built here: benign checkpoints stay safe, every attack in the
corpus is flagged, malformed files are errors, and every read is bounded."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest

from aicommons.scanning import ScanLimits, scan_file


def scan(name: str, data: bytes, limits: ScanLimits | None = None):
    kwargs = {"limits": limits} if limits else {}
    return scan_file(name, lambda: io.BytesIO(data), len(data), **kwargs)


class RunsAShell:
    def __reduce__(self):
        return os.system, ("echo owned",)


class Evals:
    def __reduce__(self):
        return eval, ("1+1",)


# ---- pickles -------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_that_runs_a_shell_is_unsafe_in_every_protocol(protocol):
    result = scan("model.pkl", pickle.dumps(RunsAShell(), protocol=protocol))
    assert result.status == "unsafe"
    assert result.findings[0].detail == {"module": "posix", "name": "system"}


def test_the_30_byte_import_module_pickle_is_caught():
    # importlib.import_module via STACK_GLOBAL: graded merely "suspicious" by picklescan's default mode.
    data = b"\x80\x04\x95" + b"\x00" * 8 + b"\x8c\timportlib\x94\x8c\rimport_module\x94\x93\x8c\x02os\x85R."
    assert len(data) < 60
    assert scan("x.pkl", data).status == "unsafe"


def test_memoized_strings_still_name_the_global():
    # module and name pushed once, memoized, fetched back with BINGET before STACK_GLOBAL
    data = (b"\x80\x02X\x08\x00\x00\x00builtinsq\x00X\x04\x00\x00\x00evalq\x01h\x00h\x01\x93"
            b"X\x03\x00\x00\x001+1\x85R.")
    result = scan("x.pickle", data)
    assert result.status == "unsafe" and result.findings[0].detail == {"module": "builtins", "name": "eval"}


def test_eval_and_a_pickle_renamed_to_txt_are_caught():
    assert scan("weights.pt", pickle.dumps(Evals(), protocol=2)).status == "unsafe"
    assert scan("readme.txt", pickle.dumps(RunsAShell(), protocol=4)).status == "unsafe"  # magic, not name


def test_inst_and_obj_opcodes_are_seen():
    assert scan("a.pkl", b"(S'ls'\nios\nsystem\n.").status == "unsafe"  # protocol 0 INST


def test_plain_data_and_unknown_classes():
    assert scan("a.pkl", pickle.dumps({"lr": 0.1, "layers": [1, 2], "name": "x"})).status == "safe"
    from collections import OrderedDict

    assert scan("a.pkl", pickle.dumps(OrderedDict(a=1))).status == "safe"
    unknown = scan("a.pkl", pickle.dumps(ScanLimits()))  # a class of ours: not known to be data
    assert unknown.status == "suspicious"


def test_a_torch_checkpoint_is_safe_and_a_poisoned_one_is_not(tmp_path):
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2, 3), "b": torch.ones(3, dtype=torch.bfloat16)}, buffer)
    assert scan("pytorch_model.bin", buffer.getvalue()).status == "safe"
    poisoned = io.BytesIO()
    torch.save({"w": torch.zeros(2), "hook": RunsAShell()}, poisoned)
    result = scan("pytorch_model.bin", poisoned.getvalue())
    assert result.status == "unsafe" and "data.pkl" in result.findings[0].message


def test_numpy_files_with_and_without_objects():
    plain, objects = io.BytesIO(), io.BytesIO()
    np.save(plain, np.arange(6, dtype=np.float32))
    np.save(objects, np.array([RunsAShell()], dtype=object), allow_pickle=True)
    assert scan("a.npy", plain.getvalue()).status == "safe"
    assert scan("a.npy", objects.getvalue()).status == "unsafe"
    archive = io.BytesIO()
    np.savez(archive, ok=np.zeros(3), bad=np.array([RunsAShell()], dtype=object))
    assert scan("arrays.npz", archive.getvalue()).status == "unsafe"


def test_a_broken_or_oversized_pickle_is_an_error():
    assert scan("a.pkl", b"\x80\x04\x95garbage").status == "error"
    big = pickle.dumps(list(range(10_000)))
    assert scan("a.pkl", big, ScanLimits(max_pickle_bytes=1000)).status == "error"


# ---- archives ------------------------------------------------------------------------------------

def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_zip_slip_and_zip_bombs():
    assert scan("a.zip", zip_of({"../../etc/cron.d/x": b"x"})).status == "unsafe"
    assert scan("a.zip", zip_of({"/abs/path": b"x"})).status == "unsafe"
    assert scan("a.zip", zip_of({"zeros": b"\0" * (20 << 20)}, zipfile.ZIP_DEFLATED)).status == "unsafe"
    assert scan("a.zip", zip_of({"data/x.txt": b"hello"})).status == "safe"
    assert scan("a.zip", b"PK\x03\x04 not really a zip").status == "error"


def test_tar_escapes_and_links():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        info = tarfile.TarInfo("../escape")
        t.addfile(info, io.BytesIO(b""))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    findings = scan("data.tar", out.getvalue()).findings
    assert {f.kind for f in findings} == {"zip-slip", "archive-link"}


# ---- safetensors ---------------------------------------------------------------------------------

def test_safetensors_headers():
    from safetensors.numpy import save

    good = save({"a": np.zeros((2, 3), dtype=np.float32), "b": np.ones(4, dtype=np.int64)})
    assert scan("model.safetensors", good).status == "safe"

    def with_header(header: dict, data_len: int) -> bytes:
        raw = json.dumps(header).encode()
        return struct.pack("<Q", len(raw)) + raw + b"\0" * data_len

    cases = {
        "length beyond the file": struct.pack("<Q", 10 ** 12) + b"{}",
        "not JSON": struct.pack("<Q", 3) + b"{x}",
        "overlap": with_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, 12),
        "size for shape": with_header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8),
        "bad dtype": with_header({"a": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, 8),
        "trailing gap": with_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 16),
        "metadata types": with_header({"__metadata__": {"k": 1}}, 0),
    }
    for label, data in cases.items():
        assert scan("model.safetensors", data).status == "error", label


# ---- GGUF and chat templates ---------------------------------------------------------------------

def gguf(kv: dict[str, str], version: int = 3) -> bytes:
    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b"".join(string(k) + struct.pack("<I", 8) + string(v) for k, v in kv.items())
    body += string("general.sizes") + struct.pack("<IIQ", 9, 4, 3) + struct.pack("<3I", 1, 2, 3)  # an array
    return b"GGUF" + struct.pack("<IQQ", version, 0, len(kv) + 1) + body


SSTI = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
LLAMA = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}"
         "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_gguf_headers_and_their_templates():
    assert scan("m.gguf", gguf({"general.name": "tiny", "tokenizer.chat_template": LLAMA})).status == "safe"
    assert scan("m.gguf", gguf({"tokenizer.chat_template": SSTI})).status == "unsafe"
    assert scan("m.gguf", gguf({"general.name": "tiny"})[:30]).status == "error"  # truncated
    absurd = b"GGUF" + struct.pack("<IQQ", 3, 0, 10 ** 12)
    assert scan("m.gguf", absurd).status == "error"


def test_tokenizer_config_templates():
    def config(template) -> bytes:
        return json.dumps({"chat_template": template, "eos_token": "</s>"}).encode()

    assert scan("tokenizer_config.json", config(LLAMA)).status == "safe"
    assert scan("tokenizer_config.json", config(SSTI)).status == "unsafe"
    assert scan("tokenizer_config.json", config([{"name": "tool_use", "template": "{{ self._TemplateReference__context }}"}])).status == "unsafe"
    assert scan("tokenizer_config.json", config("{% for %}")).status == "error"


# ---- secrets -------------------------------------------------------------------------------------

def test_secrets_are_flagged_masked():
    token = "hf_" + "Ab1" * 11
    aws = "AKIA" + "ABCDEFGHIJKLMNOP"
    text = f"HF_TOKEN={token}\naws_access_key_id = {aws}\n-----BEGIN OPENSSH PRIVATE KEY-----\n".encode()
    result = scan(".env", text)
    assert result.status == "suspicious"
    assert [f.detail["type"] for f in result.findings] == ["Hugging Face token", "AWS access key id", "private key"]
    shown = json.dumps(result.to_json())
    assert token not in shown and aws not in shown and "hf_A" in shown
    assert scan("notes.md", b"nothing secret here, hf_short").status == "safe"


def test_the_scan_command(tmp_path):
    import subprocess
    import sys

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(RunsAShell(), protocol=2))
    (tmp_path / "ok.json").write_text("{}")
    run = subprocess.run([sys.executable, "-m", "aicommons.cli.main", "scan", str(tmp_path / "ok.json"),
                          str(tmp_path / "evil.pkl")], capture_output=True, text=True)
    assert run.returncode == 1
    assert f"safe\t{tmp_path / 'ok.json'}" in run.stdout and "unsafe: imports posix.system" in run.stdout
