"""Which imported globals a pickle may use: default-deny (security spec, item 2).

Every global a pickle names is judged, called or not (a referenced function can be called later
by another opcode):

1. on ``ALLOWED_GLOBALS`` (exact ``module.name``): allowed. These rebuild data — tensors,
   arrays, containers, plain values — and run no code chosen by the file;
2. on the denylist: ``unsafe``. A module in ``DENIED_MODULES`` (and everything under it), a
   ``module.name`` in ``DENIED_GLOBALS``, a name in ``DENIED_NAMES`` in any module (``eval``,
   ``system``, ``load``...), any dunder name, or a global whose name could not be read
   (``unknown.unknown``, copyreg extensions). These execute code, import modules, reach
   attributes by name, touch files, processes or the network, or deserialize more pickles;
3. anything else: ``suspicious``. It is code we do not know, and loading would run it
   (picklescan's default grades these "suspicious" and passes them; its ``--strict`` mode, which
   the spec asks for, fails them — a hand-made pickle calling ``importlib.import_module`` is
   the reason). Callers count ``suspicious`` as an issue.

Names are judged as the unpickler would resolve them: below protocol 3, Python 2 names are
remapped (``__builtin__`` to ``builtins``, ``commands.getoutput`` to ``subprocess.getoutput``),
and from protocol 4 a name may be a dotted attribute path (``torch`` + ``serialization.load``),
which is judged as the full path.
"""

from __future__ import annotations

import _compat_pickle

ALLOWED = "allowed"
SUSPICIOUS = "suspicious"
UNSAFE = "unsafe"

_TORCH_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
                   "ComplexFloat", "ComplexDouble", "QInt8", "QInt32", "QUInt8", "QUInt2x4", "QUInt4x2", "Untyped")
_TORCH_DTYPES = ("float32", "float", "float64", "double", "float16", "half", "bfloat16", "int8", "uint8", "int16",
                 "short", "int32", "int", "int64", "long", "uint16", "uint32", "uint64", "bool", "complex64",
                 "complex128", "cfloat", "cdouble", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                 "float8_e5m2fnuz", "qint8", "quint8", "qint32")
_TORCH_LAYOUTS = ("strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc",
                  "contiguous_format", "channels_last", "channels_last_3d", "preserve_format")

ALLOWED_GLOBALS: frozenset[str] = frozenset({
    # Containers and plain values. Calling these builds data from their arguments (defaultdict's
    # factory and the like are globals of their own, judged separately). Python pickles sets,
    # bytearrays, slices, complex numbers and ranges through them below protocol 4/5.
    "collections.OrderedDict", "collections.defaultdict", "collections.Counter", "collections.deque",
    "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.bytes", "builtins.slice",
    "builtins.complex", "builtins.range", "builtins.list", "builtins.dict", "builtins.tuple",
    "builtins.int", "builtins.float", "builtins.str", "builtins.bool",
    # Values from the standard library that checkpoints carry in their metadata.
    "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta", "datetime.timezone",
    "decimal.Decimal", "fractions.Fraction",
    # Old (fairseq-era) checkpoints store their arguments as a Namespace: attributes only.
    "argparse.Namespace",
    # NumPy pickles bytes as _codecs.encode(str, "latin1") below protocol 3. The codec lookup only
    # imports modules inside the ``encodings`` package (names with dots are refused).
    "_codecs.encode",
    # torch.save of tensors and parameters: rebuild functions that take a storage (resolved by the
    # loader's persistent_load, not by the pickle), sizes, strides and flags.
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_device_tensor_from_numpy", "torch._utils._rebuild_meta_tensor_no_storage",
    # Calls its first argument with the rest: that function is a global of its own, judged too.
    "torch._tensor._rebuild_from_type_v2",
    # Turns a layout name ("torch.sparse_coo") into the layout object; only sparse tensors use it.
    "torch.serialization._get_layout",
    "torch.Size", "torch.device", "torch.Tensor", "torch.nn.parameter.Parameter",
    *(f"torch.{kind}Storage" for kind in _TORCH_STORAGES),
    *(f"torch.{dtype}" for dtype in _TORCH_DTYPES),
    *(f"torch.{layout}" for layout in _TORCH_LAYOUTS),
    # TorchScript's pickles (``*.debug_pkl``, ``constants.pkl``) tag lists with these; each returns
    # its argument.
    *(f"torch.jit._pickle.{name}" for name in ("build_intlist", "build_tensorlist", "build_doublelist",
                                                "build_boollist", "build_tensor_from_id", "restore_type_tag")),
    # NumPy arrays, scalars and dtypes (numpy 1 spells the module numpy.core, numpy 2 numpy._core).
    "numpy.ndarray", "numpy.dtype",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
})

