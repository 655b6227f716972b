"""Pickle scanning without unpickling: walk the opcodes and collect every global the pickle would
import (GLOBAL, STACK_GLOBAL with its module and name pushed as strings or fetched from the memo,
INST, OBJ), then judge each against an allowlist (default-deny, security spec item 2).

- on ``DENYLIST`` (a module, or module.name): ``unsafe`` — code execution primitives;
- on ``ALLOWLIST``: fine — what PyTorch, NumPy and plain-Python checkpoints need to rebuild data;
- anything else: ``suspicious`` — unknown code would run at load time.
A pickle that does not parse, or is longer than the byte limit, is an ``error``.
"""

from __future__ import annotations

import io
import pickletools

from .results import Finding

# Globals a data checkpoint legitimately needs. Each rebuilds data and runs no user code.
ALLOWLIST = {
    "collections": {"OrderedDict", "defaultdict", "Counter", "deque"},
    "builtins": {"set", "frozenset", "bytearray", "slice", "complex", "range", "dict", "list", "tuple", "object"},
    "torch._utils": {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state", "_rebuild_sparse_tensor", "_rebuild_qtensor",
                     "_rebuild_device_tensor_from_numpy", "_rebuild_meta_tensor_no_storage"},
    "torch._tensor": {"_rebuild_from_type_v2"},
    "torch": {"Size", "device", "dtype", "float32", "float16", "bfloat16", "float64", "int64", "int32", "int16",
              "int8", "uint8", "bool", "FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage",
              "LongStorage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
              "ComplexFloatStorage", "ComplexDoubleStorage", "Tensor"},
    "torch.storage": {"UntypedStorage", "TypedStorage"},
    "numpy": {"dtype", "ndarray"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.dtypes": None,  # every dtype class (Float32DType, ...)
    "_codecs": {"encode"},  # NumPy pickles bytes through it; it only re-encodes a string
}
# Known code execution or file/network access: unsafe wherever they appear.
DENYLIST_MODULES = {
    "os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "importlib", "runpy", "pty", "code", "codeop",
    "webbrowser", "ctypes", "marshal", "pickle", "_pickle", "dill", "cloudpickle", "types", "asyncio", "multiprocessing",
    "bdb", "pdb", "timeit", "platform", "urllib", "http", "requests", "httpx", "ftplib", "smtplib", "telnetlib",
    "tempfile", "pathlib", "glob", "io", "_io", "signal", "threading", "_thread", "zipimport", "pkgutil", "site",
    "distutils", "setuptools", "pip", "builtins.__import__", "torch.hub", "torch.jit", "torch.package",
}
DENYLIST_NAMES = {
    "builtins": {"eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__", "globals",
                 "locals", "vars", "input", "breakpoint", "help", "memoryview", "apply", "execfile", "file"},
    "__builtin__": {"eval", "exec", "compile", "open", "getattr", "setattr", "__import__", "apply", "execfile"},
    "operator": {"attrgetter", "methodcaller", "itemgetter"},
    "functools": {"partial", "reduce"},
    "torch": {"load", "save"},
    "torch.storage": {"_load_from_bytes"},
    "torch.serialization": None,
    "numpy": {"load", "save", "fromfile"},
    "numpy.testing._private.utils": None,
}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"}


def judge(module: str, name: str) -> str:
    """'allowed' | 'suspicious' | 'unsafe' for one imported global."""
    top = module.split(".")[0]
    if module in DENYLIST_MODULES or top in DENYLIST_MODULES or f"{module}.{name}" in DENYLIST_MODULES:
        return "unsafe"
    denied = DENYLIST_NAMES.get(module, set())
    if denied is None or name in denied:
        return "unsafe"
    if module in ALLOWLIST and (ALLOWLIST[module] is None or name in ALLOWLIST[module]):
        return "allowed"
    return "suspicious"


def pickle_globals(data: bytes) -> list[tuple[str, str]]:
    """Every (module, name) the pickle would import, in order. Raises ValueError if it does not parse."""
    found: list[tuple[str, str]] = []
    strings: list[str] = []  # recent string pushes, for STACK_GLOBAL
    memo: dict[int, str] = {}
    next_memo = 0
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            name = op.name
            if name in _STRING_OPS:
                strings.append(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))
            elif name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found.append((module, attr))
            elif name == "STACK_GLOBAL":
                if len(strings) < 2:
                    found.append(("<unknown>", "<unknown>"))  # built from non-literal values: deny
                else:
                    found.append((strings[-2], strings[-1]))
            elif name == "MEMOIZE":
                if strings:
                    memo[next_memo] = strings[-1]
                next_memo += 1
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                if strings:
                    memo[int(arg)] = strings[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg) in memo:
                    strings.append(memo[int(arg)])
            elif name == "STOP":
                break
    except Exception as exc:  # noqa: BLE001 - genops raises ValueError and friends on garbage
        raise ValueError(f"not a valid pickle: {exc}") from None
    return found


def scan_pickle(data: bytes, where: str = "") -> list[Finding]:
    try:
        imports = pickle_globals(data)
    except ValueError as exc:
        return [Finding("pickle", "error", f"{where}{exc}")]
    findings = []
    for module, name in dict.fromkeys(imports):
        verdict = judge(module, name)
        if verdict == "allowed":
            continue
        findings.append(Finding("pickle-import", verdict,
                                f"{where}imports {module}.{name}" + (", which can run code when loaded"
                                                                     if verdict == "unsafe" else
                                                                     ", which is not on the allowlist"),
                                {"module": module, "name": name}))
    return findings


def looks_like_pickle(head: bytes) -> bool:
    """Protocol 2+ pickles start with PROTO; older ones with a few typical opcodes."""
    return len(head) >= 2 and ((head[0] == 0x80 and 2 <= head[1] <= 5) or head[:1] in (b"(", b"]", b"}", b"c"))
