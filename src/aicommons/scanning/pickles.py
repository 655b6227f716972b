"""Pickle scanning: walk the opcodes (``pickle_walk``), judge every global (``pickle_policy``),
and turn that into findings. Nothing is ever unpickled.

How sure we must be that a stream is a pickle before calling a broken one an ``error``:
- ``strict`` (the name says pickle, or it starts with a PROTO 2-5 opcode): a pickle that does not
  parse is an ``error`` — a deliberately broken pickle is how nullifAI slipped past scanners,
  its payload running before the parse error. The globals read before the break are judged too;
- not strict (a ``.bin`` that may be raw tensor bytes, a member sniffed by content): a stream
  that breaks before naming an importable global cannot run anything when unpickled, so it is
  simply not a pickle; one that named globals first is judged like the strict case;
- ``require_complete`` (text files tried for protocol 0 pickles): only a pickle that parses to
  its STOP and imports something counts, so prose starting with ``c`` is not read as a GLOBAL.
"""

from __future__ import annotations

from .bounded_io import BoundedReader
from .limits import ScanLimits
from .pickle_policy import ALLOWED, judge_global, worse_verdict
from .pickle_walk import GlobalRef, PickleWalk, walk_pickles
from .results import Finding

# Only ever pickles: one that does not parse is an error (a broken pickle hid nullifAI's payload).
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".pck")
# Often pickles (torch.load, np.load's fallback), often not (raw tensor bytes, other formats):
# a stream that breaks before importing anything is simply "not a pickle".
MAYBE_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".dat", ".data", ".npy", ".npz")
# Archive members that loaders unpickle by name (PyTorch zips; pre-2017 PyTorch tars).
PICKLE_MEMBER_NAMES = frozenset({"data.pkl", "constants.pkl", "pickle", "storages", "tensors", "sys_info"})


def named_like_pickle(basename: str, *, member: bool) -> bool:
    """Does the (lower-case) name say the bytes are meant to be unpickled?"""
    return basename.endswith(PICKLE_SUFFIXES + MAYBE_PICKLE_SUFFIXES) or (member and basename in PICKLE_MEMBER_NAMES)


def scan_pickle(reader: BoundedReader, limits: ScanLimits, *, strict: bool,
                require_complete: bool = False) -> list[Finding] | None:
    """Findings for the pickle(s) in ``reader``, or None when the stream is not a pickle."""
    walk = walk_pickles(reader, limits.max_pickles_per_stream)
    if walk.limit is not None:
        return judge_globals(walk.globals) + [Finding("pickle", "error", f"could not be read through: {walk.limit}")]
    if walk.error is None:
        if require_complete and not walk.globals:
            return None
        return judge_globals(walk.globals)
    if require_complete:
        return None
    refs = walk.globals if strict else _until_unimportable(walk.globals)
    if not strict and not refs:
        return None
    return judge_globals(refs) + [_broken(walk)]


def _until_unimportable(refs: list[GlobalRef]) -> list[GlobalRef]:
    """Globals a load would get through: it stops at the first name that cannot be imported."""
    kept = []
    for ref in refs:
        if not ref.importable and ref.resolved:
            break
        kept.append(ref)
    return kept


def _broken(walk: PickleWalk) -> Finding:
    return Finding("pickle", "error", f"does not parse as a pickle ({walk.error}); a loader would run "
                                      "what comes before the break, so the imports found so far are judged")


def judge_globals(refs: list[GlobalRef]) -> list[Finding]:
    """One finding per global that is not allowed (its worst verdict), and one ``info`` listing
    the allowed ones (what the Hub shows as the file's "pickle imports")."""
    verdicts: dict[tuple[str, str], tuple[str, str]] = {}
    for ref in refs:
        verdict = judge_global(ref.module, ref.name, protocol=ref.protocol, resolved=ref.resolved)
        if ref.opcode.startswith("EXT"):
            verdict = (verdict[0], "a global registered under a number in the loading process: "
                                   "it cannot be checked")
        key = (ref.module, ref.name)
        verdicts[key] = worse_verdict(verdicts[key], verdict) if key in verdicts else verdict
    findings = []
    allowed = []
    for (module, name), (verdict, reason) in verdicts.items():
        if verdict == ALLOWED:
            allowed.append(f"{module}.{name}")
            continue
        findings.append(Finding("pickle-import", verdict, f"imports {module}.{name}: {reason}",
                                {"module": module, "name": name}))
    if allowed:
        findings.append(Finding("pickle-allowed-imports", "info", "allowlisted imports: " + ", ".join(allowed),
                                {"imports": allowed}))
    return findings
