"""SARIF 2.1.0 output, shaped for GitHub code scanning.

SARIF is the OASIS format code-scanning dashboards read
(https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/sarif-v2.1.0-errata01-os-complete.html).
Tests validate every document against the official schema (vendored in
``tests/assets/schemas/``). The conventions followed, after GitHub's "SARIF support for
code scanning" page:

- one ``result`` per finding; ``ruleId`` and ``ruleIndex`` point into
  ``tool.driver.rules``, which lists every rule that fired with its documentation,
  remediation (``help``), ``helpUri`` (its anchor in ``docs/rules.md``), default level and
  ``properties.security-severity`` (critical 9.5, high 8.0, medium 5.5, low 3.0, info 0.0);
- ``level``: ``error`` for CRITICAL and HIGH, ``warning`` for MEDIUM, ``note`` for LOW and INFO;
- the location is the scanned *file*, relative to the scanned root (``uriBaseId``
  ``SRCROOT``); model files are binary, so the region is line 1 (GitHub needs a line) plus
  the byte offset when it refers to the file itself. The archive member chain, offset and
  graph node sit in the message and in ``properties``;
- ``partialFingerprints`` carry `finding_fingerprint`, so alerts survive re-runs;
- ``invocations[0].executionSuccessful`` is false when some file could not be fully
  analysed, and each such file gets a ``toolExecutionNotifications`` entry (on top of the
  finding the engine already records for it), so an incomplete scan never reads as clean.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final
from urllib.parse import quote

from typing_extensions import override

from modelward.findings import Finding, Rule, Severity
from modelward.reporting.base import (
    Renderer,
    RenderOptions,
    finding_fingerprint,
    printable,
    rule_help_uri,
)
from modelward.results import ScanReport, Status

__all__ = ["SARIF_SCHEMA_URI", "SECURITY_SEVERITY", "SarifRenderer", "level_of", "report_to_sarif"]

SARIF_SCHEMA_URI: Final = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI: Final = "https://github.com/modelward/modelward"
FINGERPRINT_KEY: Final = "modelwardFinding/v1"
MESSAGE_EVIDENCE_CHARS: Final = 1000
"""Evidence longer than this is cut in the message; ``properties.evidence`` keeps it whole."""

SECURITY_SEVERITY: Final[dict[Severity, str]] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
"""GitHub maps >= 9.0 to critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low."""


def level_of(severity: Severity) -> str:
    """The SARIF ``level`` of a severity."""
    if severity >= Severity.HIGH:
        return "error"
    if severity is Severity.MEDIUM:
        return "warning"
    return "note"


def _uri(path: str) -> tuple[str, str | None]:
    """URI of a report path and its base id (``None`` for absolute paths)."""
    if path.startswith("/"):
        return "file://" + quote(path, safe="/"), None
    return quote(path, safe="/"), "SRCROOT"


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": _first_sentence(rule.description) or rule.name},
        "fullDescription": {"text": rule.description or rule.name},
        "helpUri": rule_help_uri(rule),
        "defaultConfiguration": {"level": level_of(rule.severity)},
        "properties": {
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "severity": rule.severity.label,
            "tags": ["security", f"modelward/{rule.area.lower()}"],
        },
    }
    if rule.remediation:
        help_md = rule.remediation
        if rule.references:
            help_md += "\n\nReferences:\n" + "\n".join(f"- {url}" for url in rule.references)
        descriptor["help"] = {"text": rule.remediation, "markdown": help_md}
    return descriptor


def _message(finding: Finding) -> str:
    loc = finding.location
    text = finding.message
    where = []
    if loc.members:
        where.append(f"in archive member {loc.member}")
    if loc.offset is not None:
        where.append(f"at byte offset {loc.offset}")
    if loc.node is not None:
        where.append(f"at node {loc.node}")
    if where:
        text += f" ({', '.join(where)})"
    if not text.endswith("."):
        text += "."
    if finding.evidence:
        evidence = finding.evidence
        if len(evidence) > MESSAGE_EVIDENCE_CHARS:
            evidence = (evidence[:MESSAGE_EVIDENCE_CHARS]
                        + f" … ({len(finding.evidence)} characters in properties.evidence)")
        text += f"\nEvidence: {evidence}"
    advice = finding.advice
    if advice:
        text += f"\nRemediation: {advice}"
    # Viewers display this text: escape escape sequences and bidi overrides taken from the
    # file (properties.evidence keeps the raw fragment for machines).
    return printable(text, keep_newlines=True)


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    loc = finding.location
    uri, base = _uri(loc.path)
    artifact: dict[str, Any] = {"uri": uri}
    if base is not None:
        artifact["uriBaseId"] = base
    region: dict[str, Any] = {"startLine": 1}
    if loc.offset is not None and not loc.members:
        region["byteOffset"] = loc.offset
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": artifact, "region": region},
    }
    if loc.members or loc.node is not None:
        name = loc.node if loc.node is not None else loc.members[-1]
        full = "!".join((loc.path, *loc.members)) + (f"#{loc.node}" if loc.node else "")
        location["logicalLocations"] = [{
            "name": name,
            "fullyQualifiedName": full,
            "kind": "member" if loc.node is None else "object",
        }]
    properties: dict[str, Any] = {
        "severity": finding.severity.label,
        "security-severity": SECURITY_SEVERITY[finding.severity],
    }
    if loc.members:
        properties["member"] = loc.member
        properties["members"] = list(loc.members)
    if loc.offset is not None:
        properties["offset"] = loc.offset
    if loc.node is not None:
        properties["node"] = loc.node
    if finding.evidence is not None:
        properties["evidence"] = finding.evidence
    if finding.details:
        properties["details"] = dict(finding.details)
    return {
        "ruleId": finding.rule.id,
        "ruleIndex": rule_index,
        "level": level_of(finding.severity),
        "message": {"text": _message(finding)},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: finding_fingerprint(finding)},
        "properties": properties,
    }


def _notification(path: str, findings: list[Finding]) -> dict[str, Any]:
    uri, base = _uri(path)
    artifact: dict[str, Any] = {"uri": uri}
    if base is not None:
        artifact["uriBaseId"] = base
    # The engine records why analysis stopped as MW-CORE findings (limit, I/O, internal).
    why = "; ".join(f"{f.rule.id} {f.message}" for f in findings
                    if f.rule.area == "CORE" and f.severity >= Severity.MEDIUM)
    text = printable(f"{path} was not fully analysed" + (f": {why}" if why else ""))
    return {
        "level": "error",
        "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": artifact}}],
        "descriptor": {"id": "incomplete-analysis"},
    }


def report_to_sarif(report: ScanReport) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (one run)."""
    fired: dict[str, Rule] = {}
    for finding in report.findings():
        fired.setdefault(finding.rule.id, finding.rule)
    rules = sorted(fired.values(), key=lambda r: r.id)
    index = {rule.id: i for i, rule in enumerate(rules)}
    results = [_result(f, index[f.rule.id]) for r in report.files for f in r.findings]
    notifications = [_notification(r.path, r.findings) for r in report.files
                     if r.status is Status.FAILED]
    invocation: dict[str, Any] = {
        "executionSuccessful": report.is_complete,
        "exitCode": int(report.exit_code()),
        "startTimeUtc": report.started_at.replace("+00:00", "Z"),
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "modelward",
                "version": report.version,
                "semanticVersion": report.version,
                "informationUri": INFORMATION_URI,
                "rules": [_rule_descriptor(r) for r in rules],
            }},
            "invocations": [invocation],
            "originalUriBaseIds": {"SRCROOT": {"description": {
                "text": "The scanned root: the folder given to modelward scan, or the folder "
                        "of the file given, or the working directory for several targets.",
            }}},
            "results": results,
            "properties": {
                "targets": list(report.targets),
                "policyDigest": report.policy.digest(),
                "failOn": report.policy.fail_on.label,
                "suppressed": sum(r.suppressed for r in report.files),
            },
        }],
    }


class SarifRenderer(Renderer):
    """Renders SARIF 2.1.0 for GitHub code scanning and other SARIF viewers."""

    name: ClassVar[str] = "sarif"
    media_type: ClassVar[str] = "application/sarif+json"

    @override
    def render(self, report: ScanReport, options: RenderOptions | None = None) -> str:
        return json.dumps(report_to_sarif(report), indent=2, ensure_ascii=False) + "\n"
