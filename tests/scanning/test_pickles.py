"""Pickles: benign checkpoints stay safe, every hand-made attack is caught, broken ones are errors."""

from __future__ import annotations

import collections
import gzip
import io
import pickle
import struct
import zlib

import numpy as np
import pytest
import torch

from aicommons.scanning import ScanLimits, judge_global

from .samples import Evals, RunsAShell, imports, kinds, scan, zip_bytes

# ---- benign ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_plain_data_pickles_are_safe_in_every_protocol(protocol):
    data = {"lr": 0.1, "layers": [1, 2], "name": "x", "nested": {"t": (1, 2)}, "set": {1, 2}, "blob": b"\x00\xff",
            "od": collections.OrderedDict(a=1), "dd": collections.defaultdict(list), "c": 1j, "r": range(3)}
    result = scan("state.pkl", pickle.dumps(data, protocol=protocol))
    assert result.status == "safe", result.to_json()
    assert result.scanner == "pickle"


def test_numpy_arrays_pickled_are_safe_and_their_imports_listed():
    result = scan("arrays.pkl", pickle.dumps({"a": np.zeros(3, dtype=np.float32), "s": np.float64(1.5),
                                              "d": np.dtype("i4")}, protocol=2))
    assert result.status == "safe"
    (listed,) = [f for f in result.findings if f.kind == "pickle-allowed-imports"]
    assert listed.severity == "info" and "numpy.dtype" in listed.detail["imports"]


def test_a_real_torch_checkpoint_is_safe():
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2, 3), "b": torch.ones(3, dtype=torch.bfloat16), "h": torch.zeros(2).half(),
                "p": torch.nn.Parameter(torch.ones(2)), "i": torch.arange(3), "m": torch.zeros(1, dtype=torch.bool),
                "sparse": torch.zeros(4).to_sparse()}, buffer)
    result = scan("pytorch_model.bin", buffer.getvalue())
    assert result.status == "safe", result.to_json()
    assert result.scanner == "pickle"  # a PyTorch zip is judged by the pickle inside
    (listed,) = [f for f in result.findings if f.kind == "pickle-allowed-imports"]
    assert "torch._utils._rebuild_tensor_v2" in listed.detail["imports"]


def test_a_legacy_torch_checkpoint_is_safe_despite_the_tensor_bytes_after_its_pickles():
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(300, dtype=torch.float32)}, buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    assert data[:2] == b"\x80\x02"  # five pickles, then raw storage bytes
    assert scan("old_model.bin", data).status == "safe"


def test_a_whole_module_pickled_is_suspicious_not_safe():
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buffer)
    result = scan("model.pt", buffer.getvalue())
    assert result.status == "suspicious"
    assert imports(result) == {"torch.nn.modules.linear.Linear": "suspicious"}


# ---- malicious ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_os_system_through_reduce_is_unsafe_in_every_protocol(protocol):
    result = scan("model.pkl", pickle.dumps(RunsAShell(), protocol=protocol))
    assert result.status == "unsafe"
    assert imports(result) == {"posix.system": "unsafe"}
    assert result.to_json()["findings"][0]["message"].startswith("imports posix.system")


def test_the_30_byte_import_module_pickle_is_caught():
    # Passes picklescan's default mode (it is only "suspicious" there), per the security spec.
    data = b"\x80\x04\x8c\timportlib\x8c\rimport_module\x93."
    assert len(data) == 30
    result = scan("tiny.pkl", data)
    assert result.status == "unsafe"
    assert imports(result) == {"importlib.import_module": "unsafe"}


def test_builtins_eval_is_unsafe():
    result = scan("weights.pt", pickle.dumps(Evals(), protocol=2))
    assert result.status == "unsafe"
    assert imports(result) == {"__builtin__.eval": "unsafe"}  # Python 3 writes Python 2 names at protocol 2
    assert imports(scan("weights.pt", pickle.dumps(Evals(), protocol=4))) == {"builtins.eval": "unsafe"}


def test_stack_global_operands_fetched_back_from_the_memo():
    # "builtins" and "eval" pushed, stored with BINPUT, pushed again with BINGET before STACK_GLOBAL
    data = (b"\x80\x02X\x08\x00\x00\x00builtinsq\x00X\x04\x00\x00\x00evalq\x01"
            b"X\x01\x00\x00\x00x0h\x00h\x01\x93X\x03\x00\x00\x001+1\x85R.")
    assert imports(scan("m.pickle", data)) == {"builtins.eval": "unsafe"}


def test_a_pop_does_not_shift_which_strings_stack_global_uses():
    # push "posix", "system", "decoy"; POP; STACK_GLOBAL -> posix.system (a "last two strings"
    # heuristic would read system.decoy)
    data = b"\x80\x04\x8c\x05posix\x8c\x06system\x8c\x05decoy0\x93\x8c\x02id\x85R."
    assert imports(scan("m.pkl", data)) == {"posix.system": "unsafe"}


