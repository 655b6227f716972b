"""What a scan found: findings, and the file's status (the worst of them)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Worst last. "error" (the scanner could not finish: malformed file, a limit hit) counts as an
# issue: a file we could not read through is not called safe.
_RANK = {"safe": 0, "skipped": 0, "info": 0, "suspicious": 1, "error": 2, "unsafe": 3}


@dataclass(frozen=True)
class Finding:
    kind: str  # "pickle-import", "zip-slip", "safetensors-header", "chat-template", "secret", ...
    severity: str  # "info" | "suspicious" | "unsafe" | "error"
    message: str
    detail: dict | None = None

    def to_json(self) -> dict:
        out = {"kind": self.kind, "severity": self.severity, "message": self.message}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class FileScan:
    path: str
    scanner: str  # which scanner looked at it ("pickle", "zip", "safetensors", "text", "none")
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        worst = "safe"
        for f in self.findings:
            level = "safe" if f.severity == "info" else f.severity
            if _RANK[level] > _RANK[worst]:
                worst = level
        return worst

    def to_json(self) -> dict:
        return {"status": self.status, "scanner": self.scanner, "findings": [f.to_json() for f in self.findings]}
