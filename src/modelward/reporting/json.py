"""The JSON report: a stable, versioned document for machines.

Its shape is specified by ``docs/report-schema.json`` (JSON Schema) and explained in
``docs/json-output.md``; tests validate every document this module writes against that
schema. `SCHEMA_VERSION` follows the usual rule: the minor number grows when fields are
added, the major number when a field changes meaning or disappears.
"""

from __future__ import annotations

import json
from typing import ClassVar, Final, TypedDict

from typing_extensions import override

from modelward.findings import Finding, Location
from modelward.reporting.base import (
    SEVERITY_ORDER,
    Renderer,
    RenderOptions,
    finding_fingerprint,
    rule_help_uri,
)
from modelward.results import FileResult, MemberInfo, ScanReport, Status

__all__ = ["SCHEMA_VERSION", "JsonRenderer", "ReportJson", "report_to_json"]

SCHEMA_VERSION: Final = "1.0"


class ToolJson(TypedDict):
    name: str
    version: str


class LocationJson(TypedDict):
    path: str
    members: list[str]
    member: str | None
    offset: int | None
    node: str | None


class FindingJson(TypedDict):
    rule_id: str
    rule_name: str
    severity: str
    message: str
    location: LocationJson
    evidence: str | None
    remediation: str
    details: dict[str, str]
    fingerprint: str
    help_uri: str


class MemberJson(TypedDict):
    members: list[str]
    member: str
    format: str | None
    size: int


class FileJson(TypedDict):
    path: str
    format: str | None
    size: int
    sha256: str | None
    status: str
    verdict: str | None
    duration_s: float
    suppressed: int
    members: list[MemberJson]
    findings: list[FindingJson]


class SummaryJson(TypedDict):
    files: int
    scanned: int
    skipped: int
    failed: int
    findings: dict[str, int]
    total_findings: int
    suppressed: int


class ReportJson(TypedDict):
    schema_version: str
    tool: ToolJson
    started_at: str
    duration_s: float
    targets: list[str]
    policy: dict[str, object]
    complete: bool
    verdict: str | None
    exit_code: int
    summary: SummaryJson
    files: list[FileJson]


def location_to_json(location: Location) -> LocationJson:
    """The JSON form of a `Location`."""
    return {
        "path": location.path,
        "members": list(location.members),
        "member": location.member,
        "offset": location.offset,
        "node": location.node,
    }


def finding_to_json(finding: Finding) -> FindingJson:
    """The JSON form of a `Finding` (remediation falls back to the rule's)."""
    return {
        "rule_id": finding.rule.id,
        "rule_name": finding.rule.name,
        "severity": finding.severity.label,
        "message": finding.message,
        "location": location_to_json(finding.location),
        "evidence": finding.evidence,
        "remediation": finding.advice,
        "details": dict(finding.details),
        "fingerprint": finding_fingerprint(finding),
        "help_uri": rule_help_uri(finding.rule),
    }


def _member_to_json(member: MemberInfo) -> MemberJson:
    return {
        "members": list(member.members),
        "member": "!".join(member.members),
        "format": member.format,
        "size": member.size,
    }


def file_to_json(result: FileResult) -> FileJson:
    """The JSON form of a `FileResult`."""
    verdict = result.verdict
    return {
        "path": result.path,
        "format": result.format,
        "size": result.size,
        "sha256": result.sha256,
        "status": result.status.value,
        "verdict": None if verdict is None else verdict.label,
        "duration_s": round(result.duration_s, 6),
        "suppressed": result.suppressed,
        "members": [_member_to_json(m) for m in result.members],
        "findings": [finding_to_json(f) for f in result.findings],
    }


def report_to_json(report: ScanReport) -> ReportJson:
    """The whole report as JSON data (what `JsonRenderer` serialises).

    The exit code is the one the report gives under its own policy's ``fail_on``; the CLI
    puts ``--fail-on`` into that policy, so the two always agree.
    """
    counts = report.counts()
    statuses = {s: sum(1 for r in report.files if r.status is s) for s in Status}
    policy: dict[str, object] = {"source": report.policy.source, "digest": report.policy.digest()}
    policy.update(report.policy.to_json())
    verdict = report.verdict
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "modelward", "version": report.version},
        "started_at": report.started_at,
        "duration_s": round(report.duration_s, 6),
        "targets": list(report.targets),
        "policy": policy,
        "complete": report.is_complete,
        "verdict": None if verdict is None else verdict.label,
        "exit_code": int(report.exit_code()),
        "summary": {
            "files": len(report.files),
            "scanned": statuses[Status.SCANNED],
            "skipped": statuses[Status.SKIPPED],
            "failed": statuses[Status.FAILED],
            "findings": {s.label: counts[s] for s in SEVERITY_ORDER},
            "total_findings": sum(counts.values()),
            "suppressed": sum(r.suppressed for r in report.files),
        },
        "files": [file_to_json(r) for r in report.files],
    }


class JsonRenderer(Renderer):
    """Renders the documented JSON report (``docs/report-schema.json``)."""

    name: ClassVar[str] = "json"
    media_type: ClassVar[str] = "application/json"

    @override
    def render(self, report: ScanReport, options: RenderOptions | None = None) -> str:
        return json.dumps(report_to_json(report), indent=2, ensure_ascii=False) + "\n"