def test_a_global_whose_name_is_computed_is_unsafe():
    # builtins.str("posix") is computed by a call: STACK_GLOBAL gets a value, not a literal
    data = (b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x05posix\x85R"
            b"\x8c\x06system\x93\x8c\x02id\x85R.")
    result = scan("m.pkl", data)
    assert result.status == "unsafe"
    assert imports(result)["unknown.unknown"] == "unsafe"


def test_inst_and_obj_opcodes_are_seen():
    assert imports(scan("a.pkl", b"(S'ls'\nios\nsystem\n.")) == {"os.system": "unsafe"}  # INST, protocol 0
    assert imports(scan("a.pkl", b"(cos\nsystem\nS'ls'\no.")) == {"os.system": "unsafe"}  # MARK GLOBAL ... OBJ


def test_copyreg_extension_codes_are_unsafe():
    assert scan("a.pkl", b"\x80\x02\x82\x01)R.").status == "unsafe"  # EXT1 1: a global we cannot name


def test_python2_names_are_judged_as_the_unpickler_remaps_them():
    # protocol 2: cPickle.Unpickler is loaded as pickle.Unpickler, a nested deserializer
    result = scan("a.pkl", b"\x80\x02ccPickle\nUnpickler\n)R.")
    assert imports(result) == {"cPickle.Unpickler": "unsafe"}


def test_attribute_paths_are_judged_as_the_whole_path():
    # protocol 4 resolves dotted names: torch + "serialization.load" is torch.serialization.load
    data = b"\x80\x04\x8c\x05torch\x8c\x12serialization.load\x93."
    assert scan("m.pkl", data).status == "unsafe"
    through_module = b"\x80\x04\x8c\x0bcollections\x8c\x0e_sys.getsizeof\x93."
    assert scan("m.pkl", through_module).status == "unsafe"


def test_a_second_concatenated_pickle_is_scanned_too():
    data = pickle.dumps({"fine": 1}) + pickle.dumps(RunsAShell(), protocol=4)
    assert scan("two.pkl", data).status == "unsafe"


def test_a_broken_pickle_is_an_error_and_its_payload_is_still_reported():
    assert scan("a.pkl", b"\x80\x04\x95garbage").status == "error"
    assert scan("a.pkl", pickle.dumps([1, 2, 3])[:-3]).status == "error"  # truncated before STOP
    # nullifAI: the payload runs before the parse error
    broken = pickle.dumps(RunsAShell(), protocol=2)[:-1] + b"\xff\xff"
    result = scan("a.pkl", broken)
    assert result.status == "unsafe"
    assert imports(result) == {"posix.system": "unsafe"} and "pickle" in kinds(result)


def test_a_pickle_renamed_txt_is_still_a_pickle():
    result = scan("readme.txt", pickle.dumps(RunsAShell(), protocol=4))
    assert result.scanner == "pickle" and result.status == "unsafe"
    assert scan("notes.txt", pickle.dumps({"a": 1}, protocol=4)).status == "safe"


def test_a_pickle_header_by_chance_is_not_an_error_unless_the_name_says_pickle():
    data = b"\x80\x04 these bytes only start like a pickle\n"
    assert scan("notes.txt", data).status == "safe"
    assert scan("notes.txt", data).scanner == "text"
    assert scan("model.pkl", data).status == "error"
    assert scan("weights.bin", data).status == "error"  # PROTO and a pickle-ish name: meant as one


def test_a_protocol_0_pickle_in_a_text_file_is_found_but_prose_is_not_a_pickle():
    result = scan("README.md", pickle.dumps(RunsAShell(), protocol=0))
    assert result.scanner == "pickle" and result.status == "unsafe"
    prose = scan("notes.txt", b"cats and dogs\nare friends\nsometimes.\n")
    assert prose.status == "safe" and prose.scanner == "text"


def test_bin_files_that_are_not_pickles_are_not_errors():
    raw = bytes(range(256)) * 8  # starts with 0x00: unpickling fails before anything happens
    result = scan("weights.bin", raw)
    assert result.status == "safe" and result.findings[0].severity == "info"
    garbage_global = b"c\x01\x02\n\x03\x04\n" + bytes(100)  # GLOBAL of a name that cannot be imported
    assert scan("weights.bin", garbage_global).status == "safe"


def test_compressed_pickles_are_scanned():
    assert scan("model.pkl.gz", gzip.compress(pickle.dumps(RunsAShell(), protocol=4))).status == "unsafe"
    assert scan("model.pkl.gz", gzip.compress(pickle.dumps([1, 2]))).status == "safe"
    joblib_like = zlib.compress(pickle.dumps(RunsAShell(), protocol=3))  # joblib's compress= default
    assert scan("model.joblib", joblib_like).status == "unsafe"


# ---- PyTorch zips and NumPy files ----------------------------------------------------------------------


