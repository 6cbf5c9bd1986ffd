"""Scan results: one `FileResult` per scanned file, gathered in a `ScanReport`.

Renderers (``reporting/``) turn a report into text, JSON or SARIF; the CLI turns it into
an exit code with `ScanReport.exit_code`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from modelward.findings import Finding, Severity
from modelward.policy import Policy

__all__ = ["ExitCode", "FileResult", "MemberInfo", "ScanReport", "Status"]


class Status(enum.Enum):
    """How far analysis of a file got.

    SCANNED: fully analysed (findings, if any, say what is wrong).
    SKIPPED: not analysed: a format modelward does not know (an INFO finding says so).
    FAILED: analysis stopped early (malformed content, budget, I/O error, internal error);
        never clean.
    """

    SCANNED = "scanned"
    SKIPPED = "skipped"
    FAILED = "failed"


class ExitCode(enum.IntEnum):
    """Process exit codes of the CLI."""

    OK = 0
    FINDINGS = 1
    ERROR = 2


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A nested stream that was analysed: archive member chain and its format."""

    members: tuple[str, ...]
    format: str | None
    size: int


@dataclass(slots=True)
class FileResult:
    """What was learned about one top-level file.

    Attributes:
        path: file path relative to the scanned root (POSIX separators).
        format: detected format of the file itself (``None`` when unknown).
        size: size in bytes.
        status: how far analysis got.
        findings: findings in this file and everything nested in it, worst first.
        members: nested streams analysed (archive members, decompressed streams).
        sha256: hex digest of the file, when hashing was requested.
        duration_s: wall-clock time spent on the file.
        suppressed: findings dropped because the policy ignores their rule.
    """

    path: str
    format: str | None
    size: int
    status: Status = Status.SCANNED
    findings: list[Finding] = field(default_factory=list)
    members: list[MemberInfo] = field(default_factory=list)
    sha256: str | None = None
    duration_s: float = 0.0
    suppressed: int = 0

    @property
    def verdict(self) -> Severity | None:
        """The worst finding's severity, or ``None`` when there is none."""
        return max((f.severity for f in self.findings), default=None)


@dataclass(slots=True)
class ScanReport:
    """The outcome of one scan over one or more targets.

    Attributes:
        targets: the paths the user asked for, as given.
        files: one result per file, in walk order.
        policy: the policy the scan ran under.
        started_at: ISO-8601 UTC start time.
        duration_s: wall-clock duration of the whole scan.
        version: modelward version that produced the report.
    """

    targets: list[str]
    files: list[FileResult]
    policy: Policy
    started_at: str
    duration_s: float
    version: str

    def findings(self) -> Iterator[Finding]:
        """Every finding of every file."""
        for result in self.files:
            yield from result.findings

    @property
    def verdict(self) -> Severity | None:
        """Worst severity over all files."""
        return max((f.severity for f in self.findings()), default=None)

    def counts(self) -> dict[Severity, int]:
        """Number of findings per severity (every severity present as a key)."""
        counts = {s: 0 for s in Severity}
        for finding in self.findings():
            counts[finding.severity] += 1
        return counts

    @property
    def is_complete(self) -> bool:
        """True when no file's analysis stopped early."""
        return all(r.status is not Status.FAILED for r in self.files)

    def exit_code(self, fail_on: Severity | None = None) -> ExitCode:
        """0 clean, 1 findings at or above `fail_on`, 2 some file could not be analysed.

        Findings at or above the threshold win over an incomplete scan: the answer
        "this is dangerous" is already certain.
        """
        threshold = self.policy.fail_on if fail_on is None else fail_on
        if any(f.severity >= threshold for f in self.findings()):
            return ExitCode.FINDINGS
        if not self.is_complete:
            return ExitCode.ERROR
        return ExitCode.OK
