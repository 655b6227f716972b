"""Upload scanning: what a file would do if someone loaded it, judged without loading it.

``scan_file(path, open_stream, size)`` picks checks from the file's name and first bytes:
- **pickles** (raw, in PyTorch zips, in ``.npy``/``.npz`` with object dtype): every global the
  pickle would import is judged default-deny — known code-execution modules and functions are
  ``unsafe``, what PyTorch/NumPy/plain-Python checkpoints need is allowed, anything else is
  ``suspicious`` (``pickles.py`` lists both);
- **archives** (zip, tar): names that escape on extraction, links, device files, zip bombs;
  7z/rar are not opened (``info``);
- **safetensors**: the header must describe tensors that tile the data exactly;
- **GGUF**: the metadata section is parsed with bounds, and its chat template checked;
- **chat templates** (GGUF, ``tokenizer_config.json``, ``*.jinja``): dunder access and the
  globals template-injection payloads start from are ``unsafe``;
- **secrets** in small text files (tokens and keys of common services, private keys):
  ``suspicious``, shown masked.
Every read is bounded (``limits.py``); a file that cannot be read through — malformed, or over a
limit — is ``error``, which callers treat as an issue, never as safe.

Not covered: antivirus signatures; code in ``*.py`` files of repos that need
``trust_remote_code`` (it is what the user asks to run); Keras/TF SavedModel lambdas; ONNX.
"""

from .dispatch import scan_file
from .limits import DEFAULT_LIMITS, ScanLimits
from .results import FileScan, Finding

__all__ = ["scan_file", "FileScan", "Finding", "ScanLimits", "DEFAULT_LIMITS"]
