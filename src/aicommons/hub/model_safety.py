"""Whether inference may load a model's files: the scanner's verdicts, checked before any loading.

Loading runs the files' code paths (``torch.load`` unpickles; a custom class could come with the
weights), so a commit is refused when the upload scanner (``hub/scans.py``) judged one of its files
``unsafe``, and when one of its pickle-format files (``.bin``, ``.pt``, ``.pkl``, …) was not vouched
for: not scanned yet (503 with ``Retry-After``: the scan is queued and runs in the background) or
scanned with a ``suspicious`` or ``error`` result (default-deny). Safetensors and text files are not
executed when loaded, so only their ``unsafe`` verdict refuses them. GGUF files carry a chat template
(Jinja) that the model's answers are rendered with: they are served only once the scanner has read
them (its template check included), and not when it could not (``error``).
"""

from __future__ import annotations

import posixpath

import pygit2

from aicommons.errors import HubError
from aicommons.hub import content
from aicommons.hub.scans import ScanService, scan_key

# The scanner's own lists of names loaders unpickle (aicommons.scanning.pickles), kept in step.
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".pck",
                    ".bin", ".pt", ".pth", ".ckpt", ".dat", ".data", ".npy", ".npz")
_VOUCHED = ("safe", "skipped")


class UnsafeModel(HubError):
    status = 403
    code = "UnsafeModel"


class ModelNotScanned(HubError):
    status = 503
    code = "ModelNotScanned"


def check_loadable(scans: ScanService, repo_id: str, git_repo: pygit2.Repository, commit: pygit2.Commit) -> None:
    files = list(content.iter_files(git_repo, commit))
    stored = scans.store.get_many([scan_key(e) for e in files])
    unsafe, doubtful, unscanned = [], [], []
    for entry in files:
        result = stored.get(scan_key(entry))
        status = result["status"] if result is not None else None
        if status == "unsafe":
            unsafe.append(entry.path)
        elif entry.path.lower().endswith(".gguf"):
            if status is None:
                unscanned.append(entry.path)
            elif status == "error":
                doubtful.append(f"{entry.path} ({status})")
        elif posixpath.basename(entry.path).lower().endswith(_PICKLE_SUFFIXES):
            if status is None:
                unscanned.append(entry.path)
            elif status not in _VOUCHED:
                doubtful.append(f"{entry.path} ({status})")
    if unsafe:
        raise UnsafeModel(f"The hub's scanner judged files of {repo_id} unsafe ({', '.join(unsafe[:5])}); "
                          "this model is not served")
    if doubtful:
        raise UnsafeModel(f"Files of {repo_id} did not pass the hub's scanner ({', '.join(doubtful[:5])}); "
                          "this model is not served. Convert pickled weights to safetensors")
    if unscanned:
        raise ModelNotScanned(f"Files of {repo_id} are not scanned yet ({', '.join(unscanned[:5])}); "
                              "retry in a moment", headers={"Retry-After": "10"})
