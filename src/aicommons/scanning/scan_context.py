"""What a scanner is given besides the bytes: the limits, how deep inside archives it is, the
byte budget one file's archive members share, and the way back to the dispatcher for members
(archives hand each member back to ``dispatch``, which picks its scanner like a file's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from .bounded_io import ByteBudget
from .limits import ScanLimits
from .results import Finding


@dataclass
class Outcome:
    """One scanner's answer: which scanner, what it found, and whether it had to skip the file."""

    scanner: str
    findings: list[Finding] = field(default_factory=list)
    skipped: bool = False


# (member name, open stream positioned at its start, its size, the member's context) -> Outcome
MemberScanner = Callable[[str, BinaryIO, int, "ScanContext"], Outcome]


@dataclass(frozen=True)
class ScanContext:
    limits: ScanLimits
    scan_member: MemberScanner
    depth: int = 0  # archives around the bytes being scanned
    budget: ByteBudget | None = None  # shared by every member of one scanned file

    def inside_archive(self) -> ScanContext:
        budget = self.budget or ByteBudget(self.limits.max_archive_inspected_bytes, "bytes read out of archive members")
        return replace(self, depth=self.depth + 1, budget=budget)