DENIED_MODULES: frozenset[str] = frozenset({
    # processes, code execution, imports
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "_winapi", "pty", "sys", "importlib", "imp",
    "zipimport", "pkgutil", "runpy", "code", "codeop", "compileall", "py_compile", "ctypes", "_ctypes", "cffi",
    "marshal", "types", "inspect", "gc", "atexit", "signal", "threading", "_thread", "multiprocessing",
    "concurrent", "asyncio", "site", "sysconfig", "venv", "ensurepip", "pip", "setuptools", "distutils",
    "_osx_support", "_aix_support", "_pyrepl", "idlelib", "lib2to3", "tkinter", "turtle", "webbrowser",
    # debuggers, profilers, doc tools that exec strings
    "bdb", "pdb", "trace", "timeit", "profile", "cProfile", "pydoc", "doctest", "unittest", "test",
    # attribute and call gadgets
    "operator", "_operator", "functools", "_functools",
    # more deserializers (a pickle that unpickles another escapes the scan)
    "pickle", "_pickle", "pickletools", "shelve", "dill", "cloudpickle", "yaml", "jsonpickle",
    # files and the network
    "io", "_io", "pathlib", "glob", "shutil", "tempfile", "fileinput", "mmap", "fcntl", "tarfile", "zipfile",
    "sqlite3", "logging", "uuid", "socket", "_socket", "ssl", "select", "selectors", "socketserver", "http",
    "httplib", "urllib", "urllib2", "urllib3", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "poplib",
    "imaplib", "telnetlib", "xmlrpc", "wsgiref",
    # library entry points that load code or files
    "numpy.f2py", "numpy.distutils", "numpy.testing", "numpy.ctypeslib", "torch.hub", "torch.jit",
    "torch.package", "torch._inductor", "torch._dynamo", "torch.utils._config_module",
    "torch.utils.cpp_extension", "tensorflow.io", "pandas.io",
})

DENIED_GLOBALS: frozenset[str] = frozenset({
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.open", "builtins.getattr",
    "builtins.setattr", "builtins.delattr", "builtins.__import__", "builtins.globals", "builtins.locals",
    "builtins.vars", "builtins.input", "builtins.breakpoint", "builtins.help", "builtins.exit", "builtins.quit",
    "builtins.__build_class__",
    # torch.storage._load_from_bytes calls torch.load on the bytes it is given: a pickle in a pickle.
    "torch.load", "torch.save", "torch.from_file", "torch.storage._load_from_bytes", "torch.serialization",
    "numpy.load", "numpy.save", "numpy.savez", "numpy.fromfile", "numpy.memmap", "numpy.loadtxt",
    "numpy.genfromtxt", "pandas.read_pickle", "joblib.load",
})

# Names that mean code execution, imports, attribute access by name or deserialization in
# whatever module they live (``pandas.eval``, ``dill.loads``, ``inspect.getattr_static``...).
DENIED_NAMES: frozenset[str] = frozenset({
    "eval", "exec", "execfile", "system", "popen", "spawn", "startfile", "fork", "getoutput",
    "getstatusoutput", "check_output", "check_call", "run_path", "run_module", "import_module",
    "load_module", "exec_module", "getattr", "setattr", "delattr", "getattr_static", "resolve_name",
    "attrgetter", "methodcaller", "load", "loads", "breakpoint", "set_trace", "interact", "execv",
    "execve", "execl", "execvp", "execlp", "posix_spawn",
})


def _is_dunder(part: str) -> bool:
    return part.startswith("__") and part.endswith("__") and len(part) > 4


def _remapped(module: str, name: str) -> tuple[str, str]:
    """What the unpickler imports below protocol 3 (``fix_imports``, the default)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _judge_path(module: str, name: str) -> tuple[str, str]:
    full = f"{module}.{name}"
    if full in ALLOWED_GLOBALS:
        return ALLOWED, "on the allowlist"
    parts = full.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in DENIED_MODULES or prefix in DENIED_GLOBALS:
            return UNSAFE, f"{prefix} can run code or reach files, processes or the network"
    for part in name.split("."):
        if part in DENIED_NAMES:
            return UNSAFE, f"{part!r} runs code, imports, or loads more data"
        if _is_dunder(part):
            return UNSAFE, f"{part!r} reaches into Python internals"
    if "." in name:
        # From protocol 4 the name is an attribute path: ``torch`` + ``os.system`` walks through
        # the os module torch imported. Walking into a denied module (``collections._sys``) is the
        # same as importing it.
        for part in name.split(".")[:-1]:
            if part.lstrip("_") in DENIED_MODULES or part in DENIED_MODULES or part == "builtins":
                return UNSAFE, f"the attribute path walks into the {part.lstrip('_')} module"
        return SUSPICIOUS, "an attribute path, not a plain global; not on the allowlist"
    return SUSPICIOUS, "not on the allowlist: unknown code would run when loaded"


_RANK = {ALLOWED: 0, SUSPICIOUS: 1, UNSAFE: 2}


def judge_global(module: str, name: str, *, protocol: int = 0, resolved: bool = True) -> tuple[str, str]:
    """``(verdict, reason)`` for one imported global; verdict is allowed | suspicious | unsafe."""
    if not resolved or not module or not name:
        return UNSAFE, "its name is computed while loading, so it cannot be checked"
    verdict = _judge_path(module, name)
    if protocol < 3:
        mapped = _remapped(module, name)
        if mapped != (module, name):
            # The loader imports the mapped name (Python 3 itself writes ``__builtin__.set`` at
            # protocol 2). The written name only matters to a loader that turned fix_imports off:
            # it still counts if it is denied on its own (``socket`` is in both lists).
            raw, verdict = verdict, _judge_path(*mapped)
            if raw[0] == UNSAFE:
                verdict = worse_verdict(raw, verdict)
    return verdict


def worse_verdict(a: tuple[str, str], b: tuple[str, str]) -> tuple[str, str]:
    return a if _RANK[a[0]] >= _RANK[b[0]] else b
