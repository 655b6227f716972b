"""Rules every archive member is held to, zip or tar (security spec A5): a name must not land
outside the folder it is extracted to, links and device files have no place in a model repo, and
a member must not expand absurdly (a bomb)."""

from __future__ import annotations

import re

from .limits import ScanLimits
from .results import Finding

_DRIVE = re.compile(r"^[A-Za-z]:")
_SHOWN_NAME = 200  # names in messages are cut: a hostile archive picks them


def shown(name: str) -> str:
    """A member name as messages show it: escaped, and cut to a readable length."""
    text = repr(name)
    return text if len(text) <= _SHOWN_NAME else text[:_SHOWN_NAME] + "…"


def member_name_problem(name: str) -> tuple[str, str] | None:
    """``(severity, why)`` when extracting ``name`` would write outside the target folder."""
    if "\x00" in name:
        return "unsafe", "a NUL byte (the name is cut differently by different tools)"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or _DRIVE.match(normalized):
        return "unsafe", "an absolute path"
    if ".." in normalized.split("/"):
        return "unsafe", "a '..' component"
    if "\\" in name:
        # Not an escape on POSIX, but Windows extractors treat it as a folder separator (where a
        # '..' hidden behind it would escape): the same archive extracts differently.
        return "suspicious", "a backslash (a folder separator on Windows only)"
    return None


def check_member_name(name: str) -> list[Finding]:
    problem = member_name_problem(name)
    if problem is None:
        return []
    severity, why = problem
    return [Finding("zip-slip", severity, f"member {shown(name)} has {why}", {"member": name[:_SHOWN_NAME]})]


def expansion_problem(compressed: int, uncompressed: int, limits: ScanLimits) -> str | None:
    """Why ``uncompressed`` bytes out of ``compressed`` make a bomb, or None."""
    if uncompressed < limits.compression_check_min_bytes:
        return None
    if compressed <= 0:
        return f"expands to {uncompressed} bytes from nothing"
    ratio = uncompressed / compressed
    if ratio > limits.max_compression_ratio:
        return (f"expands {ratio:.0f}x ({compressed} to {uncompressed} bytes; "
                f"the limit is {limits.max_compression_ratio}x)")
    return None


def in_member(finding: Finding, member: str) -> Finding:
    """A member's finding, as the archive reports it: the member named in message and detail."""
    detail = dict(finding.detail or {})
    detail["member"] = f"{member}/{detail['member']}" if "member" in detail else member
    return Finding(finding.kind, finding.severity, f"{member}: {finding.message}", detail)