def test_a_poisoned_torch_checkpoint_and_one_disguised_as_text():
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2), "hook": RunsAShell()}, buffer)
    for name in ("pytorch_model.bin", "weights.txt"):  # a zip is a zip, whatever its name
        result = scan(name, buffer.getvalue())
        assert result.status == "unsafe", name
        (finding,) = [f for f in result.findings if f.kind == "pickle-import"]
        assert finding.message.startswith("archive/data.pkl: imports posix.system")
        assert finding.detail == {"module": "posix", "name": "system", "member": "archive/data.pkl"}


def test_a_hand_made_torch_zip_with_a_malicious_data_pkl():
    data = zip_bytes([("model/data.pkl", pickle.dumps(Evals(), protocol=2)), ("model/version", b"3\n"),
                      ("model/data/0", b"\x80\x04\x8c\x02os\x8c\x06system\x93.")])  # raw storage: not unpickled
    result = scan("model.pt", data)
    assert result.status == "unsafe"
    assert imports(result) == {"__builtin__.eval": "unsafe"}


def test_numpy_files_with_and_without_objects():
    plain, objects, structured = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(plain, np.arange(6, dtype=np.float32))
    np.save(objects, np.array([RunsAShell()], dtype=object), allow_pickle=True)
    np.save(structured, np.zeros(2, dtype=[("a", "f4"), ("b", "O")]), allow_pickle=True)
    assert scan("a.npy", plain.getvalue()).status == "safe"
    assert scan("a.npy", objects.getvalue()).status == "unsafe"
    assert scan("a.npy", structured.getvalue()).status == "safe"  # objects, but only None in them
    assert scan("a.npy", structured.getvalue()).scanner == "pickle"
    assert scan("a.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4 }  \n").status == "error"


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_with_and_without_object_arrays(save):
    fine, bad = io.BytesIO(), io.BytesIO()
    save(fine, a=np.zeros(3), b=np.ones((2, 2), dtype=np.int8))
    save(bad, ok=np.zeros(3), bad=np.array([RunsAShell()], dtype=object))
    assert scan("arrays.npz", fine.getvalue()).status == "safe"
    result = scan("arrays.npz", bad.getvalue())
    assert result.status == "unsafe"
    assert any(f.message.startswith("bad.npy: imports posix.system") for f in result.findings)


# ---- limits ------------------------------------------------------------------------------------------


def test_a_pickle_over_the_read_limit_is_an_error():
    big = pickle.dumps(list(range(10_000)))
    result = scan("a.pkl", big, ScanLimits(max_pickle_bytes=1000))
    assert result.status == "error"
    assert "1000-byte limit" in result.findings[0].message
    assert scan("a.pkl", big).status == "safe"
    # a payload at the start of an oversized pickle is still reported
    oversized = pickle.dumps([RunsAShell(), list(range(10_000))], protocol=4)
    assert scan("a.pkl", oversized, ScanLimits(max_pickle_bytes=1000)).status == "unsafe"


def test_a_huge_claimed_length_is_not_allocated():
    # BINBYTES8 claiming 1 TiB in a 20-byte file: the reader refuses to allocate it
    claim = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc"
    assert scan("a.pkl", claim).status == "error"
    assert scan("a.pkl", claim + b"\0" * 5000, ScanLimits(max_pickle_bytes=4096)).status == "error"


def test_too_many_concatenated_pickles_is_an_error():
    data = pickle.dumps(None, protocol=0) * 50
    assert scan("many.pkl", data, ScanLimits(max_pickles_per_stream=10)).status == "error"
    assert scan("many.pkl", data).status == "safe"


# ---- the policy itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("module, name, verdict", [
    ("collections", "OrderedDict", "allowed"),
    ("torch._utils", "_rebuild_tensor_v2", "allowed"),
    ("torch", "BFloat16Storage", "allowed"),
    ("numpy.core.multiarray", "_reconstruct", "allowed"),
    ("_codecs", "encode", "allowed"),
    ("__builtin__", "set", "allowed"),  # Python 3 itself writes this name at protocol 2
    ("torch.storage", "_load_from_bytes", "unsafe"),  # calls torch.load: a pickle in a pickle
    ("torch", "load", "unsafe"),
    ("subprocess", "Popen", "unsafe"),
    ("nt", "system", "unsafe"),
    ("builtins", "getattr", "unsafe"),
    ("builtins", "__import__", "unsafe"),
    ("operator", "attrgetter", "unsafe"),
    ("functools", "partial", "unsafe"),
    ("pkgutil", "resolve_name", "unsafe"),
    ("inspect", "getattr_static", "unsafe"),
    ("runpy", "run_path", "unsafe"),
    ("webbrowser", "open", "unsafe"),
    ("socket", "create_connection", "unsafe"),
    ("shutil", "rmtree", "unsafe"),
    ("pandas", "eval", "unsafe"),  # a denied name in any module
    ("some.lib", "__reduce__", "unsafe"),
    ("transformers.training_args", "TrainingArguments", "suspicious"),  # unknown: default-deny
    ("builtins", "type", "suspicious"),
])
def test_judge_global(module, name, verdict):
    assert judge_global(module, name, protocol=2)[0] == verdict
