"""Assertions shared by the regression tests: which rule fired, how bad, about what."""

from __future__ import annotations

from collections.abc import Iterable

from modelward.findings import Severity
from modelward.results import FileResult

CODE_EXECUTION = frozenset({"MW-PKL-001", "MW-PKL-003"})


def describe(result: FileResult) -> str:
    """All findings, one per line, for assertion messages."""
    return "\n".join(
        f"{f.rule.id} {f.severity.name} {f.location} {f.message} [{f.evidence}]"
        for f in result.findings
    ) or "<no findings>"


def assert_flagged(
    result: FileResult,
    mentions: str | None = None,
    *,
    rules: Iterable[str] = CODE_EXECUTION,
    severity: Severity = Severity.CRITICAL,
) -> None:
    """Some finding of one of `rules`, at `severity` or worse, names `mentions`.

    Args:
        result: the scan result.
        mentions: text the finding's message or evidence must contain (the dangerous
            callable), or ``None`` to skip that check.
        rules: acceptable rule ids.
        severity: the minimum severity.
    """
    wanted = set(rules)
    hits = [f for f in result.findings if f.rule.id in wanted and f.severity >= severity]
    if mentions is not None:
        hits = [f for f in hits if mentions in f"{f.message} {f.evidence or ''}"]
    assert hits, (
        f"expected {sorted(wanted)} >= {severity.name}"
        + (f" mentioning {mentions!r}" if mentions else "")
        + f"; got:\n{describe(result)}"
    )
