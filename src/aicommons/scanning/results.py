"""What a scan found: findings, and the file's status (the worst of them)."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("info", "suspicious", "error", "unsafe")
STATUSES = ("safe", "skipped", "suspicious", "error", "unsafe")

# Worst last. "error" (the scanner could not read the file through: malformed, or over a limit)
# ranks above "suspicious": a file we could not judge is not called safe (default-deny). It ranks
# below "unsafe" because a broken pickle that already named ``os.system`` is better reported as
# what we know it does.
_RANK = {"safe": 0, "skipped": 0, "info": 0, "suspicious": 1, "error": 2, "unsafe": 3}

# A hostile archive can hold 100,000 escaping names; the stored result (shown to every visitor)
# keeps this many findings of each kind and severity, then one that counts the rest.
MAX_FINDINGS_PER_KIND = 20
# What a scan that ran out of memory (the worker's RLIMIT_AS, scanning/worker.py) reports.
MEMORY_ERROR = "scan exceeded the memory limit"


@dataclass(frozen=True)
class Finding:
    kind: str  # "pickle-import", "zip-slip", "safetensors-header", "chat-template", "secret", ...
    severity: str  # "info" | "suspicious" | "unsafe", or "error" when the scanner could not finish
    message: str
    detail: dict | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_json(self) -> dict:
        out = {"kind": self.kind, "severity": self.severity, "message": self.message}
        if self.detail:
            out["detail"] = self.detail
        return out


def worst_status(findings: list[Finding], *, skipped: bool = False) -> str:
    """The status findings add up to: their worst severity ("info" counts as nothing)."""
    worst = "skipped" if skipped else "safe"
    for finding in findings:
        level = "safe" if finding.severity == "info" else finding.severity
        if _RANK[level] > _RANK[worst]:
            worst = level
    return worst


@dataclass(frozen=True)
class FileScan:
    path: str
    status: str  # "safe" | "skipped" | "suspicious" | "error" | "unsafe"; see worst_status
    findings: list[Finding] = field(default_factory=list)
    scanner: str = "none"  # which scanner judged it: "pickle", "zip", "tar", "safetensors", "gguf", ...

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        # The status is what the findings say; only "skipped" may stand in for "safe" (nothing we
        # could open). Checked so that no caller can build a "safe" result around an unsafe finding.
        derived = worst_status(self.findings)
        if self.status != derived and not (self.status == "skipped" and derived == "safe"):
            raise ValueError(f"status {self.status!r} does not match the findings ({derived!r})")

    @classmethod
    def from_findings(cls, path: str, scanner: str, findings: list[Finding], *, skipped: bool = False) -> FileScan:
        findings = cap_findings(findings)
        return cls(path, worst_status(findings, skipped=skipped), findings, scanner)

    @classmethod
    def from_json(cls, path: str, data: dict) -> FileScan:
        """The inverse of ``to_json`` (a worker's answer)."""
        findings = [Finding(f["kind"], f["severity"], f["message"], f.get("detail")) for f in data["findings"]]
        return cls(path, data["status"], findings, data.get("scanner", "none"))

    @property
    def is_issue(self) -> bool:
        """What callers flag: anything but safe/skipped. An error counts (default-deny)."""
        return self.status in ("suspicious", "error", "unsafe")

    def to_json(self) -> dict:
        return {"status": self.status, "scanner": self.scanner, "findings": [f.to_json() for f in self.findings]}


def cap_findings(findings: list[Finding], per_kind: int = MAX_FINDINGS_PER_KIND) -> list[Finding]:
    """Keep the first ``per_kind`` findings of each (kind, severity) and summarise the rest, so that
    the severities (and so the status) are unchanged."""
    seen: dict[tuple[str, str], int] = {}
    kept: list[Finding] = []
    for finding in findings:
        key = (finding.kind, finding.severity)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= per_kind:
            kept.append(finding)
    for (kind, severity), count in seen.items():
        if count > per_kind:
            kept.append(Finding(kind, severity, f"... and {count - per_kind} more {kind} findings like these",
                                {"omitted": count - per_kind}))
    return kept
