"""Small hand-built reports for renderer tests (no scanner involved).

A plain module with a unique name (not a conftest), imported by the tests of this folder.
"""

from __future__ import annotations

from modelward.findings import Finding, Location, Rule, RuleId, Severity
from modelward.policy import Policy
from modelward.results import FileResult, ScanReport, Status

RULE = Rule(RuleId("MW-TEST-001"), "test-rule", Severity.HIGH,
            "Something dangerous. More words here.", "Do the safe thing.",
            ("https://example.org/ref",))


def finding(severity: Severity = Severity.HIGH, path: str = "m.bin",
            members: tuple[str, ...] = (), offset: int | None = None, node: str | None = None,
            evidence: str | None = "ev", rule: Rule = RULE, message: str = "found it") -> Finding:
    return Finding(rule, severity, message, Location(path, members, offset, node), evidence)


def file_result(path: str = "m.bin", *findings: Finding, status: Status = Status.SCANNED,
                suppressed: int = 0) -> FileResult:
    return FileResult(path, "pickle", 10, status, list(findings), suppressed=suppressed)


def make_report(*files: FileResult, fail_on: Severity = Severity.HIGH,
                ignored: frozenset[str] = frozenset()) -> ScanReport:
    return ScanReport(["."], list(files), Policy(fail_on=fail_on, ignored_rules=ignored),
                      "2026-11-25T10:00:00+00:00", 0.5, "0.1.0")
