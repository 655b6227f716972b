"""Upload scanning: what a file would do if someone loaded it, judged without loading it.

``scan_file(path_in_repo, open_stream, size, limits=...)`` returns a ``FileScan``: a status
(``safe``, ``skipped``, ``suspicious``, ``error``, ``unsafe`` — the worst of its findings), the
findings, and the scanner that judged the file. It never raises and never unpickles, imports,
renders or executes anything from the file.

What is scanned (the scanner is picked from the first bytes, then the name):

- **Pickles** — raw (``.pkl .pickle .joblib .bin .pt .pth .ckpt .dat``..., any file starting
  with PROTO 2-5, protocol 0 pickles hiding in text files), in PyTorch zips (``*/data.pkl``),
  legacy PyTorch tars, ``.npy``/``.npz`` arrays of objects, and gzip/bz2/xz/zlib-compressed.
  Opcodes are walked with ``pickletools.genops`` and the unpickler's stack followed symbolically,
  so every global the pickle would import is found (GLOBAL, INST, STACK_GLOBAL through the memo,
  copyreg extensions). **Default-deny**: globals on a small allowlist (what PyTorch, NumPy and
  plain-data checkpoints need) are fine; known code execution, imports, attribute gadgets, file
  and network access, and nested deserializers are ``unsafe``; *any other global* is
  ``suspicious`` — unknown code would run at load time (``pickle_policy.py`` has the lists).
  A pickle that does not parse is an ``error``, with the imports before the break still judged.
- **Archives** (zip, tar, also nested and compressed): names escaping the extraction folder,
  links, device files, bombs (compression ratio, overlapping zip entries), duplicate names,
  TorchScript code; members that can carry code are scanned like files. 7z, rar, zstd and lz4 are
  ``skipped`` with an ``info`` finding: they cannot be opened here.
- **safetensors**: the header must describe known dtypes and shapes whose data tile the buffer
  exactly (the reference implementation's rules), without loading a tensor.
- **GGUF**: the metadata and tensor-info section, every count and length bounded; its chat
  templates are checked.
- **Chat templates** (GGUF, ``tokenizer_config.json`` and friends, ``*.jinja``): parsed in
  ``ImmutableSandboxedEnvironment``, never rendered; dunder/internal attribute access and the
  globals SSTI payloads start from (CVE-2024-34359) are ``unsafe``.
- **Secrets** in text files up to 1 MiB (Hugging Face, AWS, GitHub, OpenAI-style, Slack, Google
  keys, private key blocks): ``suspicious``, shown masked (first 4 and last 2 characters).
- **Custom code**: ``auto_map`` in configs (code run by ``trust_remote_code=True``, possibly from
  another repo) is reported as ``info``.

**Limits** (``ScanLimits``; defaults in ``limits.py``): bytes one pickle walk reads (512 MiB)
and pickles per stream (1,000); archive members listed (100,000), bytes read out of one archive's
members (2 GiB), nesting depth (3), compression ratio (100x once past 16 MiB), compressed tar
expansion (16 GiB); header sizes (safetensors and zip central directory 100 MB, .npy 64 KiB, GGUF
metadata 256 MiB with at most 100,000 keys, 1,000,000 tensors, 64 MiB strings, 16 Mi-item
arrays, each also bounded by the bytes left in the file); templates and searched text (1 MiB),
configs (16 MiB).
Tar metadata (pax and long-name headers, names) counts against 64 MiB; zip directory entries are
counted for real, not taken from the end record; a safetensors header holding more than 4 M JSON
values is not parsed; decompressed bytes are metered as they come out.
Every read goes through a bounded reader; exceeding a limit is an ``error`` finding, never a crash
or an unbounded read. On the hub, and in ``aicommons scan``, every scan also runs in a worker
process under memory, CPU-time and wall-clock limits (``worker.py``). Callers must treat ``error`` like ``unsafe`` for trust decisions
(``FileScan.is_issue``): a file that could not be read through is not called safe.

**Not covered**: antivirus signatures (no ClamAV here); 7z/rar/zstd/lz4 content; the Python code
``trust_remote_code`` would run (``*.py`` files, and code from other repos named in ``auto_map``)
and TorchScript code (flagged, not analysed); Keras ``Lambda``/``TFSMLayer`` layers, TensorFlow
SavedModel ops, ONNX and other formats that are not pickles; files that are a pickle and a zip at
once (the pickle is judged, as ``torch.load`` reads it); whether a leaked secret is live; text
files inside archives (only code-carrying members are opened); denial of service by the data a
pickle or template builds once it is allowed (e.g. a huge ``bytearray``).
"""

from .dispatch import scan_file
from .limits import DEFAULT_LIMITS, ScanLimits
from .pickle_policy import ALLOWED_GLOBALS, DENIED_GLOBALS, DENIED_MODULES, DENIED_NAMES, judge_global
from .results import FileScan, Finding

__all__ = ["scan_file", "FileScan", "Finding", "ScanLimits", "DEFAULT_LIMITS", "judge_global", "ALLOWED_GLOBALS",
           "DENIED_GLOBALS", "DENIED_MODULES", "DENIED_NAMES"]
